//! IMDN (×2/×3/×4) and IMDN_AS: 64-channel networks of information multi-distillation blocks.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::Config;
use super::blocks::{Conv, Imdb, conv, lrelu};
use crate::names::{
    self, FEA_CONV, FEA_CONV_0, FEA_CONV_2, FUSE, INPUT_SKIP, LR_CONV, SCALE_EMBED, UPSAMPLER,
};
use crate::ops::Ops;

/// The part IMDN and IMDN_AS share: the blocks `IMDB1..n`, the 1×1 fusion `c.0` of all block
/// outputs with LeakyReLU, and `LR_conv` with the residual to the features.
pub struct Body {
    blocks: Vec<Imdb>,
    fuse: Conv,
    lr_conv: Conv,
    ops: Ops,
}

impl Body {
    pub fn new(channels: usize, num_blocks: usize, ops: Ops, vb: &VarBuilder) -> Result<Self> {
        let blocks = (1..=num_blocks)
            .map(|i| Imdb::new(channels, ops, vb.pp(names::imdb(i))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            blocks,
            fuse: conv(channels * num_blocks, channels, 1, 1, ops, vb.pp(FUSE))?,
            lr_conv: conv(channels, channels, 3, 1, ops, vb.pp(LR_CONV))?,
            ops,
        })
    }
}

impl Module for Body {
    fn forward(&self, fea: &Tensor) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(self.blocks.len());
        let mut x = fea.clone();
        for block in &self.blocks {
            x = block.forward(&x)?;
            outs.push(x.clone());
        }
        let fused = lrelu(&self.fuse.forward(&Tensor::cat(&outs, 1)?)?, self.ops)?;
        self.lr_conv.forward(&fused)? + fea
    }
}

/// The upsampler: a 3×3 conv to 3·s² channels and a pixel shuffle by s (`upsampler.0`).
pub struct Upsampler {
    conv: Conv,
    scale: usize,
}

impl Upsampler {
    pub fn new(channels: usize, scale: usize, ops: Ops, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: conv(channels, 3 * scale * scale, 3, 1, ops, vb)?,
            scale,
        })
    }
}

impl Module for Upsampler {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::pixel_shuffle(&self.conv.forward(x)?, self.scale)
    }
}

/// IMDN: `fea_conv` 3×3 → body → upsampler. Output is `scale ×` the input size.
pub struct Imdn {
    fea_conv: Conv,
    body: Body,
    upsampler: Upsampler,
}

impl Imdn {
    pub fn new(
        channels: usize,
        num_blocks: usize,
        scale: usize,
        ops: Ops,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            fea_conv: conv(3, channels, 3, 1, ops, vb.pp(FEA_CONV))?,
            body: Body::new(channels, num_blocks, ops, &vb)?,
            upsampler: Upsampler::new(channels, scale, ops, vb.pp(UPSAMPLER))?,
        })
    }
}

impl Module for Imdn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let fea = self.fea_conv.forward(x)?;
        self.upsampler.forward(&self.body.forward(&fea)?)
    }
}

/// IMDN_AS: two stride-2 3×3 convs (`fea_conv.0`, LeakyReLU, `fea_conv.2`) bring the frame to
/// ¼ size, the body runs there, and a ×4 upsampler returns to the input size. The input is a frame
/// already bicubic-upscaled to the target size; its sides must be multiples of 4 (see `acs`).
/// Ours, both optional: with `input_skip` the output adds the input scaled per channel; with
/// `scale_embed` the first conv's output adds the frame's scale code times a per-channel
/// embedding (before its LeakyReLU), so that the network knows the scale it refines.
pub struct ImdnAs {
    fea_conv0: Conv,
    fea_conv2: Conv,
    body: Body,
    upsampler: Upsampler,
    /// `[1, 3, 1, 1]` gains of the input added to the output.
    input_skip: Option<Tensor>,
    /// `[1, C, 1, 1]`, times each frame's scale code.
    scale_embed: Option<Tensor>,
    ops: Ops,
}

impl ImdnAs {
    pub fn new(config: &Config, ops: Ops, vb: VarBuilder) -> Result<Self> {
        let channels = config.channels;
        let input_skip = match config.input_skip {
            true => Some(
                vb.get_with_hints(3, INPUT_SKIP, candle_nn::Init::Const(1.0))?
                    .reshape((1, 3, 1, 1))?,
            ),
            false => None,
        };
        let scale_embed = match config.scale_input {
            true => Some(
                // random, so that networks built for tests depend on the scale (training
                // starts it at 0)
                vb.get_with_hints(
                    channels,
                    SCALE_EMBED,
                    candle_nn::Init::Randn {
                        mean: 0.0,
                        stdev: 0.5,
                    },
                )?
                .reshape((1, channels, 1, 1))?,
            ),
            false => None,
        };
        Ok(Self {
            fea_conv0: conv(3, channels, 3, 2, ops, vb.pp(FEA_CONV_0))?,
            fea_conv2: conv(channels, channels, 3, 2, ops, vb.pp(FEA_CONV_2))?,
            body: Body::new(channels, config.blocks, ops, &vb)?,
            upsampler: Upsampler::new(channels, 4, ops, vb.pp(UPSAMPLER))?,
            input_skip,
            scale_embed,
            ops,
        })
    }

    /// The forward pass of `n` frames with their scale codes (`[n]`), which a network with a
    /// scale input needs and one without ignores.
    pub fn forward_at(&self, x: &Tensor, scale_codes: Option<&Tensor>) -> Result<Tensor> {
        let mut front = self.fea_conv0.forward(x)?;
        if let Some(embed) = &self.scale_embed {
            let codes = scale_codes.ok_or_else(|| {
                candle_core::Error::Msg(
                    "IMDN_AS with a scale input needs the scale each frame was upscaled by".into(),
                )
            })?;
            let n = x.dim(0)?;
            let codes = codes.to_dtype(embed.dtype())?.reshape((n, 1, 1, 1))?;
            front = front.broadcast_add(&codes.broadcast_mul(embed)?)?;
        }
        let fea = self.fea_conv2.forward(&lrelu(&front, self.ops)?)?;
        let out = self.upsampler.forward(&self.body.forward(&fea)?)?;
        match &self.input_skip {
            Some(gain) => out + x.broadcast_mul(gain)?,
            None => Ok(out),
        }
    }
}

/// Without scale codes: a network with a scale input refuses to run.
impl Module for ImdnAs {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_at(x, None)
    }
}
