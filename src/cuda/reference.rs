//! A plain CPU executor of a [`Schedule`] on NHWC f32 buffers: each step as the GPU kernel
//! will compute it (the same views, the same fused epilogue, the packed f32 weights), in
//! simple loops. It is the specification the kernels are checked against, and the proof that
//! the schedule computes the network: `tests/cuda_schedule.rs` compares it with candle's.
//!
//! Its buffers follow the [`BufferPlan`]: allocated when the frame size changes, reused for
//! every frame of the same size (as the GPU's are, so that a captured graph's pointers stay
//! valid).

use super::schedule::{BufferPlan, Conv, Schedule, Step, View, Write};
use crate::{Error, Result};

/// Runs a [`Schedule`] on the CPU, in f32.
pub struct Reference {
    schedule: Schedule,
    plan: Option<BufferPlan>,
    bufs: Vec<Vec<f32>>,
    /// How many times the buffers were allocated (once per new frame size).
    allocations: usize,
    scratch: Scratch,
}

/// Per-pixel and per-frame scratch, sized by the schedule alone.
struct Scratch {
    acc: Vec<f32>,
    sums: Vec<f64>,
    hidden: Vec<f32>,
}

impl Reference {
    pub fn new(schedule: Schedule) -> Self {
        let widest = schedule
            .convs
            .iter()
            .map(|c| c.shape.cout_pad.max(c.shape.cin_pad))
            .max()
            .unwrap_or(0);
        let scratch = Scratch {
            acc: vec![0.0; widest],
            sums: vec![0.0; 2 * widest],
            hidden: vec![0.0; widest],
        };
        Self {
            bufs: vec![Vec::new(); schedule.buffers.len()],
            schedule,
            plan: None,
            allocations: 0,
            scratch,
        }
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The plan of the frame size last run.
    pub fn plan(&self) -> Option<&BufferPlan> {
        self.plan.as_ref()
    }

    /// How many times the buffers were allocated: once per change of frame size.
    pub fn allocations(&self) -> usize {
        self.allocations
    }

    /// Each buffer's address and capacity (what a captured graph would hold on to).
    pub fn buffer_addresses(&self) -> Vec<(usize, usize)> {
        self.bufs
            .iter()
            .map(|b| (b.as_ptr() as usize, b.capacity()))
            .collect()
    }

    /// Runs `n` frames of `h`×`w`, NHWC RGB in `input`, with their scale `codes` (IMDN_AS
    /// with a scale input; ignored otherwise); returns the output, NHWC RGB at `net_scale ×`
    /// the size.
    pub fn run(
        &mut self,
        input: &[f32],
        (n, h, w): (usize, usize, usize),
        codes: Option<&[f32]>,
    ) -> Result<&[f32]> {
        if input.len() != n * h * w * 3 {
            return Err(Error::InvalidInput(format!(
                "expected {n}×{h}×{w}×3 floats, got {}",
                input.len()
            )));
        }
        self.ensure(n, h, w)?;
        let s = &self.schedule;
        self.bufs[s.input].copy_from_slice(input);
        if let Some(c) = s.codes {
            match codes {
                Some(codes) if codes.len() == n => self.bufs[c].copy_from_slice(codes),
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "{} needs one scale code per frame",
                        s.config
                    )));
                }
            }
        }
        let plan = self.plan.as_ref().expect("ensured");
        for step in &s.steps {
            match step {
                Step::Conv(c) => conv(s, plan, c, &mut self.bufs, &mut self.scratch),
                Step::CcaStats { src, dst } => {
                    cca_stats(plan, (src, dst), &mut self.bufs, &mut self.scratch.sums)
                }
                Step::CcaAttention { src, down, up, dst } => {
                    let s = &self.schedule;
                    let (down, up) = (&s.convs[*down], &s.convs[*up]);
                    let hidden = &mut self.scratch.hidden;
                    for f in 0..n {
                        let x = &self.bufs[src.buf][at(plan, src, f, 0, 0)..][..src.channels];
                        let ds = down.shape;
                        for (m, hv) in hidden[..ds.cout].iter_mut().enumerate() {
                            let row = &down.f32[ds.at(m, 0, 0, 0)..][..ds.cin];
                            let v = down.bias[m] + dot(row, x);
                            *hv = v.max(0.0);
                        }
                        let us = up.shape;
                        let di = at(plan, dst, f, 0, 0);
                        for co in 0..us.cout {
                            let row = &up.f32[us.at(co, 0, 0, 0)..][..us.cin];
                            let v = up.bias[co] + dot(row, &hidden[..us.cin]);
                            self.bufs[dst.buf][di + co] = 1.0 / (1.0 + (-v).exp());
                        }
                    }
                }
            }
        }
        Ok(&self.bufs[self.schedule.output])
    }

    /// The buffers for `n`×`h`×`w`, allocated only when the size differs from the last.
    fn ensure(&mut self, n: usize, h: usize, w: usize) -> Result<()> {
        if self.plan.as_ref().is_some_and(|p| p.nhw == (n, h, w)) {
            return Ok(());
        }
        let plan = self.schedule.plan(n, h, w)?;
        for (buf, p) in self.bufs.iter_mut().zip(&plan.buffers) {
            *buf = vec![0.0; p.elements];
        }
        self.plan = Some(plan);
        self.allocations += 1;
        Ok(())
    }
}

/// Index of channel `view.offset` at pixel (y, x) of frame `f` in `view`'s buffer.
fn at(plan: &BufferPlan, view: &View, f: usize, y: usize, x: usize) -> usize {
    let [_, h, w, c] = plan.buffers[view.buf].dims;
    ((f * h + y) * w + x) * c + view.offset
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// One conv step: accumulate every output channel of a pixel, then the epilogue writes them.
fn conv(s: &Schedule, plan: &BufferPlan, c: &Conv, bufs: &mut [Vec<f32>], scratch: &mut Scratch) {
    let p = &s.convs[c.conv];
    let shape = p.shape;
    let (k, cin, cout) = (shape.k, shape.cin, shape.cout);
    let pad = (k - 1) / 2;
    let [n, sh, sw, _] = plan.buffers[c.src.buf].dims;
    let (oh, ow) = (
        (sh + 2 * pad - k) / c.stride + 1,
        (sw + 2 * pad - k) / c.stride + 1,
    );
    // the plan's destination sizes are the conv's (validated grids, sides as the plan asks)
    for v in c.write.views() {
        let [_, dh, dw, _] = plan.buffers[v.buf].dims;
        let s = match c.write {
            Write::Shuffle { s, .. } => s,
            Write::Views(_) => 1,
        };
        assert_eq!((dh, dw), (oh * s, ow * s), "{}: output size", p.name);
    }
    let acc = &mut scratch.acc[..cout];
    for f in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                // the main loop: bias + Σ w · (x · scale)
                acc.copy_from_slice(&p.bias[..cout]);
                let src = &bufs[c.src.buf];
                let scale = c
                    .src_scale
                    .map(|v| &bufs[v.buf][at(plan, &v, f, 0, 0)..][..cin]);
                for ky in 0..k {
                    let Some(iy) = (oy * c.stride + ky).checked_sub(pad).filter(|&y| y < sh) else {
                        continue;
                    };
                    for kx in 0..k {
                        let Some(ix) = (ox * c.stride + kx).checked_sub(pad).filter(|&x| x < sw)
                        else {
                            continue;
                        };
                        let x = &src[at(plan, &c.src, f, iy, ix)..][..cin];
                        for (co, a) in acc.iter_mut().enumerate() {
                            let row = &p.f32[shape.at(co, ky, kx, 0)..][..cin];
                            *a += match scale {
                                Some(sc) => row
                                    .iter()
                                    .zip(x)
                                    .zip(sc)
                                    .map(|((w, x), s)| w * (x * s))
                                    .sum::<f32>(),
                                None => dot(row, x),
                            };
                        }
                    }
                }
                // the epilogue: + code · embed, activation, + residual · gain, the write
                if let Some(e) = &c.embed {
                    let code = bufs[e.code.buf][at(plan, &e.code, f, 0, 0)];
                    acc.iter_mut()
                        .zip(&e.weights)
                        .for_each(|(a, w)| *a += code * w);
                }
                acc.iter_mut().for_each(|a| *a = c.act.apply(*a));
                for (co, &v) in acc.iter().enumerate() {
                    let (view, ch, y, x) = match &c.write {
                        Write::Views(views) => {
                            let (view, ch) = split(views, co);
                            (view, ch, oy, ox)
                        }
                        Write::Shuffle { dst, s } => {
                            let sub = co % (s * s);
                            (*dst, co / (s * s), oy * s + sub / s, ox * s + sub % s)
                        }
                    };
                    let mut v = v;
                    if let Some(r) = &c.residual {
                        let g = r.gains.as_ref().map_or(1.0, |g| g[ch]);
                        v += g * bufs[r.src.buf][at(plan, &r.src, f, y, x) + ch];
                    }
                    bufs[view.buf][at(plan, &view, f, y, x) + ch] = v;
                }
            }
        }
    }
}

/// The view that output channel `co` goes to, and its channel there.
fn split(views: &[View], mut co: usize) -> (View, usize) {
    for v in views {
        if co < v.channels {
            return (*v, co);
        }
        co -= v.channels;
    }
    unreachable!("validated: the views take every output channel")
}

/// Per frame and channel: mean + population std over the pixels (f64 sums).
fn cca_stats(
    plan: &BufferPlan,
    (src, dst): (&View, &View),
    bufs: &mut [Vec<f32>],
    sums: &mut [f64],
) {
    let [n, h, w, _] = plan.buffers[src.buf].dims;
    let ch = src.channels;
    let count = (h * w) as f64;
    for f in 0..n {
        let sums = &mut sums[..2 * ch];
        sums.fill(0.0);
        for y in 0..h {
            for x in 0..w {
                let px = &bufs[src.buf][at(plan, src, f, y, x)..][..ch];
                for (c, &v) in px.iter().enumerate() {
                    sums[2 * c] += v as f64;
                    sums[2 * c + 1] += (v as f64) * (v as f64);
                }
            }
        }
        let di = at(plan, dst, f, 0, 0);
        for c in 0..ch {
            let mean = sums[2 * c] / count;
            let var = (sums[2 * c + 1] / count - mean * mean).max(0.0);
            bufs[dst.buf][di + c] = (var.sqrt() + mean) as f32;
        }
    }
}
