//! Each step of a [`Schedule`] as a kernel launch: the kernel's name in `kernels.cu`, its grid
//! and its argument struct (the structs of `kernels.cu`, field for field), built from the
//! buffer plan and the addresses where the executor put buffers and weights.
//!
//! The same launches run on a GPU (addresses in device memory) and, in the tests, on the CPU
//! through `kernels.cu` compiled for the host (`tests/cuda_kernels.rs`, host addresses).

use super::schedule::{Act, BufferPlan, Grid, Schedule, Step, View, Write};
use crate::acs::Framing;
use crate::{Error, Result};

/// The most output channels of a conv the kernels hold (`MAX_COUT`; the tensor-core conv:
/// 8 tiles of 8).
pub const MAX_COUT: usize = 64;
/// The most hidden channels of an attention (`MAX_MID`).
pub const MAX_MID: usize = 16;

/// The activations' element type: pixel buffers hold it, per-frame buffers are always f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    F32,
    F16,
}

const CONV_DIRECT_F32: &str = "conv_direct_f32";
/// The tensor-core conv: an entry per count of 8-channel output tiles, computing the 16-pixel
/// tiles a warp that [`mma_tiles`] gives (its name says which: a new rule needs new entries).
const CONV_MMA_F16: [&str; 8] = [
    "conv_mma_f16_n1_m2",
    "conv_mma_f16_n2_m2",
    "conv_mma_f16_n3_m2",
    "conv_mma_f16_n4_m2",
    "conv_mma_f16_n5_m1",
    "conv_mma_f16_n6_m1",
    "conv_mma_f16_n7_m1",
    "conv_mma_f16_n8_m1",
];
const CCA_SUMS: [&str; 2] = ["cca_sums_f32", "cca_sums_f16"];
const CCA_FINISH: &str = "cca_finish_f32";
const CCA_ATTENTION: &str = "cca_attention_f32";
const FRAMES_IN: [&str; 2] = ["frames_in_f32", "frames_in_f16"];
const FRAMES_OUT: [&str; 2] = ["frames_out_f32", "frames_out_f16"];
/// A Y'CbCr or gray frame into planar R'G'B' f32 ([`YuvInArgs`]).
pub const YUV_IN: &str = "yuv_in_f32";
/// Planar R'G'B' f32 written as a Y'CbCr or gray frame ([`YuvOutArgs`]): luma, then chroma.
const YUV_OUT: [&str; 2] = ["yuv_out_luma_f32", "yuv_out_chroma_f32"];
/// A packed R'G'B' frame read into planar f32, and written from it ([`PackedArgs`]).
const PACKED: [&str; 2] = ["packed_in_f32", "packed_out_f32"];

/// Every kernel of `kernels.cu` a launch names.
pub const KERNELS: [&str; 22] = [
    CONV_DIRECT_F32,
    CONV_MMA_F16[0],
    CONV_MMA_F16[1],
    CONV_MMA_F16[2],
    CONV_MMA_F16[3],
    CONV_MMA_F16[4],
    CONV_MMA_F16[5],
    CONV_MMA_F16[6],
    CONV_MMA_F16[7],
    CCA_SUMS[0],
    CCA_SUMS[1],
    CCA_FINISH,
    CCA_ATTENTION,
    FRAMES_IN[0],
    FRAMES_IN[1],
    FRAMES_OUT[0],
    FRAMES_OUT[1],
    YUV_IN,
    YUV_OUT[0],
    YUV_OUT[1],
    PACKED[0],
    PACKED[1],
];

impl Storage {
    /// Index of this type's kernel in pairs of (f32, f16) entries.
    fn index(self) -> usize {
        match self {
            Storage::F32 => 0,
            Storage::F16 => 1,
        }
    }

    /// The conv for activations of this type and `cout` output channels: the direct kernel
    /// in f32, on tensor cores in f16.
    fn conv_kernel(self, cout: usize) -> &'static str {
        match self {
            Storage::F32 => CONV_DIRECT_F32,
            Storage::F16 => CONV_MMA_F16[cout.div_ceil(8).clamp(1, 8) - 1],
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::F16 => 2,
        }
    }
}

/// Where the executor put what the kernels read and write.
#[derive(Clone, Debug, Default)]
pub struct Addresses {
    /// Each buffer's first byte, in [`Schedule::buffers`] order.
    pub buffers: Vec<u64>,
    /// Each conv's packed weight ([`crate::cuda::PackedConv`]) in the storage type, in
    /// [`Schedule::convs`] order.
    pub weights: Vec<u64>,
    /// Each conv's packed weight in f32 (the attention's 1×1 convs read these).
    pub weights_f32: Vec<u64>,
    /// Each conv's f32 bias.
    pub biases: Vec<u64>,
    /// Per step: its embed's weights (f32; 0 for none).
    pub embeds: Vec<u64>,
    /// Per step: its residual's gains (f32; 0 for none).
    pub gains: Vec<u64>,
    /// The statistics' accumulators: two f64 per frame and channel ([`stats_sums_bytes`]),
    /// zero before each statistics step (its last kernel leaves them so).
    pub stats_sums: u64,
}

/// Bytes of the statistics' accumulators for `n` frames of schedule `s`.
pub fn stats_sums_bytes(s: &Schedule, n: usize) -> usize {
    let widest = s
        .steps
        .iter()
        .map(|step| match step {
            Step::CcaStats { src, .. } => src.channels,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    n * widest * 2 * 8
}

/// `kernels.cu`'s `struct ViewArg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewArg {
    pub base: u64,
    pub stride: i32,
    pub channels: i32,
    pub h: i32,
    pub w: i32,
}

/// `kernels.cu`'s `struct ConvArgs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConvArgs {
    pub src: ViewArg,
    pub dst: [ViewArg; 2],
    pub res: ViewArg,
    pub res_gains: u64,
    pub src_scale: u64,
    pub weight: u64,
    pub bias: u64,
    pub embed_code: u64,
    pub embed_w: u64,
    pub scale_stride: i32,
    pub code_stride: i32,
    pub n: i32,
    pub oh: i32,
    pub ow: i32,
    pub k: i32,
    pub stride: i32,
    pub cin: i32,
    pub cin_pad: i32,
    pub cout: i32,
    pub shuffle: i32,
    pub act: i32,
    pub slope: f32,
}

/// `kernels.cu`'s `struct StatsArgs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsArgs {
    pub src: ViewArg,
    pub dst: u64,
    pub acc: u64,
    pub dst_stride: i32,
    pub n: i32,
    pub chunk: i32,
}

/// `kernels.cu`'s `struct AttentionArgs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttentionArgs {
    pub src: u64,
    pub dst: u64,
    pub down_w: u64,
    pub down_b: u64,
    pub up_w: u64,
    pub up_b: u64,
    pub src_stride: i32,
    pub dst_stride: i32,
    pub cin: i32,
    pub cin_pad: i32,
    pub mid: i32,
    pub mid_pad: i32,
    pub n: i32,
}

/// `kernels.cu`'s `struct FramesArgs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramesArgs {
    pub planar: u64,
    pub nhwc: ViewArg,
    pub n: i32,
    pub planar_h: i32,
    pub planar_w: i32,
    pub margin: i32,
}

/// The planar frames' `(h, w)` and margin, placed by `framing`, for the input (`to_nhwc`)
/// or the output of `plan` (the output's at its scale), or an error where they do not fit in
/// the network's frames.
pub fn planar_frames(
    framing: Framing,
    s: &Schedule,
    plan: &BufferPlan,
    to_nhwc: bool,
) -> Result<(usize, usize, usize)> {
    let (_, nh, nw) = plan.nhw;
    let ((h, w), margin) = (framing.frame, framing.margin);
    if h == 0 || w == 0 || h + margin > nh || w + margin > nw {
        return Err(Error::InvalidInput(format!(
            "{w}×{h} frames with a margin of {margin} do not fit the network's {nw}×{nh}"
        )));
    }
    if to_nhwc {
        return Ok((h, w, margin));
    }
    let scale = plan.buffers[s.output].dims[1] / nh;
    Ok((h * scale, w * scale, margin * scale))
}

/// `kernels.cu`'s `struct YuvComp`: sample i of row y at byte `offset + i·step` of the row at
/// `plane + y·stride`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct YuvComp {
    pub plane: u64,
    pub stride: i64,
    pub offset: i32,
    pub step: i32,
}

/// `kernels.cu`'s `struct Tap`: output sample i lerps input samples `i0` and `i1` by `f`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tap {
    pub i0: i32,
    pub i1: i32,
    pub f: f32,
}

/// `kernels.cu`'s `struct YuvInArgs`: a Y'CbCr (or gray) frame read into planar R'G'B' f32 as
/// the element's CPU reader does, `xs`/`ys` its chroma upsampling taps, the constants its
/// matrix and range.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct YuvInArgs {
    pub comp: [YuvComp; 3],
    pub xs: u64,
    pub ys: u64,
    pub rgb: u64,
    pub kr: f32,
    pub kb: f32,
    pub y_off: f32,
    pub y_scale: f32,
    pub c_off: f32,
    pub c_scale: f32,
    pub w: i32,
    pub h: i32,
    pub wide: i32,
    pub shift: i32,
    pub mask: i32,
    pub gray: i32,
}

impl YuvInArgs {
    /// The launch: a thread a pixel.
    pub fn launch(self) -> Result<Launch> {
        let pixels = self.w as u64 * self.h as u64;
        thread_each(YUV_IN, pixels, Args::YuvIn(self))
    }
}

/// `kernels.cu`'s `struct YuvOutArgs`: planar R'G'B' f32 written as a Y'CbCr (or gray) frame
/// as the element's CPU writer does.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct YuvOutArgs {
    pub comp: [YuvComp; 3],
    pub rgb: u64,
    pub kr: f32,
    pub kb: f32,
    pub y_off: f32,
    pub y_scale: f32,
    pub c_off: f32,
    pub c_scale: f32,
    pub max: f32,
    pub w: i32,
    pub h: i32,
    pub y_count: i32,
    pub cw: i32,
    pub ch: i32,
    pub sub_x: i32,
    pub sub_y: i32,
    pub wide: i32,
    pub shift: i32,
    pub gray: i32,
}

impl YuvOutArgs {
    /// The launches: a thread a luma sample, then a thread a chroma sample.
    pub fn launches(self) -> Result<[Launch; 2]> {
        let luma = self.y_count as u64 * self.h as u64;
        let chroma = self.cw as u64 * self.ch as u64;
        Ok([
            thread_each(YUV_OUT[0], luma, Args::YuvOut(self))?,
            thread_each(YUV_OUT[1], chroma, Args::YuvOut(self))?,
        ])
    }
}

/// `kernels.cu`'s `struct PackedArgs`: a packed R'G'B' frame (3 or 4 bytes a pixel) and
/// planar f32, as the element's CPU code converts them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackedArgs {
    pub plane: u64,
    pub stride: i64,
    pub rgb: u64,
    pub alpha: u64,
    pub bpp: i32,
    pub rgb_at: [i32; 3],
    pub fourth: i32,
    pub has_alpha: i32,
    pub w: i32,
    pub h: i32,
}

impl PackedArgs {
    /// An R'G'B' frame of 3 bytes a pixel, rows `stride` bytes apart at `plane`, and planar
    /// f32 at `rgb`.
    pub fn rgb(plane: u64, stride: usize, rgb: u64, (w, h): (usize, usize)) -> Self {
        PackedArgs {
            plane,
            stride: stride as i64,
            rgb,
            alpha: 0,
            bpp: 3,
            rgb_at: [0, 1, 2],
            fourth: -1,
            has_alpha: 0,
            w: w as i32,
            h: h as i32,
        }
    }

    /// The launch that reads the frame (`read`) or writes it: a thread a pixel.
    pub fn launch(self, read: bool) -> Result<Launch> {
        let pixels = self.w as u64 * self.h as u64;
        thread_each(PACKED[!read as usize], pixels, Args::Packed(self))
    }
}

/// A launch's argument struct.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Args {
    Conv(ConvArgs),
    Stats(StatsArgs),
    Attention(AttentionArgs),
    Frames(FramesArgs),
    YuvIn(YuvInArgs),
    YuvOut(YuvOutArgs),
    Packed(PackedArgs),
}

impl Args {
    /// The struct's bytes, as a kernel takes its one parameter.
    pub fn bytes(&self) -> &[u8] {
        fn raw<T>(v: &T) -> &[u8] {
            // SAFETY: plain `repr(C)` data of integers and floats, read as bytes
            unsafe { std::slice::from_raw_parts((v as *const T).cast(), size_of::<T>()) }
        }
        match self {
            Args::Conv(a) => raw(a),
            Args::Stats(a) => raw(a),
            Args::Attention(a) => raw(a),
            Args::Frames(a) => raw(a),
            Args::YuvIn(a) => raw(a),
            Args::YuvOut(a) => raw(a),
            Args::Packed(a) => raw(a),
        }
    }
}

/// One kernel launch: `grid` blocks of `block` threads.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub kernel: &'static str,
    pub grid: u32,
    pub block: u32,
    pub args: Args,
}

/// Threads per block of the convs and the attention (the tensor-core conv: 4 warps).
const BLOCK: u32 = 128;
/// Tiles of 16 output pixels a warp of the tensor-core conv computes for `cout` output
/// channels: two up to 32 channels (each weight fragment loaded serves both), one above,
/// where two would hold so many accumulators that fewer warps fit.
fn mma_tiles(cout: usize) -> usize {
    if cout <= 32 { 2 } else { 1 }
}
/// Warps per block of the statistics' sums.
const STATS_WARPS: u32 = 8;
/// Pixels a warp of the statistics sums.
const STATS_PIXELS: u64 = 256;

/// The frames' planar f32 at `planar` into the schedule's input (`to_nhwc`), or its output
/// into them, placed by `framing`.
pub fn frames(
    s: &Schedule,
    plan: &BufferPlan,
    (at, storage): (&Addresses, Storage),
    (planar, to_nhwc): (u64, bool),
    framing: Framing,
) -> Result<Launch> {
    let b = Builder {
        s,
        plan,
        at,
        storage,
    };
    let buf = if to_nhwc { s.input } else { s.output };
    let nhwc = b.view(&View {
        buf,
        offset: 0,
        channels: 3,
    });
    let (ph, pw, margin) = planar_frames(framing, s, plan, to_nhwc)?;
    // a thread for each pixel written
    let (kernel, pixels) = match to_nhwc {
        true => (
            FRAMES_IN[storage.index()],
            plan.buffers[buf].elements as u64 / 3,
        ),
        false => (FRAMES_OUT[storage.index()], (plan.nhw.0 * ph * pw) as u64),
    };
    let args = FramesArgs {
        planar,
        nhwc,
        n: plan.nhw.0 as i32,
        planar_h: ph as i32,
        planar_w: pw as i32,
        margin: margin as i32,
    };
    thread_each(kernel, pixels, Args::Frames(args))
}

/// Every step of `s` as a launch, for the buffers of `plan` at `at`, activations in `storage`.
pub fn launches(
    s: &Schedule,
    plan: &BufferPlan,
    at: &Addresses,
    storage: Storage,
) -> Result<Vec<Launch>> {
    let count = |what: &str, got: usize, want: usize| match got == want {
        true => Ok(()),
        false => Err(Error::InvalidInput(format!(
            "{what}: {got} addresses for {want}"
        ))),
    };
    count("buffers", at.buffers.len(), s.buffers.len())?;
    count("weights", at.weights.len(), s.convs.len())?;
    count("f32 weights", at.weights_f32.len(), s.convs.len())?;
    count("biases", at.biases.len(), s.convs.len())?;
    count("embeds", at.embeds.len(), s.steps.len())?;
    count("gains", at.gains.len(), s.steps.len())?;
    let b = Builder {
        s,
        plan,
        at,
        storage,
    };
    let mut out = Vec::with_capacity(s.steps.len() + 4);
    for (i, step) in s.steps.iter().enumerate() {
        b.launch(i, step, &mut out)?;
    }
    Ok(out)
}

struct Builder<'a> {
    s: &'a Schedule,
    plan: &'a BufferPlan,
    at: &'a Addresses,
    storage: Storage,
}

impl Builder<'_> {
    /// The launches of step `i` (one, or two for the statistics) onto `out`.
    fn launch(&self, i: usize, step: &Step, out: &mut Vec<Launch>) -> Result<()> {
        let n = self.plan.nhw.0;
        let last = match step {
            Step::Conv(c) => {
                let a = self.conv(i, c)?;
                let pixels = (a.n as u64) * (a.oh as u64) * (a.ow as u64);
                // the direct kernel: a thread a pixel; on tensor cores: a warp 16·tiles pixels
                let threads = match self.storage {
                    Storage::F32 => pixels,
                    Storage::F16 => pixels.div_ceil(16 * mma_tiles(a.cout as usize) as u64) * 32,
                };
                thread_each(
                    self.storage.conv_kernel(a.cout as usize),
                    threads,
                    Args::Conv(a),
                )?
            }
            Step::CcaStats { src, dst } => {
                let a = StatsArgs {
                    src: self.view(src),
                    dst: self.address(dst),
                    acc: self.at.stats_sums,
                    dst_stride: self.per_frame_stride(dst),
                    n: n as i32,
                    chunk: STATS_PIXELS as i32,
                };
                let [_, h, w, _] = self.plan.buffers[src.buf].dims;
                let warps = n as u64 * ((h * w) as u64).div_ceil(STATS_PIXELS);
                out.push(Launch {
                    kernel: CCA_SUMS[self.storage.index()],
                    grid: blocks(warps, STATS_WARPS as u64)?,
                    block: 32 * STATS_WARPS,
                    args: Args::Stats(a),
                });
                thread_each(CCA_FINISH, (n * src.channels) as u64, Args::Stats(a))?
            }
            Step::CcaAttention { src, down, up, dst } => {
                let (d, u) = (self.s.convs[*down].shape, self.s.convs[*up].shape);
                if d.cout > MAX_MID {
                    return Err(Error::Model(format!(
                        "attention with {} hidden channels: the kernel holds {MAX_MID}",
                        d.cout
                    )));
                }
                let args = AttentionArgs {
                    src: self.address(src),
                    dst: self.address(dst),
                    down_w: self.at.weights_f32[*down],
                    down_b: self.at.biases[*down],
                    up_w: self.at.weights_f32[*up],
                    up_b: self.at.biases[*up],
                    src_stride: self.per_frame_stride(src),
                    dst_stride: self.per_frame_stride(dst),
                    cin: d.cin as i32,
                    cin_pad: d.cin_pad as i32,
                    mid: d.cout as i32,
                    mid_pad: u.cin_pad as i32,
                    n: n as i32,
                };
                thread_each(CCA_ATTENTION, n as u64, Args::Attention(args))?
            }
        };
        out.push(last);
        Ok(())
    }

    fn conv(&self, i: usize, c: &super::schedule::Conv) -> Result<ConvArgs> {
        let shape = self.s.convs[c.conv].shape;
        if shape.cout > MAX_COUT {
            return Err(Error::Model(format!(
                "a conv with {} output channels: the kernels hold {MAX_COUT}",
                shape.cout
            )));
        }
        let [n, sh, sw, _] = self.plan.buffers[c.src.buf].dims;
        let pad = (shape.k - 1) / 2;
        let out = |side: usize| (side + 2 * pad - shape.k) / c.stride + 1;
        let (dst, shuffle) = match &c.write {
            Write::Views(views) => match views.as_slice() {
                [one] => ([self.view(one), ViewArg::default()], 1),
                [first, second] => ([self.view(first), self.view(second)], 1),
                _ => {
                    return Err(Error::Model(format!(
                        "a conv writing {} views: the kernel writes at most 2",
                        views.len()
                    )));
                }
            },
            Write::Shuffle { dst, s } => ([self.view(dst), ViewArg::default()], *s),
        };
        let (act, slope) = match c.act {
            Act::None => (0, 0.0),
            Act::LeakyRelu(slope) => (1, slope),
            Act::Relu => (2, 0.0),
        };
        let (res, res_gains) = match &c.residual {
            Some(r) => (self.view(&r.src), self.at.gains[i]),
            None => (ViewArg::default(), 0),
        };
        let (embed_code, code_stride, embed_w) = match &c.embed {
            Some(e) => (
                self.address(&e.code),
                self.per_frame_stride(&e.code),
                self.at.embeds[i],
            ),
            None => (0, 0, 0),
        };
        let (src_scale, scale_stride) = match &c.src_scale {
            Some(v) => (self.address(v), self.per_frame_stride(v)),
            None => (0, 0),
        };
        Ok(ConvArgs {
            src: self.view(&c.src),
            dst,
            res,
            res_gains,
            src_scale,
            weight: self.at.weights[c.conv],
            bias: self.at.biases[c.conv],
            embed_code,
            embed_w,
            scale_stride,
            code_stride,
            n: n as i32,
            oh: out(sh) as i32,
            ow: out(sw) as i32,
            k: shape.k as i32,
            stride: c.stride as i32,
            cin: shape.cin as i32,
            cin_pad: shape.cin_pad as i32,
            cout: shape.cout as i32,
            shuffle: shuffle as i32,
            act,
            slope,
        })
    }

    /// Bytes per element of buffer `buf`: per-frame buffers are f32 whatever the storage.
    fn element_bytes(&self, buf: usize) -> usize {
        match self.s.buffers[buf].grid {
            Grid::PerFrame => 4,
            Grid::Pixels { .. } => self.storage.bytes(),
        }
    }

    /// The address of the view's first channel at pixel 0 of frame 0.
    fn address(&self, v: &View) -> u64 {
        self.at.buffers[v.buf] + (v.offset * self.element_bytes(v.buf)) as u64
    }

    /// Elements from one frame's values to the next in a per-frame buffer.
    fn per_frame_stride(&self, v: &View) -> i32 {
        self.plan.buffers[v.buf].dims[3] as i32
    }

    fn view(&self, v: &View) -> ViewArg {
        let [_, h, w, c] = self.plan.buffers[v.buf].dims;
        ViewArg {
            base: self.address(v),
            stride: c as i32,
            channels: v.channels as i32,
            h: h as i32,
            w: w as i32,
        }
    }
}

/// A launch of `kernel` with a thread for each of `items`.
fn thread_each(kernel: &'static str, items: u64, args: Args) -> Result<Launch> {
    Ok(Launch {
        kernel,
        grid: blocks(items, BLOCK as u64)?,
        block: BLOCK,
        args,
    })
}

/// Blocks of `per_block` for `items`, refused past what a launch takes.
fn blocks(items: u64, per_block: u64) -> Result<u32> {
    u32::try_from(items.div_ceil(per_block).max(1))
        .map_err(|_| Error::InvalidInput(format!("{items} threads: too many for one launch")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_conv_entry_computes_the_tiles_the_rule_gives() {
        for cout in 1..=MAX_COUT {
            let name = Storage::F16.conv_kernel(cout);
            let (n, m) = name
                .strip_prefix("conv_mma_f16_n")
                .and_then(|rest| rest.split_once("_m"))
                .unwrap();
            assert_eq!(n.parse::<usize>().unwrap(), cout.div_ceil(8), "{cout}");
            assert_eq!(m.parse::<usize>().unwrap(), mma_tiles(cout), "{cout}");
        }
    }
}
