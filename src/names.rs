//! The names of the networks' tensors, each spelled here once: the authors' PyTorch state-dict
//! paths (the keys of their checkpoints, which our safetensors keep, so that their weights map
//! 1:1), the two tensors of ours IMDN_AS may add, what may wrap a state dict, and the prefixes
//! of a training checkpoint.
//! The candle modules ([`crate::model`]) and their variant detection, the CPU executor
//! ([`crate::cpu`]), training and the weights readers all name tensors through this table.
//!
//! A path is dot-separated, as PyTorch's `state_dict()` and candle's `VarBuilder::pp` join
//! segments: [`join`] builds one, and a conv's two tensors are the [`weight`] and [`bias`] under
//! its layer's path. A leaf module: it depends on nothing in the crate.
//!
//! ```text
//! IMDN      fea_conv  IMDB1..IMDBn  c.0  LR_conv  upsampler.0
//! IMDN_AS   fea_conv.0  fea_conv.2  (the same body and upsampler)  [input_skip]  [scale_embed]
//! IMDN_RTC  model.0  model.1.sub.0..n-1  model.1.sub.n  model.2
//! a block   c1 c2 c3 c4 c5  [cca.conv_du.0  cca.conv_du.2]
//! ```

/// `path.name`: `name` under `path`.
pub fn join(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

/// What follows `prefix.` in `path`, if `path` lies under `prefix` (the inverse of [`join`]).
pub fn under<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_prefix('.')
}

/// Where a weights file keeps its 8-bit calibration (not parameters of the network).
pub const INT8: &str = "int8";

/// The calibrated input range of the conv at `layer`, `[cin, 2]` (least, greatest), for 8-bit
/// inference.
pub fn input_range(layer: &str) -> String {
    join(&join(INT8, layer), "input_range")
}

/// A conv's kernel, `[cout, cin, k, k]`, under its layer's path.
pub const WEIGHT: &str = "weight";

/// A conv's bias, `[cout]`, under its layer's path.
pub const BIAS: &str = "bias";

/// The kernel of the conv at `layer`.
pub fn weight(layer: &str) -> String {
    join(layer, WEIGHT)
}

/// The bias of the conv at `layer`.
pub fn bias(layer: &str) -> String {
    join(layer, BIAS)
}

// IMDN and IMDN_AS (the authors' `IMDN` and `IMDN_AS`), from the network's root.

/// IMDN's 3×3 head.
pub const FEA_CONV: &str = "fea_conv";

/// IMDN_AS's first stride-2 3×3 conv (its `fea_conv` is `nn.Sequential`: conv, LeakyReLU, conv).
pub const FEA_CONV_0: &str = "fea_conv.0";

/// IMDN_AS's second stride-2 3×3 conv.
pub const FEA_CONV_2: &str = "fea_conv.2";

/// The distillation block number `i`, counted from 1 (`IMDB1`..).
pub fn imdb(i: usize) -> String {
    format!("IMDB{i}")
}

/// The 1×1 fusion of all blocks' outputs (`c` is `nn.Sequential`: conv, LeakyReLU).
pub const FUSE: &str = "c.0";

/// The 3×3 conv after the fusion, before the residual to the features.
pub const LR_CONV: &str = "LR_conv";

/// The 3×3 conv to 3·s² channels before the pixel shuffle (`upsampler` is `nn.Sequential`).
pub const UPSAMPLER: &str = "upsampler.0";

/// Ours, IMDN_AS only: the per-colour gains of the input added to the output, `[3]`.
pub const INPUT_SKIP: &str = "input_skip";

/// Ours, IMDN_AS only: the per-channel embedding of the scale code added to the first conv's
/// output, `[C]`.
pub const SCALE_EMBED: &str = "scale_embed";

// IMDN_RTC: the authors' `nn.Sequential` `model`.

/// IMDN_RTC's 3×3 head.
pub const RTC_HEAD: &str = "model.0";

/// IMDN_RTC's block number `i`, counted from 0 (`model.1` is a shortcut block whose `sub` holds
/// the blocks and, after them, the 1×1 conv: [`rtc_tail`]).
pub fn rtc_block(i: usize) -> String {
    format!("model.1.sub.{i}")
}

/// IMDN_RTC's 1×1 conv after its `blocks` blocks, before the shortcut to the head's output.
pub fn rtc_tail(blocks: usize) -> String {
    rtc_block(blocks)
}

/// IMDN_RTC's 3×3 conv to 3·s² channels before the pixel shuffle.
pub const RTC_UPSAMPLER: &str = "model.2";

// Inside a block (the authors' `IMDModule` and `IMDModule_speed`), from the block's path.

/// The 3×3 conv of the whole input, whose output's first quarter is distilled.
pub const C1: &str = "c1";
/// The 3×3 conv of c1's remaining channels.
pub const C2: &str = "c2";
/// The 3×3 conv of c2's remaining channels.
pub const C3: &str = "c3";
/// The 3×3 conv of c3's remaining channels to the last distilled quarter.
pub const C4: &str = "c4";
/// The 1×1 fusion of the four distilled parts.
pub const C5: &str = "c5";

/// An IMDN block's contrast-aware channel attention (none in IMDN_RTC's blocks).
pub const CCA: &str = "cca";

/// The attention's 1×1 conv down to C/16 channels, from [`CCA`] (`conv_du` is `nn.Sequential`).
pub const CCA_DOWN: &str = "conv_du.0";

/// The attention's 1×1 conv back up, from [`CCA`].
pub const CCA_UP: &str = "conv_du.2";

// Around a state dict, in the checkpoints of others' training scripts.

/// Dict keys under which training scripts commonly nest the state dict (the readers look under
/// them, in this order, when the top level holds no tensors).
pub const STATE_DICT_WRAPPERS: [&str; 3] = ["state_dict", "model", "params"];

/// The prefix `nn.DataParallel` puts before every path (repeatedly, for nested wrappers).
pub const DATA_PARALLEL: &str = "module";

// A training checkpoint of `imdn train` (ours): every parameter under each of these prefixes.

/// The parameters.
pub const CHECKPOINT_PARAM: &str = "param";
/// Adam's first moments.
pub const CHECKPOINT_ADAM_M: &str = "adam_m";
/// Adam's second moments.
pub const CHECKPOINT_ADAM_V: &str = "adam_v";
/// The weight average, if the run keeps one.
pub const CHECKPOINT_EMA: &str = "ema";

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths as the authors' checkpoints spell them.
    #[test]
    fn paths() {
        assert_eq!(weight(&join(&imdb(3), C2)), "IMDB3.c2.weight");
        assert_eq!(
            bias(&join(&join(&imdb(1), CCA), CCA_UP)),
            "IMDB1.cca.conv_du.2.bias"
        );
        assert_eq!(weight(&join(&rtc_block(0), C1)), "model.1.sub.0.c1.weight");
        assert_eq!(weight(&rtc_tail(5)), "model.1.sub.5.weight");
        assert_eq!(under(CHECKPOINT_EMA, "ema.c.0.bias"), Some("c.0.bias"));
        assert_eq!(under(CHECKPOINT_EMA, "emax.c.0.bias"), None);
        assert_eq!(
            under(DATA_PARALLEL, "module.fea_conv.bias"),
            Some("fea_conv.bias")
        );
    }
}
