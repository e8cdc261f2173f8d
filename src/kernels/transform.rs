//! The Winograd input transforms Bᵀ, shared by the forward kernels and the weight gradient.
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
