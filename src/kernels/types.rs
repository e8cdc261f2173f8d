//! What every kernel shares: the plane layout, a conv's parameters, where its output goes.
//!
//! Every activation is a set of channel planes of (h+2)×(w+2) floats with a one-pixel zero
//! border, so a 3×3 stride-1 conv needs no padding step and a conv's output is the next conv's
//! ready input. Channel slices of a plane set are contiguous: split is free, and concatenation
//! is writing into the right planes.

use super::simd::PANEL;

/// Geometry of one plane set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub h: usize,
    pub w: usize,
}

impl Geom {
    /// Row stride of a bordered plane.
    pub fn stride(&self) -> usize {
        self.w + 2
    }
    /// Floats per bordered plane.
    pub fn plane(&self) -> usize {
        (self.h + 2) * (self.w + 2)
    }
    /// The wide run: first interior position and its length (interior rows plus the border
    /// columns between them).
    pub fn wide(&self) -> (usize, usize) {
        (self.stride() + 1, self.h * self.stride() - 2)
    }
    /// Index of interior pixel (y, x) in a plane.
    pub fn at(&self, y: usize, x: usize) -> usize {
        (y + 1) * self.stride() + x + 1
    }
}

/// The geometry after a stride-2, padding-1, 3×3 conv.
pub fn half(g: Geom) -> Geom {
    Geom {
        h: g.h.div_ceil(2),
        w: g.w.div_ceil(2),
    }
}

/// A convolution's parameters: weights `[cout, cin·k·k]` row-major, bias `[cout]`.
#[derive(Clone, Debug)]
pub struct ConvParams {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    /// The weights transformed for Winograd, when this conv runs that way (chosen by
    /// [`Kernels::plan`](super::plan::Kernels::plan)).
    pub winograd: Option<Winograd>,
}

impl ConvParams {
    /// Plain parameters (im2col for 3×3).
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, cin: usize, cout: usize, k: usize) -> Self {
        Self {
            weight,
            bias,
            cin,
            cout,
            k,
            winograd: None,
        }
    }
}

/// A 3×3 conv's weights transformed for one of the Winograd kernels.
#[derive(Clone, Debug)]
pub enum Winograd {
    /// F(2×2, 3×3), [`winograd`](super::winograd).
    F2(WinogradWeights),
    /// F(4×4, 3×3), [`winograd4`](super::winograd4).
    F4(WinogradWeights),
}

/// Weights transformed for a Winograd kernel: for each transform position, ⌈cout/PANEL⌉
/// panels of [cin][PANEL] (the last panel zero-padded), the GEMM micro-kernel's left operand.
#[derive(Clone, Debug)]
pub struct WinogradWeights {
    u: Vec<f32>,
    pub(super) cin: usize,
    pub(super) panels: usize,
}

impl WinogradWeights {
    /// Transforms 3×3 weights [cout, cin, 3, 3] (row-major) by `transform`, which maps one
    /// 3×3 kernel to its `P` transform positions.
    pub fn new<const P: usize>(
        weight: &[f32],
        cin: usize,
        cout: usize,
        transform: fn(&[f32]) -> [f32; P],
    ) -> Self {
        assert_eq!(weight.len(), cout * cin * 9, "3×3 weights");
        let panels = cout.div_ceil(PANEL);
        let mut u = vec![0.0f32; P * panels * cin * PANEL];
        for co in 0..cout {
            for ci in 0..cin {
                let t = transform(&weight[(co * cin + ci) * 9..][..9]);
                let (pnl, r) = (co / PANEL, co % PANEL);
                for (xi, &v) in t.iter().enumerate() {
                    u[((xi * panels + pnl) * cin + ci) * PANEL + r] = v;
                }
            }
        }
        Self { u, cin, panels }
    }

    /// The [cin][PANEL] operand of position `xi`, panel `pnl`.
    pub(super) fn panel(&self, xi: usize, pnl: usize) -> &[f32] {
        &self.u[(xi * self.panels + pnl) * self.cin * PANEL..][..self.cin * PANEL]
    }
}

/// What the output starts from before the GEMM adds to it.
#[derive(Clone, Copy)]
pub enum Prefill<'a> {
    Bias,
    /// Bias plus a residual plane set of `cout` channels.
    BiasPlus(&'a [f32]),
    /// Accumulate onto what the output already holds.
    Keep,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    LRelu,
}

/// Where consecutive output channels go: `rows` channels into the plane set at `dst`.
pub struct Out<'a> {
    pub dst: &'a mut [f32],
    pub rows: usize,
}

/// Raw pointer that tiles share; each tile writes a disjoint part of the planes.
#[derive(Clone, Copy)]
pub struct SharedMut(pub(super) *mut f32);
// SAFETY: tiles write disjoint positions of the planes (each kernel splits its work so).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// Through a method, so closures capture the whole (Send) wrapper, not its raw field.
    pub fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: callers stay within the buffer the pointer came from
        unsafe { self.0.add(offset) }
    }
}

/// Output channel ranges: (plane set, its first channel, its channel count).
pub type Segments = [(SharedMut, usize, usize)];

/// Makes `buf` at least `len` long (new floats zero; existing ones kept).
pub fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Copies NCHW planes of `g` into bordered planes (borders left zero).
pub fn bordered_from_nchw(g: Geom, src: &[f32], dst: &mut [f32]) {
    for (plane, from) in dst
        .chunks_exact_mut(g.plane())
        .zip(src.chunks_exact(g.h * g.w))
    {
        for y in 0..g.h {
            plane[g.at(y, 0)..][..g.w].copy_from_slice(&from[y * g.w..][..g.w]);
        }
    }
}

/// Strips the border of bordered planes into NCHW.
pub fn nchw_from_bordered(g: Geom, src: &[f32], dst: &mut [f32]) {
    for (plane, to) in src
        .chunks_exact(g.plane())
        .zip(dst.chunks_exact_mut(g.h * g.w))
    {
        for y in 0..g.h {
            to[y * g.w..][..g.w].copy_from_slice(&plane[g.at(y, 0)..][..g.w]);
        }
    }
}

/// Zeroes the left and right border columns of every interior row of every plane.
pub fn zero_border_columns(g: Geom, planes: &mut [f32]) {
    let stride = g.stride();
    for plane in planes.chunks_exact_mut(g.plane()) {
        for y in 1..=g.h {
            plane[y * stride] = 0.0;
            plane[y * stride + g.w + 1] = 0.0;
        }
    }
}

/// LeakyReLU, slope 0.05, in place.
pub fn lrelu_in_place(x: &mut [f32]) {
    for v in x {
        *v = v.max(*v * 0.05);
    }
}
