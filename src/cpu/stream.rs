//! The streaming executor for the narrow networks (IMDN_RTC): the whole network runs down the
//! frame four rows at a time, each layer as soon as the rows it reads exist, and each
//! activation is a ring of the few rows its consumers still need. A 12-channel activation of a
//! 640×360 frame is 11 MB; its ring is a few dozen KB, so the data stay in cache from the
//! first conv to the last and only the input and output frames touch memory.
//!
//! Every layer has a lag, in rows behind the input: a 3×3 conv runs one row behind the layers
//! it reads (it needs the row below), a 1×1 conv with them. At step s the input's rows 4s …
//! 4s + 3 load and each layer computes rows 4s − lag … 4s − lag + 3; a ring holds the rows
//! from the oldest its slowest consumer reads to the newest its producer wrote, so a lag of
//! one row, not one call's four, keeps the rings small. Rows above and below the frame read as
//! zeros, the convs' padding (rows a layer computes above the frame go nowhere anyone reads).
//!
//! The frame is cut into parts (bands of rows, strips of columns or a grid of both, whichever
//! finishes first), one pipeline each, side by side on the threads with nothing shared
//! between them: a part computes `reach` pixels of context on each inner side (the network's
//! receptive field radius, one pixel per 3×3 conv) and writes only its own pixels, so the
//! output equals the whole frame's to float rounding. In a band, a layer computes only the
//! halo rows its own output rows depend on: `reach − lag` rows for a layer `lag` rows behind
//! the input, half the halo on average ([`needed`]); the rows it skips read as zeros.
//! (Threads that share every row and meet at a barrier compute no halo, but were faster only
//! on an idle machine and an evenly split width, and much slower whenever other threads want
//! the cores: BENCHMARKS.md.)
//!
//! The edge mode's padding costs no copy: a frame placed `margin` pixels into the network's
//! larger one ([`Framing`]) is read through its nearest pixel as the input rows load, and
//! only the frame's own output pixels are written.
//!
//! In 8 bits ([`int8`]) an activation may be a ring of packed u8 rows instead: their slots
//! outside the row and the rows outside the part hold each channel's zero point (the value a
//! real 0 rounds to), as the f32 rings hold zeros.

use std::ops::Range;

use rayon::prelude::*;

use crate::acs::Framing;
use crate::kernels::int8::{self, Conv3I8, Pack, Packed, PackedMut, Quant};
use crate::kernels::lanes::{Array, N, aligned_zeros, floats_mut};
use crate::kernels::rowconv::{self, Conv1, Conv3, Isa, RowLayout, Rows, RowsMut, TILE};
use crate::kernels::types::{Act, ConvParams};

use super::cache;
use super::histogram::Histogram;

/// Widest part, in input columns, where the cache's size is unknown ([`Stream::widest_part`]).
const MAX_WIDTH: usize = 1024;

type BufId = usize;

enum Op {
    Conv3(Conv3),
    Conv1(Conv1),
    /// A 3×3 conv on packed u8 inputs ([`int8`]).
    Conv3I8(Conv3I8),
    /// f32 channels rounded to u8 and packed for the 8-bit convs.
    Quantize(Pack),
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
    /// The conv that may run in 8 bits: its index among them, for recording input ranges.
    probe: Option<usize>,
}

/// An activation: its channels, the lag of the layer that writes it, its ring's rows.
struct Buffer {
    channels: usize,
    lag: usize,
    rows: usize,
    /// Packed u8 channels ([`int8`]): per group of four, the slot a 0 packs to (the padding).
    packed: Option<Vec<u32>>,
}

impl Buffer {
    /// Rows of `stride` floats (or packed slots) a row of the activation takes.
    fn planes(&self) -> usize {
        self.packed.as_ref().map_or(self.channels, Vec::len)
    }
}

/// The network as a pipeline (weights and schedule; no per-frame state).
pub struct Stream {
    layers: Vec<Layer>,
    buffers: Vec<Buffer>,
    /// The kernels' instruction set (one this CPU runs).
    isa: Isa,
    input: BufId,
    output: BufId,
    scale: usize,
}

/// Builds a [`Stream`] layer by layer.
pub struct Builder {
    layers: Vec<Layer>,
    buffers: Vec<Buffer>,
    isa: Isa,
}

impl Builder {
    /// A pipeline whose input has `channels` channels, on the kernels for `isa` at most;
    /// returns it and the input's id.
    pub fn new(channels: usize, isa: Isa) -> (Self, BufId) {
        let b = Self {
            isa: isa.up_to(),
            layers: Vec::new(),
            buffers: vec![Buffer {
                channels,
                lag: 0,
                rows: TILE,
                packed: None,
            }],
        };
        (b, 0)
    }

    fn add(
        &mut self,
        op: Op,
        src: &[BufId],
        outs: &[usize],
        (res, act): (Option<BufId>, Act),
        probe: Option<usize>,
    ) -> Vec<BufId> {
        let reads = src.iter().map(|&b| self.buffers[b].lag).max().unwrap_or(0);
        let lag = match op {
            Op::Conv3(_) | Op::Conv3I8(_) => reads + 1,
            Op::Conv1(_) | Op::Quantize(_) => reads,
        }
        .max(res.map_or(0, |r| self.buffers[r].lag));
        let dst: Vec<BufId> = outs
            .iter()
            .map(|&channels| {
                self.buffers.push(Buffer {
                    channels,
                    lag,
                    rows: TILE,
                    packed: None,
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
            probe,
        });
        dst
    }

    /// A 3×3 or 1×1 conv of `src` (concatenated) into sets of `outs` channels, plus `res`,
    /// then `act`.
    pub fn conv(
        &mut self,
        p: &ConvParams,
        src: &[BufId],
        outs: &[usize],
        res: Option<BufId>,
        act: Act,
    ) -> Vec<BufId> {
        let op = match p.k {
            3 => Op::Conv3(Conv3::new(&p.weight, &p.bias, p.cin, p.cout)),
            1 => Op::Conv1(Conv1::new(&p.weight, &p.bias, p.cin, p.cout)),
            k => unreachable!("the networks stream only 3×3 and 1×1 convs, not {k}×{k}"),
        };
        self.add(op, src, outs, (res, act), None)
    }

    /// As [`Builder::conv`] for a 3×3 conv without residual that may run in 8 bits: number
    /// `probe` of those, whose input ranges [`Stream::run_recording`] records.
    pub fn conv_probed(
        &mut self,
        p: &ConvParams,
        (src, outs): (&[BufId], &[usize]),
        act: Act,
        probe: usize,
    ) -> Vec<BufId> {
        assert_eq!(p.k, 3, "8-bit convs are 3×3");
        let op = Op::Conv3(Conv3::new(&p.weight, &p.bias, p.cin, p.cout));
        self.add(op, src, outs, (None, act), Some(probe))
    }

    /// `src`'s channels rounded by `quant` and packed for 8-bit convs.
    pub fn quantize(&mut self, src: BufId, quant: &[Quant]) -> BufId {
        assert_eq!(self.buffers[src].channels, quant.len());
        let pack = Pack::new(quant);
        let zero = pack.zero_quads().to_vec();
        let out = self.add(
            Op::Quantize(pack),
            &[src],
            &[quant.len()],
            (None, Act::None),
            None,
        )[0];
        self.buffers[out].packed = Some(zero);
        out
    }

    /// A 3×3 conv in 8 bits of the packed `src` (rounded by `quant`) into sets of `outs`
    /// channels, then `act`; the last set packed for the next 8-bit conv, rounded by
    /// `pack_last`, where given. None where the kernels do not fit ([`Conv3I8::fits`]).
    pub fn conv_8bit(
        &mut self,
        p: &ConvParams,
        (src, outs): (BufId, &[usize]),
        act: Act,
        (quant, pack_last): (&[Quant], Option<&[Quant]>),
    ) -> Option<Vec<BufId>> {
        assert!(p.k == 3 && self.buffers[src].packed.is_some());
        if !Conv3I8::fits(p.cin, p.cout) || !int8::available() {
            return None;
        }
        let last = pack_last.map(|q| (p.cout - q.len(), q));
        let conv = Conv3I8::new(&p.weight, &p.bias, quant, p.cout, last);
        let out = self.add(Op::Conv3I8(conv), &[src], outs, (None, act), None);
        if let Some(q) = pack_last {
            let b = *out.last().expect("a set");
            assert_eq!(self.buffers[b].channels, q.len(), "the packed set");
            self.buffers[b].packed = Some(Pack::new(q).zero_quads().to_vec());
        }
        Some(out)
    }

    /// The pipeline whose output `output` (3·scale² channels) is pixel-shuffled into frames.
    pub fn finish(mut self, output: BufId, scale: usize) -> Stream {
        // each ring holds from the oldest row a consumer reads to the newest row written
        for layer in &self.layers {
            let reach = |b: &Buffer, halo: usize| layer.lag - b.lag + TILE + halo;
            let halo = matches!(layer.op, Op::Conv3(_) | Op::Conv3I8(_)) as usize;
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
            isa: self.isa,
            input: 0,
            output,
            scale,
        }
    }
}

/// A part's extent along one axis: it computes `start..end` and writes out `own`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    own: (usize, usize),
}

/// `len` cut into `count` owned shares, each computed with `reach` of context on its inner
/// sides (clipped to the frame).
fn spans(len: usize, count: usize, reach: usize) -> Vec<Span> {
    (0..count)
        .map(|i| {
            let own = (i * len / count, (i + 1) * len / count);
            Span {
                start: own.0.saturating_sub(reach),
                end: (own.1 + reach).min(len),
                own,
            }
        })
        .collect()
}

/// The rows (of the part's `rows`) a layer `lag` rows behind the input computes: those the
/// part's own output rows depend on, the output's layer being `last` rows behind (the layer
/// reaches `last − lag` rows further), not the whole halo.
fn needed(rows: &Span, last: usize, lag: usize) -> Range<usize> {
    let reach = last - lag;
    let (own, start) = (rows.own, rows.start);
    (own.0 - start).saturating_sub(reach)..(own.1 - start + reach).min(rows.end - start)
}

/// One part's pipeline state, kept between frames of the same size.
struct Part {
    rows: Span,
    cols: Span,
    lay: RowLayout,
    /// Where each computed column lies in a layout row.
    index: Vec<usize>,
    /// Per buffer, the rows its layer computes for the part's own output ([`needed`]): the
    /// others read as zeros, as if beyond the frame (they hold stale values, which must
    /// not reach a Winograd transform's sums).
    needed: Vec<Range<usize>>,
    /// The rings' floats, written and read only through `ring_at` (a layer's call borrows the
    /// part shared while it writes one ring and reads others).
    _rings: Vec<Vec<Array>>,
    /// Where each ring's floats start (its heap buffer never moves).
    ring_at: Vec<*mut f32>,
    zeros: Vec<Array>,
    /// Per packed buffer, a row of its zero points (what it reads outside the part).
    packed_zeros: Vec<Option<Vec<Array>>>,
    scratch: Scratch,
}

/// A part's per-call scratch of the kernels, and the input ranges it records.
#[derive(Default)]
struct Scratch {
    f32: rowconv::Scratch,
    /// Steps by which the 8-bit layers' values fell outside their channels' ranges in this
    /// frame, summed.
    excess: u64,
    /// Per probed conv, per input channel: the least and greatest value read (when recording).
    ranges: Vec<Vec<(f32, f32)>>,
    /// Per probed conv, per input channel: the values read, counted (when recording them).
    hists: Vec<Vec<Histogram>>,
}

/// What a run records of the values the 8-bit-capable convs read, per conv and input channel.
enum Recording<'a> {
    Nothing,
    /// The least and greatest.
    Ranges,
    /// Counts over these ranges.
    Histograms(&'a [Vec<(f32, f32)>]),
}

// SAFETY: `ring_at` points into the part's own rings, which go wherever the part goes.
unsafe impl Send for Part {}

/// Per-frame-size state: the parts.
pub struct State {
    size: (usize, usize),
    parts: Vec<Part>,
}

/// The output frame, written by the parts at disjoint pixels.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: parts write disjoint pixels of the output
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl Stream {
    /// Receptive field radius in input pixels: one per 3×3 conv on the longest path.
    pub fn reach(&self) -> usize {
        self.buffers[self.output].lag
    }

    /// How an h×w frame is cut for `threads` threads ([`Stream::cut_at_most`]), its parts
    /// as wide as the cache allows.
    fn cut(&self, size: (usize, usize), threads: usize) -> Vec<(Span, Span)> {
        let widest = self.widest_part(threads, cache::last_level());
        self.cut_at_most(size, threads, widest)
    }

    /// The widest part, in input columns (whole vectors of tiles), whose rings, one part a
    /// thread, fit in half of a last-level cache of `cache` bytes (the frames and the rest
    /// take the other half): wider parts' rings spill to memory (BENCHMARKS.md, 1920×1080).
    /// [`MAX_WIDTH`] where the size is unknown.
    fn widest_part(&self, threads: usize, cache: Option<usize>) -> usize {
        let Some(cache) = cache else {
            return MAX_WIDTH;
        };
        let bytes = |w: usize| {
            let stride = RowLayout::new(w).stride();
            threads.max(1) * self.floats_per_stride() * stride * size_of::<f32>()
        };
        let vector = TILE * N;
        (2..)
            .map(|k| k * vector)
            .take_while(|&w| bytes(w) <= cache / 2)
            .last()
            .unwrap_or(vector)
    }

    /// How an h×w frame is cut for `threads` threads: into strips of columns at most `widest`
    /// wide, each cut into bands of rows (one strip of bands, bands of one strip, or a grid),
    /// whichever finishes first (each layer's halo rows, and rows rounded up to whole vectors
    /// of tiles, or half ones where the kernels run them, count).
    fn cut_at_most(
        &self,
        (h, w): (usize, usize),
        threads: usize,
        widest: usize,
    ) -> Vec<(Span, Span)> {
        let reach = self.reach();
        // (half) vectors of tiles the layers compute: the largest part, or all of them over
        // the threads
        let last = self.reach();
        let time = |parts: &[(Span, Span)]| -> usize {
            let work = parts.iter().map(|(r, c)| {
                let lay = RowLayout::new(c.end - c.start);
                let tile_rows = |l: &Layer| needed(r, last, l.lag).len().div_ceil(TILE);
                let cost = |l: &Layer| match l.op {
                    Op::Conv3(_) | Op::Conv1(_) => lay.cost(self.isa),
                    Op::Conv3I8(_) | Op::Quantize(_) => 2 * lay.chunks(),
                };
                self.layers
                    .iter()
                    .map(|l| tile_rows(l) * cost(l))
                    .sum::<usize>()
            });
            work.clone()
                .max()
                .unwrap_or(0)
                .max(work.sum::<usize>().div_ceil(threads.max(1)))
        };
        // strips of columns (enough to keep parts within `widest`), each cut into as many
        // bands of rows as the threads need
        let grid = |strips: usize| -> Vec<(Span, Span)> {
            let bands = threads.div_ceil(strips).clamp(1, h);
            let cols = spans(w, strips.min(w), reach);
            let rows = spans(h, bands, reach);
            rows.iter()
                .flat_map(|&r| cols.iter().map(move |&c| (r, c)))
                .collect()
        };
        let fewest = w.div_ceil(widest).max(1);
        (fewest..=threads.max(fewest))
            .map(grid)
            .min_by_key(|parts| time(parts))
            .expect("a cut")
    }

    /// Floats the state for `h`×`w` frames on `threads` threads holds: each part's rings and
    /// its rows of zeros (and of zero points), the kernels' scratch aside; growing with the
    /// width only.
    pub fn state_floats(&self, (h, w): (usize, usize), threads: usize) -> usize {
        let per_stride = self.floats_per_stride();
        self.cut((h, w), threads)
            .iter()
            .map(|(_, cols)| per_stride * RowLayout::new(cols.end - cols.start).stride())
            .sum()
    }

    /// Floats a part's state holds per float of its rows' stride: the rings, the row of
    /// zeros and the rows of zero points.
    fn floats_per_stride(&self) -> usize {
        let rings_and_zero_points = self
            .buffers
            .iter()
            .map(|b| b.rows * b.planes() + b.packed.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        rings_and_zero_points + self.widest()
    }

    /// The most channels of any activation (the zero row's height).
    fn widest(&self) -> usize {
        self.buffers.iter().map(|b| b.channels).max().unwrap_or(0)
    }

    /// The state for frames of `h`×`w` on `threads` threads, from `state` when it fits.
    pub fn state<'a>(
        &self,
        state: &'a mut Option<State>,
        (h, w): (usize, usize),
        threads: usize,
    ) -> &'a mut State {
        if state.as_ref().is_none_or(|s| s.size != (h, w)) {
            let widest = self.widest();
            let parts = self
                .cut((h, w), threads)
                .into_iter()
                .map(|(rows, cols)| {
                    let lay = RowLayout::new(cols.end - cols.start);
                    let stride = lay.stride();
                    let mut rings: Vec<Vec<Array>> = self
                        .buffers
                        .iter()
                        .map(|b| zero_points(b, b.rows, stride))
                        .collect();
                    Part {
                        rows,
                        cols,
                        lay,
                        index: (0..lay.w).map(|x| lay.index(x)).collect(),
                        needed: self
                            .buffers
                            .iter()
                            .map(|b| needed(&rows, self.reach(), b.lag))
                            .collect(),
                        ring_at: rings
                            .iter_mut()
                            .map(|r| floats_mut(r).as_mut_ptr())
                            .collect(),
                        _rings: rings,
                        zeros: aligned_zeros(widest * lay.stride()),
                        packed_zeros: self
                            .buffers
                            .iter()
                            .map(|b| b.packed.as_ref().map(|_| zero_points(b, 1, stride)))
                            .collect(),
                        scratch: Scratch::default(),
                    }
                })
                .collect();
            *state = Some(State {
                size: (h, w),
                parts,
            });
        }
        state.as_mut().expect("just set")
    }

    /// Runs one planar 3×h×w frame placed in the state's frame by `framing` (its border
    /// pixels replicated out to the edges) into `out` (3×sh×sw), the parts in parallel on the
    /// current rayon pool: the network's output cropped back to the frame, neither padded nor
    /// cropped in memory. Returns by how many steps the 8-bit layers' values fell
    /// outside their channels' ranges, summed (0 without them).
    pub fn run(&self, state: &mut State, frame: (&[f32], Framing), out: &mut [f32]) -> u64 {
        self.run_parts(state, frame, out, Recording::Nothing)
    }

    /// As [`Stream::run`], also widening `ranges` (per 8-bit-capable conv, per input channel:
    /// least and greatest) to the values the convs read, as calibration needs.
    pub fn run_recording(
        &self,
        state: &mut State,
        frame: (&[f32], Framing),
        out: &mut [f32],
        ranges: &mut Vec<Vec<(f32, f32)>>,
    ) {
        self.run_parts(state, frame, out, Recording::Ranges);
        let probes = self.probes();
        ranges.resize_with(probes.len(), Vec::new);
        for part in &mut state.parts {
            let recorded = std::mem::take(&mut part.scratch.ranges);
            for ((all, part), &cin) in ranges.iter_mut().zip(recorded).zip(&probes) {
                all.resize(cin, (f32::INFINITY, f32::NEG_INFINITY));
                for (a, p) in all.iter_mut().zip(part) {
                    *a = (a.0.min(p.0), a.1.max(p.1));
                }
            }
        }
    }

    /// As [`Stream::run`], also counting the values the convs read into `hists` (per
    /// 8-bit-capable conv, per input channel), over `ranges` (as [`Stream::run_recording`]
    /// recorded them, over the same frames), for ranges that leave out the rarest values.
    pub fn run_counting(
        &self,
        state: &mut State,
        frame: (&[f32], Framing),
        out: &mut [f32],
        ranges: &[Vec<(f32, f32)>],
        hists: &mut Vec<Vec<Histogram>>,
    ) {
        assert_eq!(ranges.len(), self.probes().len(), "a range per conv");
        self.run_parts(state, frame, out, Recording::Histograms(ranges));
        if hists.is_empty() {
            *hists = counters(ranges);
        }
        for part in &mut state.parts {
            let counted = std::mem::take(&mut part.scratch.hists);
            for (all, part) in hists.iter_mut().zip(&counted) {
                for (a, p) in all.iter_mut().zip(part) {
                    a.merge(p);
                }
            }
        }
    }

    /// The input channels of each 8-bit-capable conv, in probe order.
    pub fn probes(&self) -> Vec<usize> {
        let mut cin: Vec<(usize, usize)> = self
            .layers
            .iter()
            .filter_map(|l| {
                let channels = l.src.iter().map(|&b| self.buffers[b].channels).sum();
                l.probe.map(|p| (p, channels))
            })
            .collect();
        cin.sort_unstable();
        cin.into_iter().map(|(_, c)| c).collect()
    }

    /// Whether any conv runs in 8 bits.
    pub fn runs_8bit(&self) -> bool {
        self.layers.iter().any(|l| matches!(l.op, Op::Conv3I8(_)))
    }

    fn run_parts(
        &self,
        state: &mut State,
        (frame, framing): (&[f32], Framing),
        out: &mut [f32],
        record: Recording,
    ) -> u64 {
        let (h, w) = framing.frame;
        let (nh, nw) = state.size;
        assert!(h > 0 && w > 0 && h + framing.margin <= nh && w + framing.margin <= nw);
        assert_eq!(frame.len(), 3 * h * w);
        assert_eq!(out.len(), 3 * h * w * self.scale * self.scale);
        let out = OutPtr(out.as_mut_ptr());
        let probes = match record {
            Recording::Ranges => self.probes(),
            _ => Vec::new(),
        };
        for part in &mut state.parts {
            part.scratch.excess = 0;
            part.scratch.ranges.clear();
            // the convs read zeros past the frame's edges (their padding)
            part.scratch
                .ranges
                .extend(probes.iter().map(|&c| vec![(0.0, 0.0); c]));
            part.scratch.hists = match record {
                Recording::Histograms(ranges) => counters(ranges),
                _ => Vec::new(),
            };
        }
        state
            .parts
            .par_iter_mut()
            .for_each(|part| self.run_part(part, (frame, framing), out));
        state.parts.iter().map(|p| p.scratch.excess).sum()
    }

    /// Every layer of `part` over the whole frame.
    fn run_part(&self, part: &mut Part, (frame, framing): (&[f32], Framing), out: OutPtr) {
        let rows = part.rows.end - part.rows.start;
        let last = self.reach();
        let chunks = 0..part.lay.chunks();
        let mut scratch = std::mem::take(&mut part.scratch);
        // the first row that buffer `b`'s layer computes at `step` (its lag behind the input),
        // and which of its four rows hold what the output needs, where it computes any
        let call = |step: usize, b: BufId| {
            let y = (TILE * step) as isize - self.buffers[b].lag as isize;
            let need = &part.needed[b];
            let valid = (need.start as isize - y).clamp(0, TILE as isize) as usize
                ..(need.end as isize - y).clamp(0, TILE as isize) as usize;
            (!valid.is_empty()).then_some((y, valid))
        };
        for step in 0..(rows + last).div_ceil(TILE) {
            if TILE * step < rows {
                self.load_input(part, (frame, framing), step, chunks.clone());
            }
            for layer in &self.layers {
                if let Some((y, valid)) = call(step, layer.dst[0]) {
                    self.run_layer(part, layer, (y, valid, chunks.clone()), &mut scratch);
                }
            }
            if let Some((y, _)) = call(step, self.output) {
                self.shuffle_out(part, y, framing, out, chunks.clone());
            }
        }
        part.scratch = scratch;
    }

    /// Row `y` (of the part) of buffer `b`; zeros (zero points) outside the part and outside
    /// the rows its layer computes.
    fn row(&self, s: &Part, b: BufId, y: isize) -> *const f32 {
        if y < 0 || !s.needed[b].contains(&(y as usize)) {
            return s.packed_zeros[b]
                .as_ref()
                .unwrap_or(&s.zeros)
                .as_ptr()
                .cast();
        }
        self.row_mut(s, b, y).cast_const()
    }

    /// Row `y` of buffer `b` to write (a row above the part lands in the slot of one not
    /// written yet, which its own write replaces).
    fn row_mut(&self, s: &Part, b: BufId, y: isize) -> *mut f32 {
        let buf = &self.buffers[b];
        let slot = y.rem_euclid(buf.rows as isize) as usize;
        // SAFETY: the ring holds `buf.rows` rows of `planes` strides (see `state`)
        unsafe { s.ring_at[b].add(slot * buf.planes() * s.lay.stride()) }
    }

    /// The input rows of tile row `k`, in phases, into the input ring: the columns of
    /// `chunks`, each pixel read from the frame's nearest pixel (the frame sits `margin`
    /// pixels in).
    fn load_input(
        &self,
        s: &Part,
        (frame, framing): (&[f32], Framing),
        k: usize,
        chunks: Range<usize>,
    ) {
        let ((h, w), m) = (framing.frame, framing.margin);
        let columns = s.lay.columns(chunks);
        let stride = s.lay.stride();
        let channels = self.buffers[self.input].channels;
        let rows = s.rows.end - s.rows.start;
        // the columns inside the frame (from its column `first`), and those replicating its
        // first or last column
        let lo = m
            .saturating_sub(s.cols.start)
            .clamp(columns.start, columns.end);
        let hi = (m + w).saturating_sub(s.cols.start).clamp(lo, columns.end);
        let first = (s.cols.start + lo).saturating_sub(m);
        for y in (TILE * k..TILE * k + TILE).filter(|&y| y < rows) {
            let row = self.row_mut(s, self.input, y as isize);
            let frame_y = (s.rows.start + y).saturating_sub(m).min(h - 1);
            for c in 0..channels {
                let line = &frame[(c * h + frame_y) * w..][..w];
                let from = &line[first.min(w)..][..hi - lo];
                // SAFETY: the ring row holds `channels` rows of `stride` floats; this thread
                // alone uses the part's rings
                let dst = unsafe { std::slice::from_raw_parts_mut(row.add(c * stride), stride) };
                s.lay.scatter_columns(lo..hi, from, dst);
                let edges = (columns.start..lo).chain(hi..columns.end);
                for x in edges {
                    dst[s.index[x]] = line[(s.cols.start + x).saturating_sub(m).min(w - 1)];
                }
            }
        }
    }

    fn run_layer(
        &self,
        s: &Part,
        layer: &Layer,
        (y, valid, chunks): (isize, Range<usize>, Range<usize>),
        scratch: &mut Scratch,
    ) {
        let channels = |b: BufId| self.buffers[b].channels;
        let mut dst = [RowsMut {
            rows: [std::ptr::null_mut(); TILE],
            channels: 0,
        }; 4];
        for (d, &b) in dst.iter_mut().zip(&layer.dst) {
            *d = RowsMut {
                rows: std::array::from_fn(|a| self.row_mut(s, b, y + a as isize)),
                channels: channels(b),
            };
        }
        let unpacked = layer
            .dst
            .iter()
            .filter(|&&b| self.buffers[b].packed.is_none());
        let dst = &dst[..unpacked.count()];
        let packed = |b: BufId| -> PackedMut<TILE> {
            PackedMut {
                rows: std::array::from_fn(|a| self.row_mut(s, b, y + a as isize).cast()),
                groups: self.buffers[b].planes(),
            }
        };
        let packed_dst = layer
            .dst
            .iter()
            .find(|&&b| self.buffers[b].packed.is_some())
            .map(|&b| packed(b));
        let res = layer.res.map(|b| Rows {
            rows: std::array::from_fn(|a| self.row(s, b, y + a as isize)),
            channels: channels(b),
        });
        let mut src3 = [Rows {
            rows: [std::ptr::null(); TILE + 2],
            channels: 0,
        }; 4];
        if let Op::Conv3(_) = layer.op {
            for (r, &b) in src3.iter_mut().zip(&layer.src) {
                *r = Rows {
                    rows: std::array::from_fn(|i| self.row(s, b, y - 1 + i as isize)),
                    channels: channels(b),
                };
            }
        }
        let src3 = &src3[..layer.src.len()];
        if let Some(p) = layer.probe {
            // the input rows of its valid output rows (the rows below are read again by the
            // next call)
            let new = valid.start + 1..valid.end + 1;
            if let Some(r) = scratch.ranges.get_mut(p) {
                widen_ranges(input_rows(s, src3, new.clone()), r);
            }
            // counted in the part's columns only
            if let Some(h) = scratch.hists.get_mut(p) {
                for (c, row) in input_rows(s, src3, new) {
                    s.index.iter().for_each(|&at| h[c].add(row[at]));
                }
            }
        }
        match &layer.op {
            // SAFETY: the CPU runs `isa` (Builder::new); every row is a ring row or the zero
            // row, `channels` strides long; outputs are rows of other buffers than the
            // inputs and the residual
            Op::Conv3(conv) => unsafe {
                rowconv::conv3(
                    self.isa,
                    conv,
                    (s.lay, chunks),
                    (src3, dst, res),
                    layer.act,
                    &mut scratch.f32,
                )
            },
            // SAFETY: as above; the CPU runs the 8-bit kernels (Builder::conv_8bit), whose
            // input is one packed buffer
            Op::Conv3I8(conv) => unsafe {
                let b = layer.src[0];
                let src = Packed {
                    rows: std::array::from_fn(|i| self.row(s, b, y - 1 + i as isize).cast()),
                    groups: self.buffers[b].planes(),
                };
                let io = (src, dst, packed_dst);
                let act = (layer.act, valid);
                scratch.excess += int8::conv3(conv, (s.lay, chunks), io, act);
            },
            // SAFETY: as above; a packed buffer's rows hold its groups' strides
            Op::Quantize(pack) => unsafe {
                let b = layer.src[0];
                let src = Rows {
                    rows: std::array::from_fn(|a| self.row(s, b, y + a as isize)),
                    channels: channels(b),
                };
                let dst = packed_dst.expect("a packed output");
                scratch.excess += int8::quantize(pack, (s.lay, chunks), (src, dst), valid);
            },
            Op::Conv1(conv) => {
                let mut src = [Rows {
                    rows: [std::ptr::null(); TILE],
                    channels: 0,
                }; 4];
                for (r, &b) in src.iter_mut().zip(&layer.src) {
                    *r = Rows {
                        rows: std::array::from_fn(|a| self.row(s, b, y + a as isize)),
                        channels: channels(b),
                    };
                }
                let src = &src[..layer.src.len()];
                // SAFETY: as above
                unsafe {
                    rowconv::conv1(self.isa, conv, (s.lay, chunks), (src, dst, res), layer.act)
                }
            }
        }
    }

    /// Pixel shuffle of the output rows `y0` … `y0` + 3 into the part's own pixels of `out`
    /// in the columns of `chunks`: output channel c, sub-pixel (i, j) comes from channel
    /// c·s² + i·s + j.
    fn shuffle_out(
        &self,
        s: &Part,
        y0: isize,
        framing: Framing,
        out: OutPtr,
        chunks: Range<usize>,
    ) {
        let (sc, isa) = (self.scale, self.isa);
        let ((h, w), m) = (framing.frame, framing.margin);
        let (ow, oh) = (w * sc, h * sc);
        let stride = s.lay.stride();
        let columns = s.lay.columns(chunks);
        // the part's own columns inside the frame
        let (own0, own1) = (s.cols.own.0.max(m), s.cols.own.1.min(m + w));
        if own0 >= own1 {
            return;
        }
        let (from, to) = (
            columns.start.max(own0 - s.cols.start),
            columns.end.min(own1 - s.cols.start),
        );
        if from >= to {
            return;
        }
        let index = &s.index[from..to];
        for y in (y0.max(0) as usize)..(y0 + TILE as isize) as usize {
            let net_y = s.rows.start + y;
            if net_y < s.rows.own.0.max(m) || net_y >= s.rows.own.1.min(m + h) {
                continue;
            }
            let frame_y = net_y - m;
            let row = self.row(s, self.output, y as isize);
            for c in 0..3 {
                for i in 0..sc {
                    let first = (c * oh + frame_y * sc + i) * ow + (s.cols.start + from - m) * sc;
                    // SAFETY: output row c, y·s + i, columns from·s … to·s lie in the output;
                    // this part alone writes its own pixels
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(out.0.add(first), (to - from) * sc)
                    };
                    // SAFETY: the ring row holds 3·s² channel rows
                    let src = |j: usize| unsafe {
                        std::slice::from_raw_parts(
                            row.add((c * sc * sc + i * sc + j) * stride),
                            stride,
                        )
                    };
                    match sc {
                        2 => s
                            .lay
                            .interleave_columns(isa, from..to, [src(0), src(1)], dst),
                        3 => {
                            let three = [src(0), src(1), src(2)];
                            s.lay.interleave_columns(isa, from..to, three, dst)
                        }
                        4 => s.lay.interleave_columns(
                            isa,
                            from..to,
                            [src(0), src(1), src(2), src(3)],
                            dst,
                        ),
                        _ => {
                            for j in 0..sc {
                                let src = src(j);
                                for (x, &at) in index.iter().enumerate() {
                                    dst[x * sc + j] = src[at];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `rows` rows of buffer `b` at the value 0 has there: zeros, or a packed buffer's zero
/// points.
fn zero_points(b: &Buffer, rows: usize, stride: usize) -> Vec<Array> {
    let mut buf = aligned_zeros(rows * b.planes() * stride);
    if let Some(zero) = &b.packed {
        let floats = floats_mut(&mut buf);
        // SAFETY: u32 has f32's size and alignment
        let slots: &mut [u32] =
            unsafe { std::slice::from_raw_parts_mut(floats.as_mut_ptr().cast(), floats.len()) };
        for (plane, &z) in slots.chunks_exact_mut(stride).zip(zero.iter().cycle()) {
            plane.fill(z);
        }
    }
    buf
}

/// The rows `new` of a conv call's input sets, one channel's row at a time (a stride long:
/// past the part's columns it holds 0), with the channel's number across the sets.
fn input_rows<'a>(
    s: &Part,
    src: &'a [Rows<{ TILE + 2 }>],
    new: Range<usize>,
) -> impl Iterator<Item = (usize, &'a [f32])> {
    let stride = s.lay.stride();
    let channels = src
        .iter()
        .flat_map(|set| (0..set.channels).map(move |ch| (set, ch)));
    channels.enumerate().flat_map(move |(c, (set, ch))| {
        set.rows[new.clone()].iter().map(move |&row| {
            // SAFETY: every row holds `channels` strides (run_layer), alive for the call
            (c, unsafe {
                std::slice::from_raw_parts(row.add(ch * stride), stride)
            })
        })
    })
}

/// Widens `ranges` (per input channel) to the values of a row of each (whole rows: their
/// zeros past the part's columns are in the ranges already). A frame that runs again in f32
/// records its ranges beside the network, so this compares vectors.
fn widen_ranges<'a>(rows: impl Iterator<Item = (usize, &'a [f32])>, ranges: &mut [(f32, f32)]) {
    for (c, row) in rows {
        let (mut lo, mut hi) = ([ranges[c].0; N], [ranges[c].1; N]);
        // a stride is whole vectors
        for v in row.chunks_exact(N) {
            for i in 0..N {
                lo[i] = if v[i] < lo[i] { v[i] } else { lo[i] };
                hi[i] = if v[i] > hi[i] { v[i] } else { hi[i] };
            }
        }
        ranges[c] = (
            lo.into_iter().fold(ranges[c].0, f32::min),
            hi.into_iter().fold(ranges[c].1, f32::max),
        );
    }
}

/// Empty counters over `ranges`.
fn counters(ranges: &[Vec<(f32, f32)>]) -> Vec<Vec<Histogram>> {
    ranges
        .iter()
        .map(|r| r.iter().map(|&r| Histogram::new(r)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lanes::floats;

    /// A pipeline of `n` 3×3 convs 3 → 3 (reach n) with an upsampler of scale 2.
    fn chain(n: usize) -> Stream {
        chain_on(n, Isa::Avx512)
    }

    /// [`chain`] on the kernels for `isa` at most.
    fn chain_on(n: usize, isa: Isa) -> Stream {
        let (mut b, mut x) = Builder::new(3, isa);
        let p = ConvParams::new(vec![0.0; 81], vec![0.0; 3], 3, 3, 3);
        for _ in 0..n {
            x = b.conv(&p, &[x], &[3], None, Act::None)[0];
        }
        let up = ConvParams::new(vec![0.0; 12 * 27], vec![0.0; 12], 3, 12, 3);
        let out = b.conv(&up, &[x], &[12], None, Act::None)[0];
        b.finish(out, 2)
    }

    /// A pipeline with 8-bit convs: 3 channels packed, two 8-bit convs (the first's last set
    /// packed for the second), an upsampler of scale 2.
    fn chain_8bit() -> Stream {
        let (mut b, x) = Builder::new(3, Isa::Avx512);
        let q = [Quant::from_range(-1.0, 1.0); 12];
        let xq = b.quantize(x, &q[..3]);
        let p = ConvParams::new(vec![0.0; 12 * 27], vec![0.0; 12], 3, 12, 3);
        let s1 = b.conv_8bit(&p, (xq, &[3, 9]), Act::LRelu, (&q[..3], Some(&q[..9])));
        let s1 = s1.expect("the kernels fit");
        let p = ConvParams::new(vec![0.0; 3 * 81], vec![0.0; 3], 9, 3, 3);
        let d = b
            .conv_8bit(&p, (s1[1], &[3]), Act::None, (&q[..9], None))
            .expect("fit")[0];
        let up = ConvParams::new(vec![0.0; 12 * 54], vec![0.0; 12], 6, 12, 3);
        let out = b.conv(&up, &[s1[0], d], &[12], None, Act::None)[0];
        b.finish(out, 2)
    }

    #[test]
    fn the_state_holds_the_floats_state_floats_counts() {
        let s = chain(21);
        let mut pipelines = vec![chain(21)];
        if int8::available() {
            pipelines.push(chain_8bit());
        }
        for s in &pipelines {
            for (size, threads) in [
                ((360, 640), 2),
                ((2160, 3840), 2),
                ((7, 3), 3),
                ((100, 1500), 1),
            ] {
                let mut state = None;
                let st = s.state(&mut state, size, threads);
                let held: usize = st
                    .parts
                    .iter()
                    .map(|p| {
                        let zero_points = p.packed_zeros.iter().flatten();
                        p._rings
                            .iter()
                            .chain(zero_points)
                            .map(|r| floats(r).len())
                            .sum::<usize>()
                            + floats(&p.zeros).len()
                    })
                    .sum();
                assert_eq!(held, s.state_floats(size, threads), "{size:?} on {threads}");
            }
        }
        // rows of 4K take no more than a 1080p frame's width of rings
        assert_eq!(
            s.state_floats((2160, 1920), 1),
            s.state_floats((1080, 1920), 1)
        );
    }

    #[test]
    fn parts_own_every_pixel_once_and_see_the_reach() {
        let s = chain(21);
        assert_eq!(s.reach(), 22);
        let cases = [
            ((360, 640), 2),
            ((376, 656), 2),
            ((540, 960), 3),
            ((100, 1500), 1),
            ((7, 3), 3),
            ((360, 640), 16),
            ((1080, 1920), 8),
        ];
        for (size, threads) in cases {
            let parts = s.cut_at_most(size, threads, MAX_WIDTH);
            assert!(parts.len() >= threads.min(size.0).min(size.1));
            let mut owned = vec![0u8; size.0 * size.1];
            for (r, c) in &parts {
                assert!(c.end - c.start <= MAX_WIDTH + 2 * 22);
                for y in r.own.0..r.own.1 {
                    for x in c.own.0..c.own.1 {
                        owned[y * size.1 + x] += 1;
                    }
                }
                for (span, len) in [(r, size.0), (c, size.1)] {
                    assert!(span.start == 0 || span.own.0 - span.start >= 22);
                    assert!(span.end == len || span.end - span.own.1 >= 22);
                }
            }
            assert!(owned.iter().all(|&n| n == 1), "{size:?}");
        }
    }

    #[test]
    fn the_cut_counts_whole_vectors_of_tiles_and_tapered_halos() {
        let s = chain(21);
        // 640 columns are 10 whole vectors of tiles; two strips of 342 would be 6 each (5½
        // with the half registers of AVX-512); bands compute half their halo's rows on
        // average (a layer reaches fewer rows the later it runs): 2 × ~48 × 20 halves per
        // layer beat 2 × 90 × 12 (or 11)
        for isa in [Isa::Portable, s.isa] {
            let parts = chain_on(21, isa).cut_at_most((360, 640), 2, MAX_WIDTH);
            assert!(
                parts.iter().all(|(_, c)| (c.start, c.end) == (0, 640)),
                "bands of rows on {isa:?}"
            );
        }
        // a short wide frame: strips of 522 columns (9 vectors) beat bands of 32 rows whose
        // halos take as many again
        let parts = chain_on(21, Isa::Portable).cut_at_most((64, 1000), 2, MAX_WIDTH);
        assert!(
            parts.iter().all(|(r, _)| (r.start, r.end) == (0, 64)),
            "strips of columns"
        );
        // wider than a part may be: strips
        assert_eq!(s.cut_at_most((100, 1500), 1, MAX_WIDTH).len(), 2);
    }

    #[test]
    fn many_threads_cut_a_grid_not_slivers() {
        // 16 threads on 640 columns at most 512 wide: not 16 strips of 40 columns (each
        // computing 44 columns of halo), but strips cut into bands
        let parts = chain(21).cut_at_most((360, 640), 16, 512);
        assert!(parts.len() >= 16);
        let (widths, heights): (Vec<usize>, Vec<usize>) = parts
            .iter()
            .map(|(r, c)| (c.own.1 - c.own.0, r.own.1 - r.own.0))
            .unzip();
        assert!(widths.iter().all(|&w| w > 640 / 16), "{widths:?}");
        assert!(heights.iter().all(|&h| h < 360), "{heights:?}");
    }

    #[test]
    fn parts_are_as_wide_as_half_the_cache_holds_their_rings() {
        let s = chain(21);
        assert_eq!(s.widest_part(2, None), MAX_WIDTH, "the cache unknown");
        let ring_bytes = |w: usize| 4 * s.floats_per_stride() * RowLayout::new(w).stride();
        for (cache, threads) in [(1 << 20, 1), (1 << 20, 2), (32 << 20, 2), (8 << 20, 4)] {
            let w = s.widest_part(threads, Some(cache));
            assert_eq!(w % 64, 0, "whole vectors of tiles");
            // (one vector at least, fitting or not)
            let fits = threads * ring_bytes(w) <= cache / 2;
            assert!(w == 64 || fits, "{cache} {threads}: {w} fits");
            assert!(
                threads * ring_bytes(w + 64) > cache / 2,
                "{cache} {threads}: {w} widest"
            );
            // a frame wider than that comes in strips no wider (and their halos)
            let parts = s.cut_at_most((50, 3 * w), threads, w);
            assert!(parts.iter().all(|(_, c)| c.own.1 - c.own.0 <= w));
        }
    }
}
