//! Convolution as a candle custom op on our kernels, with an im2col-GEMM backward, so that
//! training through candle's autograd runs its convolutions at our speed on the CPU. candle's
//! own CPU backward is a direct `conv_transpose2d` loop with no GEMM.
//!
//! - forward: [`conv_nchw`];
//! - dX: the same forward kernel on the output gradient with the weights transposed and
//!   flipped (a stride-1 "same" conv's adjoint);
//! - dW: [`Kernels::weight_grad`]: by the Winograd kernel the forward runs, else GEMMs of the
//!   gradient against im2col tiles of the input;
//! - db: the gradient summed over batch and positions.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use crate::kernels::Kernels;
use crate::kernels::plan::conv_nchw;
use crate::kernels::types::ConvParams;

/// Stride-1 "same" conv2d (k = 1 or 3) of `x` [N, Cin, H, W] with `w` [Cout, Cin, k, k] and
/// bias `b` `[Cout]` on `kernels`, differentiable. CPU f32 only; callers use candle's conv
/// elsewhere.
pub fn conv2d_same(x: &Tensor, w: &Tensor, b: &Tensor, kernels: Kernels) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, ConvSame { kernels })
}

pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("conv2d_same: {what} is not contiguous")))?;
    Ok(&s.as_slice::<f32>()?[start..end])
}

struct ConvSame {
    kernels: Kernels,
}

impl CustomOp3 for ConvSame {
    fn name(&self) -> &'static str {
        "imdn-conv2d-same"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (cout, wcin, k, k2) = l2.shape().dims4()?;
        if wcin != cin || k != k2 || !(k == 1 || k == 3) || l3.shape().elem_count() != cout {
            return Err(candle_core::Error::Msg(format!(
                "conv2d_same: input {:?}, weight {:?}, bias {:?} do not fit a 1×1 or 3×3 conv",
                l1.shape(),
                l2.shape(),
                l3.shape()
            )));
        }
        let p = self.kernels.plan(ConvParams::new(
            slice(s2, l2, "weight")?.to_vec(),
            slice(s3, l3, "bias")?.to_vec(),
            cin,
            cout,
            k,
        ));
        let out = conv_nchw(slice(s1, l1, "input")?, n, (h, w), &p);
        Ok((CpuStorage::F32(out), Shape::from((n, cout, h, w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (cout, cin, k, _) = w.dims4()?;
        let wt = Tensor::from_vec(
            adjoint_weights(&w.flatten_all()?.to_vec1()?, cin, cout, k),
            (cin, cout, k, k),
            w.device(),
        )?;
        let zero = Tensor::zeros(cin, DType::F32, w.device())?;
        let dx = grad.apply_op3_no_bwd(&wt, &zero, self)?;
        let kernels = self.kernels;
        let dw = x.apply_op2_no_bwd(&grad, &WeightGrad { k, kernels })?;
        // per plane first: candle's strided sum over (0, 2, 3) took ~30 % of a training step
        let db = grad.flatten_from(2)?.sum(2)?.sum(0)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// The weights of the adjoint of a stride-1 "same" conv with `weight` [cout, cin, k, k]: the
/// conv with weights [cin, cout, k, k], spatially flipped, and no bias maps an output gradient
/// to the input's.
pub(super) fn adjoint_weights(weight: &[f32], cin: usize, cout: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut t = vec![0f32; weight.len()];
    for co in 0..cout {
        for ci in 0..cin {
            let from = &weight[(co * cin + ci) * kk..][..kk];
            let to = &mut t[(ci * cout + co) * kk..][..kk];
            to.iter_mut()
                .zip(from.iter().rev())
                .for_each(|(t, f)| *t = *f);
        }
    }
    t
}

/// dW of [`ConvSame`] from (input, output gradient).
struct WeightGrad {
    k: usize,
    kernels: Kernels,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "imdn-conv2d-same-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, cin, h, w) = l1.shape().dims4()?;
        let (_, cout, _, _) = l2.shape().dims4()?;
        let x = slice(s1, l1, "input")?;
        let g = slice(s2, l2, "gradient")?;
        let dw = self
            .kernels
            .weight_grad(x, g, n, (h, w), (cin, cout, self.k));
        Ok((
            CpuStorage::F32(dw),
            Shape::from((cout, cin, self.k, self.k)),
        ))
    }
}

/// LeakyReLU (slope 0.05) with a one-pass backward: candle's `maximum` composition costs
/// several full-tensor passes forward and back.
pub fn leaky_relu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(LeakyRelu)
}

pub(super) const SLOPE: f32 = 0.05;

struct LeakyRelu;

impl candle_core::CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "imdn-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = slice(s, l, "input")?
            .iter()
            .map(|&v| v.max(v * SLOPE))
            .collect();
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            x.apply_op2_no_bwd(&grad.contiguous()?, &LeakyReluGrad)?,
        ))
    }
}

/// grad · (1 where x > 0, else the slope).
struct LeakyReluGrad;

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "imdn-leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, "input")?;
        let g = slice(s2, l2, "gradient")?;
        let out = x
            .iter()
            .zip(g)
            .map(|(&x, &g)| if x > 0.0 { g } else { g * SLOPE })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
