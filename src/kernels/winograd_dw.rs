//! The weight gradient of a stride-1 "same" 3×3 conv by Winograd, for training: F(2×2, 3×3)
//! or F(4×4, 3×3), as [`plan`](super::plan) chooses for the forward.
//!
//! The forward computes each m×m output tile as Y = Aᵀ [U ⊙ V] A with U = G g Gᵀ (weights) and
//! V = Bᵀ d B (the (m+2)×(m+2) input tile). Its adjoint in g is
//!
//!   dW = Gᵀ [ Σ over tiles of (A dY Aᵀ) ⊙ (Bᵀ d B) ] G,
//!
//! so the sum over tiles becomes, for each of the (m+2)² transform positions, one GEMM of the
//! transformed output gradient [cout × tiles] against the transformed input [tiles × cin]:
//! per channel pair, 16 multiply-adds per 2×2 tile (F(2×2, 3×3)) or 36 per 4×4 tile
//! (F(4×4, 3×3)) instead of im2col's 36 or 144. The result matches im2col's to float rounding
//! (F(4×4, 3×3)'s transforms multiply by up to 8, so its rounding is larger; `tests/cpu.rs`
//! checks both against im2col).

use gemm::Parallelism;
use rayon::prelude::*;

use super::transform::{bt2 as bt, bt4 as bt6};
use super::types::grow;

/// The Winograd variant: F(2×2, 3×3) (4×4 input tiles, 16 positions) or F(4×4, 3×3) (6×6
/// tiles, 36 positions: 36 multiply-adds per 4×4 tile and channel pair instead of 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    F2,
    F4,
}

impl Kind {
    /// Output pixels per tile side.
    fn m(self) -> usize {
        match self {
            Kind::F2 => 2,
            Kind::F4 => 4,
        }
    }
    /// Transform positions of a tile.
    fn positions(self) -> usize {
        (self.m() + 2) * (self.m() + 2)
    }
}

/// dW [cout, cin, 3, 3] of a stride-1 "same" 3×3 conv from its input `x` [n, cin, h, w] and
/// output gradient `grad` [n, cout, h, w]. The same sums whatever the thread count: each
/// image's GEMMs run sequentially inside and the images are added in order.
pub fn weight_grad(
    x: &[f32],
    grad: &[f32],
    n: usize,
    (h, w): (usize, usize),
    (cin, cout): (usize, usize),
    kind: Kind,
) -> Vec<f32> {
    let tiles = Tiles::new(kind, h, w);
    let per_image: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let x = &x[i * cin * h * w..][..cin * h * w];
            let g = &grad[i * cout * h * w..][..cout * h * w];
            image_products(&tiles, x, g, cin, cout)
        })
        .collect();
    let mut m = vec![0f32; kind.positions() * cout * cin];
    for p in &per_image {
        m.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    match kind {
        Kind::F2 => to_kernel_gradient(&m, cin, cout),
        Kind::F4 => to_kernel_gradient4(&m, cin, cout),
    }
}

/// The tile grid over an h×w frame: m×m output tiles, the part of the last row/column of
/// tiles past the frame outside it (its gradient there is zero).
struct Tiles {
    kind: Kind,
    h: usize,
    w: usize,
    rows: usize,
    cols: usize,
}

impl Tiles {
    fn new(kind: Kind, h: usize, w: usize) -> Self {
        Self {
            kind,
            h,
            w,
            rows: h.div_ceil(kind.m()),
            cols: w.div_ceil(kind.m()),
        }
    }

    fn count(&self) -> usize {
        self.rows * self.cols
    }
}

/// Floats between the transform positions' blocks beyond their length: without it the runs
/// written together are a multiple of 4 KiB apart and evict each other from one L1 set.
const SKEW: usize = 32;

/// Σ over this image's tiles of (A dY Aᵀ) ⊙ (Bᵀ d B), as [positions][cout][cin].
fn image_products(t: &Tiles, x: &[f32], g: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let (nt, tm, npos) = (t.count(), t.kind.m(), t.kind.positions());
    let (v_stride, u_stride) = (cin * nt + SKEW, cout * nt + SKEW);
    // every float the GEMMs read is written below, so the buffers are reused without zeroing
    let mut scratch = TRANSFORMED.take();
    let (v, u) = &mut scratch;
    grow(v, npos * v_stride);
    grow(u, npos * u_stride);
    let mut rows = RowScratch::new(t.cols, tm);
    // one zero-padded plane: the input with its 1-pixel "same" border, rounded up to whole tiles
    let pw = tm * t.cols + 2;
    let mut pad = vec![0f32; pw * (tm * t.rows + 2)];
    for ci in 0..cin {
        let plane = &x[ci * t.h * t.w..][..t.h * t.w];
        for y in 0..t.h {
            pad[(y + 1) * pw + 1..][..t.w].copy_from_slice(&plane[y * t.w..][..t.w]);
        }
        for ty in 0..t.rows {
            let out = &mut v[ci * nt + ty * t.cols..];
            let px = &pad[tm * ty * pw..][..(tm + 2) * pw];
            match t.kind {
                Kind::F2 => rows.input_tiles(px, pw, v_stride, out),
                Kind::F4 => rows.input_tiles4(px, pw, v_stride, out),
            }
        }
    }
    // the gradient, zero beyond the frame where the sides are not whole tiles
    let gw = tm * t.cols;
    let mut gpad = vec![0f32; gw * tm * t.rows];
    for co in 0..cout {
        let plane = &g[co * t.h * t.w..][..t.h * t.w];
        for y in 0..t.h {
            gpad[y * gw..][..t.w].copy_from_slice(&plane[y * t.w..][..t.w]);
        }
        for ty in 0..t.rows {
            let out = &mut u[co * nt + ty * t.cols..];
            let px = &gpad[tm * ty * gw..][..tm * gw];
            match t.kind {
                Kind::F2 => rows.gradient_tiles(px, gw, u_stride, out),
                Kind::F4 => rows.gradient_tiles4(px, gw, u_stride, out),
            }
        }
    }
    let mut m = vec![0f32; npos * cout * cin];
    for (pos, mp) in m.chunks_exact_mut(cout * cin).enumerate() {
        let up = &u[pos * u_stride..][..cout * nt];
        let vp = &v[pos * v_stride..][..cin * nt];
        // SAFETY: mp is [cout, cin] row-major; lhs up is [cout, nt] row-major; rhs is vpᵀ,
        // nt × cin, element (t, ci) at t + ci·nt. All three hold exactly these elements.
        unsafe {
            gemm::gemm(
                cout,
                cin,
                nt,
                mp.as_mut_ptr(),
                1,
                cin as isize,
                false,
                up.as_ptr(),
                1,
                nt as isize,
                vp.as_ptr(),
                nt as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    }
    TRANSFORMED.set(scratch);
    m
}

thread_local! {
    /// The transformed input and gradient of the last image this thread did (several MB each,
    /// zero-filled anew on every call before). Taken out while in use, so a nested call on the
    /// same thread just allocates its own.
    static TRANSFORMED: std::cell::Cell<(Vec<f32>, Vec<f32>)> = const {
        std::cell::Cell::new((Vec::new(), Vec::new()))
    };
}

/// One tile row at a time, with its pixel rows split into their columns modulo the tile size
/// m (even and odd for F(2×2, 3×3)): then every transform is an elementwise expression over
/// contiguous runs of tiles, which the compiler vectorises.
struct RowScratch {
    /// [m + 2 rows][m phases][cols + 1]
    split: Vec<f32>,
    /// the same after the vertical transform
    vert: Vec<f32>,
    cols: usize,
    /// Columns per tile (the number of phases).
    m: usize,
}

impl RowScratch {
    fn new(cols: usize, m: usize) -> Self {
        let len = (m + 2) * m * (cols + 1);
        Self {
            split: vec![0.0; len],
            vert: vec![0.0; len],
            cols,
            m,
        }
    }

    /// Run `kind` (the column phase: 0 even, 1 odd for m = 2) of row `r` of `buf` (`split` or
    /// `vert` of a scratch with `cols` tiles and m phases).
    fn run(buf: &[f32], (cols, m): (usize, usize), r: usize, kind: usize) -> &[f32] {
        &buf[(m * r + kind) * (cols + 1)..][..cols + 1]
    }

    /// Splits `n` pixel rows (`width` floats apart, `len` long) into their m column phases.
    fn split_rows(&mut self, px: &[f32], width: usize, n: usize, len: usize) {
        let (k, m) = (self.cols + 1, self.m);
        for r in 0..n {
            let row = &px[r * width..][..len];
            let phases = &mut self.split[m * r * k..][..m * k];
            // m known at compile time unrolls the scatter (it was ≈ 10 % of an RTC step)
            match m {
                2 => split_row::<2>(row, phases, k),
                4 => split_row::<4>(row, phases, k),
                _ => unreachable!("tiles of 2 or 4 columns"),
            }
        }
    }

    /// V = Bᵀ d B of the tiles of one tile row: `px` holds its 4 padded pixel rows; tile k's
    /// position p goes to out[p·stride + k].
    fn input_tiles(&mut self, px: &[f32], width: usize, stride: usize, out: &mut [f32]) {
        let (cols, k) = (self.cols, self.cols + 1);
        self.split_rows(px, width, 4, 2 * k);
        // Bᵀ down the 4 rows, for the even and the odd columns
        for kind in 0..2 {
            let s: [&[f32]; 4] =
                std::array::from_fn(|r| Self::run(&self.split, (cols, 2), r, kind));
            let runs = s[0].iter().zip(s[1]).zip(s[2]).zip(s[3]);
            for (i, (((&a, &b), &c), &d)) in runs.enumerate() {
                let col = bt([a, b, c, d]);
                for (r, val) in col.into_iter().enumerate() {
                    self.vert[(2 * r + kind) * k + i] = val;
                }
            }
        }
        // then B along each row: tile i's columns are even[i], odd[i], even[i + 1], odd[i + 1]
        for r in 0..4 {
            let (e, o) = (
                Self::run(&self.vert, (cols, 2), r, 0),
                Self::run(&self.vert, (cols, 2), r, 1),
            );
            let (o0, rest) = out[r * 4 * stride..].split_at_mut(stride);
            let (o1, rest) = rest.split_at_mut(stride);
            let (o2, o3) = rest.split_at_mut(stride);
            for i in 0..cols {
                let row = bt([e[i], o[i], e[i + 1], o[i + 1]]);
                o0[i] = row[0];
                o1[i] = row[1];
                o2[i] = row[2];
                o3[i] = row[3];
            }
        }
    }

    /// A dY Aᵀ of the 2×2 tiles of one tile row: `px` holds its 2 gradient rows; tile k's
    /// position p goes to out[p·stride + k].
    fn gradient_tiles(&mut self, px: &[f32], width: usize, stride: usize, out: &mut [f32]) {
        let cols = self.cols;
        self.split_rows(px, width, 2, 2 * cols);
        for r in 0..4 {
            let (e0, o0) = (
                Self::run(&self.split, (cols, 2), 0, 0),
                Self::run(&self.split, (cols, 2), 0, 1),
            );
            let (e1, o1) = (
                Self::run(&self.split, (cols, 2), 1, 0),
                Self::run(&self.split, (cols, 2), 1, 1),
            );
            let (p0, rest) = out[r * 4 * stride..].split_at_mut(stride);
            let (p1, rest) = rest.split_at_mut(stride);
            let (p2, p3) = rest.split_at_mut(stride);
            for i in 0..cols {
                // A dY's row r for the tile's two columns, then that row times Aᵀ
                let (a, b) = (a2(e0[i], e1[i])[r], a2(o0[i], o1[i])[r]);
                let row = a2(a, b);
                p0[i] = row[0];
                p1[i] = row[1];
                p2[i] = row[2];
                p3[i] = row[3];
            }
        }
    }
}

impl RowScratch {
    /// [`Self::input_tiles`] for F(4×4, 3×3): `px` holds the tile row's 6 padded pixel rows.
    fn input_tiles4(&mut self, px: &[f32], width: usize, stride: usize, out: &mut [f32]) {
        let (cols, k) = (self.cols, self.cols + 1);
        let shape = (cols, 4);
        self.split_rows(px, width, 6, 4 * cols + 2);
        // Bᵀ down the 6 rows, for each column phase (phases 2 and 3 have no tile at `cols`:
        // what is computed there is never read)
        for q in 0..4 {
            let s: [&[f32]; 6] = std::array::from_fn(|r| Self::run(&self.split, shape, r, q));
            for i in 0..k {
                let col = bt6(s.map(|run| run[i]));
                for (r, val) in col.into_iter().enumerate() {
                    self.vert[(4 * r + q) * k + i] = val;
                }
            }
        }
        // then B along each row: tile i's columns are the 4 phases at i, then 0 and 1 at i + 1
        for r in 0..6 {
            let p: [&[f32]; 4] = std::array::from_fn(|q| Self::run(&self.vert, shape, r, q));
            let mut outs = out[r * 6 * stride..].chunks_mut(stride);
            let mut o: [&mut [f32]; 6] = std::array::from_fn(|_| outs.next().expect("6 positions"));
            for i in 0..cols {
                let row = bt6([p[0][i], p[1][i], p[2][i], p[3][i], p[0][i + 1], p[1][i + 1]]);
                for (oj, v) in o.iter_mut().zip(row) {
                    oj[i] = v;
                }
            }
        }
    }

    /// [`Self::gradient_tiles`] for F(4×4, 3×3): `px` holds the tile row's 4 gradient rows.
    fn gradient_tiles4(&mut self, px: &[f32], width: usize, stride: usize, out: &mut [f32]) {
        let (cols, k) = (self.cols, self.cols + 1);
        let shape = (cols, 4);
        self.split_rows(px, width, 4, 4 * cols);
        // A down the 4 rows (to 6), for each column phase
        for q in 0..4 {
            let s: [&[f32]; 4] = std::array::from_fn(|r| Self::run(&self.split, shape, r, q));
            for i in 0..cols {
                let col = a4(s.map(|run| run[i]));
                for (r, val) in col.into_iter().enumerate() {
                    self.vert[(4 * r + q) * k + i] = val;
                }
            }
        }
        // then each of the 6 rows times Aᵀ
        for r in 0..6 {
            let p: [&[f32]; 4] = std::array::from_fn(|q| Self::run(&self.vert, shape, r, q));
            let mut outs = out[r * 6 * stride..].chunks_mut(stride);
            let mut o: [&mut [f32]; 6] = std::array::from_fn(|_| outs.next().expect("6 positions"));
            for i in 0..cols {
                let row = a4([p[0][i], p[1][i], p[2][i], p[3][i]]);
                for (oj, v) in o.iter_mut().zip(row) {
                    oj[i] = v;
                }
            }
        }
    }
}

/// Column q of every M-column group of `row` to phases[q·k + group] (a partial last group
/// included).
#[inline(always)]
fn split_row<const M: usize>(row: &[f32], phases: &mut [f32], k: usize) {
    let mut runs = phases.chunks_exact_mut(k);
    let runs: [&mut [f32]; M] = std::array::from_fn(|_| runs.next().expect("M runs"));
    let groups = row.chunks_exact(M);
    let whole = row.len() / M;
    for (q, &v) in groups.remainder().iter().enumerate() {
        runs[q][whole] = v;
    }
    for (i, group) in groups.enumerate() {
        for q in 0..M {
            runs[q][i] = group[q];
        }
    }
}

/// A = Aᵀᵀ: [a, b] ↦ [a, a + b, a − b, −b].
#[inline(always)]
fn a2(a: f32, b: f32) -> [f32; 4] {
    [a, a + b, a - b, -b]
}

/// A = Aᵀᵀ of F(4×4, 3×3): [y0, y0 + y1 + y2 + y3, y0 − y1 + y2 − y3, y0 + 2y1 + 4y2 + 8y3,
/// y0 − 2y1 + 4y2 − 8y3, y3].
#[inline(always)]
fn a4([y0, y1, y2, y3]: [f32; 4]) -> [f32; 6] {
    let (s02, s13, d02, d13) = (y0 + y2, y1 + y3, y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
    [y0, s02 + s13, s02 - s13, d02 + d13, d02 - d13, y3]
}

/// dW = Gᵀ M G per channel pair, G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
fn to_kernel_gradient(m: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    const G: [[f32; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    to_kernel(m, cin, cout, &G)
}

/// [`to_kernel_gradient`] for F(4×4, 3×3): G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙],
/// [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]].
fn to_kernel_gradient4(m: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    const G: [[f32; 3]; 6] = [
        [0.25, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    to_kernel(m, cin, cout, &G)
}

/// dW = Gᵀ M G per channel pair, for T×T transform positions.
fn to_kernel<const T: usize>(m: &[f32], cin: usize, cout: usize, g: &[[f32; 3]; T]) -> Vec<f32> {
    let mut dw = vec![0f32; cout * cin * 9];
    for pair in 0..cout * cin {
        let mp: [[f32; T]; T] =
            std::array::from_fn(|i| std::array::from_fn(|j| m[(i * T + j) * cout * cin + pair]));
        for k in 0..3 {
            for l in 0..3 {
                let mut s = 0f32;
                for (i, gi) in g.iter().enumerate() {
                    for (j, gj) in g.iter().enumerate() {
                        s += gi[k] * mp[i][j] * gj[l];
                    }
                }
                dw[pair * 9 + k * 3 + l] = s;
            }
        }
    }
    dw
}
