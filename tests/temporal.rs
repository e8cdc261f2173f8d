//! The temporal stability figures on clips whose answer is known.

use imdn::temporal::Stability;
use imdn::train::rng::Rng;

#[test]
fn a_still_frame_has_no_change_and_no_spread() {
    let mut s = Stability::default();
    for _ in 0..5 {
        s.push(&[10, 200, 30, 40]);
    }
    assert_eq!(
        (s.frames(), s.mean_abs_change(), s.temporal_std()),
        (5, 0.0, 0.0)
    );
}

#[test]
fn a_still_frame_with_sensor_noise_gives_the_noise_back() {
    // σ = 4 levels around mid-grey (no clipping), rounded to 8 bits: the spread is
    // √(σ² + 1/12) ≈ 4.010, and the mean |difference| of two independent samples
    // 2σ/√π ≈ 4.514 (rounding adds ≈ 0.005)
    let sigma = 4.0;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut s = Stability::default();
    let mut frame = vec![0u8; 64 * 64 * 3];
    for _ in 0..40 {
        for v in frame.iter_mut() {
            *v = (128.0 + sigma * rng.normal()).round() as u8;
        }
        s.push(&frame);
    }
    let std = s.temporal_std();
    let change = s.mean_abs_change();
    assert!((std - 4.010).abs() < 0.05, "temporal std {std}");
    assert!((change - 4.519).abs() < 0.06, "mean abs change {change}");
}

#[test]
fn a_steady_ramp_changes_by_its_step() {
    // every sample rises by 3 levels a frame: change 3, spread of 0, 3, 6, 9, 12 = 3·√2.5
    let mut s = Stability::default();
    for t in 0..5u8 {
        s.push(&[t * 3; 8]);
    }
    assert!((s.mean_abs_change() - 3.0).abs() < 1e-12);
    assert!((s.temporal_std() - 3.0 * 2.5f64.sqrt()).abs() < 1e-9);
}

#[test]
fn steady_averages_still_pixels_and_passes_moving_ones() {
    use imdn::temporal::Steady;
    let level = |v: f32| v / 255.0;
    let mut s = Steady::new(10, 0.5);
    // planar RGB, 2×1 → 4×1; the left input pixel stays within 10 levels, the right one jumps
    let inputs = [
        [50.0, 10.0, 50.0, 10.0, 50.0, 10.0],
        [60.0, 110.0, 50.0, 110.0, 41.0, 110.0],
    ];
    let outputs = [[100.0; 12], [140.0; 12]];
    let mut shown = Vec::new();
    for (input, output) in inputs.iter().zip(outputs) {
        let input = input.map(level);
        let mut output = output.map(level);
        s.apply(&input, (2, 1), &mut output, (4, 1));
        shown.push(output.map(|v| (v * 255.0).round()));
    }
    // first frame as it is; then in each plane the still half moves half way (100 → 120), the
    // moving half takes the new frame (140)
    assert_eq!(shown[0], [100.0; 12]);
    for plane in shown[1].chunks(4) {
        assert_eq!(plane, [120.0, 120.0, 140.0, 140.0]);
    }
    // after a reset the next frame is taken as it is
    s.reset();
    let mut output = [level(200.0); 12];
    s.apply(&inputs[1].map(level), (2, 1), &mut output, (4, 1));
    assert!(output.iter().all(|&v| (v * 255.0 - 200.0).abs() < 1e-3));
}

#[test]
fn steady_reduces_the_spread_of_noise_on_a_still_frame() {
    // an EMA with blend b of independent noise keeps √(b / (2 − b)) of its spread: 0.577 at 0.5
    let mut rng = Rng::new(7);
    let (mut plain, mut steadied) = (Stability::default(), Stability::default());
    let mut steady = imdn::temporal::Steady::new(255, 0.5);
    let input = vec![0.5f32; 3 * 32 * 32];
    let to_u8 = |v: &[f32]| -> Vec<u8> { v.iter().map(|x| (x * 255.0).round() as u8).collect() };
    for _ in 0..200 {
        let mut out: Vec<f32> = (0..3 * 64 * 64)
            .map(|_| (128.0 + 8.0 * rng.normal() as f32) / 255.0)
            .collect();
        plain.push(&to_u8(&out));
        steady.apply(&input, (32, 32), &mut out, (64, 64));
        steadied.push(&to_u8(&out));
    }
    let ratio = steadied.temporal_std() / plain.temporal_std();
    assert!((ratio - 0.577).abs() < 0.03, "{ratio}");
}
