//! The IMDN family as candle modules, with the authors' parameter names ([`crate::names`]) so
//! that their state dicts map 1:1, and detection of the variant from a weights file's tensor
//! shapes.

mod blocks;
mod imdn;
mod rtc;

use std::fmt;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

pub use blocks::{Cca, Conv, Imdb, ImdbSpeed, conv, lrelu};
pub use imdn::{Body, Imdn, ImdnAs, Upsampler};
pub use rtc::ImdnRtc;

use crate::names::{
    self, FEA_CONV, FEA_CONV_0, INPUT_SKIP, RTC_HEAD, RTC_UPSAMPLER, SCALE_EMBED, UPSAMPLER,
};
use crate::ops::Ops;
pub use crate::variant::Variant;
use crate::weights::Tensors;

/// The range of scales IMDN_AS is trained on; [`scale_code`] clamps to it.
pub const AS_SCALES: (f64, f64) = (1.1, 4.0);

/// What IMDN_AS with a scale input is told about a frame bicubic-upscaled by `scale`:
/// `log2(scale) − 1`, octaves above ×2 (0 at ×2, 1 at ×4), with `scale` clamped to
/// [`AS_SCALES`]: outside them the network would extrapolate.
pub fn scale_code(scale: f64) -> f32 {
    (scale.clamp(AS_SCALES.0, AS_SCALES.1).log2() - 1.0) as f32
}

/// [`scale_code`] of a frame bicubic-upscaled from `from` to `to` (the mean of the two axes'
/// codes when they differ).
pub fn scale_code_between(from: (usize, usize), to: (usize, usize)) -> f32 {
    let axis = |a: usize, b: usize| scale_code(b as f64 / a.max(1) as f64);
    0.5 * (axis(from.0, to.0) + axis(from.1, to.1))
}

/// A network's shape: everything needed to build it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub variant: Variant,
    pub channels: usize,
    pub blocks: usize,
    /// The pixel-shuffle factor of the upsampler (4 for IMDN_AS, whose front end divides by 4).
    pub upsampler_scale: usize,
    /// IMDN_AS only: the output adds the input frame, scaled by a learned per-channel gain
    /// (`input_skip`, ours: the authors' IMDN_AS has no such path), so that the network learns
    /// the detail missing from the bicubic frame instead of the whole frame.
    pub input_skip: bool,
    /// IMDN_AS only: the network is told the scale the frame was upscaled by
    /// ([`scale_code`] times a learned per-channel embedding, `scale_embed`, added to the
    /// first conv's output; ours, as the input skip). Without it the network must guess the
    /// scale from the frame, and over-sharpens soft textures at small scales.
    pub scale_input: bool,
}

impl Config {
    /// The paper's IMDN ×`scale`.
    pub fn imdn(scale: usize) -> Self {
        Self {
            variant: Variant::Imdn,
            channels: 64,
            blocks: 6,
            upsampler_scale: scale,
            input_skip: false,
            scale_input: false,
        }
    }

    /// The paper's IMDN_RTC with a ×`scale` upsampler.
    pub fn rtc(scale: usize) -> Self {
        Self {
            variant: Variant::Rtc,
            channels: 12,
            blocks: 5,
            upsampler_scale: scale,
            input_skip: false,
            scale_input: false,
        }
    }

    /// IMDN_AS as this project trains it: the paper's network with the input skip and the
    /// scale input.
    pub fn imdn_as() -> Self {
        Self {
            variant: Variant::As,
            channels: 64,
            blocks: 6,
            upsampler_scale: 4,
            input_skip: true,
            scale_input: true,
        }
    }

    /// The paper's IMDN_AS, without the input skip or the scale input (the authors' checkpoint).
    pub fn imdn_as_paper() -> Self {
        Self {
            input_skip: false,
            scale_input: false,
            ..Self::imdn_as()
        }
    }

    /// Output size ÷ input size of the network itself (IMDN_AS keeps the size).
    pub fn net_scale(&self) -> usize {
        match self.variant {
            Variant::As => 1,
            _ => self.upsampler_scale,
        }
    }

    /// Input sides must be multiples of this (IMDN_AS: two stride-2 convs, then ×4).
    pub fn input_multiple(&self) -> usize {
        match self.variant {
            Variant::As => 4,
            _ => 1,
        }
    }

    /// How far, in input pixels, an output pixel depends on the input: the radius that tiles
    /// need as context past their share and that edge replication pads (CCA's per-channel
    /// statistics, which see the whole frame, aside: tiles gather them, [`crate::acs`]). Each
    /// block has four 3×3 convs.
    /// - IMDN: head + blocks + `LR_conv` + upsampler, 1 + 4·6 + 1 + 1 = 27 (receptive field).
    /// - IMDN_RTC: head + blocks + upsampler, 1 + 4·5 + 1 = 22 (receptive field).
    /// - IMDN_AS: its receptive field is 110 (the body's 26 convs run at ¼ size, so count 4×),
    ///   but its measured influence fades much sooner: tiles with 48 pixels of context equal
    ///   the whole frame within 5e-6 (32: 3.4e-4; the attention frozen), so 48, which
    ///   keeps 256-pixel tiles at 1.4× the whole frame's work instead of 15× (`tests/acs.rs`).
    pub fn reach(&self) -> usize {
        let blocks = 4 * self.blocks;
        match self.variant {
            Variant::Imdn => 1 + blocks + 1 + 1,
            Variant::Rtc => 1 + blocks + 1,
            Variant::As => (3 + 4 * (blocks + 2) + 3).min(48),
        }
    }

    /// Input pixels replicated around a frame so that a flat frame comes back flat
    /// ([`crate::acs::EdgeMode::Replicate`]): measured, far below the reach. With 8 (IMDN,
    /// IMDN_RTC) a flat frame's border is as close to its level as the interior (within 0.03
    /// levels, every shipped scale, levels 0 to 255); IMDN_AS needs a multiple of 4, and 12
    /// leaves at most 0.19 levels (8: 0.35). 4 keeps every pixel within 1 level but leaves up
    /// to 0.9 (RTC ×3), and costs as much: the copies in and out are most of the cost
    /// (`BENCHMARKS.md`). Without a margin borders are off by up to 34 levels.
    pub fn edge_margin(&self) -> usize {
        match self.variant {
            Variant::As => 12,
            Variant::Imdn | Variant::Rtc => 8,
        }
    }

    /// Multiply-adds ×2 per input pixel, for GFLOP/s figures (convs only).
    pub fn flops_per_pixel(&self) -> f64 {
        let c = self.channels as f64;
        let d = (self.channels / 4) as f64;
        let r = c - d;
        let conv = |cin: f64, cout: f64, k: f64| 2.0 * cin * cout * k * k;
        let block =
            conv(c, c, 3.0) + 2.0 * conv(r, c, 3.0) + conv(r, d, 3.0) + conv(4.0 * d, c, 1.0);
        let s2 = (self.upsampler_scale * self.upsampler_scale) as f64;
        let up = conv(c, 3.0 * s2, 3.0);
        match self.variant {
            Variant::Imdn => {
                conv(3.0, c, 3.0)
                    + self.blocks as f64 * block
                    + conv(c * self.blocks as f64, c, 1.0)
                    + conv(c, c, 3.0)
                    + up
            }
            Variant::Rtc => conv(3.0, c, 3.0) + self.blocks as f64 * block + conv(c, c, 1.0) + up,
            Variant::As => {
                // the body runs at 1/16 of the pixels
                conv(3.0, c, 3.0) / 4.0
                    + (conv(c, c, 3.0)
                        + self.blocks as f64 * block
                        + conv(c * self.blocks as f64, c, 1.0)
                        + conv(c, c, 3.0)
                        + up)
                        / 16.0
            }
        }
    }

    /// Detects the variant and its shape from parameter names and shapes.
    pub fn detect(tensors: &Tensors) -> Result<Self, String> {
        let dims = |name: &str| tensors.get(name).map(|t| t.dims().to_vec());
        let count = |f: &dyn Fn(usize) -> String| {
            (0..).take_while(|&i| tensors.contains_key(&f(i))).count()
        };
        let conv_shape = |name: &str, cin: usize, k: usize| -> Result<usize, String> {
            match dims(name) {
                Some(d) if d.len() == 4 && d[1] == cin && d[2] == k && d[3] == k => Ok(d[0]),
                Some(d) => Err(format!(
                    "{name} has shape {d:?}, expected [C, {cin}, {k}, {k}]"
                )),
                None => Err(format!("{name} is missing")),
            }
        };
        let shuffle_scale = |name: &str, channels: usize| -> Result<usize, String> {
            let cout = conv_shape(name, channels, 3)?;
            (1..=8).find(|s| 3 * s * s == cout).ok_or_else(|| {
                format!("{name} has {cout} output channels, expected 3·s² for a scale s")
            })
        };
        // each variant by its head, in this order: (variant, head, block i from 0, upsampler)
        type Layout = (Variant, &'static str, fn(usize) -> String, &'static str);
        let layouts: [Layout; 3] = [
            (Variant::Rtc, RTC_HEAD, names::rtc_block, RTC_UPSAMPLER),
            (Variant::As, FEA_CONV_0, |i| names::imdb(i + 1), UPSAMPLER),
            (Variant::Imdn, FEA_CONV, |i| names::imdb(i + 1), UPSAMPLER),
        ];
        let Some(&(variant, head, block, upsampler)) = layouts
            .iter()
            .find(|l| tensors.contains_key(&names::weight(l.1)))
        else {
            return Err(format!(
                "not an IMDN weights file: none of {} (IMDN), {} (IMDN_AS) or {} (IMDN_RTC) is \
                 present",
                names::weight(FEA_CONV),
                names::weight(FEA_CONV_0),
                names::weight(RTC_HEAD)
            ));
        };
        let channels = conv_shape(&names::weight(head), 3, 3)?;
        let blocks = count(&|i| names::weight(&names::join(&block(i), names::C1)));
        let upsampler = names::weight(upsampler);
        if blocks == 0 {
            return Err(format!("{}: no distillation blocks found", variant.name()));
        }
        if channels % 4 != 0 {
            return Err(format!(
                "{}: {channels} channels is not a multiple of 4",
                variant.name()
            ));
        }
        let upsampler_scale = shuffle_scale(&upsampler, channels)?;
        if variant == Variant::As && upsampler_scale != 4 {
            return Err(format!(
                "IMDN_AS needs a ×4 upsampler, {upsampler} is ×{upsampler_scale}"
            ));
        }
        let input_skip = match dims(INPUT_SKIP) {
            None => false,
            Some(d) if variant == Variant::As && d == [3] => true,
            Some(d) => {
                return Err(format!(
                    "{INPUT_SKIP} {d:?}: only IMDN_AS has an input skip, of shape [3]"
                ));
            }
        };
        let scale_input = match dims(SCALE_EMBED) {
            None => false,
            Some(d) if variant == Variant::As && d == [channels] => true,
            Some(d) => {
                return Err(format!(
                    "{SCALE_EMBED} {d:?}: only IMDN_AS has a scale embedding, of shape \
                     [{channels}]"
                ));
            }
        };
        Ok(Self {
            variant,
            channels,
            blocks,
            upsampler_scale,
            input_skip,
            scale_input,
        })
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variant {
            Variant::As => {
                let extras: Vec<&str> = [
                    (self.input_skip, "input skip"),
                    (self.scale_input, "scale input"),
                ]
                .iter()
                .filter_map(|&(on, name)| on.then_some(name))
                .collect();
                match extras.is_empty() {
                    true => write!(f, "IMDN_AS, any scale")?,
                    false => write!(f, "IMDN_AS with {}, any scale", extras.join(" and "))?,
                }
            }
            v => write!(f, "{} ×{}", v.name(), self.upsampler_scale)?,
        }
        write!(f, " ({} channels, {} blocks)", self.channels, self.blocks)
    }
}

/// Any network of the family, ready to run on NCHW tensors with values in [0, 1].
pub enum Network {
    Imdn(Imdn),
    Rtc(ImdnRtc),
    As(ImdnAs),
}

impl Network {
    /// Builds the network of `config`, taking its parameters from `vb`, on our ops.
    pub fn new(config: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::with_ops(config, vb, Ops::default())
    }

    /// As [`Network::new`], its layers running on `ops` (for comparing them).
    pub fn with_ops(config: &Config, vb: VarBuilder, ops: Ops) -> candle_core::Result<Self> {
        let Config {
            channels,
            blocks,
            upsampler_scale,
            ..
        } = *config;
        Ok(match config.variant {
            Variant::Imdn => Network::Imdn(Imdn::new(channels, blocks, upsampler_scale, ops, vb)?),
            Variant::Rtc => Network::Rtc(ImdnRtc::new(channels, blocks, upsampler_scale, ops, vb)?),
            Variant::As => Network::As(ImdnAs::new(config, ops, vb)?),
        })
    }

    /// Detects the variant of `tensors` and builds it on `device` with parameters in `dtype`.
    pub fn from_tensors(
        tensors: Tensors,
        device: &Device,
        dtype: DType,
    ) -> Result<(Self, Config), String> {
        let config = Config::detect(&tensors)?;
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let net = Network::new(&config, vb).map_err(|e| format!("does not fit {config}: {e}"))?;
        Ok((net, config))
    }
}

impl Network {
    /// The forward pass; `scale_codes` (`[N]`, see [`scale_code`]) is what IMDN_AS with a scale
    /// input is told of each frame, ignored by the other networks.
    pub fn forward_at(
        &self,
        x: &Tensor,
        scale_codes: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match self {
            Network::Imdn(n) => n.forward(x),
            Network::Rtc(n) => n.forward(x),
            Network::As(n) => n.forward_at(x, scale_codes),
        }
    }
}

/// Without scale codes: IMDN_AS with a scale input refuses to run.
impl Module for Network {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_at(x, None)
    }
}

/// Freshly initialised parameters for `config` (candle's default init: Kaiming-normal weights,
/// uniform biases), as a training run starts from.
pub fn init_tensors(config: &Config, device: &Device) -> candle_core::Result<Tensors> {
    let varmap = candle_nn::VarMap::new();
    Network::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    Ok(vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}
