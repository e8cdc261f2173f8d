//! IMDN_RTC: the real-time variant (12 channels, blocks without CCA).
//!
//! Parameter names ([`crate::names`]) follow the authors' `nn.Sequential`: `model.0` (3×3 head),
//! `model.1.sub.0..n-1` (blocks), `model.1.sub.n` (1×1 conv, then the shortcut to the head's
//! output), `model.2` (3×3 conv to 3·s² channels, then pixel shuffle).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{Conv, ImdbSpeed, conv};
use super::imdn::Upsampler;
use crate::names::{self, RTC_HEAD, RTC_UPSAMPLER};
use crate::ops::Ops;

pub struct ImdnRtc {
    head: Conv,
    blocks: Vec<ImdbSpeed>,
    tail: Conv,
    upsampler: Upsampler,
}

impl ImdnRtc {
    pub fn new(
        channels: usize,
        num_blocks: usize,
        scale: usize,
        ops: Ops,
        vb: VarBuilder,
    ) -> Result<Self> {
        let blocks = (0..num_blocks)
            .map(|i| ImdbSpeed::new(channels, ops, vb.pp(names::rtc_block(i))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            head: conv(3, channels, 3, 1, ops, vb.pp(RTC_HEAD))?,
            blocks,
            tail: conv(
                channels,
                channels,
                1,
                1,
                ops,
                vb.pp(names::rtc_tail(num_blocks)),
            )?,
            upsampler: Upsampler::new(channels, scale, ops, vb.pp(RTC_UPSAMPLER))?,
        })
    }
}

impl Module for ImdnRtc {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let fea = self.head.forward(x)?;
        let mut y = fea.clone();
        for block in &self.blocks {
            y = block.forward(&y)?;
        }
        let y = (self.tail.forward(&y)? + fea)?;
        self.upsampler.forward(&y)
    }
}
