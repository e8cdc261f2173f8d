//! Adam (Kingma & Ba) over candle [`Var`]s, with its moments in the open so that checkpoints
//! carry them. The update is candle's `AdamW` with weight decay 0 (the same expressions in the
//! same order), which keeps its moments private.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Adam's hyper-parameters (the paper's: β₁ 0.9, β₂ 0.999, ε 1e-8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// One parameter with its first and second moments.
pub struct Slot {
    pub name: String,
    pub var: Var,
    pub m: Tensor,
    pub v: Tensor,
}

pub struct Adam {
    /// Sorted by name.
    pub slots: Vec<Slot>,
    /// Updates done so far (Adam's `t`).
    pub t: u64,
    pub params: AdamParams,
}

impl Adam {
    /// Fresh moments (zeros) for `vars`.
    pub fn new(mut vars: Vec<(String, Var)>, params: AdamParams) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.as_tensor().zeros_like()?;
                let v = var.as_tensor().zeros_like()?;
                Ok(Slot { name, var, m, v })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            t: 0,
            params,
        })
    }

    /// One update at learning rate `lr`. A parameter without a gradient is left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.t += 1;
        let AdamParams { beta1, beta2, eps } = self.params;
        let t = self.t as i32;
        let scale_m = 1f64 / (1f64 - beta1.powi(t));
        let scale_v = 1f64 / (1f64 - beta2.powi(t));
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let m = ((&slot.m * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((&slot.v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&m * scale_m)?;
            let v_hat = (&v * scale_v)?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            let theta = (slot.var.as_tensor() - (update * lr)?)?;
            slot.var.set(&theta)?;
            slot.m = m;
            slot.v = v;
        }
        Ok(())
    }
}
