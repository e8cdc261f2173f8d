//! The shipped models score on Set5 what weights/README.md says they do: each one's mean Y PSNR
//! (the authors' protocol, LR by our MATLAB-style bicubic) at each scale its model card gives is
//! within 0.1 dB of that figure (`shipped::SHIPPED` holds them), above bicubic, and at or above
//! the floor the training issue set for it.

mod common;

use candle_core::Device;
use imdn::engine::Upscaler;
use imdn::eval::{LrSource, evaluate};
use imdn::model::{Config, Variant};
use imdn::weights::shipped::{self, SHIPPED};

/// Bicubic's Set5 mean Y PSNR at ×2, ×3, ×4, dB.
const BICUBIC: &[(usize, f64)] = &[(2, 33.64), (3, 30.39), (4, 28.42)];

/// The training issue's Set5 floor for a shipped model at a scale, dB: fixed figures for IMDN_RTC
/// ×2 and IMDN ×2/×3/×4, bicubic + 2.0 for IMDN_RTC ×3/×4, bicubic + 1.0 for IMDN_AS.
fn floor(name: &str, scale: usize, bicubic: f64) -> f64 {
    match (name, scale) {
        ("imdn_rtc_x2", 2) => 36.8,
        ("imdn_x2", 2) => 37.2,
        ("imdn_x3", 3) => 33.6,
        ("imdn_x4", 4) => 31.5,
        ("imdn_rtc_x3", 3) | ("imdn_rtc_x4", 4) => bicubic + 2.0,
        ("imdn_as", _) => bicubic + 1.0,
        _ => panic!("{name} ×{scale}: no floor"),
    }
}

#[test]
fn shipped_models_reach_their_set5_figures_and_floors() {
    let Some(hr) = common::reference("Set5/HR") else {
        return;
    };
    for model in SHIPPED {
        let tensors = model.tensors().unwrap();
        let config = Config::detect(&tensors).unwrap();
        assert_eq!(config.variant, model.variant, "{}", model.name);
        assert_eq!(config.upsampler_scale, model.scale, "{}", model.name);
        assert!(!model.set5.is_empty(), "{}: no Set5 figure", model.name);
        let mut up = Upscaler::from_tensors(tensors, &Device::Cpu).unwrap();
        for &(scale, figure) in model.set5 {
            let report = evaluate(&mut up, &hr, LrSource::Downscale, scale, |_| {}).unwrap();
            let (psnr, _) = report.mean_sr();
            let (bic, _) = report.mean_bicubic();
            let expected_bic = BICUBIC.iter().find(|b| b.0 == scale).unwrap().1;
            assert!(
                (bic - expected_bic).abs() < 0.01,
                "×{scale}: bicubic {bic:.4} dB"
            );
            let name = model.name;
            assert!(
                psnr >= figure - 0.1,
                "{name} ×{scale}: {psnr:.4} dB, its card says {figure}"
            );
            assert!(
                psnr > bic,
                "{name} ×{scale}: {psnr:.4} dB ≤ bicubic {bic:.4}"
            );
            let floor = floor(name, scale, bic);
            assert!(
                psnr >= floor,
                "{name} ×{scale}: {psnr:.4} dB, under its floor of {floor:.4}"
            );
        }
    }
}

#[test]
fn every_scale_has_a_real_time_model_and_best_picks_the_top_score() {
    for scale in [2, 3, 4] {
        let rtc = shipped::find(Variant::Rtc, scale).expect("an IMDN_RTC at every scale");
        let best = shipped::best(scale).unwrap();
        assert!(best.set5_at(scale).unwrap() >= rtc.set5_at(scale).unwrap());
        for m in SHIPPED
            .iter()
            .filter(|m| m.scale == scale && m.variant != Variant::As)
        {
            assert!(best.set5_at(scale) >= m.set5_at(scale), "{}", m.name);
        }
    }
}
