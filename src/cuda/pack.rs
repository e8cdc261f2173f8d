//! Weights packed once into the layout the GPU kernels read, and back.
//!
//! A conv's weight arrives as PyTorch keeps it, OIHW (`[cout][cin][kh][kw]`). Packed, it is
//! KRSC (`[cout][kh][kw][cin]`): for one output channel and one tap, the input channels are
//! contiguous, as they are in an NHWC activation pixel, so an implicit GEMM reads both with
//! the same vector loads (the reduction dimension is `kh·kw·cin`, input channels fastest).
//!
//! Channel padding: `cout` and `cin` are padded to a multiple of [`CHANNEL_ALIGN`] (8: 16 bytes
//! of f16, one 128-bit load and the k-step of an f16 `mma.sync` m16n8k8/k16 fragment), the
//! padded weights zero. The kernels still read only a view's own channels of the activations
//! (the padding is in the weights alone: a zero weight times a neighbouring view's channel
//! would be harmless in f32 but not if that channel held an f16 infinity), so views keep
//! their exact widths and offsets. The bias stays f32 in both precisions: the epilogue runs
//! in f32.

use half::f16;

use crate::names;
use crate::weights::Tensors;
use crate::{Error, Result};

/// Packed channel counts are multiples of this.
pub const CHANNEL_ALIGN: usize = 8;

/// `c` rounded up to a multiple of [`CHANNEL_ALIGN`].
pub fn padded(c: usize) -> usize {
    c.div_ceil(CHANNEL_ALIGN) * CHANNEL_ALIGN
}

/// A k×k conv's shape: real and packed channel counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub cout: usize,
    pub cin: usize,
    pub k: usize,
    pub cout_pad: usize,
    pub cin_pad: usize,
}

impl ConvShape {
    pub fn new(cout: usize, cin: usize, k: usize) -> Self {
        Self {
            cout,
            cin,
            k,
            cout_pad: padded(cout),
            cin_pad: padded(cin),
        }
    }

    /// Elements of the packed weight, padding included.
    pub fn packed_len(&self) -> usize {
        self.cout_pad * self.k * self.k * self.cin_pad
    }

    /// Index of weight (co, ky, kx, ci) in the packed layout.
    pub fn at(&self, co: usize, ky: usize, kx: usize, ci: usize) -> usize {
        ((co * self.k + ky) * self.k + kx) * self.cin_pad + ci
    }
}

/// One conv's parameters in the GPU layout, in f32 (and TF32) and in f16.
#[derive(Clone, Debug)]
pub struct PackedConv {
    /// The layer's path in the weights (the authors' name, [`crate::names`]).
    pub name: String,
    pub shape: ConvShape,
    /// KRSC, padded, f32.
    pub f32: Vec<f32>,
    /// The same values rounded to f16 (round to nearest even).
    pub f16: Vec<f16>,
    /// `[cout_pad]`, f32 in both precisions (zero in the padding).
    pub bias: Vec<f32>,
}

impl PackedConv {
    /// Packs an OIHW weight and its bias.
    pub fn pack(name: &str, shape: ConvShape, oihw: &[f32], bias: &[f32]) -> Result<Self> {
        let ConvShape { cout, cin, k, .. } = shape;
        if oihw.len() != cout * cin * k * k || bias.len() != cout {
            return Err(Error::Model(format!(
                "{name}: expected a {k}×{k} conv {cin}→{cout}, got {} weights and {} biases",
                oihw.len(),
                bias.len()
            )));
        }
        let mut packed = vec![0f32; shape.packed_len()];
        for co in 0..cout {
            for ci in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        packed[shape.at(co, ky, kx, ci)] =
                            oihw[((co * cin + ci) * k + ky) * k + kx];
                    }
                }
            }
        }
        let mut b = vec![0f32; shape.cout_pad];
        b[..cout].copy_from_slice(bias);
        Ok(Self {
            name: name.to_string(),
            shape,
            f16: packed.iter().map(|&v| f16::from_f32(v)).collect(),
            f32: packed,
            bias: b,
        })
    }

    /// Reads the conv at `layer` (`cin` → `cout`, k×k) from `t` and packs it.
    pub fn load(t: &Tensors, layer: &str, cin: usize, cout: usize, k: usize) -> Result<Self> {
        let weight = vector(t, &names::weight(layer))?;
        let bias = vector(t, &names::bias(layer))?;
        Self::pack(layer, ConvShape::new(cout, cin, k), &weight, &bias)
    }

    /// The f32 weights back in OIHW, without the padding.
    pub fn unpack_f32(&self) -> Vec<f32> {
        self.unpack(|i| self.f32[i])
    }

    /// The f16 weights back in OIHW as f32, without the padding.
    pub fn unpack_f16(&self) -> Vec<f32> {
        self.unpack(|i| self.f16[i].to_f32())
    }

    fn unpack(&self, get: impl Fn(usize) -> f32) -> Vec<f32> {
        let s = self.shape;
        let mut out = Vec::with_capacity(s.cout * s.cin * s.k * s.k);
        for co in 0..s.cout {
            for ci in 0..s.cin {
                for ky in 0..s.k {
                    for kx in 0..s.k {
                        out.push(get(s.at(co, ky, kx, ci)));
                    }
                }
            }
        }
        out
    }

    /// The bias without the padding.
    pub fn unpack_bias(&self) -> &[f32] {
        &self.bias[..self.shape.cout]
    }

    /// Whether every padded weight and bias is zero (in both precisions).
    pub fn padding_is_zero(&self) -> bool {
        let s = self.shape;
        let real = |i: usize| {
            let ci = i % s.cin_pad;
            let co = i / (s.k * s.k * s.cin_pad);
            ci < s.cin && co < s.cout
        };
        (0..s.packed_len())
            .filter(|&i| !real(i))
            .all(|i| self.f32[i] == 0.0 && self.f16[i].to_f32() == 0.0)
            && self.bias[s.cout..].iter().all(|&b| b == 0.0)
    }
}

/// The tensor `name` of `t`, flattened to f32.
pub fn vector(t: &Tensors, name: &str) -> Result<Vec<f32>> {
    let v = t
        .get(name)
        .ok_or_else(|| Error::Model(format!("{name} is missing")))?;
    Ok(v.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?)
}
