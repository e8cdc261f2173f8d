//! The streaming executor for the narrow networks (IMDN_RTC): the whole network runs down the
//! frame four rows at a time, each layer as soon as the rows it reads exist, and each
//! activation is a ring of the few rows its consumers still need. A 12-channel activation of a
//! 640×360 frame is 11 MB; its ring is a few dozen KB, so the data stay in cache from the
//! first conv to the last and only the input and output frames touch memory.
//!
//! Every layer has a lag, in tile rows (four rows) behind the input: a 3×3 conv runs one tile
//! row behind the layers it reads (it needs the row below), a 1×1 conv with them. At step s
//! each layer computes its tile row s − lag; a ring holds the rows from the oldest its slowest consumer
//! reads to the newest its producer wrote. Rows above and below the frame read as zeros, the
//! convs' padding.
//!
//! The frame is cut into column strips, one pipeline each, spread over the threads. A strip
//! computes `reach` columns of context on each inner side (the network's receptive field
//! radius, one column per 3×3 conv) and writes only its own columns, so the output equals the
//! whole frame's to float rounding.

use rayon::prelude::*;

use crate::kernels::rowconv::{self, Conv1, Conv3, RowLayout, Rows, RowsMut, TILE};
use crate::kernels::types::{Act, ConvParams};

/// Widest strip a pipeline owns, in input columns: wider frames get more strips than threads
/// so that each strip's rings stay in the core's L2.
const MAX_STRIP: usize = 512;

type BufId = usize;

enum Op {
    Conv3(Conv3),
    Conv1(Conv1),
}

/// One conv of the pipeline.
struct Layer {
    op: Op,
    /// Input channel sets, concatenated in order.
    src: Vec<BufId>,
    /// Output channel sets, in order.
    dst: Vec<BufId>,
    res: Option<BufId>,
    act: Act,
    lag: usize,
}

/// An activation: its channels, the lag of the layer that writes it, its ring's rows.
struct Buffer {
    channels: usize,
    lag: usize,
    rows: usize,
}

/// The network as a pipeline (weights and schedule; no per-frame state).
pub struct Stream {
    layers: Vec<Layer>,
    buffers: Vec<Buffer>,
    input: BufId,
    output: BufId,
    scale: usize,
}

/// Builds a [`Stream`] layer by layer.
pub struct Builder {
    layers: Vec<Layer>,
    buffers: Vec<Buffer>,
}

impl Builder {
    /// A pipeline whose input has `channels` channels; returns it and the input's id.
    pub fn new(channels: usize) -> (Self, BufId) {
        let b = Self {
            layers: Vec::new(),
            buffers: vec![Buffer {
                channels,
                lag: 0,
                rows: TILE,
            }],
        };
        (b, 0)
    }

    fn add(
        &mut self,
        op: Op,
        src: &[BufId],
        outs: &[usize],
        res: Option<BufId>,
        act: Act,
    ) -> Vec<BufId> {
        let reads = src.iter().map(|&b| self.buffers[b].lag).max().unwrap_or(0);
        let lag = match op {
            Op::Conv3(_) => reads + 1,
            Op::Conv1(_) => reads,
        }
        .max(res.map_or(0, |r| self.buffers[r].lag));
        let dst: Vec<BufId> = outs
            .iter()
            .map(|&channels| {
                self.buffers.push(Buffer {
                    channels,
                    lag,
                    rows: TILE,
                });
                self.buffers.len() - 1
            })
            .collect();
        self.layers.push(Layer {
            op,
            src: src.to_vec(),
            dst: dst.clone(),
            res,
            act,
            lag,
        });
        dst
    }

    /// A 3×3 conv of `src` (concatenated) into sets of `outs` channels, plus `res`, then `act`.
    pub fn conv3(
        &mut self,
        p: &ConvParams,
        src: &[BufId],
        outs: &[usize],
        res: Option<BufId>,
        act: Act,
    ) -> Vec<BufId> {
        let k = Conv3::new(&p.weight, &p.bias, p.cin, p.cout);
        self.add(Op::Conv3(k), src, outs, res, act)
    }

    /// A 1×1 conv, as [`Builder::conv3`].
    pub fn conv1(
        &mut self,
        p: &ConvParams,
        src: &[BufId],
        outs: &[usize],
        res: Option<BufId>,
        act: Act,
    ) -> Vec<BufId> {
        let k = Conv1::new(&p.weight, &p.bias, p.cin, p.cout);
        self.add(Op::Conv1(k), src, outs, res, act)
    }

    /// The pipeline whose output `output` (3·scale² channels) is pixel-shuffled into frames.
    pub fn finish(mut self, output: BufId, scale: usize) -> Stream {
        // each ring holds from the oldest row a consumer reads to the newest row written
        for layer in &self.layers {
            let reach = |b: &Buffer, halo: usize| TILE * (layer.lag - b.lag) + TILE + halo;
            let halo = matches!(layer.op, Op::Conv3(_)) as usize;
            for &b in &layer.src {
                let need = reach(&self.buffers[b], halo);
                self.buffers[b].rows = self.buffers[b].rows.max(need);
            }
            if let Some(r) = layer.res {
                let need = reach(&self.buffers[r], 0);
                self.buffers[r].rows = self.buffers[r].rows.max(need);
            }
        }
        Stream {
            layers: self.layers,
            buffers: self.buffers,
            input: 0,
            output,
            scale,
        }
    }
}

/// One strip's pipeline state, kept between frames of the same size.
struct Strip {
    /// Input columns the strip computes.
    x0: usize,
    lay: RowLayout,
    /// Input columns it writes out.
    own: (usize, usize),
    rings: Vec<Vec<f32>>,
    zeros: Vec<f32>,
    scratch: rowconv::Scratch,
}

/// Per-frame-size state: the strips.
pub struct State {
    size: (usize, usize),
    strips: Vec<Strip>,
}

/// The output frame, written by the strips at disjoint columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: strips write disjoint columns of the output
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl Stream {
    /// Receptive field radius in input pixels: one per 3×3 conv, as many as the last layer's
    /// lag.
    pub fn reach(&self) -> usize {
        self.buffers[self.output].lag
    }

    /// The state for frames of `h`×`w` on `threads` threads, from `state` when it fits.
    pub fn state<'a>(
        &self,
        state: &'a mut Option<State>,
        (h, w): (usize, usize),
        threads: usize,
    ) -> &'a mut State {
        if state.as_ref().is_none_or(|s| s.size != (h, w)) {
            let count = threads.max(w.div_ceil(MAX_STRIP)).min(w.div_ceil(8)).max(1);
            let reach = self.reach();
            let strips = (0..count)
                .map(|i| {
                    let own = (i * w / count, (i + 1) * w / count);
                    let (x0, x1) = (own.0.saturating_sub(reach), (own.1 + reach).min(w));
                    let lay = RowLayout::new(x1 - x0);
                    let rings = self
                        .buffers
                        .iter()
                        .map(|b| vec![0.0; b.rows * b.channels * lay.stride()])
                        .collect();
                    let widest = self.buffers.iter().map(|b| b.channels).max().unwrap_or(0);
                    Strip {
                        x0,
                        lay,
                        own,
                        rings,
                        zeros: vec![0.0; widest * lay.stride()],
                        scratch: rowconv::Scratch::default(),
                    }
                })
                .collect();
            *state = Some(State {
                size: (h, w),
                strips,
            });
        }
        state.as_mut().expect("just set")
    }

    /// Runs one planar 3×h×w frame into `out` (3×sh×sw), the strips in parallel on the
    /// current rayon pool.
    pub fn run(&self, state: &mut State, frame: &[f32], out: &mut [f32]) {
        let (h, w) = state.size;
        assert_eq!(frame.len(), 3 * h * w);
        assert_eq!(out.len(), 3 * h * w * self.scale * self.scale);
        let out = OutPtr(out.as_mut_ptr());
        state
            .strips
            .par_iter_mut()
            .for_each(|strip| self.run_strip(strip, frame, (h, w), out));
    }

    fn run_strip(&self, s: &mut Strip, frame: &[f32], (h, w): (usize, usize), out: OutPtr) {
        let units = h.div_ceil(TILE);
        let last = self.layers.iter().map(|l| l.lag).max().unwrap_or(0);
        for step in 0..units + last {
            if step < units {
                self.load_input(s, frame, (h, w), step);
            }
            for layer in &self.layers {
                if let Some(k) = step.checked_sub(layer.lag).filter(|&k| k < units) {
                    self.run_layer(s, layer, k, h);
                }
            }
            if let Some(k) = step.checked_sub(self.reach()).filter(|&k| k < units) {
                self.shuffle_out(s, k, (h, w), out);
            }
        }
    }

    /// Row `y` of buffer `b` (zeros outside the frame).
    fn row(&self, s: &Strip, b: BufId, y: isize, h: usize) -> *const f32 {
        if y < 0 || y as usize >= h {
            return s.zeros.as_ptr();
        }
        let buf = &self.buffers[b];
        let slot = y as usize % buf.rows;
        s.rings[b][slot * buf.channels * s.lay.stride()..].as_ptr()
    }

    /// Row `y` of buffer `b` to write.
    fn row_mut(&self, s: &mut Strip, b: BufId, y: usize) -> *mut f32 {
        let buf = &self.buffers[b];
        let slot = y % buf.rows;
        s.rings[b][slot * buf.channels * s.lay.stride()..].as_mut_ptr()
    }

    /// The input rows of tile row `k`, in phases, into the input ring.
    fn load_input(&self, s: &mut Strip, frame: &[f32], (h, w): (usize, usize), k: usize) {
        let stride = s.lay.stride();
        let (x0, width) = (s.x0, s.lay.w);
        let channels = self.buffers[self.input].channels;
        for y in (TILE * k..TILE * k + TILE).filter(|&y| y < h) {
            let row = self.row_mut(s, self.input, y);
            for c in 0..channels {
                let from = &frame[(c * h + y) * w + x0..][..width];
                // SAFETY: the ring row holds `channels` rows of `stride` floats
                let to = unsafe { std::slice::from_raw_parts_mut(row.add(c * stride), stride) };
                for (x, &v) in from.iter().enumerate() {
                    to[s.lay.index(x)] = v;
                }
            }
        }
    }

    fn run_layer(&self, s: &mut Strip, layer: &Layer, k: usize, h: usize) {
        let y = (TILE * k) as isize;
        let channels = |b: BufId| self.buffers[b].channels;
        let mut dst = [RowsMut {
            rows: [std::ptr::null_mut(); TILE],
            channels: 0,
        }; 4];
        for (d, &b) in dst.iter_mut().zip(&layer.dst) {
            *d = RowsMut {
                rows: std::array::from_fn(|a| self.row_mut(s, b, TILE * k + a)),
                channels: channels(b),
            };
        }
        let dst = &dst[..layer.dst.len()];
        let res = layer.res.map(|b| Rows {
            rows: std::array::from_fn(|a| self.row(s, b, y + a as isize, h)),
            channels: channels(b),
        });
        match &layer.op {
            Op::Conv3(conv) => {
                let mut src = [Rows {
                    rows: [std::ptr::null(); TILE + 2],
                    channels: 0,
                }; 4];
                for (r, &b) in src.iter_mut().zip(&layer.src) {
                    *r = Rows {
                        rows: std::array::from_fn(|i| self.row(s, b, y - 1 + i as isize, h)),
                        channels: channels(b),
                    };
                }
                let src = &src[..layer.src.len()];
                // SAFETY: every row is a ring row or the zero row, `channels` strides long;
                // outputs are rows of other buffers than the inputs and the residual
                unsafe { rowconv::conv3(conv, s.lay, src, dst, res, layer.act, &mut s.scratch) }
            }
            Op::Conv1(conv) => {
                let mut src = [Rows {
                    rows: [std::ptr::null(); TILE],
                    channels: 0,
                }; 4];
                for (r, &b) in src.iter_mut().zip(&layer.src) {
                    *r = Rows {
                        rows: std::array::from_fn(|a| self.row(s, b, y + a as isize, h)),
                        channels: channels(b),
                    };
                }
                let src = &src[..layer.src.len()];
                // SAFETY: as above
                unsafe { rowconv::conv1(conv, s.lay, src, dst, res, layer.act) }
            }
        }
    }

    /// Pixel shuffle of the output rows of tile row `k` into the strip's own columns of `out`:
    /// output channel c, sub-pixel (i, j) comes from channel c·s² + i·s + j.
    fn shuffle_out(&self, s: &Strip, k: usize, (h, w): (usize, usize), out: OutPtr) {
        let sc = self.scale;
        let (ow, oh) = (w * sc, h * sc);
        let stride = s.lay.stride();
        for y in (TILE * k..TILE * k + TILE).filter(|&y| y < h) {
            let row = self.row(s, self.output, y as isize, h);
            for c in 0..3 {
                for i in 0..sc {
                    let dst_row = (c * oh + y * sc + i) * ow;
                    for j in 0..sc {
                        // SAFETY: the ring row holds 3·s² channel rows
                        let src = unsafe {
                            std::slice::from_raw_parts(
                                row.add((c * sc * sc + i * sc + j) * stride),
                                stride,
                            )
                        };
                        for x in s.own.0..s.own.1 {
                            let v = src[s.lay.index(x - s.x0)];
                            // SAFETY: (c, y·s + i, x·s + j) lies in the output; this strip
                            // alone writes its own columns
                            unsafe { *out.0.add(dst_row + x * sc + j) = v };
                        }
                    }
                }
            }
        }
    }
}
