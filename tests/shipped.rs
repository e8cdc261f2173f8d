//! The shipped models score on Set5 what weights/README.md says they do: each one's mean Y PSNR
//! (the authors' protocol, LR by our MATLAB-style bicubic) is at least the floor given here,
//! which is the figure in the model card rounded down to 0.1 dB.

mod common;

use candle_core::Device;
use imdn::engine::Upscaler;
use imdn::eval::{LrSource, evaluate};
use imdn::model::Variant;
use imdn::weights::shipped;

/// (model, scale, Set5 mean Y PSNR floor in dB, bicubic's Set5 mean Y PSNR at that scale)
const FLOORS: &[(&str, usize, f64, f64)] = &[
    ("imdn_rtc_x2", 2, FLOOR_X2, 33.64),
    ("imdn_rtc_x3", 3, FLOOR_X3, 30.39),
    ("imdn_rtc_x4", 4, FLOOR_X4, 28.42),
];
const FLOOR_X2: f64 = 35.9;
const FLOOR_X3: f64 = 31.9;
const FLOOR_X4: f64 = 29.8;

#[test]
fn shipped_models_reach_their_set5_floors() {
    let Some(hr) = common::reference("Set5/HR") else {
        return;
    };
    for &(name, scale, floor, bicubic) in FLOORS {
        let model = shipped::by_name(name).expect("shipped");
        assert_eq!((model.variant, model.scale), (Variant::Rtc, scale));
        let mut up = Upscaler::from_tensors(model.tensors().unwrap(), &Device::Cpu).unwrap();
        let report = evaluate(&mut up, &hr, LrSource::Downscale, scale, |_| {}).unwrap();
        let (psnr, _) = report.mean_sr();
        let (bic, _) = report.mean_bicubic();
        assert!((bic - bicubic).abs() < 0.01, "{name}: bicubic {bic:.4} dB");
        assert!(psnr >= floor, "{name}: {psnr:.4} dB < {floor} dB");
        assert!(
            psnr > bic,
            "{name}: {psnr:.4} dB does not beat bicubic {bic:.4} dB"
        );
    }
}
