//! The building blocks shared by the IMDN family: convolutions, the LeakyReLU, contrast-aware
//! channel attention (CCA) and the two information multi-distillation blocks.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

/// LeakyReLU slope used everywhere in IMDN.
pub const LRELU_SLOPE: f64 = 0.05;

/// LeakyReLU: our one-pass op on the CPU; elsewhere `max(x, slope·x)`, two passes instead of
/// the five of `candle_nn::ops::leaky_relu`.
pub fn lrelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && crate::cpu::autograd::enabled() {
        return crate::cpu::autograd::leaky_relu(x);
    }
    x.maximum(&(x * LRELU_SLOPE)?)
}

/// A k×k convolution with bias and "same" padding ((k−1)/2), as the authors' `conv_layer`
/// (`weight` `[cout, cin, k, k]`, `bias` `[cout]`). On the CPU in f32, stride 1 runs on our kernels
/// with their im2col-GEMM backward (training); elsewhere candle's conv2d (cuDNN on CUDA).
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
}

impl Conv {
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.weight.dim(2)?;
        if x.device().is_cpu()
            && x.dtype() == DType::F32
            && self.stride == 1
            && crate::cpu::autograd::enabled()
        {
            return crate::cpu::autograd::conv2d_same(x, &self.weight, &self.bias);
        }
        let y = x.conv2d(&self.weight, (k - 1) / 2, self.stride, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
    }
}

/// Builds a [`Conv`] from `vb` (`weight`, `bias`), initialised as candle-nn's conv2d when new.
pub fn conv(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv> {
    let weight = vb.get_with_hints(
        (cout, cin, k, k),
        "weight",
        candle_nn::init::DEFAULT_KAIMING_NORMAL,
    )?;
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    let bias = vb.get_with_hints(
        cout,
        "bias",
        candle_nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )?;
    Ok(Conv {
        weight,
        bias,
        stride,
    })
}

/// Contrast-aware channel attention: per channel `std + mean` over H×W (population std),
/// 1×1 conv → ReLU → 1×1 conv → sigmoid, then scales the input's channels.
/// Parameter names: `conv_du.0`, `conv_du.2` (the authors' `nn.Sequential`).
pub struct Cca {
    down: Conv,
    up: Conv,
}

impl Cca {
    pub fn new(channels: usize, reduction: usize, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("conv_du");
        let mid = channels / reduction;
        Ok(Self {
            down: conv(channels, mid, 1, 1, vb.pp("0"))?,
            up: conv(mid, channels, 1, 1, vb.pp("2"))?,
        })
    }
}

impl Module for Cca {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
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
}

impl Distill {
    fn new(channels: usize, vb: &VarBuilder) -> Result<Self> {
        // distillation rate 0.25, as the authors' int(in_channels * 0.25)
        let distilled = channels / 4;
        let remaining = channels - distilled;
        Ok(Self {
            c1: conv(channels, channels, 3, 1, vb.pp("c1"))?,
            c2: conv(remaining, channels, 3, 1, vb.pp("c2"))?,
            c3: conv(remaining, channels, 3, 1, vb.pp("c3"))?,
            c4: conv(remaining, distilled, 3, 1, vb.pp("c4"))?,
            distilled,
            remaining,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (d, r) = (self.distilled, self.remaining);
        let o1 = lrelu(&self.c1.forward(x)?)?;
        let o2 = lrelu(&self.c2.forward(&o1.narrow(1, d, r)?)?)?;
        let o3 = lrelu(&self.c3.forward(&o2.narrow(1, d, r)?)?)?;
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
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let distill = Distill::new(channels, &vb)?;
        let cat = distill.distilled * 4;
        Ok(Self {
            cca: Cca::new(cat, 16, vb.pp("cca"))?,
            c5: conv(cat, channels, 1, 1, vb.pp("c5"))?,
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
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let distill = Distill::new(channels, &vb)?;
        let cat = distill.distilled * 4;
        Ok(Self {
            c5: conv(cat, channels, 1, 1, vb.pp("c5"))?,
            distill,
        })
    }
}

impl Module for ImdbSpeed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c5.forward(&self.distill.forward(x)?)? + x
    }
}
