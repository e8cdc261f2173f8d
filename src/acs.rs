//! The adaptive cropping strategy (ACS): any frame size runs through any network of the family.
//!
//! - **Padding**: sides are padded (edge-replicated) to the multiple the network needs
//!   (IMDN_AS: 4) and the output is cropped back to exactly `scale ×` the input size. With a
//!   `margin` ([`EdgeMode::Replicate`]) the frame is first padded by replication on all four
//!   sides, so that the convolutions' zero padding falls outside the picture: a flat frame
//!   comes back flat to its corners.
//! - **Tiling**: a large frame is split into equal, overlapping tiles (the authors' 4-quadrant
//!   `crop_forward` is the 2×2 case), run in batches, and stitched: each output pixel is taken
//!   from the one tile whose share (the middle of the overlaps) covers it, so tile borders,
//!   where the convolutions saw padding, are cropped away. With the overlap twice the
//!   network's reach ([`Acs::for_reach`]) every share sees all the context it depends on, and
//!   tiles equal the whole frame. Peak memory is bounded by the batch of tiles, whatever the
//!   frame size.
//! - **Whole-frame statistics**: IMDN's and IMDN_AS's blocks scale their channels by
//!   statistics of the whole frame (contrast-aware channel attention), which no tile sees.
//!   On our CPU kernels the tiles run once per block to gather that block's statistics over
//!   their shares (which partition the frame), given the blocks before it, then once more
//!   for the output ([`Forward::frame_stages`]): about 4.5× the blocks' work of one pass.
//!   Through candle (CUDA) each tile still uses its own statistics, off the whole frame by up
//!   to a few hundredths a pixel.
//!
//! Frames here are planar RGB f32 (CHW, 3 planes).

use crate::{Error, Result};

/// How a frame is cut before it meets the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acs {
    /// Tile side in input pixels; 0 runs the whole frame at once.
    pub tile: usize,
    /// Overlap between neighbouring tiles in input pixels (each side sees `overlap / 2` of
    /// context beyond its share).
    pub overlap: usize,
    /// Tiles per network call.
    pub batch: usize,
    /// Input pixels replicated around the frame before the network and cropped after
    /// ([`EdgeMode::Replicate`]); 0: the convolutions zero-pad at the frame border.
    pub margin: usize,
}

/// Where a frame sits in the larger one the network runs: the frame's `(h, w)`, `margin`
/// pixels in from the top left, its border pixels replicated out to the edges (and further
/// right and down to the network's size); the output is cropped back to the frame's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    pub frame: (usize, usize),
    pub margin: usize,
}

impl Framing {
    /// A frame that is the network's own, neither padded nor cropped.
    pub fn whole(frame: (usize, usize)) -> Self {
        Framing { frame, margin: 0 }
    }
}

/// What the network sees past the frame border.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeMode {
    /// The convolutions' zero padding, as the authors trained and evaluate: flat areas at the
    /// border come back with a faint outline.
    #[default]
    Zero,
    /// The border pixels replicated by the network's edge margin
    /// ([`crate::model::Config::edge_margin`]), then cropped: flat stays flat.
    Replicate,
}

impl Acs {
    /// Whole frames by default; tiles, when asked, overlap by twice `reach` (the network's,
    /// [`crate::model::Config::reach`]), so that each share sees `reach` of context on every
    /// side. No margin.
    pub fn for_reach(reach: usize) -> Self {
        Self {
            tile: 0,
            overlap: 2 * reach,
            batch: 4,
            margin: 0,
        }
    }

    /// Refuses a tile side that leaves no share between the overlaps (it would step by one
    /// pixel).
    pub fn check(&self) -> Result<()> {
        if self.tile != 0 && self.tile <= self.overlap {
            return Err(Error::InvalidInput(format!(
                "tile size {} must be 0 (whole frame) or larger than the {}-pixel tile overlap",
                self.tile, self.overlap
            )));
        }
        Ok(())
    }

    /// The frame the network runs on for a `w`×`h` input: the margin on every side, then
    /// sides up to the multiple `m` (the margin too, so that stride-2 convs keep their phase).
    fn padded(&self, (w, h): (usize, usize), m: usize) -> (usize, usize, usize) {
        let margin = self.margin.next_multiple_of(m);
        let side = |len: usize| (len + 2 * margin).next_multiple_of(m);
        (side(w), side(h), margin)
    }

    /// The frame the network runs for a `size` input, `(pw, ph, margin)` (the margin on
    /// every side, sides up to the multiple `m`), where it runs it as one tile; `None` where
    /// it is cut into tiles.
    pub fn whole_frame(&self, size: (usize, usize), m: usize) -> Option<(usize, usize, usize)> {
        let m = m.max(1);
        let (pw, ph, margin) = self.padded(size, m);
        let (tile, overlap) = (
            self.tile.next_multiple_of(m),
            self.overlap.next_multiple_of(m),
        );
        let one = |len| span_count(len, tile, overlap) == 1;
        (one(pw) && one(ph)).then_some((pw, ph, margin))
    }
}

/// One tile's placement along one axis: the tile covers `start..start + len` and owns
/// (writes to the output) `own_start..own_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub own_start: usize,
    pub own_end: usize,
}

/// Places equal tiles of `tile` pixels with at least `overlap` pixels of overlap over `len`
/// pixels. Starts are multiples of `multiple` when `tile`, `overlap` and `len` are, so tiles
/// see the same stride-2 alignment as the whole frame. The last tile is pushed back to end at
/// `len` rather than padded.
pub fn spans(len: usize, tile: usize, overlap: usize) -> Vec<Span> {
    let mut out = Vec::new();
    spans_into(len, tile, overlap, &mut out);
    out
}

/// [`spans`] into a kept vector (per frame, without allocating once it has grown).
pub fn spans_into(len: usize, tile: usize, overlap: usize, out: &mut Vec<Span>) {
    out.clear();
    if tile >= len || tile == 0 {
        out.push(Span {
            start: 0,
            own_start: 0,
            own_end: len,
        });
        return;
    }
    let step = tile.saturating_sub(overlap).max(1);
    let count = span_count(len, tile, overlap);
    let start = |i: usize| (i * step).min(len - tile);
    for i in 0..count {
        // the share boundary is the middle of the overlap with each neighbour
        let own_start = if i == 0 {
            0
        } else {
            (start(i - 1) + tile + start(i)) / 2
        };
        let own_end = if i + 1 < count {
            (start(i) + tile + start(i + 1)) / 2
        } else {
            len
        };
        out.push(Span {
            start: start(i),
            own_start,
            own_end,
        });
    }
}

/// How many tiles [`spans`] places: enough that the last start, (count − 1)·step, reaches
/// `len − tile`.
pub fn span_count(len: usize, tile: usize, overlap: usize) -> usize {
    if tile >= len || tile == 0 {
        return 1;
    }
    (len - tile).div_ceil(tile.saturating_sub(overlap).max(1)) + 1
}

/// Copies planar `src` (`w`×`h`) into a `pw`×`ph` frame in `out` (resized to fit) at
/// (`margin`, `margin`), replicating the outer rows and columns into the rest.
fn pad_edge_into(
    src: &[f32],
    (w, h): (usize, usize),
    (pw, ph): (usize, usize),
    margin: usize,
    out: &mut Vec<f32>,
) {
    out.resize(3 * pw * ph, 0.0);
    for c in 0..3 {
        let plane = &src[c * w * h..(c + 1) * w * h];
        for y in 0..ph {
            let row = &plane[y.saturating_sub(margin).min(h - 1) * w..][..w];
            let dst = &mut out[(c * ph + y) * pw..][..pw];
            let (left, rest) = dst.split_at_mut(margin);
            left.fill(row[0]);
            rest[..w].copy_from_slice(row);
            rest[w..].fill(row[w - 1]);
        }
    }
}

/// Copies the `tw`×`th` window at (`x`, `y`) of planar `src` (`w`×`h`) into `dst`.
fn crop_into(
    src: &[f32],
    (w, h): (usize, usize),
    (x, y): (usize, usize),
    (tw, th): (usize, usize),
    dst: &mut [f32],
) {
    for c in 0..3 {
        for r in 0..th {
            let from = &src[(c * h + y + r) * w + x..][..tw];
            dst[(c * th + r) * tw..][..tw].copy_from_slice(from);
        }
    }
}

/// What ACS needs of a network: `n` planar RGB frames of `h`×`w` in (NCHW f32), the same
/// number out, `scale ×` larger.
///
/// A network whose output depends on statistics of the whole frame (IMDN's channel attention)
/// says how many it needs in [`Forward::frame_stages`]; tiles then run once per stage to
/// gather each over the tiles' shares, and a last time with all of them. A network that
/// leaves it at 0 gets each tile alone.
pub trait Forward {
    /// Runs `(n, h, w)` frames, writing the result into `out`, resized to fit: a buffer
    /// reused across frames saves the allocation.
    fn forward_batch_into(&self, input: &[f32], nhw: Nhw, out: &mut Vec<f32>) -> Result<()>;

    /// Runs one frame placed by `framing` in a `(ph, pw)` one, where the network pads and
    /// crops as it reads and writes (`true`); `false`, nothing run, where the caller must pad
    /// and crop in memory.
    fn forward_framed_into(
        &self,
        _input: &[f32],
        _framing: Framing,
        _padded: (usize, usize),
        _out: &mut Vec<f32>,
    ) -> Result<bool> {
        Ok(false)
    }

    /// Statistics over the whole frame the output depends on, each needing the ones before
    /// it: one stage each. 0: a tile's output depends on the tile alone.
    fn frame_stages(&self) -> usize {
        0
    }

    /// Runs `(n, h, w)` tiles as far as `stage` needs, with the earlier stages taken from
    /// `stats`, and adds the stage's sums over each tile's share (`shares[i]`, in the tile's
    /// input pixels) into `stats.stages[stage]`.
    fn add_stage_sums(
        &self,
        _input: &[f32],
        _nhw: Nhw,
        _shares: &[Rect],
        stage: usize,
        _stats: &mut FrameStats,
    ) -> Result<()> {
        Err(Error::Model(format!(
            "this network gathers no frame statistics (stage {stage} asked)"
        )))
    }

    /// As [`Forward::forward_batch_into`], every stage's statistics taken from `stats`
    /// instead of each tile's own.
    fn forward_batch_with_stats_into(
        &self,
        input: &[f32],
        nhw: Nhw,
        _stats: &FrameStats,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.forward_batch_into(input, nhw, out)
    }
}

/// A rectangle of a tile in its own pixels: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

impl Rect {
    /// The whole of a `w`×`h` frame.
    pub fn whole((w, h): (usize, usize)) -> Self {
        Self {
            x0: 0,
            x1: w,
            y0: 0,
            y1: h,
        }
    }

    /// Pixels inside.
    pub fn area(&self) -> usize {
        self.x1.saturating_sub(self.x0) * self.y1.saturating_sub(self.y0)
    }
}

/// Per-channel sums over a set of pixels: a mean and a population standard deviation over a
/// whole frame, gathered from the parts of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelSums {
    /// Per channel: the sum of the values and the sum of their squares.
    pub sums: Vec<[f64; 2]>,
    /// Pixels summed in each channel.
    pub pixels: usize,
}

impl ChannelSums {
    /// Zero sums for `channels` channels (keeping the allocation).
    pub fn reset(&mut self, channels: usize) {
        self.sums.clear();
        self.sums.resize(channels, [0.0; 2]);
        self.pixels = 0;
    }

    /// Channel `c`'s mean and population standard deviation.
    pub fn mean_std(&self, c: usize) -> (f64, f64) {
        let n = self.pixels as f64;
        let [sum, sum2] = self.sums[c];
        let mean = sum / n;
        let var = (sum2 / n - mean * mean).max(0.0);
        (mean, var.sqrt())
    }
}

/// The statistics of the whole frame a network needs while it runs in tiles
/// ([`Forward::frame_stages`]): per stage, per-channel sums over the frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameStats {
    pub stages: Vec<ChannelSums>,
}

impl FrameStats {
    /// `stages` stages of empty sums (the network sizes each as it adds to it).
    pub fn clear(&mut self, stages: usize) {
        self.stages.resize_with(stages, ChannelSums::default);
        self.stages.iter_mut().for_each(|s| s.reset(0));
    }
}

/// A batch's shape: frames, height, width.
pub type Nhw = (usize, usize, usize);

impl Acs {
    /// Floats [`Acs::run`] holds at its peak for a `w`×`h` frame, beside the input: the padded
    /// copy, the output, one batch of tiles in and out. `tile_floats(tw, th, n)` gives what the
    /// network holds for a call on `n` tiles of `tw`×`th`.
    pub fn peak_floats(
        &self,
        (w, h): (usize, usize),
        scale: usize,
        multiple: usize,
        tile_floats: impl Fn(usize, usize, usize) -> usize,
    ) -> usize {
        let m = multiple.max(1);
        let (pw, ph, _) = self.padded((w, h), m);
        let tile = self.tile.next_multiple_of(m);
        let (tw, th) = (tile_len(pw, tile), tile_len(ph, tile));
        let overlap = self.overlap.next_multiple_of(m);
        let tiles = span_count(pw, tile, overlap) * span_count(ph, tile, overlap);
        let n = tiles.min(self.batch.max(1));
        let padded = if (pw, ph) == (w, h) { 0 } else { 3 * pw * ph };
        let out = 3 * w * h * scale * scale;
        let batch = n * 3 * tw * th * (1 + scale * scale);
        padded + out + batch + tile_floats(tw, th, n)
    }

    /// Runs `net` over planar `input` (`w`×`h`) and returns the planar output, exactly
    /// `scale·w` × `scale·h`. `multiple` is the side multiple the network needs.
    pub fn run(
        &self,
        net: &dyn Forward,
        input: &[f32],
        size: (usize, usize),
        scale: usize,
        multiple: usize,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let mut scratch = AcsScratch::default();
        self.run_into(net, input, size, scale, multiple, &mut scratch, &mut out)?;
        Ok(out)
    }

    /// As [`Acs::run`], into `out` (resized to fit), with the padded frame and the batches in
    /// `scratch`: a caller that keeps both allocates nothing per frame once sizes settle.
    #[allow(clippy::too_many_arguments)]
    pub fn run_into(
        &self,
        net: &dyn Forward,
        input: &[f32],
        (w, h): (usize, usize),
        scale: usize,
        multiple: usize,
        scratch: &mut AcsScratch,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        if w == 0 || h == 0 || input.len() != 3 * w * h {
            return Err(Error::InvalidInput(format!(
                "frame of {w}×{h} needs {} floats, got {}",
                3 * w * h,
                input.len()
            )));
        }
        self.check()?;
        let AcsScratch {
            padded,
            batch_in,
            batch_out,
            xs,
            ys,
            tiles,
            shares,
            stats,
        } = scratch;
        let m = multiple.max(1);
        let (pw, ph, margin) = self.padded((w, h), m);
        let tile = self.tile.next_multiple_of(m);
        let overlap = self.overlap.next_multiple_of(m);
        spans_into(pw, tile, overlap, xs);
        spans_into(ph, tile, overlap, ys);
        let (ow, oh) = (w * scale, h * scale);
        let single = xs.len() == 1 && ys.len() == 1;
        if single && (pw, ph) == (w, h) {
            // one tile, no padding: the network reads the input and writes the output itself
            net.forward_batch_into(input, (1, h, w), out)?;
            return check_len(out.len(), 3 * ow * oh, 1, (w, h));
        }
        let framing = Framing {
            frame: (h, w),
            margin,
        };
        if single && net.forward_framed_into(input, framing, (ph, pw), out)? {
            return check_len(out.len(), 3 * ow * oh, 1, (w, h));
        }
        let frame: &[f32] = if (pw, ph) == (w, h) {
            input
        } else {
            pad_edge_into(input, (w, h), (pw, ph), margin, padded);
            padded
        };
        let (tw, th) = (tile_len(pw, tile), tile_len(ph, tile));
        let place = Placement {
            margin: margin * scale,
            tile: (tw * scale, th * scale),
            scale,
            out: (ow, oh),
        };
        // every output value is written by exactly one tile's share: no need to clear
        out.resize(3 * ow * oh, 0.0);
        if single {
            // the padded frame is the one tile: no copy into a batch
            net.forward_batch_into(frame, (1, ph, pw), batch_out)?;
            check_len(batch_out.len(), 3 * ph * scale * pw * scale, 1, (pw, ph))?;
            paste(batch_out, (&xs[0], &ys[0]), &place, out);
            return Ok(());
        }
        tiles.clear();
        tiles.extend(ys.iter().flat_map(|&y| xs.iter().map(move |&x| (x, y))));
        let cut = Tiles {
            frame,
            size: (pw, ph),
            tile: (tw, th),
            all: tiles,
            batch: self.batch.max(1),
        };
        let stages = net.frame_stages();
        if stages > 0 {
            cut.gather_stats(net, batch_in, shares, stats)?;
        }
        for group in tiles.chunks(cut.batch) {
            cut.crop(group, batch_in);
            let nhw = (group.len(), th, tw);
            match stages {
                0 => net.forward_batch_into(batch_in, nhw, batch_out)?,
                _ => net.forward_batch_with_stats_into(batch_in, nhw, stats, batch_out)?,
            }
            check_len(
                batch_out.len(),
                group.len() * 3 * th * scale * tw * scale,
                group.len(),
                (tw, th),
            )?;
            for (i, (x, y)) in group.iter().enumerate() {
                let tile_out = &batch_out[i * 3 * tw * th * scale * scale..];
                paste(tile_out, (x, y), &place, out);
            }
        }
        Ok(())
    }
}

/// Buffers [`Acs::run_into`] keeps between frames.
#[derive(Default)]
pub struct AcsScratch {
    padded: Vec<f32>,
    batch_in: Vec<f32>,
    batch_out: Vec<f32>,
    xs: Vec<Span>,
    ys: Vec<Span>,
    tiles: Vec<(Span, Span)>,
    shares: Vec<Rect>,
    stats: FrameStats,
}

/// A padded frame cut into tiles, run `batch` at a time.
struct Tiles<'a> {
    frame: &'a [f32],
    size: (usize, usize),
    tile: (usize, usize),
    all: &'a [(Span, Span)],
    batch: usize,
}

impl Tiles<'_> {
    /// Copies `group`'s tiles into `batch_in` (resized to fit).
    fn crop(&self, group: &[(Span, Span)], batch_in: &mut Vec<f32>) {
        let (tw, th) = self.tile;
        batch_in.resize(group.len() * 3 * tw * th, 0.0);
        for (i, (x, y)) in group.iter().enumerate() {
            let dst = &mut batch_in[i * 3 * tw * th..][..3 * tw * th];
            crop_into(self.frame, self.size, (x.start, y.start), (tw, th), dst);
        }
    }

    /// Every stage of the whole frame's statistics, a pass over the tiles each: the shares
    /// partition the frame, so their sums are the frame's.
    fn gather_stats(
        &self,
        net: &dyn Forward,
        batch_in: &mut Vec<f32>,
        shares: &mut Vec<Rect>,
        stats: &mut FrameStats,
    ) -> Result<()> {
        let (tw, th) = self.tile;
        stats.clear(net.frame_stages());
        for stage in 0..net.frame_stages() {
            for group in self.all.chunks(self.batch) {
                self.crop(group, batch_in);
                shares.clear();
                shares.extend(group.iter().map(|(x, y)| share_in_tile(x, y)));
                net.add_stage_sums(batch_in, (group.len(), th, tw), shares, stage, stats)?;
            }
        }
        Ok(())
    }
}

/// The share of the tile at (`x`, `y`), in the tile's pixels.
fn share_in_tile(x: &Span, y: &Span) -> Rect {
    Rect {
        x0: x.own_start - x.start,
        x1: x.own_end - x.start,
        y0: y.own_start - y.start,
        y1: y.own_end - y.start,
    }
}

fn check_len(got: usize, expected: usize, tiles: usize, (tw, th): (usize, usize)) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(Error::Model(format!(
        "network returned {got} floats for {tiles} tiles of {tw}×{th}, expected {expected}"
    )))
}

fn tile_len(len: usize, tile: usize) -> usize {
    if tile == 0 { len } else { tile.min(len) }
}

/// Where output tiles land: the margin (output pixels) cropped off the padded frame's output,
/// the output tile's size, the scale, the output frame's size.
struct Placement {
    margin: usize,
    tile: (usize, usize),
    scale: usize,
    out: (usize, usize),
}

/// Writes the share of one output tile into the output frame, clipped to the picture (which
/// drops the margin and the padding to the multiple).
fn paste(tile: &[f32], (x, y): (&Span, &Span), p: &Placement, out: &mut [f32]) {
    let (s, (tw, th), (ow, oh)) = (p.scale, p.tile, p.out);
    // the share in the output frame's coordinates
    let share = |span: &Span, len: usize| {
        let from = (span.own_start * s).max(p.margin) - p.margin;
        let to = (span.own_end * s).saturating_sub(p.margin).min(len);
        (from, to)
    };
    let ((x0, x1), (y0, y1)) = (share(x, ow), share(y, oh));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let (tx0, ty0) = (x.start * s, y.start * s);
    for c in 0..3 {
        for oy in y0..y1 {
            let ty = oy + p.margin - ty0;
            let src = &tile[(c * th + ty) * tw + x0 + p.margin - tx0..][..x1 - x0];
            out[(c * oh + oy) * ow + x0..][..x1 - x0].copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frame_is_the_one_tile_case() {
        // the frame runs whole exactly where it is padded into a single span each way
        for (tile, margin, m) in [(0, 8, 1), (64, 8, 1), (96, 12, 4), (200, 0, 1)] {
            let acs = Acs {
                tile,
                overlap: 16,
                batch: 1,
                margin,
            };
            for size in [(1, 1), (40, 30), (48, 48), (90, 50), (300, 20)] {
                let (pw, ph, _) = acs.padded(size, m);
                let (t, o) = (tile.next_multiple_of(m), 16usize.next_multiple_of(m));
                let single = spans(pw, t, o).len() == 1 && spans(ph, t, o).len() == 1;
                let whole = acs.whole_frame(size, m);
                assert_eq!(whole.is_some(), single, "tile {tile} {size:?}");
                assert!(whole.is_none_or(|w| w == acs.padded(size, m)));
            }
        }
    }

    #[test]
    fn span_count_is_the_number_of_spans() {
        for len in [1, 7, 64, 97, 150, 1000] {
            for tile in [0, 1, 16, 32, 64, 96, 200] {
                for overlap in [0, 8, 16, 48, 300] {
                    assert_eq!(
                        span_count(len, tile, overlap),
                        spans(len, tile, overlap).len(),
                        "len {len}, tile {tile}, overlap {overlap}"
                    );
                }
            }
        }
    }
}
