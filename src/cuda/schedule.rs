//! A network of the family as the GPU will run it: a flat list of fused steps over named NHWC
//! buffers, read and written through channel-offset [`View`]s, and the buffers' sizes for a
//! frame size ([`BufferPlan`]).
//!
//! Each step is one kernel launch (one graph node) on the GPU:
//! - [`Step::Conv`]: a 3×3 or 1×1 conv (stride 1, or 2 for IMDN_AS's front end) with its
//!   epilogue fused: bias, the scale embedding (IMDN_AS), the activation, a residual, and the
//!   write through one or more channel views (the IMDB's split) or through a pixel shuffle
//!   (the upsampler). Its input may be scaled per channel on the way in (CCA's attention).
//! - [`Step::CcaStats`]: one reduction, per frame and channel `mean + std` over the pixels.
//! - [`Step::CcaAttention`]: on those `[n, c]` vectors, 1×1 → ReLU → 1×1 → sigmoid.
//!
//! There is no copy step: the IMDB's split is the c1..c3 convs writing their first `d` output
//! channels into the distilled slots of the block buffer and the rest into a ping-pong slot of
//! the same buffer; its concatenation is the c5 conv reading the four distilled slots as one
//! view; the concatenation of all blocks' outputs (IMDN's `c.0`) is each block writing its slot
//! of one buffer, the fusion reading the whole buffer.

use std::fmt;

use super::pack::{PackedConv, vector};
use crate::model::{Config, Variant};
use crate::names::{
    self, C1, C2, C3, C4, C5, CCA, CCA_DOWN, CCA_UP, FEA_CONV, FEA_CONV_0, FEA_CONV_2, FUSE,
    INPUT_SKIP, LR_CONV, RTC_HEAD, RTC_UPSAMPLER, SCALE_EMBED, UPSAMPLER, join,
};
use crate::weights::Tensors;
use crate::{Error, Result};

/// LeakyReLU's slope in IMDN (the one [`crate::model::lrelu`] applies).
pub const LRELU_SLOPE: f32 = 0.05;

/// The spatial size of a buffer relative to the network's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grid {
    /// `h·up/down × w·up/down` pixels per frame.
    Pixels { up: usize, down: usize },
    /// One value per frame and channel (CCA's statistics and attention, scale codes).
    PerFrame,
}

impl Grid {
    pub const INPUT: Grid = Grid::Pixels { up: 1, down: 1 };

    /// Pixels per frame (height, width) for an input of `h`×`w`.
    pub fn size(&self, h: usize, w: usize) -> (usize, usize) {
        match *self {
            Grid::Pixels { up, down } => (h * up / down, w * up / down),
            Grid::PerFrame => (1, 1),
        }
    }

    /// This grid divided by `stride` (a strided conv's output).
    fn strided(self, stride: usize) -> Grid {
        match self {
            Grid::Pixels { up, down } => Grid::Pixels {
                up,
                down: down * stride,
            },
            g => g,
        }
    }

    /// This grid times `s` (a pixel shuffle's output).
    fn shuffled(self, s: usize) -> Grid {
        match self {
            Grid::Pixels { up, down } if down % s == 0 => Grid::Pixels { up, down: down / s },
            Grid::Pixels { up, down } => Grid::Pixels { up: up * s, down },
            g => g,
        }
    }
}

/// A named NHWC buffer: `channels` per pixel of its grid, for every frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub name: &'static str,
    pub channels: usize,
    pub grid: Grid,
}

/// Channels `offset..offset + channels` of buffer `buf`: pixel stride is the buffer's channel
/// count, so a view is a pointer offset and a leading dimension, never a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub buf: usize,
    pub offset: usize,
    pub channels: usize,
}

impl View {
    fn new(buf: usize, offset: usize, channels: usize) -> Self {
        Self {
            buf,
            offset,
            channels,
        }
    }

    fn end(&self) -> usize {
        self.offset + self.channels
    }

    /// Whether the two views share a channel of the same buffer.
    pub fn overlaps(&self, other: &View) -> bool {
        self.buf == other.buf && self.offset < other.end() && other.offset < self.end()
    }
}

/// An epilogue's activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    LeakyRelu(f32),
    Relu,
}

impl Act {
    pub fn apply(&self, v: f32) -> f32 {
        match *self {
            Act::None => v,
            Act::LeakyRelu(slope) => {
                if v >= 0.0 {
                    v
                } else {
                    slope * v
                }
            }
            Act::Relu => v.max(0.0),
        }
    }
}

/// `code[frame] · weights[co]` added to the bias before the activation (IMDN_AS's scale input).
#[derive(Clone, Debug, PartialEq)]
pub struct Embed {
    /// A one-channel [`Grid::PerFrame`] view: each frame's scale code.
    pub code: View,
    pub weights: Vec<f32>,
}

/// A residual added after the activation, read at the very element written (so it may be the
/// destination itself: an in-place add), optionally times a per-channel gain (IMDN_AS's input
/// skip).
#[derive(Clone, Debug, PartialEq)]
pub struct Residual {
    pub src: View,
    pub gains: Option<Vec<f32>>,
}

/// How a conv's output channels are written.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Output channels in order across these views (several: the IMDB's split into the
    /// distilled part and the rest).
    Views(Vec<View>),
    /// Pixel shuffle by `s` folded into the write: output channel `c·s² + i·s + j` at pixel
    /// (y, x) goes to channel `c` of the view at pixel (s·y + i, s·x + j).
    Shuffle { dst: View, s: usize },
}

impl Write {
    /// The views written.
    pub fn views(&self) -> Vec<View> {
        match self {
            Write::Views(v) => v.clone(),
            Write::Shuffle { dst, .. } => vec![*dst],
        }
    }

    /// Output channels it takes.
    pub fn channels(&self) -> usize {
        match self {
            Write::Views(v) => v.iter().map(|v| v.channels).sum(),
            Write::Shuffle { dst, s } => dst.channels * s * s,
        }
    }
}

/// A conv and its fused epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// Index into [`Schedule::convs`].
    pub conv: usize,
    pub src: View,
    /// Per-frame, per-input-channel gains applied to `src` as it is read (CCA's attention,
    /// folded into c5's input: no scale pass over the block buffer).
    pub src_scale: Option<View>,
    pub stride: usize,
    pub embed: Option<Embed>,
    pub act: Act,
    pub residual: Option<Residual>,
    pub write: Write,
}

/// One fused step (one kernel launch on the GPU).
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Conv(Conv),
    /// Per frame and channel of `src`: mean + population std over its pixels, into `dst`
    /// (a [`Grid::PerFrame`] view), accumulated in f32 or wider.
    CcaStats {
        src: View,
        dst: View,
    },
    /// `dst = sigmoid(up(relu(down(src))))` on per-frame vectors; `down` and `up` index
    /// [`Schedule::convs`] (1×1).
    CcaAttention {
        src: View,
        down: usize,
        up: usize,
        dst: View,
    },
}

/// A network as fused steps over buffers, with its packed weights.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub config: Config,
    pub buffers: Vec<Buffer>,
    pub convs: Vec<PackedConv>,
    pub steps: Vec<Step>,
    /// The frames, NHWC 3 channels, as the caller (or the GPU's colour conversion) writes them.
    pub input: usize,
    /// IMDN_AS with a scale input: the per-frame scale codes, one channel.
    pub codes: Option<usize>,
    /// The network's output, NHWC 3 channels at `net_scale ×` the input size.
    pub output: usize,
}

/// Builds a schedule step by step.
struct Builder<'a> {
    t: &'a Tensors,
    buffers: Vec<Buffer>,
    convs: Vec<PackedConv>,
    steps: Vec<Step>,
}

impl Builder<'_> {
    fn buffer(&mut self, name: &'static str, channels: usize, grid: Grid) -> usize {
        self.buffers.push(Buffer {
            name,
            channels,
            grid,
        });
        self.buffers.len() - 1
    }

    /// All channels of buffer `buf`.
    fn whole(&self, buf: usize) -> View {
        View::new(buf, 0, self.buffers[buf].channels)
    }

    fn load(&mut self, layer: &str, cin: usize, cout: usize, k: usize) -> Result<usize> {
        self.convs
            .push(PackedConv::load(self.t, layer, cin, cout, k)?);
        Ok(self.convs.len() - 1)
    }

    /// A stride-1 k×k conv `layer` from `src` written through `write`, with `act` (the
    /// rest of its epilogue for the caller to add), its weights loaded.
    fn conv(&mut self, layer: &str, k: usize, src: View, write: Write, act: Act) -> Result<Conv> {
        let conv = self.load(layer, src.channels, write.channels(), k)?;
        Ok(Conv {
            conv,
            src,
            src_scale: None,
            stride: 1,
            embed: None,
            act,
            residual: None,
            write,
        })
    }

    fn push(&mut self, conv: Conv) {
        self.steps.push(Step::Conv(conv));
    }

    /// [`Builder::conv`] pushed as it is.
    fn plain(&mut self, layer: &str, k: usize, src: View, dst: View, act: Act) -> Result<()> {
        let c = self.conv(layer, k, src, Write::Views(vec![dst]), act)?;
        self.push(c);
        Ok(())
    }

    /// A distillation block at `path` from `x` into `out`, through the block buffer `blk`
    /// (`[d1 d2 d3 d4 | rest A | rest B]`) and, with CCA, the per-frame `stats` and `attn`.
    fn block(
        &mut self,
        path: &str,
        (x, out): (View, View),
        blk: usize,
        cca: Option<(usize, usize)>,
    ) -> Result<()> {
        let c = x.channels;
        let (d, r) = (c / 4, c - c / 4);
        let slot = |i: usize| View::new(blk, i * d, d);
        let (ra, rb) = (View::new(blk, 4 * d, r), View::new(blk, 4 * d + r, r));
        let lrelu = Act::LeakyRelu(LRELU_SLOPE);
        // c1..c3: the first d output channels to their distilled slot, the rest to a rest slot
        for (i, (name, src, rest)) in [(C1, x, ra), (C2, ra, rb), (C3, rb, ra)]
            .into_iter()
            .enumerate()
        {
            let split = Write::Views(vec![slot(i), rest]);
            let c = self.conv(&join(path, name), 3, src, split, lrelu)?;
            self.push(c);
        }
        self.plain(&join(path, C4), 3, ra, slot(3), Act::None)?;
        // c5 reads the four distilled slots as one view (the concatenation), + x
        let cat = View::new(blk, 0, 4 * d);
        let mut c5 = self.conv(&join(path, C5), 1, cat, Write::Views(vec![out]), Act::None)?;
        c5.residual = Some(Residual {
            src: x,
            gains: None,
        });
        if let Some((stats, attn)) = cca {
            let p = join(path, CCA);
            let mid = 4 * d / 16;
            let down = self.load(&join(&p, CCA_DOWN), 4 * d, mid, 1)?;
            let up = self.load(&join(&p, CCA_UP), mid, 4 * d, 1)?;
            let (stats, attn) = (self.whole(stats), self.whole(attn));
            self.steps.push(Step::CcaStats {
                src: cat,
                dst: stats,
            });
            self.steps.push(Step::CcaAttention {
                src: stats,
                down,
                up,
                dst: attn,
            });
            c5.src_scale = Some(attn);
        }
        self.push(c5);
        Ok(())
    }
}

impl Schedule {
    /// The schedule of `config`'s network with the parameters `t` (as [`crate::cpu::CpuNet`]
    /// takes them).
    pub fn new(config: &Config, t: &Tensors) -> Result<Self> {
        let mut b = Builder {
            t,
            buffers: Vec::new(),
            convs: Vec::new(),
            steps: Vec::new(),
        };
        let c = config.channels;
        let (d, r) = (c / 4, c - c / 4);
        let s = config.upsampler_scale;
        let lrelu = Act::LeakyRelu(LRELU_SLOPE);
        let input = b.buffer("input", 3, Grid::INPUT);
        let codes = config
            .scale_input
            .then(|| b.buffer("codes", 1, Grid::PerFrame));
        let body = match config.variant {
            Variant::As => Grid::INPUT.strided(4),
            _ => Grid::INPUT,
        };
        let output = b.buffer("output", 3, body.shuffled(s));
        let fea = b.buffer("fea", c, body);
        let blk = b.buffer("block", 4 * d + 2 * r, body);
        let fea_v = b.whole(fea);
        let in_v = b.whole(input);
        match config.variant {
            Variant::Imdn | Variant::As => {
                match config.variant {
                    Variant::As => {
                        let half = b.buffer("front", c, Grid::INPUT.strided(2));
                        let embed = match codes {
                            Some(codes) => Some(Embed {
                                code: b.whole(codes),
                                weights: vector(t, SCALE_EMBED)?,
                            }),
                            None => None,
                        };
                        if let Some(e) = &embed
                            && e.weights.len() != c
                        {
                            return Err(Error::Model(format!(
                                "{SCALE_EMBED}: expected {c} values, got {}",
                                e.weights.len()
                            )));
                        }
                        let half_v = b.whole(half);
                        let mut head =
                            b.conv(FEA_CONV_0, 3, in_v, Write::Views(vec![half_v]), lrelu)?;
                        head.stride = 2;
                        head.embed = embed;
                        b.push(head);
                        let mut head2 =
                            b.conv(FEA_CONV_2, 3, half_v, Write::Views(vec![fea_v]), Act::None)?;
                        head2.stride = 2;
                        b.push(head2);
                    }
                    _ => b.plain(FEA_CONV, 3, in_v, fea_v, Act::None)?,
                }
                let n = config.blocks;
                let outs = b.buffer("blocks", n * c, body);
                let stats = b.buffer("cca_stats", 4 * d, Grid::PerFrame);
                let attn = b.buffer("cca_attn", 4 * d, Grid::PerFrame);
                for i in 0..n {
                    let x = match i {
                        0 => fea_v,
                        _ => View::new(outs, (i - 1) * c, c),
                    };
                    let out = View::new(outs, i * c, c);
                    b.block(&names::imdb(i + 1), (x, out), blk, Some((stats, attn)))?;
                }
                let fused = b.buffer("fused", c, body);
                let fused_v = b.whole(fused);
                let all = b.whole(outs);
                b.plain(FUSE, 1, all, fused_v, lrelu)?;
                // LR_conv + fea, in place over fea (the residual is read at the element written)
                let mut lr = b.conv(LR_CONV, 3, fused_v, Write::Views(vec![fea_v]), Act::None)?;
                lr.residual = Some(Residual {
                    src: fea_v,
                    gains: None,
                });
                b.push(lr);
                let dst = b.whole(output);
                let mut up = b.conv(UPSAMPLER, 3, fea_v, Write::Shuffle { dst, s }, Act::None)?;
                if config.input_skip {
                    let gains = vector(t, INPUT_SKIP)?;
                    if gains.len() != 3 {
                        return Err(Error::Model(format!(
                            "{INPUT_SKIP}: expected 3 values, got {}",
                            gains.len()
                        )));
                    }
                    up.residual = Some(Residual {
                        src: in_v,
                        gains: Some(gains),
                    });
                }
                b.push(up);
            }
            Variant::Rtc => {
                b.plain(RTC_HEAD, 3, in_v, fea_v, Act::None)?;
                let xs = [b.buffer("x0", c, body), b.buffer("x1", c, body)].map(|x| b.whole(x));
                for i in 0..config.blocks {
                    let x = match i {
                        0 => fea_v,
                        _ => xs[(i - 1) % 2],
                    };
                    b.block(&names::rtc_block(i), (x, xs[i % 2]), blk, None)?;
                }
                let last = xs[(config.blocks - 1) % 2];
                let tail = names::rtc_tail(config.blocks);
                // the tail + fea, in place over fea
                let mut tail = b.conv(&tail, 1, last, Write::Views(vec![fea_v]), Act::None)?;
                tail.residual = Some(Residual {
                    src: fea_v,
                    gains: None,
                });
                b.push(tail);
                let dst = b.whole(output);
                let up = b.conv(
                    RTC_UPSAMPLER,
                    3,
                    fea_v,
                    Write::Shuffle { dst, s },
                    Act::None,
                )?;
                b.push(up);
            }
        }
        let schedule = Self {
            config: *config,
            buffers: b.buffers,
            convs: b.convs,
            steps: b.steps,
            input,
            codes,
            output,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Checks what the kernels will rely on: every view inside its buffer, views on the grid
    /// their step computes, a conv's channels matching its weights, no conv reading channels it
    /// writes (except a residual at the element written).
    pub fn validate(&self) -> Result<()> {
        let bad = |i: usize, what: String| Err(Error::Model(format!("step {i}: {what}")));
        let in_range = |v: &View| {
            self.buffers
                .get(v.buf)
                .is_some_and(|b| v.end() <= b.channels && v.channels > 0)
        };
        let grid = |v: &View| self.buffers[v.buf].grid;
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Conv(c) => {
                    let views = c.write.views();
                    let mut all: Vec<View> = views.clone();
                    all.push(c.src);
                    all.extend(c.src_scale);
                    all.extend(c.embed.as_ref().map(|e| e.code));
                    all.extend(c.residual.as_ref().map(|r| r.src));
                    if let Some(v) = all.iter().find(|v| !in_range(v)) {
                        return bad(i, format!("view {v:?} is outside its buffer"));
                    }
                    let shape = self.convs[c.conv].shape;
                    if shape.cin != c.src.channels || shape.cout != c.write.channels() {
                        return bad(i, format!("{shape:?} does not fit its views"));
                    }
                    let out_grid = match &c.write {
                        Write::Views(_) => grid(&c.src).strided(c.stride),
                        Write::Shuffle { s, .. } => grid(&c.src).strided(c.stride).shuffled(*s),
                    };
                    if views.iter().any(|v| grid(v) != out_grid) {
                        return bad(i, format!("writes off its output grid {out_grid:?}"));
                    }
                    if views.iter().any(|v| v.overlaps(&c.src)) {
                        return bad(i, "writes channels it reads".into());
                    }
                    for (a, v) in views.iter().enumerate() {
                        if views[a + 1..].iter().any(|w| w.overlaps(v)) {
                            return bad(i, "writes a channel twice".into());
                        }
                    }
                    if let Some(r) = &c.residual {
                        let same = views.len() == 1 && r.src == views[0];
                        if !same && views.iter().any(|v| v.overlaps(&r.src)) {
                            return bad(i, "residual overlaps the output elsewhere".into());
                        }
                        if grid(&r.src) != out_grid || r.src.channels != views[0].channels {
                            return bad(i, "residual does not match the output".into());
                        }
                        if r.gains.as_ref().is_some_and(|g| g.len() != r.src.channels) {
                            return bad(i, "residual gains do not match its channels".into());
                        }
                    }
                    if let Some(sc) = &c.src_scale
                        && (grid(sc) != Grid::PerFrame || sc.channels != c.src.channels)
                    {
                        return bad(i, "input scale is not a per-frame vector of cin".into());
                    }
                    if let Some(e) = &c.embed
                        && (grid(&e.code) != Grid::PerFrame
                            || e.code.channels != 1
                            || e.weights.len() != shape.cout)
                    {
                        return bad(i, "scale embedding does not fit".into());
                    }
                }
                Step::CcaStats { src, dst } => {
                    if !in_range(src) || !in_range(dst) || src.channels != dst.channels {
                        return bad(i, "statistics views do not fit".into());
                    }
                    if grid(dst) != Grid::PerFrame || grid(src) == Grid::PerFrame {
                        return bad(i, "statistics go from pixels to per-frame".into());
                    }
                }
                Step::CcaAttention { src, down, up, dst } => {
                    let (dn, u) = (self.convs[*down].shape, self.convs[*up].shape);
                    let fits = in_range(src)
                        && in_range(dst)
                        && grid(src) == Grid::PerFrame
                        && grid(dst) == Grid::PerFrame
                        && !src.overlaps(dst)
                        && dn.k == 1
                        && u.k == 1
                        && dn.cin == src.channels
                        && u.cin == dn.cout
                        && u.cout == dst.channels;
                    if !fits {
                        return bad(i, "attention does not fit its views".into());
                    }
                }
            }
        }
        Ok(())
    }

    /// The buffers' sizes for `n` frames of `h`×`w` (IMDN_AS: sides multiples of 4).
    pub fn plan(&self, n: usize, h: usize, w: usize) -> Result<BufferPlan> {
        let m = self.config.input_multiple();
        if n == 0 || h == 0 || w == 0 || !h.is_multiple_of(m) || !w.is_multiple_of(m) {
            return Err(Error::InvalidInput(format!(
                "{} needs frames with sides multiple of {m}, got {n}×{h}×{w}",
                self.config
            )));
        }
        let buffers = self
            .buffers
            .iter()
            .map(|b| {
                let (bh, bw) = b.grid.size(h, w);
                let elements = n * bh * bw * b.channels;
                Planned {
                    name: b.name,
                    dims: [n, bh, bw, b.channels],
                    elements,
                }
            })
            .collect();
        Ok(BufferPlan {
            nhw: (n, h, w),
            buffers,
        })
    }
}

/// One buffer of a [`BufferPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub name: &'static str,
    /// NHWC.
    pub dims: [usize; 4],
    pub elements: usize,
}

impl Planned {
    pub fn bytes_f16(&self) -> usize {
        2 * self.elements
    }

    pub fn bytes_f32(&self) -> usize {
        4 * self.elements
    }
}

/// Every buffer of a schedule sized for one frame size: allocated once per size, reused for
/// every frame of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferPlan {
    pub nhw: (usize, usize, usize),
    pub buffers: Vec<Planned>,
}

impl BufferPlan {
    pub fn bytes_f16(&self) -> usize {
        self.buffers.iter().map(Planned::bytes_f16).sum()
    }

    pub fn bytes_f32(&self) -> usize {
        self.buffers.iter().map(Planned::bytes_f32).sum()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: &View| {
            let b = &self.buffers[v.buf];
            format!("{}[{}..{}]", b.name, v.offset, v.offset + v.channels)
        };
        writeln!(f, "{}", self.config)?;
        for b in &self.buffers {
            writeln!(f, "  buffer {} {}ch {:?}", b.name, b.channels, b.grid)?;
        }
        for step in &self.steps {
            match step {
                Step::Conv(c) => {
                    let p = &self.convs[c.conv];
                    let dst = match &c.write {
                        Write::Views(vs) => vs.iter().map(v).collect::<Vec<_>>().join(" + "),
                        Write::Shuffle { dst, s } => format!("shuffle×{s} {}", v(dst)),
                    };
                    write!(
                        f,
                        "  conv{}×{} {} {} → {dst}",
                        p.shape.k,
                        p.shape.k,
                        p.name,
                        v(&c.src)
                    )?;
                    if c.stride != 1 {
                        write!(f, " stride {}", c.stride)?;
                    }
                    if let Some(sc) = &c.src_scale {
                        write!(f, " in·{}", v(sc))?;
                    }
                    if c.embed.is_some() {
                        write!(f, " +code·embed")?;
                    }
                    if c.act != Act::None {
                        write!(f, " {:?}", c.act)?;
                    }
                    if let Some(r) = &c.residual {
                        write!(f, " +{}", v(&r.src))?;
                        if r.gains.is_some() {
                            write!(f, "·gains")?;
                        }
                    }
                    writeln!(f)?;
                }
                Step::CcaStats { src, dst } => writeln!(f, "  stats {} → {}", v(src), v(dst))?,
                Step::CcaAttention { src, dst, .. } => {
                    writeln!(f, "  attention {} → {}", v(src), v(dst))?
                }
            }
        }
        Ok(())
    }
}
