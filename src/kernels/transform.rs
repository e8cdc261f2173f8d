//! The Winograd input transforms Bᵀ, shared by the forward kernels and the weight gradient,
//! F(4×4, 3×3)'s output transform Aᵀ,
//! and the kernel transforms G g Gᵀ, shared by the kernels that run each.
//! Generic over the value type, so that scalars and AVX registers run the same code.

/// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]] applied to x0..x3.
#[inline(always)]
pub fn bt2<T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T>>(x: [T; 4]) -> [T; 4] {
    [x[0] - x[2], x[1] + x[2], x[2] - x[1], x[1] - x[3]]
}

/// Bᵀ applied to x0..x5: [4x0 − 5x2 + x4, −4(x1 + x2) + x3 + x4, 4(x1 − x2) − x3 + x4,
/// 2(x3 − x1) − x2 + x4, −2(x3 − x1) − x2 + x4, 4x1 − 5x3 + x5].
#[inline(always)]
pub fn bt4<T>(x: [T; 6]) -> [T; 6]
where
    T: Copy
        + std::ops::Add<Output = T>
        + std::ops::Sub<Output = T>
        + std::ops::Mul<f32, Output = T>,
{
    let (s12, d12, s34, d34) = (x[1] + x[2], x[1] - x[2], x[3] + x[4], x[4] - x[3]);
    let (e, f) = (x[4] - x[2], (x[3] - x[1]) * 2.0);
    [
        x[0] * 4.0 - x[2] * 5.0 + x[4],
        s34 - s12 * 4.0,
        d34 + d12 * 4.0,
        e + f,
        e - f,
        x[1] * 4.0 - x[3] * 5.0 + x[5],
    ]
}

/// U = G g Gᵀ with G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], in f64.
pub fn kernel2(g: &[f32]) -> [f32; 16] {
    let g: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    let col = |a: f64, b: f64, c: f64| [a, (a + b + c) / 2.0, (a - b + c) / 2.0, c];
    // G g: per column kx, the 4 transformed rows
    let gg: Vec<[f64; 4]> = (0..3).map(|kx| col(g[kx], g[3 + kx], g[6 + kx])).collect();
    let mut u = [0f32; 16];
    for i in 0..4 {
        let row = col(gg[0][i], gg[1][i], gg[2][i]);
        for j in 0..4 {
            u[i * 4 + j] = row[j] as f32;
        }
    }
    u
}

/// U = G g Gᵀ with G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙],
/// [1/24, −1/12, ⅙], [0, 0, 1]], in f64.
pub fn kernel4(g: &[f32]) -> [f32; 36] {
    let g: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    let col = |a: f64, b: f64, c: f64| {
        [
            a / 4.0,
            -(a + b + c) / 6.0,
            -(a - b + c) / 6.0,
            (a + 2.0 * b + 4.0 * c) / 24.0,
            (a - 2.0 * b + 4.0 * c) / 24.0,
            c,
        ]
    };
    // G g: per column kx, the 6 transformed rows
    let gg: Vec<[f64; 6]> = (0..3).map(|kx| col(g[kx], g[3 + kx], g[6 + kx])).collect();
    let mut u = [0f32; 36];
    for i in 0..6 {
        let row = col(gg[0][i], gg[1][i], gg[2][i]);
        for j in 0..6 {
            u[i * 6 + j] = row[j] as f32;
        }
    }
    u
}

/// Aᵀ applied to x0..x5: [x0 + x1 + x2 + x3 + x4, (x1 − x2) + 2(x3 − x4),
/// (x1 + x2) + 4(x3 + x4), (x1 − x2) + 8(x3 − x4) + x5].
#[inline(always)]
pub fn at4<T>(x: [T; 6]) -> [T; 4]
where
    T: Copy
        + std::ops::Add<Output = T>
        + std::ops::Sub<Output = T>
        + std::ops::Mul<f32, Output = T>,
{
    let (s12, d12, s34, d34) = (x[1] + x[2], x[1] - x[2], x[3] + x[4], x[3] - x[4]);
    [
        x[0] + s12 + s34,
        d12 + d34 * 2.0,
        s12 + s34 * 4.0,
        d12 + d34 * 8.0 + x[5],
    ]
}
