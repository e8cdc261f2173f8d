//! The network computes what the paper's network computes: the authors' checkpoints, read by our
//! loader and run by our candle models, against the authors' raw output and Set5 figures.

mod common;

use candle_core::{Device, Tensor};
use imdn::acs::Acs;
use imdn::engine::Upscaler;
use imdn::eval::{LrSource, Report, evaluate};

use common::npy;

fn checkpoint(name: &str) -> Option<Upscaler> {
    let path = common::reference(&format!("imdn-checkpoints/{name}"))?;
    Some(Upscaler::load(&path, &Device::Cpu).expect("load checkpoint"))
}

#[test]
fn imdn_x2_raw_output_matches_pytorch() {
    let (Some(up), Some(input), Some(expected)) = (
        checkpoint("IMDN_x2.pth"),
        common::reference("parity/butterflyx2_input_f32.npy"),
        common::reference("parity/butterflyx2_raw_f32.npy"),
    ) else {
        return;
    };
    let (shape, data) = npy::read_npy_f32(&input).unwrap();
    let x = Tensor::from_vec(data, shape.as_slice(), &Device::Cpu).unwrap();
    let y = up.forward_raw(&x).unwrap();
    let (shape, want) = npy::read_npy_f32(&expected).unwrap();
    assert_eq!(y.dims(), shape.as_slice());
    let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let max = common::max_abs_diff(&got, &want);
    eprintln!("IMDN_x2 butterfly: max |ours − PyTorch| = {max:e}");
    assert!(max <= 1e-4, "max abs diff {max}");
}

/// Set5 mean Y PSNR/SSIM from the authors' LR images, against the reference table.
fn set5(name: &str, scale: usize, psnr: f64, ssim: f64) -> Option<Report> {
    let mut up = checkpoint(name)?;
    let hr = common::reference("Set5/HR")?;
    let lr = common::reference(&format!("Set5/LR_bicubic/x{scale}"))?;
    let report = evaluate(&mut up, &hr, LrSource::Folder(&lr), scale, |r| {
        eprintln!("{name} {}: {:.4} dB {:.5}", r.name, r.psnr_y, r.ssim_y)
    })
    .unwrap();
    let (p, s) = report.mean_sr();
    eprintln!("{name} ×{scale}: mean {p:.4} dB / {s:.5} (reference {psnr} / {ssim})");
    assert!(
        (p - psnr).abs() <= 0.01,
        "{name}: PSNR {p:.4}, reference {psnr}"
    );
    assert!(
        (s - ssim).abs() <= 0.0005,
        "{name}: SSIM {s:.5}, reference {ssim}"
    );
    Some(report)
}

#[test]
fn set5_imdn_x2() {
    if let Some(r) = set5("IMDN_x2.pth", 2, 37.9105, 0.95945) {
        let (p, s) = r.mean_bicubic();
        assert!(
            (p - 33.6396).abs() <= 0.01 && (s - 0.92922).abs() <= 0.0005,
            "bicubic {p} {s}"
        );
    }
}

#[test]
fn set5_imdn_x3() {
    if let Some(r) = set5("IMDN_x3.pth", 3, 34.3233, 0.92587) {
        let (p, s) = r.mean_bicubic();
        assert!(
            (p - 30.3850).abs() <= 0.01 && (s - 0.86779).abs() <= 0.0005,
            "bicubic {p} {s}"
        );
    }
}

#[test]
fn set5_imdn_x4() {
    if let Some(r) = set5("IMDN_x4.pth", 4, 32.1867, 0.89362) {
        let (p, s) = r.mean_bicubic();
        assert!(
            (p - 28.4164).abs() <= 0.01 && (s - 0.81008).abs() <= 0.0005,
            "bicubic {p} {s}"
        );
    }
}

#[test]
fn set5_imdn_rtc_x2() {
    set5("model_RTC.pth", 2, 37.2406, 0.95729);
}

#[test]
fn tiled_and_whole_frame_set5_differ_by_less_than_0_05_db() {
    // CCA pools statistics per tile, so tiles are not bit-identical to the whole frame
    let (Some(mut up), Some(hr), Some(lr)) = (
        checkpoint("IMDN_x2.pth"),
        common::reference("Set5/HR"),
        common::reference("Set5/LR_bicubic/x2"),
    ) else {
        return;
    };
    let whole = evaluate(&mut up, &hr, LrSource::Folder(&lr), 2, |_| {}).unwrap();
    up.acs = Acs {
        tile: 64,
        overlap: 16,
        batch: 4,
        margin: 0,
    };
    let tiled = evaluate(&mut up, &hr, LrSource::Folder(&lr), 2, |_| {}).unwrap();
    let (pw, pt) = (whole.mean_sr().0, tiled.mean_sr().0);
    eprintln!("IMDN_x2 Set5: whole {pw:.4} dB, 64-px tiles (16 overlap) {pt:.4} dB");
    assert!((pw - pt).abs() < 0.05, "mean PSNR whole {pw} vs tiled {pt}");
    // 64-pixel tiles are harsh for a 128-pixel image (butterfly: 3×3 tiles, each with its own
    // CCA statistics); per image the gap stays within 0.1 dB
    for (a, b) in whole.images.iter().zip(&tiled.images) {
        eprintln!("  {}: {:.4} vs {:.4}", a.name, a.psnr_y, b.psnr_y);
        assert!(
            (a.psnr_y - b.psnr_y).abs() < 0.1,
            "{}: {} vs {}",
            a.name,
            a.psnr_y,
            b.psnr_y
        );
    }
}

#[test]
fn imdn_as_runs_any_size_through_acs() {
    let (Some(mut up), Some(hr_dir)) = (checkpoint("IMDN_AS.pth"), common::reference("Set5/HR"))
    else {
        return;
    };
    // sizes not divisible by 4 go through ACS padding; the output is exactly the asked size
    for (w, h, ow, oh) in [
        (7, 5, 7, 5),
        (13, 10, 30, 23),
        (1, 1, 3, 2),
        (21, 18, 50, 41),
    ] {
        let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 256) as u8).collect();
        let out = up.upscale_u8(&src, (w, h), 3, (ow, oh)).unwrap();
        assert_eq!(out.len(), ow * oh * 3, "{w}×{h} → {ow}×{oh}");
    }
    // Set5 ×3 (HR sides 255..512, mostly not multiples of 4 after bicubic): a real
    // reconstruction, and the authors' 4-quadrant crop (tile = half + 32) agrees with the
    // whole frame. The authors trained this checkpoint on RealSR camera pairs, not bicubic
    // degradation, so on bicubic Set5 it does not beat bicubic: no such claim here.
    let whole = evaluate(&mut up, &hr_dir, LrSource::Downscale, 3, |_| {}).unwrap();
    up.acs = Acs {
        tile: 288,
        overlap: 64,
        batch: 4,
        margin: 0,
    };
    let quads = evaluate(&mut up, &hr_dir, LrSource::Downscale, 3, |_| {}).unwrap();
    let (p, q, b) = (whole.mean_sr().0, quads.mean_sr().0, whole.mean_bicubic().0);
    eprintln!("IMDN_AS ×3 Set5: whole {p:.4} dB, quadrants {q:.4} dB, bicubic {b:.4} dB");
    assert!(p > 25.0, "IMDN_AS reconstructs the image: {p} dB");
    assert!((p - q).abs() < 0.05, "whole {p} vs quadrants {q}");
}
