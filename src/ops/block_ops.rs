//! The distillation block's two multi-op stages as single candle ops with hand-written
//! backwards, for training on the CPU:
//!
//! - [`distill`]: the progressive refinement (four 3×3 convs, three LeakyReLUs, the channel
//!   splits and the concatenation of the distilled parts);
//! - [`cca`]: contrast-aware channel attention (per-channel std + mean, 1×1 → ReLU → 1×1 →
//!   sigmoid, channel scaling).
//!
//! Why: candle's backward gives every node of the graph a zero-filled gradient plus an
//! addition, and every `narrow` a zero-padded concatenation as well; in a block of ~25 nodes
//! over 64-channel activations that was a third of a training step (memset, memmove and
//! elementwise adds in the profile). As one node each, a block's backward keeps its
//! convolutions and a few passes over the activations. Each op keeps what its backward needs
//! (the inputs of the 2nd–4th convs; the channel statistics) until the graph is dropped.
//!
//! The parameters travel packed into one 1-D tensor (a custom op has at most three inputs);
//! candle's backward of that small concatenation hands each parameter its gradient.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, StorageRef, Tensor};
use rayon::prelude::*;

use super::autograd::{SLOPE, adjoint_weights, slice};
use crate::kernels::Kernels;
use crate::kernels::plan::conv_nchw;
use crate::kernels::types::{ConvParams, lrelu_in_place};

fn err(msg: String) -> candle_core::Error {
    candle_core::Error::Msg(msg)
}

/// The parameters flattened and concatenated, in order.
fn pack(params: &[&Tensor]) -> Result<Tensor> {
    let flat = params
        .iter()
        .map(|p| p.flatten_all())
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&flat, 0)
}

/// `packed` cut into consecutive slices of `lens`.
fn unpack<const K: usize>(packed: &[f32], lens: [usize; K]) -> [&[f32]; K] {
    let mut rest = packed;
    lens.map(|len| {
        let (head, tail) = rest.split_at(len);
        rest = tail;
        head
    })
}

/// The f32 data of a contiguous CPU tensor, from its read-locked storage (no copy).
fn data<'a>((storage, layout): &'a (StorageRef<'_>, &Layout), what: &str) -> Result<&'a [f32]> {
    match &**storage {
        Storage::Cpu(s) => slice(s, layout, what),
        _ => Err(err(format!(
            "{what}: the fused block ops run on the CPU only"
        ))),
    }
}

/// Sum of each plane of `planes` (`len` floats each) into `out`.
fn plane_sums_into(planes: &[f32], len: usize, out: &mut [f32]) {
    for (o, plane) in out.iter_mut().zip(planes.chunks_exact(len)) {
        *o += plane.iter().sum::<f32>();
    }
}

/// The progressive refinement of a distillation block with `x.dim(1)` channels: `d` = ¼ of them
/// distilled at each step. `params`: c1..c4's weight and bias, in that order; the convs run on
/// `kernels`.
pub fn distill(x: &Tensor, params: [&Tensor; 8], kernels: Kernels) -> Result<Tensor> {
    let c = x.dim(1)?;
    let op = Distill {
        kernels,
        c,
        d: c / 4,
        r: c - c / 4,
        saved: Mutex::new(Vec::new()),
    };
    x.contiguous()?.apply_op2(&pack(&params)?, op)
}

struct Distill {
    kernels: Kernels,
    c: usize,
    d: usize,
    r: usize,
    /// The remaining channels after c1, c2, c3 (post-activation, `[n, r, h, w]`): the inputs of
    /// c2..c4, which their weight gradients need.
    saved: Mutex<Vec<Vec<f32>>>,
}

impl Distill {
    /// (cin, cout) of c1..c4.
    fn convs(&self) -> [(usize, usize); 4] {
        let (c, d, r) = (self.c, self.d, self.r);
        [(c, c), (r, c), (r, c), (r, d)]
    }

    /// Lengths of c1..c4's weight and bias in the packed parameters.
    fn lens(&self) -> [usize; 8] {
        let [a, b, c, d] = self.convs().map(|(cin, cout)| [cout * cin * 9, cout]);
        [a[0], a[1], b[0], b[1], c[0], c[1], d[0], d[1]]
    }

    /// The gradients of the input and of the packed parameters, from the input `x`, the
    /// parameters `p`, the block's output `res` and its gradient `grad`.
    fn backward(
        &self,
        saved: &[Vec<f32>],
        [x, p, res, grad]: [&[f32]; 4],
        n: usize,
        (h, w): (usize, usize),
    ) -> (Vec<f32>, Vec<f32>) {
        let (d, r, hw) = (self.d, self.r, h * w);
        let cat = 4 * d;
        let lens = self.lens();
        let p = unpack(p, lens);
        let mut dparams = vec![0f32; lens.iter().sum()];
        let dp = {
            let mut rest = dparams.as_mut_slice();
            lens.map(|len| {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                rest = tail;
                head
            })
        };
        // dL/d(the remaining channels of the previous conv's output), [n, r, h, w]
        let mut upstream: Vec<f32> = Vec::new();
        for (k, (cin, cout)) in self.convs().into_iter().enumerate().rev() {
            let last = k == 3;
            // dL/d(conv k's output): its distilled part from the block's output gradient, the
            // rest from the next conv; then LeakyReLU', whose sign test on the output equals the
            // one on its input
            let mut g = Vec::with_capacity(n * cout * hw);
            for i in 0..n {
                let start = g.len();
                g.extend_from_slice(&grad[(i * cat + k * d) * hw..][..d * hw]);
                if last {
                    continue;
                }
                g.extend_from_slice(&upstream[i * r * hw..][..r * hw]);
                let outputs = res[(i * cat + k * d) * hw..][..d * hw]
                    .iter()
                    .chain(&saved[k][i * r * hw..][..r * hw]);
                for (gv, &o) in g[start..].iter_mut().zip(outputs) {
                    if o <= 0.0 {
                        *gv *= SLOPE;
                    }
                }
            }
            let input: &[f32] = if k == 0 { x } else { &saved[k - 1] };
            let dw = self
                .kernels
                .weight_grad(input, &g, n, (h, w), (cin, cout, 3));
            dp[2 * k].copy_from_slice(&dw);
            for gi in g.chunks_exact(cout * hw) {
                plane_sums_into(gi, hw, dp[2 * k + 1]);
            }
            let weights = adjoint_weights(p[2 * k], cin, cout, 3);
            let adjoint = ConvParams::new(weights, vec![0.0; cin], cout, cin, 3);
            upstream = conv_nchw(&g, n, (h, w), &self.kernels.plan(adjoint));
        }
        (upstream, dparams)
    }

    fn check(&self, input: &Shape, packed: usize) -> Result<()> {
        let expected: usize = self.lens().iter().sum();
        if input.dims().get(1) != Some(&self.c) || packed != expected {
            return Err(err(format!(
                "distill: input {input:?} and {packed} parameters do not fit a {}-channel block \
                 ({expected} parameters)",
                self.c
            )));
        }
        Ok(())
    }
}

impl CustomOp2 for Distill {
    fn name(&self) -> &'static str {
        "imdn-distill"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, _, h, w) = l1.shape().dims4()?;
        self.check(l1.shape(), l2.shape().elem_count())?;
        let x = slice(s1, l1, "input")?;
        let p = unpack(slice(s2, l2, "parameters")?, self.lens());
        let (d, r, hw) = (self.d, self.r, h * w);
        let cat = 4 * d;
        let mut out = vec![0f32; n * cat * hw];
        let mut saved: Vec<Vec<f32>> = Vec::with_capacity(3);
        for (k, (cin, cout)) in self.convs().into_iter().enumerate() {
            let conv = ConvParams::new(p[2 * k].to_vec(), p[2 * k + 1].to_vec(), cin, cout, 3);
            let conv = self.kernels.plan(conv);
            let input = if k == 0 { x } else { &saved[k - 1] };
            let mut o = conv_nchw(input, n, (h, w), &conv);
            let last = k == 3;
            if !last {
                lrelu_in_place(&mut o);
            }
            // the first d channels are distilled into the output, the rest feed the next conv
            let mut rest = Vec::with_capacity(if last { 0 } else { n * r * hw });
            for (i, o) in o.chunks_exact(cout * hw).enumerate() {
                let (head, tail) = o.split_at(d * hw);
                out[(i * cat + k * d) * hw..][..d * hw].copy_from_slice(head);
                rest.extend_from_slice(tail);
            }
            if !last {
                saved.push(rest);
            }
        }
        *self
            .saved
            .lock()
            .map_err(|_| err("distill: poisoned".into()))? = saved;
        Ok((CpuStorage::F32(out), Shape::from((n, cat, h, w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        packed: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let saved = self
            .saved
            .lock()
            .map_err(|_| err("distill: poisoned".into()))?;
        if saved.len() != 3 {
            return Err(err("distill: backward without a forward".into()));
        }
        let grad = grad.contiguous()?;
        let locked = [x, packed, res, &grad].map(|t| t.storage_and_layout());
        let (dx, dparams) = self.backward(
            &saved,
            [
                data(&locked[0], "input")?,
                data(&locked[1], "parameters")?,
                data(&locked[2], "output")?,
                data(&locked[3], "gradient")?,
            ],
            n,
            (h, w),
        );
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (n, c, h, w), dev)?),
            Some(Tensor::from_vec(dparams, packed.dims(), dev)?),
        ))
    }
}

/// Contrast-aware channel attention on `x` [n, c, h, w]: `params` = the down (c → m) and up
/// (m → c) 1×1 convs' weight and bias.
pub fn cca(x: &Tensor, params: [&Tensor; 4]) -> Result<Tensor> {
    let op = Cca {
        c: x.dim(1)?,
        m: params[1].elem_count(),
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op2(&pack(&params)?, op)
}

struct Cca {
    c: usize,
    m: usize,
    saved: Mutex<Option<CcaSaved>>,
}

/// The forward's small intermediates: per image and channel (`[n, c]`) or hidden unit (`[n, m]`).
struct CcaSaved {
    mean: Vec<f32>,
    std: Vec<f32>,
    /// The down conv's output, before its ReLU.
    hidden: Vec<f32>,
    attn: Vec<f32>,
}

impl Cca {
    fn lens(&self) -> [usize; 4] {
        [self.m * self.c, self.m, self.c * self.m, self.c]
    }

    /// The gradients of the input and of the packed parameters, from the input `x`, the
    /// parameters `p` and the output gradient `grad`, with `hw` pixels per plane.
    fn backward(
        &self,
        s: &CcaSaved,
        [x, p, grad]: [&[f32]; 3],
        n: usize,
        hw: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let (c, m) = (self.c, self.m);
        let lens = self.lens();
        let mut dparams = vec![0f32; lens.iter().sum()];
        let [down_w, _, up_w, _] = unpack(p, lens);
        let (d_down_w, rest) = dparams.split_at_mut(lens[0]);
        let (d_down_b, rest) = rest.split_at_mut(lens[1]);
        let (d_up_w, d_up_b) = rest.split_at_mut(lens[2]);
        // dL/d(attention) of each plane: Σ grad · x
        let d_attn: Vec<f32> = grad
            .par_chunks_exact(hw)
            .zip(x.par_chunks_exact(hw))
            .map(|(g, x)| g.iter().zip(x).map(|(&g, &v)| g as f64 * v as f64).sum())
            .map(|v: f64| v as f32)
            .collect();
        // back through sigmoid, up, ReLU and down to dL/d(std + mean)
        let mut d_stats = vec![0f32; n * c];
        for i in 0..n {
            let a = &s.attn[i * c..][..c];
            let hid = &s.hidden[i * m..][..m];
            let dz: Vec<f32> = (0..c)
                .map(|o| d_attn[i * c + o] * a[o] * (1.0 - a[o]))
                .collect();
            let mut dh = vec![0f32; m];
            for (o, &dzo) in dz.iter().enumerate() {
                d_up_b[o] += dzo;
                for j in 0..m {
                    d_up_w[o * m + j] += dzo * hid[j].max(0.0);
                    dh[j] += up_w[o * m + j] * dzo;
                }
            }
            let (mean, std) = (&s.mean[i * c..][..c], &s.std[i * c..][..c]);
            let ds = &mut d_stats[i * c..][..c];
            for j in 0..m {
                // candle's ReLU passes the gradient at 0
                let dhj = if hid[j] >= 0.0 { dh[j] } else { 0.0 };
                d_down_b[j] += dhj;
                for ci in 0..c {
                    d_down_w[j * c + ci] += dhj * (mean[ci] + std[ci]);
                    ds[ci] += down_w[j * c + ci] * dhj;
                }
            }
        }
        // dx = grad · a + d(std + mean)/dx · dL/d(std + mean), where
        // d std/dx = (x − mean) / (hw · std) and d mean/dx = 1 / hw
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_exact_mut(hw)
            .zip(grad.par_chunks_exact(hw))
            .zip(x.par_chunks_exact(hw))
            .enumerate()
            .for_each(|(q, ((dx, g), x))| {
                let (a, ds, mean, std) = (s.attn[q], d_stats[q], s.mean[q], s.std[q]);
                let per_mean = ds / hw as f32;
                let per_dev = if std > 0.0 { per_mean / std } else { 0.0 };
                for ((d, &g), &v) in dx.iter_mut().zip(g).zip(x) {
                    *d = g * a + per_dev * (v - mean) + per_mean;
                }
            });
        (dx, dparams)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

impl CustomOp2 for Cca {
    fn name(&self) -> &'static str {
        "imdn-cca"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l1.shape().dims4()?;
        let expected: usize = self.lens().iter().sum();
        if c != self.c || l2.shape().elem_count() != expected {
            return Err(err(format!(
                "cca: input {:?} and {} parameters do not fit {c} channels",
                l1.shape(),
                l2.shape().elem_count()
            )));
        }
        let (m, hw) = (self.m, h * w);
        let x = slice(s1, l1, "input")?;
        let [down_w, down_b, up_w, up_b] = unpack(slice(s2, l2, "parameters")?, self.lens());
        // mean and population std of each plane, summed in f64
        let (mean, std): (Vec<f32>, Vec<f32>) = x
            .par_chunks_exact(hw)
            .map(|plane| {
                let mean = plane.iter().map(|&v| v as f64).sum::<f64>() / hw as f64;
                let var = plane
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / hw as f64;
                (mean as f32, var.sqrt() as f32)
            })
            .unzip();
        let stats: Vec<f32> = mean.iter().zip(&std).map(|(m, s)| m + s).collect();
        let mut hidden = vec![0f32; n * m];
        let mut attn = vec![0f32; n * c];
        for i in 0..n {
            let s = &stats[i * c..][..c];
            let hid = &mut hidden[i * m..][..m];
            for (j, hv) in hid.iter_mut().enumerate() {
                *hv = down_b[j] + dot(&down_w[j * c..][..c], s);
            }
            let relu: Vec<f32> = hid.iter().map(|v| v.max(0.0)).collect();
            for (o, a) in attn[i * c..][..c].iter_mut().enumerate() {
                let z = up_b[o] + dot(&up_w[o * m..][..m], &relu);
                *a = 1.0 / (1.0 + (-z).exp());
            }
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_exact_mut(hw)
            .zip(x.par_chunks_exact(hw))
            .zip(attn.par_iter())
            .for_each(|((out, x), &a)| out.iter_mut().zip(x).for_each(|(o, v)| *o = v * a));
        *self.saved.lock().map_err(|_| err("cca: poisoned".into()))? = Some(CcaSaved {
            mean,
            std,
            hidden,
            attn,
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        packed: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let saved = self.saved.lock().map_err(|_| err("cca: poisoned".into()))?;
        let saved = saved
            .as_ref()
            .ok_or_else(|| err("cca: backward without a forward".into()))?;
        let grad = grad.contiguous()?;
        let locked = [x, packed, &grad].map(|t| t.storage_and_layout());
        let (dx, dparams) = self.backward(
            saved,
            [
                data(&locked[0], "input")?,
                data(&locked[1], "parameters")?,
                data(&locked[2], "gradient")?,
            ],
            n,
            h * w,
        );
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (n, c, h, w), dev)?),
            Some(Tensor::from_vec(dparams, packed.dims(), dev)?),
        ))
    }
}
