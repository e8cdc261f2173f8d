//! Our CPU path for the IMDN family: the same networks and weights as [`crate::model`], run by
//! a small executor on our own kernels ([`crate::kernels`]) instead of candle's generic conv2d.
//!
//! What makes it fast besides the kernels: split and concatenation as channel ranges of
//! preallocated buffers; CCA as one statistics pass whose attention is folded into the
//! following 1×1 conv's weights (for tiles, the whole frame's statistics, gathered over the
//! tiles' shares by [`CpuNet::add_block_sums_at`]); the 1×1 fusion of all block outputs
//! accumulated block by block; buffers kept across frames of the same size; a thread pool of
//! the caller's size.

mod cache;
mod cca;
mod histogram;
mod int8;
mod stream;

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use cca::{CcaScratch, add_region_sums, attention_weights};
pub use histogram::Histogram;
use stream::{Builder, Stream};

use crate::acs::{ChannelSums, FrameStats, Framing, Nhw, Rect};
use crate::kernels::Kernels;
use crate::kernels::conv::conv3x3_s2;
use crate::kernels::int8::{self as kernels_int8, Quant};
use crate::kernels::plan::conv_same;
use crate::kernels::rowconv::Isa;
use crate::kernels::types::{
    Act, ConvParams, Geom, Out, Prefill, half, lrelu_in_place, zero_border_columns,
};
use crate::model::{Config, Variant};
use crate::names::{
    self, C1, C2, C3, C4, C5, CCA, CCA_DOWN, CCA_UP, FEA_CONV, FEA_CONV_0, FEA_CONV_2, FUSE,
    INPUT_SKIP, LR_CONV, RTC_HEAD, RTC_UPSAMPLER, SCALE_EMBED, UPSAMPLER, join,
};
use crate::weights::Tensors;
use crate::{Error, Result};
pub use int8::Int8Stats;
use int8::Int8Stream;

/// Reads the convs of a weights file, planned for the kernels chosen.
struct Loader<'a> {
    t: &'a Tensors,
    kernels: Kernels,
}

impl Loader<'_> {
    /// The k×k conv `name`, `cin` → `cout`.
    fn conv(&self, name: &str, cin: usize, cout: usize, k: usize) -> Result<ConvParams> {
        let t = self.t;
        let get = |n: String| -> Result<Vec<f32>> {
            let v = t
                .get(&n)
                .ok_or_else(|| Error::Model(format!("{n} is missing")))?;
            Ok(v.flatten_all()?.to_vec1::<f32>()?)
        };
        let weight = get(names::weight(name))?;
        let bias = get(names::bias(name))?;
        if weight.len() != cout * cin * k * k || bias.len() != cout {
            return Err(Error::Model(format!(
                "{name}.weight/.bias: expected a {k}×{k} conv {cin}→{cout}, got {} weights and {} biases",
                weight.len(),
                bias.len()
            )));
        }
        Ok(self
            .kernels
            .plan(ConvParams::new(weight, bias, cin, cout, k)))
    }

    /// The calibrated ranges of conv `name`'s input (`cin` channels) the weights file holds.
    fn input_ranges(&self, name: &str, cin: usize) -> Result<Vec<(f32, f32)>> {
        let key = names::input_range(name);
        let v = self.t.get(&key).ok_or_else(|| {
            Error::InvalidInput(format!(
                "8-bit convs need calibrated input ranges, and {key} is missing: add them with \
                 `imdn calibrate`"
            ))
        })?;
        let v = v.flatten_all()?.to_vec1::<f32>()?;
        let pairs_ok = v.chunks_exact(2).all(|r| r[0].is_finite() && r[0] <= r[1]);
        if v.len() != 2 * cin || !pairs_ok || !v.iter().all(|x| x.is_finite()) {
            return Err(Error::Model(format!(
                "{key}: expected {cin} (least, greatest) pairs of finite values, least first; \
                 got {} values",
                v.len()
            )));
        }
        Ok(v.chunks_exact(2).map(|r| (r[0], r[1])).collect())
    }
}

/// One distillation block: c1..c4 progressive, c5 1×1 fuse, CCA for IMDN blocks.
struct Block {
    c1: ConvParams,
    c2: ConvParams,
    c3: ConvParams,
    c4: ConvParams,
    c5: ConvParams,
    cca: Option<(ConvParams, ConvParams)>,
}

impl Block {
    fn load(l: &Loader, p: &str, c: usize, with_cca: bool) -> Result<Self> {
        let (d, r) = (c / 4, c - c / 4);
        let cca = if with_cca {
            let mid = 4 * d / 16;
            let cca = join(p, CCA);
            Some((
                l.conv(&join(&cca, CCA_DOWN), 4 * d, mid, 1)?,
                l.conv(&join(&cca, CCA_UP), mid, 4 * d, 1)?,
            ))
        } else {
            None
        };
        Ok(Self {
            c1: l.conv(&join(p, C1), c, c, 3)?,
            c2: l.conv(&join(p, C2), r, c, 3)?,
            c3: l.conv(&join(p, C3), r, c, 3)?,
            c4: l.conv(&join(p, C4), r, d, 3)?,
            c5: l.conv(&join(p, C5), 4 * d, c, 1)?,
            cca,
        })
    }
}

/// The network's layers, by variant.
enum Layers {
    Imdn {
        head: ConvParams,
        /// IMDN_AS: the second stride-2 conv (the head is then stride 2 too).
        head2: Option<ConvParams>,
        blocks: Vec<Block>,
        /// `c.0` split per block: [C, C] weights each, the bias on the first.
        fuse: Vec<ConvParams>,
        lr_conv: ConvParams,
        up: ConvParams,
        /// IMDN_AS's input-skip gains, per channel.
        input_skip: Option<[f32; 3]>,
        /// IMDN_AS's scale embedding: the head's bias gains `code · embed`.
        scale_embed: Option<Vec<f32>>,
    },
    Rtc {
        head: ConvParams,
        blocks: Vec<Block>,
        tail: ConvParams,
        up: ConvParams,
    },
}

impl Layers {
    /// The network as a streaming pipeline on the kernels for `isa` at most, where it is one
    /// (IMDN_RTC); its blocks' 3×3 convs in 8 bits with their inputs rounded by `quant` (block
    /// i's c1..c4 at 4i..4i+3) where given.
    fn stream(&self, scale: usize, isa: Isa, quant: Option<&[Vec<Quant>]>) -> Option<Stream> {
        let Layers::Rtc {
            head,
            blocks,
            tail,
            up,
        } = self
        else {
            return None;
        };
        let (mut b, input) = Builder::new(3, isa);
        let fea = b.conv(head, &[input], &[head.cout], None, Act::None)[0];
        let mut x = fea;
        for (i, blk) in blocks.iter().enumerate() {
            let (d, c) = (blk.c4.cout, blk.c5.cout);
            let split = [d, c - d];
            let (s1, s2, s3, d4) = match quant.map(|q| &q[BLOCK_CONVS * i..BLOCK_CONVS * (i + 1)]) {
                // c1..c4 in 8 bits: each set of remaining channels packed for the next
                Some(q) => {
                    let xq = b.quantize(x, &q[0]);
                    let s1 =
                        b.conv_8bit(&blk.c1, (xq, &split), Act::LRelu, (&q[0], Some(&q[1])))?;
                    let s2 =
                        b.conv_8bit(&blk.c2, (s1[1], &split), Act::LRelu, (&q[1], Some(&q[2])))?;
                    let s3 =
                        b.conv_8bit(&blk.c3, (s2[1], &split), Act::LRelu, (&q[2], Some(&q[3])))?;
                    let d4 = b.conv_8bit(&blk.c4, (s3[1], &[d]), Act::None, (&q[3], None))?;
                    (s1, s2, s3, d4[0])
                }
                // c1..c4 numbered 4i + j among the convs that may run in 8 bits
                None => {
                    let n = BLOCK_CONVS * i;
                    let s1 = b.conv_probed(&blk.c1, (&[x], &split), Act::LRelu, n);
                    let s2 = b.conv_probed(&blk.c2, (&[s1[1]], &split), Act::LRelu, n + 1);
                    let s3 = b.conv_probed(&blk.c3, (&[s2[1]], &split), Act::LRelu, n + 2);
                    let d4 = b.conv_probed(&blk.c4, (&[s3[1]], &[d]), Act::None, n + 3);
                    (s1, s2, s3, d4[0])
                }
            };
            x = b.conv(
                &blk.c5,
                &[s1[0], s2[0], s3[0], d4],
                &[c],
                Some(x),
                Act::None,
            )[0];
        }
        let t = b.conv(tail, &[x], &[tail.cout], Some(fea), Act::None)[0];
        let out = b.conv(up, &[t], &[up.cout], None, Act::None)[0];
        Some(b.finish(out, scale))
    }
}

/// The convs of a block that may run in 8 bits: c1..c4.
const BLOCK_CONVS: usize = 4;

/// The convs of IMDN_RTC with `blocks` blocks of `c` channels that may run in 8 bits, in the
/// order the stream numbers them (block i's c1..c4 at 4i..4i+3): their names and input
/// channels.
fn eight_bit_convs(blocks: usize, c: usize) -> impl Iterator<Item = (String, usize)> {
    let remaining = c - c / 4;
    (0..blocks).flat_map(move |i| {
        let convs: [_; BLOCK_CONVS] = [(C1, c), (C2, remaining), (C3, remaining), (C4, remaining)];
        convs.map(|(conv, cin)| (join(&names::rtc_block(i), conv), cin))
    })
}

/// Activations for one frame size, kept between frames.
struct Buffers {
    g: Geom,
    input: Vec<f32>,
    fea: Vec<f32>,
    x: [Vec<f32>; 2],
    cat: Vec<f32>,
    rest: [Vec<f32>; 2],
    acc: Vec<f32>,
    /// A block's channel attention and the c5 weights it scales.
    cca: CcaScratch,
    up: Vec<f32>,
    /// IMDN_AS: the full-size bordered input and the half-size first conv output.
    front: Vec<f32>,
    front_half: Vec<f32>,
    /// IMDN_AS with a scale input: the head with its bias moved for the last scale code, kept
    /// while frames come at that scale.
    scaled_head: Option<(f32, ConvParams)>,
}

/// The threads a [`CpuNet`] runs on, shared. Work that runs beside the network (a
/// video element's pixel conversions) runs best on them: on a machine with as many cores as
/// threads, more runnable threads only take cores from the network's, whose parts then wait
/// for each other. Work given to [`Threads::run`] waits until a thread is free (between
/// frames, or one that finished its part of the frame early).
#[derive(Clone)]
pub struct Threads(Arc<rayon::ThreadPool>);

impl Threads {
    /// How many threads.
    pub fn count(&self) -> usize {
        self.0.current_num_threads()
    }

    /// Runs `op` on one of the threads, waiting until it has run.
    pub fn run<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.0.install(op)
    }
}

/// A network of the family on our CPU kernels.
pub struct CpuNet {
    config: Config,
    layers: Layers,
    pool: Arc<rayon::ThreadPool>,
    buffers: Mutex<Option<Buffers>>,
    /// The streaming pipeline, for the networks that run so ([`Kernels::stream`]).
    stream: Option<(Stream, Mutex<Option<stream::State>>)>,
    /// With 8-bit convs ([`Kernels::int8`]): the pipeline that runs frames (the f32 one runs
    /// those that clip).
    int8: Option<Mutex<Int8Stream>>,
    kernels: Kernels,
}

impl CpuNet {
    /// Builds the executor for `config` from its parameters (as validated by `Network`), on a
    /// pool of `threads` threads (0 = all cores), on the fastest kernels.
    pub fn new(config: &Config, t: &Tensors, threads: usize) -> Result<Self> {
        Self::with_kernels(config, t, threads, Kernels::default())
    }

    /// As [`CpuNet::new`], its convs on `kernels` (for comparing them).
    pub fn with_kernels(
        config: &Config,
        t: &Tensors,
        threads: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        if kernels.int8 && (config.variant != Variant::Rtc || !kernels.stream) {
            return Err(Error::InvalidInput(format!(
                "8-bit convs run only streamed IMDN_RTC, not {config}"
            )));
        }
        if kernels.int8 && !kernels_int8::available() {
            return Err(Error::InvalidInput(
                "8-bit convs need AVX-512 VNNI, which this CPU lacks".into(),
            ));
        }
        let l = Loader { t, kernels };
        let c = config.channels;
        let s = config.upsampler_scale;
        let layers = match config.variant {
            Variant::Imdn | Variant::As => {
                let (head, head2) = if config.variant == Variant::As {
                    (
                        l.conv(FEA_CONV_0, 3, c, 3)?,
                        Some(l.conv(FEA_CONV_2, c, c, 3)?),
                    )
                } else {
                    (l.conv(FEA_CONV, 3, c, 3)?, None)
                };
                let blocks = (1..=config.blocks)
                    .map(|i| Block::load(&l, &names::imdb(i), c, true))
                    .collect::<Result<Vec<_>>>()?;
                let whole = l.conv(FUSE, c * config.blocks, c, 1)?;
                let fuse = (0..config.blocks)
                    .map(|i| {
                        let weight = (0..c)
                            .flat_map(|co| {
                                whole.weight[co * c * config.blocks + i * c..][..c]
                                    .iter()
                                    .copied()
                            })
                            .collect();
                        let bias = if i == 0 {
                            whole.bias.clone()
                        } else {
                            vec![0.0; c]
                        };
                        ConvParams::new(weight, bias, c, c, 1)
                    })
                    .collect();
                Layers::Imdn {
                    head,
                    head2,
                    blocks,
                    fuse,
                    lr_conv: l.conv(LR_CONV, c, c, 3)?,
                    up: l.conv(UPSAMPLER, c, 3 * s * s, 3)?,
                    input_skip: match config.input_skip {
                        true => Some(input_skip_gains(t)?),
                        false => None,
                    },
                    scale_embed: match config.scale_input {
                        true => Some(scale_embed(t, c)?),
                        false => None,
                    },
                }
            }
            Variant::Rtc => Layers::Rtc {
                head: l.conv(RTC_HEAD, 3, c, 3)?,
                blocks: (0..config.blocks)
                    .map(|i| Block::load(&l, &names::rtc_block(i), c, false))
                    .collect::<Result<Vec<_>>>()?,
                tail: l.conv(&names::rtc_tail(config.blocks), c, c, 1)?,
                up: l.conv(RTC_UPSAMPLER, c, 3 * s * s, 3)?,
            },
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("imdn-cpu-{i}"))
            .build()
            .map(Arc::new)
            .map_err(|e| Error::Model(format!("cannot start CPU threads: {e}")))?;
        let stream = match kernels.stream {
            true => layers
                .stream(s, kernels.isa, None)
                .map(|st| (st, Mutex::new(None))),
            false => None,
        };
        let int8 = match (kernels.int8, &layers) {
            (true, Layers::Rtc { blocks, .. }) => {
                let ranges = eight_bit_convs(blocks.len(), c)
                    .map(|(name, cin)| l.input_ranges(&name, cin))
                    .collect::<Result<Vec<_>>>()?;
                let st = layers
                    .stream(s, kernels.isa, Some(&int8::quant(&ranges)))
                    .filter(Stream::runs_8bit)
                    .ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "8-bit convs run IMDN_RTC blocks of 12 channels, not {config}"
                        ))
                    })?;
                Some(Mutex::new(Int8Stream::new(ranges, st)))
            }
            _ => None,
        };
        Ok(Self {
            config: *config,
            layers,
            pool,
            buffers: Mutex::new(None),
            stream,
            int8,
            kernels,
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The network's threads, for a caller's own per-frame work ([`Threads`]).
    pub fn thread_pool(&self) -> Threads {
        Threads(self.pool.clone())
    }

    /// Whether frames run streamed: then the activations held grow with the frame's width
    /// only, and whole frames of any height need no tiles.
    pub fn streams(&self) -> bool {
        self.stream.is_some()
    }

    /// Runs the network on `n` planar RGB frames of `h`×`w` (NCHW, f32); returns NCHW output
    /// of `net_scale ×` the size. IMDN_AS needs sides that are multiples of 4.
    pub fn forward(&self, input: &[f32], n: usize, h: usize, w: usize) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.forward_into(input, n, h, w, &mut out)?;
        Ok(out)
    }

    /// As [`CpuNet::forward`], into `out` (resized to fit; every value is overwritten).
    pub fn forward_into(
        &self,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.forward_at_into(input, n, h, w, None, out)
    }

    /// As [`CpuNet::forward_into`], telling IMDN_AS with a scale input the [`scale_code`] of
    /// the frames (which it needs; the other networks ignore it).
    ///
    /// [`scale_code`]: crate::model::scale_code
    pub fn forward_at_into(
        &self,
        input: &[f32],
        n: usize,
        h: usize,
        w: usize,
        scale_code: Option<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.run_frames(input, (n, h, w), scale_code, None, out)
    }

    /// One planar frame of `size` (`(h, w)`) as the network runs it `margin` pixels into a
    /// larger `(nh, nw)` frame of its border pixels replicated, the output cropped back to
    /// the frame's, into `out`; without the padded frame or the uncropped output in memory.
    /// `false` (nothing run) where the network does not stream: the caller pads.
    pub fn forward_framed_into(
        &self,
        input: &[f32],
        framing: Framing,
        (nh, nw): (usize, usize),
        out: &mut Vec<f32>,
    ) -> Result<bool> {
        let Some(streamed) = &self.stream else {
            return Ok(false);
        };
        let ((h, w), margin) = (framing.frame, framing.margin);
        if h == 0 || w == 0 || input.len() != 3 * h * w || h + margin > nh || w + margin > nw {
            return Err(Error::InvalidInput(format!(
                "a {w}×{h} frame ({} floats) with a margin of {margin} in a {nw}×{nh} one",
                input.len()
            )));
        }
        let s = self.config.net_scale();
        out.resize(3 * h * s * w * s, 0.0);
        let frame = std::iter::once((input, out.as_mut_slice()));
        self.run_streamed(streamed, ((nh, nw), framing), frame)?;
        Ok(true)
    }

    /// Each (planar input, output) of `frames` through the streamed pipeline (8-bit where
    /// asked), placed by `framing` in the network's `net` frames, on this network's threads.
    fn run_streamed<'a>(
        &self,
        (stream, state): &(Stream, Mutex<Option<stream::State>>),
        (net, framing): ((usize, usize), Framing),
        frames: impl Iterator<Item = (&'a [f32], &'a mut [f32])> + Send,
    ) -> Result<()> {
        let poisoned = |_| Error::Model("CPU stream state poisoned".into());
        let mut guard = state.lock().map_err(poisoned)?;
        let mut int8 = match &self.int8 {
            Some(m) => Some(
                m.lock()
                    .map_err(|_| Error::Model("8-bit pipeline poisoned".into()))?,
            ),
            None => None,
        };
        let (threads, slot) = (self.threads(), &mut *guard);
        let (scale, isa) = (self.config.upsampler_scale, self.kernels.isa);
        let mut int8 = int8.as_deref_mut();
        self.pool.install(|| {
            for (frame, dst) in frames {
                if let Some(q) = int8.as_deref_mut() {
                    let build = |quant: &[Vec<Quant>]| {
                        let st = self.layers.stream(scale, isa, Some(quant));
                        st.expect("the pipeline built before builds again")
                    };
                    q.run((net, threads), (frame, framing), dst, (stream, slot), build);
                    continue;
                }
                let st = stream.state(slot, net, threads);
                stream.run(st, (frame, framing), dst);
            }
        });
        Ok(())
    }

    /// What the 8-bit pipeline has run (None without one): how far frames fell outside its
    /// ranges, and which ran again in f32 because they clipped.
    pub fn int8_stats(&self) -> Option<Int8Stats> {
        self.int8
            .as_ref()
            .and_then(|m| m.lock().ok())
            .map(|q| q.stats)
    }

    /// Runs the planar 3×`h`×`w` `frame` through the streamed network, widening `ranges` (per
    /// conv that may run in 8 bits, per input channel: least and greatest) to the values its
    /// convs read: the calibration of 8-bit inference ([`CpuNet::calibration`]).
    pub fn record_input_ranges(
        &self,
        frame: &[f32],
        (h, w): (usize, usize),
        ranges: &mut Vec<Vec<(f32, f32)>>,
    ) -> Result<()> {
        self.calibration_run(frame, (h, w), |stream, st, input, out| {
            stream.run_recording(st, input, out, ranges)
        })
    }

    /// As [`CpuNet::record_input_ranges`], counting the values into `hists` over `ranges`
    /// recorded first over the same frames: for ranges that leave out the rarest values
    /// ([`Histogram::clipped`]).
    pub fn count_input_values(
        &self,
        frame: &[f32],
        (h, w): (usize, usize),
        ranges: &[Vec<(f32, f32)>],
        hists: &mut Vec<Vec<Histogram>>,
    ) -> Result<()> {
        let convs = self.stream.as_ref().map_or(0, |(s, _)| s.probes().len());
        if ranges.len() != convs {
            return Err(Error::InvalidInput(format!(
                "{} input ranges for {convs} convs: record them first",
                ranges.len()
            )));
        }
        self.calibration_run(frame, (h, w), |stream, st, input, out| {
            stream.run_counting(st, input, out, ranges, hists)
        })
    }

    /// Runs `run` on the streamed network, its state for `frame` (3×`h`×`w`), the frame and
    /// an output of its size.
    fn calibration_run(
        &self,
        frame: &[f32],
        (h, w): (usize, usize),
        run: impl FnOnce(&Stream, &mut stream::State, (&[f32], Framing), &mut [f32]) + Send,
    ) -> Result<()> {
        let Some((stream, state)) = &self.stream else {
            return Err(Error::InvalidInput(format!(
                "only streamed IMDN_RTC has 8-bit convs to calibrate, not {}",
                self.config
            )));
        };
        if h == 0 || w == 0 || frame.len() != 3 * h * w {
            return Err(Error::InvalidInput(format!(
                "a {w}×{h} frame needs {} floats, not {}",
                3 * h * w,
                frame.len()
            )));
        }
        let s = self.config.net_scale();
        let mut out = vec![0.0; 3 * h * s * w * s];
        let mut guard = state
            .lock()
            .map_err(|_| Error::Model("CPU stream state poisoned".into()))?;
        let (threads, slot) = (self.threads(), &mut *guard);
        self.pool.install(|| {
            let st = stream.state(slot, (h, w), threads);
            run(stream, st, (frame, Framing::whole((h, w))), &mut out);
        });
        Ok(())
    }

    /// The tensors that calibrate 8-bit inference ([`names::input_range`] of each conv that
    /// may run in 8 bits) from `ranges` as [`CpuNet::record_input_ranges`] recorded them.
    pub fn calibration(&self, ranges: &[Vec<(f32, f32)>]) -> Result<crate::weights::Tensors> {
        let Layers::Rtc { blocks, .. } = &self.layers else {
            return Err(Error::InvalidInput(format!(
                "{} has no 8-bit convs",
                self.config
            )));
        };
        if ranges.len() != BLOCK_CONVS * blocks.len() || ranges.iter().any(|r| r.is_empty()) {
            return Err(Error::InvalidInput(
                "no frames recorded for the calibration".into(),
            ));
        }
        eight_bit_convs(blocks.len(), self.config.channels)
            .zip(ranges)
            .map(|((name, _), r)| {
                let pairs: Vec<f32> = r.iter().flat_map(|&(lo, hi)| [lo, hi]).collect();
                let t =
                    candle_core::Tensor::from_vec(pairs, (r.len(), 2), &candle_core::Device::Cpu)?;
                Ok((names::input_range(&name), t))
            })
            .collect()
    }

    /// Stages of statistics over the whole frame that a tile's output depends on
    /// ([`crate::acs::Forward::frame_stages`]): one per block with channel attention (IMDN,
    /// IMDN_AS), none for IMDN_RTC.
    pub fn frame_stages(&self) -> usize {
        match &self.layers {
            Layers::Imdn { blocks, .. } => blocks.len(),
            Layers::Rtc { .. } => 0,
        }
    }

    /// For `n` tiles of one frame (`h`×`w` each): runs them through the head and the blocks
    /// before `block`, their attention from the whole frame's statistics in
    /// `stats.stages[..block]`, then through `block`'s distillation, and adds its distilled
    /// channels' sums over each tile's share (`shares[i]`, in the tile's input pixels; IMDN_AS
    /// maps it to its ¼-size blocks) into `stats.stages[block]`.
    pub fn add_block_sums_at(
        &self,
        input: &[f32],
        (n, h, w): Nhw,
        scale_code: Option<f32>,
        (shares, block): (&[Rect], usize),
        stats: &mut FrameStats,
    ) -> Result<()> {
        self.check_frames(input, (n, h, w), scale_code)?;
        if block >= self.frame_stages() || stats.stages.len() <= block {
            return Err(Error::InvalidInput(format!(
                "block {block}: {} has {} blocks with attention, {} stages given",
                self.config,
                self.frame_stages(),
                stats.stages.len()
            )));
        }
        check_shares(shares, (n, h, w))?;
        let (given, rest) = stats.stages.split_at_mut(block);
        self.check_stats(given)?;
        let sums = &mut rest[0];
        self.check_sums_channels(block, sums)?;
        let mut guard = self
            .buffers
            .lock()
            .map_err(|_| Error::Model("CPU buffers poisoned".into()))?;
        let slot = &mut *guard;
        let g = self.block_geom(Geom { h, w });
        self.pool.install(|| {
            for (frame, share) in input.chunks_exact(3 * h * w).zip(shares) {
                let b = self.buffers_for(slot, h, w);
                let share = share_at_blocks(*share, (w, h), g);
                self.gather_one(b, (frame, scale_code), given, share, sums);
            }
        });
        Ok(())
    }

    /// As [`CpuNet::forward_at_into`] on tiles of a frame, every block's attention from the
    /// whole frame's statistics (`stats`, from [`CpuNet::add_block_sums_at`]) instead of the
    /// tile's own.
    pub fn forward_with_stats_at_into(
        &self,
        input: &[f32],
        nhw: Nhw,
        scale_code: Option<f32>,
        stats: &FrameStats,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let given = &stats.stages[..];
        if given.len() != self.frame_stages() {
            return Err(Error::InvalidInput(format!(
                "{} needs {} stages of frame statistics, {} given",
                self.config,
                self.frame_stages(),
                given.len()
            )));
        }
        self.check_stats(given)?;
        self.run_frames(input, nhw, scale_code, Some(given), out)
    }

    /// Refuses frames that are not `n`×3×`h`×`w` floats with sides the network takes, or
    /// without the scale code a network with a scale input needs.
    fn check_frames(&self, input: &[f32], (n, h, w): Nhw, scale_code: Option<f32>) -> Result<()> {
        if self.config.scale_input && scale_code.is_none() {
            return Err(Error::InvalidInput(format!(
                "{} needs the scale its frames were upscaled by",
                self.config
            )));
        }
        let m = self.config.input_multiple();
        if input.len() != n * 3 * h * w
            || h == 0
            || w == 0
            || !h.is_multiple_of(m)
            || !w.is_multiple_of(m)
        {
            return Err(Error::InvalidInput(format!(
                "{} needs {n}×3×{h}×{w} floats with sides multiple of {m}, got {}",
                self.config,
                input.len()
            )));
        }
        Ok(())
    }

    /// Refuses statistics for the first blocks that are empty or of another channel count.
    fn check_stats(&self, given: &[ChannelSums]) -> Result<()> {
        for (block, sums) in given.iter().enumerate() {
            if sums.pixels == 0 {
                return Err(Error::InvalidInput(format!(
                    "frame statistics of block {block} hold no pixels"
                )));
            }
            self.check_sums_channels(block, sums)?;
        }
        Ok(())
    }

    /// Refuses sums for `block` that are neither empty nor of its distilled channels.
    fn check_sums_channels(&self, block: usize, sums: &ChannelSums) -> Result<()> {
        let channels = match &self.layers {
            Layers::Imdn { blocks, .. } => blocks.get(block).map_or(0, |b| b.c5.cin),
            Layers::Rtc { .. } => 0,
        };
        if !sums.sums.is_empty() && sums.sums.len() != channels {
            return Err(Error::InvalidInput(format!(
                "frame statistics of block {block}: {} channels, the block has {channels}",
                sums.sums.len()
            )));
        }
        Ok(())
    }

    /// `n` frames into `out`, their blocks' attention from `given` statistics or their own.
    fn run_frames(
        &self,
        input: &[f32],
        (n, h, w): Nhw,
        scale_code: Option<f32>,
        given: Option<&[ChannelSums]>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.check_frames(input, (n, h, w), scale_code)?;
        let s = self.config.net_scale();
        let frame_out = 3 * h * s * w * s;
        out.resize(n * frame_out, 0.0);
        if let Some(streamed) = &self.stream {
            let framing = Framing::whole((h, w));
            let frames = input
                .chunks_exact(3 * h * w)
                .zip(out.chunks_exact_mut(frame_out));
            return self.run_streamed(streamed, ((h, w), framing), frames);
        }
        let mut guard = self
            .buffers
            .lock()
            .map_err(|_| Error::Model("CPU buffers poisoned".into()))?;
        let slot = &mut *guard;
        self.pool.install(|| {
            for (i, dst) in out.chunks_exact_mut(frame_out).enumerate() {
                let frame = &input[i * 3 * h * w..][..3 * h * w];
                let b = self.buffers_for(slot, h, w);
                self.run_one(b, frame, scale_code, given, dst);
            }
        });
        Ok(())
    }

    /// Floats [`CpuNet::forward`] holds for `n` frames of `h`×`w` beyond its input: the output,
    /// and the streamed pipeline's rings or the layer-by-layer activations.
    pub fn working_floats(&self, n: usize, h: usize, w: usize) -> usize {
        match &self.stream {
            Some((stream, _)) => {
                let s = self.config.net_scale();
                let int8 = self
                    .int8
                    .as_ref()
                    .and_then(|m| m.lock().ok())
                    .map_or(0, |q| q.stream().state_floats((h, w), self.threads()));
                n * 3 * h * w * s * s + stream.state_floats((h, w), self.threads()) + int8
            }
            None => Self::layerwise_working_floats(&self.config, n, h, w),
        }
    }

    /// [`CpuNet::working_floats`] of the layer-by-layer executor: the activations of `Buffers`
    /// and the output.
    pub fn layerwise_working_floats(config: &Config, n: usize, h: usize, w: usize) -> usize {
        let c = config.channels;
        let s = config.upsampler_scale;
        let full = Geom { h, w };
        let (g, front) = if config.variant == Variant::As {
            let g = half(half(full));
            (g, 3 * full.plane() + c * half(full).plane())
        } else {
            (full, 0)
        };
        // input, fea, x[2], cat, rest[2], acc, up: as buffers_for allocates them
        let per_pixel = 3 + c + 2 * c + c + 2 * (c - c / 4) + c + 3 * s * s;
        let output = n * 3 * full.plane() * config.net_scale() * config.net_scale();
        per_pixel * g.plane() + front + output
    }

    /// The size the blocks run at for frames of `full`: IMDN_AS's two stride-2 convs quarter
    /// it.
    fn block_geom(&self, full: Geom) -> Geom {
        match self.config.variant {
            Variant::As => half(half(full)),
            _ => full,
        }
    }

    /// The buffers for this size, reallocated (zeroed) only when the size changes.
    fn buffers_for<'a>(
        &self,
        slot: &'a mut Option<Buffers>,
        h: usize,
        w: usize,
    ) -> &'a mut Buffers {
        let full = Geom { h, w };
        let g = self.block_geom(full);
        if slot.as_ref().is_none_or(|b| {
            b.g != g || (b.front.len() != 3 * full.plane() && self.config.variant == Variant::As)
        }) {
            let c = self.config.channels;
            let p = g.plane();
            let s = self.config.upsampler_scale;
            let z = |ch: usize| vec![0.0f32; ch * p];
            let (front, front_half) = if self.config.variant == Variant::As {
                (
                    vec![0.0; 3 * full.plane()],
                    vec![0.0; c * half(full).plane()],
                )
            } else {
                (Vec::new(), Vec::new())
            };
            *slot = Some(Buffers {
                g,
                input: z(3),
                fea: z(c),
                x: [z(c), z(c)],
                cat: z(c),
                rest: [z(c - c / 4), z(c - c / 4)],
                acc: z(c),
                cca: CcaScratch::default(),
                up: z(3 * s * s),
                front,
                front_half,
                scaled_head: None,
            });
        }
        slot.as_mut().expect("just set")
    }

    /// One frame into `out`; the blocks' attention from `given` statistics (a whole frame's,
    /// for a tile; checked by the caller) or else the frame's own.
    fn run_one(
        &self,
        b: &mut Buffers,
        frame: &[f32],
        scale_code: Option<f32>,
        given: Option<&[ChannelSums]>,
        out: &mut [f32],
    ) {
        let g = b.g;
        match &self.layers {
            Layers::Imdn {
                blocks,
                fuse,
                lr_conv,
                up,
                ..
            } => {
                self.layers.run_imdn_head(b, frame, scale_code);
                for (i, (block, fuse)) in blocks.iter().zip(fuse).enumerate() {
                    let (src, dst) = block_io(&b.fea, &mut b.x, i);
                    let sums = given.and_then(|given| given.get(i));
                    let scratch = (&mut b.cat[..], &mut b.rest);
                    run_block(g, block, (src, dst), scratch, &mut b.cca, sums);
                    let prefill = if i == 0 { Prefill::Bias } else { Prefill::Keep };
                    conv_into(g, dst, fuse, &mut b.acc, prefill, Act::None);
                }
                lrelu_in_place(&mut b.acc);
                zero_border_columns(g, &mut b.acc);
                let lr = &mut b.x[0];
                conv_into(g, &b.acc, lr_conv, lr, Prefill::BiasPlus(&b.fea), Act::None);
                conv_into(g, lr, up, &mut b.up, Prefill::Bias, Act::None);
            }
            Layers::Rtc {
                head,
                blocks,
                tail,
                up,
            } => {
                to_bordered(g, frame, &mut b.input);
                conv_into(g, &b.input, head, &mut b.fea, Prefill::Bias, Act::None);
                for (i, block) in blocks.iter().enumerate() {
                    let (src, dst) = block_io(&b.fea, &mut b.x, i);
                    let scratch = (&mut b.cat[..], &mut b.rest);
                    run_block(g, block, (src, dst), scratch, &mut b.cca, None);
                }
                let last = if blocks.len() % 2 == 1 {
                    &b.x[0]
                } else {
                    &b.x[1]
                };
                conv_into(
                    g,
                    last,
                    tail,
                    &mut b.acc,
                    Prefill::BiasPlus(&b.fea),
                    Act::None,
                );
                conv_into(g, &b.acc, up, &mut b.up, Prefill::Bias, Act::None);
            }
        }
        pixel_shuffle(g, &b.up, self.config.upsampler_scale, out);
        if let Layers::Imdn {
            input_skip: Some(gains),
            ..
        } = &self.layers
        {
            add_scaled_planes(out, frame, gains);
        }
    }

    /// For a tile: the head, the blocks before `given.len()` (their attention from `given`),
    /// then the next block's distillation, whose channels' sums over `share` (in block
    /// pixels) go into `sums`.
    fn gather_one(
        &self,
        b: &mut Buffers,
        (frame, scale_code): (&[f32], Option<f32>),
        given: &[ChannelSums],
        share: Rect,
        sums: &mut ChannelSums,
    ) {
        let Layers::Imdn { blocks, .. } = &self.layers else {
            return;
        };
        let Some(next) = blocks.get(given.len()) else {
            return;
        };
        let g = b.g;
        self.layers.run_imdn_head(b, frame, scale_code);
        for (i, (block, block_sums)) in blocks.iter().zip(given).enumerate() {
            let (src, dst) = block_io(&b.fea, &mut b.x, i);
            let scratch = (&mut b.cat[..], &mut b.rest);
            run_block(g, block, (src, dst), scratch, &mut b.cca, Some(block_sums));
        }
        let (src, _) = block_io(&b.fea, &mut b.x, given.len());
        distil(g, next, src, &mut b.cat, &mut b.rest);
        add_region_sums(g, &b.cat, next.c5.cin, share, sums);
    }
}

impl Layers {
    /// IMDN's and IMDN_AS's head: `frame` into `b.fea` (nothing for IMDN_RTC).
    fn run_imdn_head(&self, b: &mut Buffers, frame: &[f32], scale_code: Option<f32>) {
        let Layers::Imdn {
            head,
            head2,
            scale_embed,
            ..
        } = self
        else {
            return;
        };
        let g = b.g;
        match head2 {
            Some(head2) => {
                let head = match (scale_embed, scale_code) {
                    (Some(embed), Some(code)) => scaled_head(&mut b.scaled_head, head, embed, code),
                    _ => head,
                };
                let full = Geom {
                    h: 4 * g.h,
                    w: 4 * g.w,
                };
                to_bordered(full, frame, &mut b.front);
                conv3x3_s2(full, &b.front, head, &mut b.front_half, Act::LRelu);
                conv3x3_s2(half(full), &b.front_half, head2, &mut b.fea, Act::None);
            }
            None => {
                to_bordered(g, frame, &mut b.input);
                conv_into(g, &b.input, head, &mut b.fea, Prefill::Bias, Act::None);
            }
        }
    }
}

/// IMDN_AS's input-skip gains, one per colour channel.
fn input_skip_gains(t: &Tensors) -> Result<[f32; 3]> {
    let v = vector(t, INPUT_SKIP, 3)?;
    Ok([v[0], v[1], v[2]])
}

/// IMDN_AS's scale embedding, one value per channel of the head.
fn scale_embed(t: &Tensors, channels: usize) -> Result<Vec<f32>> {
    vector(t, SCALE_EMBED, channels)
}

/// The tensor `name` of `t` as `len` values.
fn vector(t: &Tensors, name: &str, len: usize) -> Result<Vec<f32>> {
    let v = t
        .get(name)
        .ok_or_else(|| Error::Model(format!("{name} is missing")))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if v.len() != len {
        return Err(Error::Model(format!(
            "{name}: expected {len} values, got {}",
            v.len()
        )));
    }
    Ok(v)
}

/// `head` with `code · embed` added to its bias, from `cache` when it holds that code.
fn scaled_head<'a>(
    cache: &'a mut Option<(f32, ConvParams)>,
    head: &ConvParams,
    embed: &[f32],
    code: f32,
) -> &'a ConvParams {
    if cache.as_ref().is_none_or(|(c, _)| *c != code) {
        let bias = head
            .bias
            .iter()
            .zip(embed)
            .map(|(b, e)| b + code * e)
            .collect();
        let params = ConvParams::new(head.weight.clone(), bias, head.cin, head.cout, head.k);
        *cache = Some((code, params));
    }
    &cache.as_ref().expect("just set").1
}

/// `out[c] += gains[c] · input[c]` for each of the three planes.
fn add_scaled_planes(out: &mut [f32], input: &[f32], gains: &[f32; 3]) {
    let plane = input.len() / 3;
    for ((o, i), &g) in out
        .chunks_exact_mut(plane)
        .zip(input.chunks_exact(plane))
        .zip(gains)
    {
        for (o, &i) in o.iter_mut().zip(i) {
            *o += g * i;
        }
    }
}

/// A conv whose output channels all go to `dst`.
fn conv_into(
    g: Geom,
    src: &[f32],
    p: &ConvParams,
    dst: &mut [f32],
    prefill: Prefill<'_>,
    act: Act,
) {
    conv_same(
        g,
        src,
        p,
        None,
        &mut [Out { dst, rows: p.cout }],
        prefill,
        act,
    );
}

/// Block `i`'s input and output: block 0 reads the features, then the two buffers take turns.
fn block_io<'a>(fea: &'a [f32], x: &'a mut [Vec<f32>; 2], i: usize) -> (&'a [f32], &'a mut [f32]) {
    let [xa, xb] = x;
    match i {
        0 => (fea, xa),
        _ if i % 2 == 1 => (xa, xb),
        _ => (xb, xa),
    }
}

/// One distillation block from `x` into `out`: `cat` collects the distilled channels, `rest`
/// ping-pongs the remaining ones, `cca` gets c5's attention-scaled weights, its statistics
/// `given` (a whole frame's, for a tile) or else the frame's own.
fn run_block(
    g: Geom,
    blk: &Block,
    (x, out): (&[f32], &mut [f32]),
    (cat, rest): (&mut [f32], &mut [Vec<f32>; 2]),
    cca: &mut CcaScratch,
    given: Option<&ChannelSums>,
) {
    distil(g, blk, x, cat, rest);
    let c = blk.c5.cout;
    match &blk.cca {
        Some((down, upc)) => {
            let sums = match given {
                Some(sums) => sums,
                None => {
                    cca.sums.reset(blk.c5.cin);
                    add_region_sums(g, cat, blk.c5.cin, Rect::whole((g.w, g.h)), &mut cca.sums);
                    &cca.sums
                }
            };
            attention_weights((down, upc), &blk.c5, sums, &mut cca.attention);
            conv_same(
                g,
                cat,
                &blk.c5,
                Some(&cca.attention.weights),
                &mut [Out { dst: out, rows: c }],
                Prefill::BiasPlus(x),
                Act::None,
            );
        }
        None => conv_into(g, cat, &blk.c5, out, Prefill::BiasPlus(x), Act::None),
    }
}

/// A block's c1..c4 from `x`: the distilled channels into `cat`, the remaining ones
/// ping-ponged through `rest`.
fn distil(g: Geom, blk: &Block, x: &[f32], cat: &mut [f32], rest: &mut [Vec<f32>; 2]) {
    let p = g.plane();
    let d = blk.c4.cout;
    let r = blk.c1.cout - d;
    let [ra, rb] = rest;
    let (d1, tail) = cat.split_at_mut(d * p);
    let (d2, tail) = tail.split_at_mut(d * p);
    let (d3, d4) = tail.split_at_mut(d * p);
    conv_same(
        g,
        x,
        &blk.c1,
        None,
        &mut [Out { dst: d1, rows: d }, Out { dst: ra, rows: r }],
        Prefill::Bias,
        Act::LRelu,
    );
    conv_same(
        g,
        ra,
        &blk.c2,
        None,
        &mut [Out { dst: d2, rows: d }, Out { dst: rb, rows: r }],
        Prefill::Bias,
        Act::LRelu,
    );
    conv_same(
        g,
        rb,
        &blk.c3,
        None,
        &mut [Out { dst: d3, rows: d }, Out { dst: ra, rows: r }],
        Prefill::Bias,
        Act::LRelu,
    );
    conv_into(g, ra, &blk.c4, d4, Prefill::Bias, Act::None);
}

/// Copies a planar 3×h×w frame into bordered planes (borders stay zero).
fn to_bordered(g: Geom, frame: &[f32], dst: &mut [f32]) {
    let p = g.plane();
    for c in 0..3 {
        for y in 0..g.h {
            let from = &frame[(c * g.h + y) * g.w..][..g.w];
            dst[c * p + g.at(y, 0)..][..g.w].copy_from_slice(from);
        }
    }
}

/// Pixel shuffle from bordered [3·s², h, w] to planar [3, s·h, s·w]: output channel c, sub-pixel
/// (i, j) comes from input channel c·s² + i·s + j.
fn pixel_shuffle(g: Geom, src: &[f32], s: usize, out: &mut [f32]) {
    let p = g.plane();
    let (ow, oh) = (g.w * s, g.h * s);
    out.par_chunks_exact_mut(ow)
        .enumerate()
        .for_each(|(row, dst)| {
            let (c, oy) = (row / oh, row % oh);
            let (y, i) = (oy / s, oy % s);
            for j in 0..s {
                let plane = &src[(c * s * s + i * s + j) * p + g.at(y, 0)..][..g.w];
                for (x, &v) in plane.iter().enumerate() {
                    dst[x * s + j] = v;
                }
            }
        });
}

/// Refuses shares that are not one per tile or reach outside a `w`×`h` tile.
fn check_shares(shares: &[Rect], (n, h, w): Nhw) -> Result<()> {
    if shares.len() != n {
        return Err(Error::InvalidInput(format!(
            "{} shares for {n} tiles",
            shares.len()
        )));
    }
    match shares
        .iter()
        .find(|r| r.x0 > r.x1 || r.x1 > w || r.y0 > r.y1 || r.y1 > h)
    {
        Some(r) => Err(Error::InvalidInput(format!(
            "share {r:?} outside a {w}×{h} tile"
        ))),
        None => Ok(()),
    }
}

/// A share in a `w`×`h` tile's input pixels as block pixels (`g`), rounded down at both ends
/// so that neighbouring shares still meet.
fn share_at_blocks(r: Rect, (w, h): (usize, usize), g: Geom) -> Rect {
    Rect {
        x0: r.x0 * g.w / w,
        x1: r.x1 * g.w / w,
        y0: r.y0 * g.h / h,
        y1: r.y1 * g.h / h,
    }
}

impl crate::acs::Forward for CpuNet {
    fn forward_batch_into(&self, input: &[f32], (n, h, w): Nhw, out: &mut Vec<f32>) -> Result<()> {
        self.forward_into(input, n, h, w, out)
    }

    fn frame_stages(&self) -> usize {
        CpuNet::frame_stages(self)
    }

    fn add_stage_sums(
        &self,
        input: &[f32],
        nhw: Nhw,
        shares: &[Rect],
        stage: usize,
        stats: &mut FrameStats,
    ) -> Result<()> {
        self.add_block_sums_at(input, nhw, None, (shares, stage), stats)
    }

    fn forward_batch_with_stats_into(
        &self,
        input: &[f32],
        nhw: Nhw,
        stats: &FrameStats,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.forward_with_stats_at_into(input, nhw, None, stats, out)
    }
}
