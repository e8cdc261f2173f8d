//! The weight gradient of a stride-1 "same" 3×3 conv by Winograd F(2×2, 3×3), for training.
//!
//! The forward computes each 2×2 output tile as Y = Aᵀ [U ⊙ V] A with U = G g Gᵀ (weights) and
//! V = Bᵀ d B (the 4×4 input tile). Its adjoint in g is
//!
//!   dW = Gᵀ [ Σ over tiles of (A dY Aᵀ) ⊙ (Bᵀ d B) ] G,
//!
//! so the sum over tiles becomes, for each of the 16 transform positions, one GEMM of the
//! transformed output gradient [cout × tiles] against the transformed input [tiles × cin]:
//! 16 multiply-adds per 2×2 tile and channel pair instead of im2col's 36. The transforms only
//! add, subtract and halve, so the result matches im2col's to float rounding
//! (`tests/cpu.rs` checks both against candle's).

use gemm::Parallelism;
use rayon::prelude::*;

use super::conv::grow;
use super::winograd::bt;

/// Transform positions of a 4×4 tile.
const POS: usize = 16;

/// dW [cout, cin, 3, 3] of a stride-1 "same" 3×3 conv from its input `x` [n, cin, h, w] and
/// output gradient `grad` [n, cout, h, w]. The same sums whatever the thread count: each
/// image's 16 GEMMs run sequentially inside and the images are added in order.
pub fn weight_grad(
    x: &[f32],
    grad: &[f32],
    n: usize,
    (h, w): (usize, usize),
    (cin, cout): (usize, usize),
) -> Vec<f32> {
    let tiles = Tiles::new(h, w);
    let per_image: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let x = &x[i * cin * h * w..][..cin * h * w];
            let g = &grad[i * cout * h * w..][..cout * h * w];
            image_products(&tiles, x, g, cin, cout)
        })
        .collect();
    let mut m = vec![0f32; POS * cout * cin];
    for p in &per_image {
        m.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    to_kernel_gradient(&m, cin, cout)
}

/// The tile grid over an h×w frame: 2×2 output tiles, the last row/column of an odd side half
/// outside (its gradient there is zero).
struct Tiles {
    h: usize,
    w: usize,
    rows: usize,
    cols: usize,
}

impl Tiles {
    fn new(h: usize, w: usize) -> Self {
        Self {
            h,
            w,
            rows: h.div_ceil(2),
            cols: w.div_ceil(2),
        }
    }

    fn count(&self) -> usize {
        self.rows * self.cols
    }
}

/// Floats between the transform positions' blocks beyond their length: without it the 16 runs
/// written together are a multiple of 4 KiB apart and evict each other from one L1 set.
const SKEW: usize = 32;

/// Σ over this image's tiles of (A dY Aᵀ) ⊙ (Bᵀ d B), as [16][cout][cin].
fn image_products(t: &Tiles, x: &[f32], g: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let nt = t.count();
    let (v_stride, u_stride) = (cin * nt + SKEW, cout * nt + SKEW);
    // every float the GEMMs read is written below, so the buffers are reused without zeroing
    let mut scratch = TRANSFORMED.take();
    let (v, u) = &mut scratch;
    grow(v, POS * v_stride);
    grow(u, POS * u_stride);
    let mut rows = RowScratch::new(t.cols);
    // one zero-padded plane: the input with its 1-pixel "same" border, rounded up to whole tiles
    let pw = 2 * t.cols + 2;
    let mut pad = vec![0f32; pw * (2 * t.rows + 2)];
    for ci in 0..cin {
        let plane = &x[ci * t.h * t.w..][..t.h * t.w];
        for y in 0..t.h {
            pad[(y + 1) * pw + 1..][..t.w].copy_from_slice(&plane[y * t.w..][..t.w]);
        }
        for ty in 0..t.rows {
            let out = &mut v[ci * nt + ty * t.cols..];
            rows.input_tiles(&pad[2 * ty * pw..][..4 * pw], pw, v_stride, out);
        }
    }
    // the gradient, zero beyond the frame on odd sides
    let gw = 2 * t.cols;
    let mut gpad = vec![0f32; gw * 2 * t.rows];
    for co in 0..cout {
        let plane = &g[co * t.h * t.w..][..t.h * t.w];
        for y in 0..t.h {
            gpad[y * gw..][..t.w].copy_from_slice(&plane[y * t.w..][..t.w]);
        }
        for ty in 0..t.rows {
            let out = &mut u[co * nt + ty * t.cols..];
            rows.gradient_tiles(&gpad[2 * ty * gw..][..2 * gw], gw, u_stride, out);
        }
    }
    let mut m = vec![0f32; POS * cout * cin];
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

/// One tile row at a time, with its pixel rows split into even and odd columns: then every
/// transform is an elementwise expression over contiguous runs of tiles, which the compiler
/// vectorises.
struct RowScratch {
    /// [4 rows][even, odd][cols + 1]
    split: Vec<f32>,
    /// the same after the vertical transform
    vert: Vec<f32>,
    cols: usize,
}

impl RowScratch {
    fn new(cols: usize) -> Self {
        Self {
            split: vec![0.0; 8 * (cols + 1)],
            vert: vec![0.0; 8 * (cols + 1)],
            cols,
        }
    }

    /// Run `kind` (0 even, 1 odd) of row `r`.
    fn run(buf: &[f32], cols: usize, r: usize, kind: usize) -> &[f32] {
        &buf[(2 * r + kind) * (cols + 1)..][..cols + 1]
    }

    /// Splits `n` pixel rows (`width` floats apart, `2·pairs` long) into even and odd columns.
    fn split_rows(&mut self, px: &[f32], width: usize, n: usize, pairs: usize) {
        let k = self.cols + 1;
        for r in 0..n {
            let row = &px[r * width..][..2 * pairs];
            let (even, rest) = self.split[2 * r * k..][..2 * k].split_at_mut(k);
            for (i, pair) in row.chunks_exact(2).enumerate() {
                even[i] = pair[0];
                rest[i] = pair[1];
            }
        }
    }

    /// V = Bᵀ d B of the tiles of one tile row: `px` holds its 4 padded pixel rows; tile k's
    /// position p goes to out[p·stride + k].
    fn input_tiles(&mut self, px: &[f32], width: usize, stride: usize, out: &mut [f32]) {
        let (cols, k) = (self.cols, self.cols + 1);
        self.split_rows(px, width, 4, k);
        // Bᵀ down the 4 rows, for the even and the odd columns
        for kind in 0..2 {
            let s: [&[f32]; 4] = std::array::from_fn(|r| Self::run(&self.split, cols, r, kind));
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
                Self::run(&self.vert, cols, r, 0),
                Self::run(&self.vert, cols, r, 1),
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
        self.split_rows(px, width, 2, cols);
        for r in 0..4 {
            let (e0, o0) = (
                Self::run(&self.split, cols, 0, 0),
                Self::run(&self.split, cols, 0, 1),
            );
            let (e1, o1) = (
                Self::run(&self.split, cols, 1, 0),
                Self::run(&self.split, cols, 1, 1),
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

/// A = Aᵀᵀ: [a, b] ↦ [a, a + b, a − b, −b].
#[inline(always)]
fn a2(a: f32, b: f32) -> [f32; 4] {
    [a, a + b, a - b, -b]
}

/// dW = Gᵀ M G per channel pair, G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
fn to_kernel_gradient(m: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    const G: [[f32; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut dw = vec![0f32; cout * cin * 9];
    for pair in 0..cout * cin {
        let mp: [[f32; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| m[(i * 4 + j) * cout * cin + pair]));
        for k in 0..3 {
            for l in 0..3 {
                let mut s = 0f32;
                for (i, gi) in G.iter().enumerate() {
                    for (j, gj) in G.iter().enumerate() {
                        s += gi[k] * mp[i][j] * gj[l];
                    }
                }
                dw[pair * 9 + k * 3 + l] = s;
            }
        }
    }
    dw
}
