//! The building blocks shared by the IMDN family: convolutions, the LeakyReLU, contrast-aware
//! channel attention (CCA) and the two information multi-distillation blocks.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::names::{BIAS, C1, C2, C3, C4, C5, CCA, CCA_DOWN, CCA_UP, WEIGHT};
use crate::ops::{Ops, autograd, block_ops};

/// LeakyReLU slope used everywhere in IMDN.
pub const LRELU_SLOPE: f64 = 0.05;

/// LeakyReLU: our one-pass op where `ops` runs `x` on ours (f32 on the CPU); elsewhere
/// `max(x, slope·x)`, two passes instead of the five of `candle_nn::ops::leaky_relu`.
pub fn lrelu(x: &Tensor, ops: Ops) -> Result<Tensor> {
    if ops.ours_for(x).is_some() {
        return autograd::leaky_relu(x);
    }
    x.maximum(&(x * LRELU_SLOPE)?)
}

/// A k×k convolution with bias and "same" padding ((k−1)/2), as the authors' `conv_layer`
/// (`weight` `[cout, cin, k, k]`, `bias` `[cout]`). On the CPU in f32 with our [`Ops`] it runs
/// on our kernels with their own backward (training), stride 2 (IMDN_AS's front end) as
/// stride 1 at every other pixel; when training elsewhere (CUDA), stride 1 as
/// a matrix product (`conv2d_as_matmul`); otherwise candle's conv2d (cuDNN on CUDA).
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    ops: Ops,
}

impl Conv {
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.weight.dim(2)?;
        if let Some(ours) = self.ops.ours_for(x) {
            let (_, _, h, w) = x.dims4()?;
            let (weight, bias) = (&self.weight, &self.bias);
            match self.stride {
                1 => return autograd::conv2d_same(x, weight, bias, ours.kernels),
                // Output pixel i of a stride-2 "same" conv is the stride-1 one's pixel 2i: 4× the
                // arithmetic, on IMDN_AS's two front convs only, instead of candle's CPU conv2d,
                // whose backward held on to memory step after step (IMDN_AS training grew by
                // ≈ 40 MB a step until killed).
                2 if h % 2 == 0 && w % 2 == 0 => {
                    let full = autograd::conv2d_same(x, weight, bias, ours.kernels)?;
                    return even_pixels(&full);
                }
                _ => {}
            }
        }
        // training off the CPU (the weights are variables; inference weights are plain tensors)
        if self.stride == 1 && !x.device().is_cpu() && self.weight.track_op() {
            return conv2d_as_matmul(x, &self.weight, &self.bias);
        }
        let y = x.conv2d(&self.weight, (k - 1) / 2, self.stride, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
    }
}

/// A stride-1 "same" k×k convolution as shifted copies of the padded input (im2col) and one
/// batched matrix product, so that its backward is matrix products and copies too. Candle's
/// own conv2d backward on CUDA is a naive transposed-convolution kernel plus a weight gradient
/// through cuDNN with an image-sized kernel: five runs sharing an H200 took 2.2 s per RTC step
/// that way and ran out of its memory within minutes; this way 0.56 s, and they finished.
pub fn conv2d_as_matmul(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (n, cin, h, w) = x.dims4()?;
    let (cout, _, kh, kw) = weight.dims4()?;
    let (ph, pw) = ((kh - 1) / 2, (kw - 1) / 2);
    let cols = if kh * kw == 1 {
        x.reshape((n, cin, h * w))?
    } else {
        let padded = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
        let mut taps = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            for kx in 0..kw {
                taps.push(padded.narrow(2, ky, h)?.narrow(3, kx, w)?);
            }
        }
        // (n, cin, k·k, h, w): row cin·k² + ky·k + kx, as the weight's flattened layout
        Tensor::stack(&taps, 2)?.reshape((n, cin * kh * kw, h * w))?
    };
    let wm = weight.reshape((cout, cin * kh * kw))?;
    wm.broadcast_matmul(&cols)?
        .broadcast_add(&bias.reshape((1, cout, 1))?)?
        .reshape((n, cout, h, w))
}

/// The pixels at even rows and columns of an NCHW tensor of even height and width.
fn even_pixels(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h / 2, 2, w / 2, 2))?
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((n, c, h / 2, w / 2))
}

/// Builds a [`Conv`] from `vb` (`weight`, `bias`), initialised as candle-nn's conv2d when new,
/// to run on `ops`.
pub fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    ops: Ops,
    vb: VarBuilder,
) -> Result<Conv> {
    let weight = vb.get_with_hints(
        (cout, cin, k, k),
        WEIGHT,
        candle_nn::init::DEFAULT_KAIMING_NORMAL,
    )?;
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    let bias = vb.get_with_hints(
        cout,
        BIAS,
        candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )?;
    Ok(Conv {
        weight,
        bias,
        stride,
        ops,
    })
}

/// Contrast-aware channel attention: per channel `std + mean` over H×W (population std),
/// 1×1 conv → ReLU → 1×1 conv → sigmoid, then scales the input's channels.
/// Parameter names: [`CCA_DOWN`], [`CCA_UP`] (the authors' `nn.Sequential` `conv_du`).
pub struct Cca {
    down: Conv,
    up: Conv,
    ops: Ops,
}

impl Cca {
    pub fn new(channels: usize, reduction: usize, ops: Ops, vb: VarBuilder) -> Result<Self> {
        let mid = channels / reduction;
        Ok(Self {
            down: conv(channels, mid, 1, 1, ops, vb.pp(CCA_DOWN))?,
            up: conv(mid, channels, 1, 1, ops, vb.pp(CCA_UP))?,
            ops,
        })
    }
}

impl Module for Cca {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.ops.ours_for(x).is_some_and(|o| o.fused) {
            let (down, up) = (&self.down, &self.up);
            return block_ops::cca(x, [&down.weight, &down.bias, &up.weight, &up.bias]);
        }
        let (b, c, h, w) = x.dims4()?;
        // statistics in f32: an f16 sum over a whole frame overflows
        let flat = x.reshape((b, c, h * w))?.to_dtype(DType::F32)?;
        let mean = flat.mean_keepdim(D::Minus1)?;
        let var = flat.broadcast_sub(&mean)?.sqr()?.mean_keepdim(D::Minus1)?;
        let stats = (var.sqrt()? + mean)?
            .reshape((b, c, 1, 1))?
            .to_dtype(x.dtype())?;
        let attn = self.up.forward(&self.down.forward(&stats)?.relu()?)?;
        let attn = candle_nn::ops::sigmoid(&attn)?;
        x.broadcast_mul(&attn)
    }
}

/// The progressive refinement shared by both block kinds: three 3×3 convs with LeakyReLU, each
/// splitting off `distilled` channels and passing the rest on, then a 3×3 conv to `distilled`
/// channels; returns the concatenation of the four distilled parts.
struct Distill {
    c1: Conv,
    c2: Conv,
    c3: Conv,
    c4: Conv,
    distilled: usize,
    remaining: usize,
    ops: Ops,
}

impl Distill {
    fn new(channels: usize, ops: Ops, vb: &VarBuilder) -> Result<Self> {
        // distillation rate 0.25, as the authors' int(in_channels * 0.25)
        let distilled = channels / 4;
        let remaining = channels - distilled;
        Ok(Self {
            c1: conv(channels, channels, 3, 1, ops, vb.pp(C1))?,
            c2: conv(remaining, channels, 3, 1, ops, vb.pp(C2))?,
            c3: conv(remaining, channels, 3, 1, ops, vb.pp(C3))?,
            c4: conv(remaining, distilled, 3, 1, ops, vb.pp(C4))?,
            distilled,
            remaining,
            ops,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(ours) = self.ops.ours_for(x).filter(|o| o.fused) {
            let [c1, c2, c3, c4] = [&self.c1, &self.c2, &self.c3, &self.c4];
            return block_ops::distill(
                x,
                [
                    &c1.weight, &c1.bias, &c2.weight, &c2.bias, &c3.weight, &c3.bias, &c4.weight,
                    &c4.bias,
                ],
                ours.kernels,
            );
        }
        let (d, r, ops) = (self.distilled, self.remaining, self.ops);
        let o1 = lrelu(&self.c1.forward(x)?, ops)?;
        let o2 = lrelu(&self.c2.forward(&o1.narrow(1, d, r)?)?, ops)?;
        let o3 = lrelu(&self.c3.forward(&o2.narrow(1, d, r)?)?, ops)?;
        let o4 = self.c4.forward(&o3.narrow(1, d, r)?)?;
        Tensor::cat(
            &[
                &o1.narrow(1, 0, d)?,
                &o2.narrow(1, 0, d)?,
                &o3.narrow(1, 0, d)?,
                &o4,
            ],
            1,
        )
    }
}

/// Information multi-distillation block (the authors' `IMDModule`): distillation, CCA,
/// 1×1 fuse `c5`, residual.
pub struct Imdb {
    distill: Distill,
    cca: Cca,
    c5: Conv,
}

impl Imdb {
    pub fn new(channels: usize, ops: Ops, vb: VarBuilder) -> Result<Self> {
        let distill = Distill::new(channels, ops, &vb)?;
        let cat = distill.distilled * 4;
        Ok(Self {
            cca: Cca::new(cat, 16, ops, vb.pp(CCA))?,
            c5: conv(cat, channels, 1, 1, ops, vb.pp(C5))?,
            distill,
        })
    }
}

impl Module for Imdb {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let cat = self.distill.forward(x)?;
        self.c5.forward(&self.cca.forward(&cat)?)? + x
    }
}

/// The real-time block (the authors' `IMDModule_speed`): as [`Imdb`] without CCA.
pub struct ImdbSpeed {
    distill: Distill,
    c5: Conv,
}

impl ImdbSpeed {
    pub fn new(channels: usize, ops: Ops, vb: VarBuilder) -> Result<Self> {
        let distill = Distill::new(channels, ops, &vb)?;
        let cat = distill.distilled * 4;
        Ok(Self {
            c5: conv(cat, channels, 1, 1, ops, vb.pp(C5))?,
            distill,
        })
    }
}

impl Module for ImdbSpeed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c5.forward(&self.distill.forward(x)?)? + x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The matmul convolution matches candle's conv2d, values and gradients, at 3×3 and 1×1.
    #[test]
    fn conv_as_matmul_matches_conv2d() {
        let dev = Device::Cpu;
        for k in [3, 1] {
            let x = Var::randn(0f32, 1.0, (2, 5, 7, 6), &dev).unwrap();
            let w = Var::randn(0f32, 0.3, (4, 5, k, k), &dev).unwrap();
            let b = Var::randn(0f32, 0.3, 4, &dev).unwrap();
            let ours = conv2d_as_matmul(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
            let theirs = x
                .conv2d(w.as_tensor(), (k - 1) / 2, 1, 1, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, 4, 1, 1)).unwrap())
                .unwrap();
            let max_diff = |a: &Tensor, b: &Tensor| {
                (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            };
            assert!(max_diff(&ours, &theirs) < 1e-5, "k = {k}: values");
            // a loss that weights every output differently
            let r = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
            let ga = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (theirs * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
                let d = max_diff(ga.get(v).unwrap(), gb.get(v).unwrap());
                assert!(d < 1e-4, "k = {k}: gradient of {name} differs by {d}");
            }
        }
    }

    /// The stride-2 conv on our kernels (stride 1 at even pixels) matches candle's conv2d, in
    /// value and in the gradients of input, weight and bias.
    #[test]
    fn stride_two_matches_candle() {
        let dev = Device::Cpu;
        let ramp =
            |n: usize, k: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * k).sin() * 0.5).collect() };
        let x = Var::from_vec(ramp(2 * 3 * 10 * 8, 0.37), (2, 3, 10, 8), &dev).unwrap();
        let w = Var::from_vec(ramp(5 * 3 * 9, 0.11), (5, 3, 3, 3), &dev).unwrap();
        let b = Var::from_vec(ramp(5, 1.3), 5, &dev).unwrap();
        let conv = Conv {
            weight: w.as_tensor().clone(),
            bias: b.as_tensor().clone(),
            stride: 2,
            ops: Ops::default(),
        };
        let ours = conv.forward(x.as_tensor()).unwrap();
        let theirs = x
            .as_tensor()
            .conv2d(w.as_tensor(), 1, 2, 1, 1)
            .unwrap()
            .broadcast_add(&b.as_tensor().reshape((1, 5, 1, 1)).unwrap())
            .unwrap();
        assert_eq!(ours.dims(), &[2, 5, 5, 4]);
        let close = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            d.to_scalar::<f32>().unwrap()
        };
        assert!(close(&ours, &theirs) < 1e-5);
        // the same scalar loss through each path
        let target = Tensor::new(ramp(2 * 5 * 5 * 4, 0.7), &dev)
            .unwrap()
            .reshape((2, 5, 5, 4))
            .unwrap();
        let g1 = (&ours * &target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (&theirs * &target)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &w, &b] {
            let (a, c) = (
                g1.get(v.as_tensor()).unwrap(),
                g2.get(v.as_tensor()).unwrap(),
            );
            assert!(close(a, c) < 1e-4, "gradient differs by {}", close(a, c));
        }
    }
}
