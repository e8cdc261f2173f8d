//! Pixel conversions, BT.601 Y and the MATLAB-style bicubic resize, including bit-exact
//! reproduction of the authors' Set5 LR images.

mod common;

use std::path::Path;

use imdn::image_ops::{
    ResizeTable, chw_f32_to_hwc_u8, hwc_u8_to_chw_f32, imresize_f32_chw, imresize_u8, modcrop_u8,
    rgb_u8_to_y, try_imresize_u8,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn load_rgb(path: &Path) -> Result<(Vec<u8>, usize, usize), Box<dyn std::error::Error>> {
    let img = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((img.into_raw(), w, h))
}

fn set5_names(set5: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(set5.join("HR"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "bmp")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[test]
fn set5_lr_images_are_reproduced_bit_for_bit() -> TestResult {
    let Some(set5) = common::reference("Set5") else {
        return Ok(());
    };
    let names = set5_names(&set5)?;
    assert_eq!(names.len(), 5, "Set5 HR images: {names:?}");
    let mut total = 0usize;
    for s in [2usize, 3, 4] {
        for name in &names {
            let (hr, w, h) = load_rgb(&set5.join(format!("HR/{name}.bmp")))?;
            let (hr, w, h) = modcrop_u8(&hr, w, h, 3, s);
            let lr = imresize_u8(&hr, w, h, 3, w / s, h / s);
            let lr_path = set5.join(format!("LR_bicubic/x{s}/{name}x{s}.bmp"));
            let (expected, ew, eh) = load_rgb(&lr_path)?;
            assert_eq!((ew, eh), (w / s, h / s), "{name} x{s} size");
            let differing = lr.iter().zip(&expected).filter(|(a, b)| a != b).count();
            assert_eq!(lr.len(), expected.len(), "{name} x{s} length");
            eprintln!("{name} x{s}: {differing} of {} values differ", lr.len());
            assert_eq!(differing, 0, "{name} x{s}: {differing} values differ");
            total += lr.len();
        }
    }
    eprintln!("all {total} values identical");
    Ok(())
}

#[test]
fn float_resize_stays_close_to_the_set5_lr_images() -> TestResult {
    let Some(set5) = common::reference("Set5") else {
        return Ok(());
    };
    let (hr, w, h) = load_rgb(&set5.join("HR/butterfly.bmp"))?;
    let (hr, w, h) = modcrop_u8(&hr, w, h, 3, 2);
    let mut planes = vec![0.0f32; 3 * w * h];
    hwc_u8_to_chw_f32(&hr, w, h, 3, &mut planes);
    let lr = imresize_f32_chw(&planes, w, h, 3, w / 2, h / 2);
    let mut out = vec![0u8; 3 * (w / 2) * (h / 2)];
    chw_f32_to_hwc_u8(&lr, w / 2, h / 2, &mut out, 3);
    let (expected, _, _) = load_rgb(&set5.join("LR_bicubic/x2/butterflyx2.bmp"))?;
    // Without rounding between passes a few values move by 1 or 2, as the README says.
    let max = out.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).max();
    assert!(max.is_some_and(|m| m <= 2), "max difference {max:?}");
    Ok(())
}

#[test]
fn u8_f32_round_trip_is_exact() {
    let (w, h) = (16, 16);
    let src: Vec<u8> = (0..w * h * 3).map(|i| (i % 256) as u8).collect();
    let mut planes = vec![0.0f32; w * h * 3];
    hwc_u8_to_chw_f32(&src, w, h, 3, &mut planes);
    assert_eq!(planes[1], 3.0 / 255.0, "planar layout: R of pixel 1");
    assert_eq!(planes[w * h], 1.0 / 255.0, "planar layout: G of pixel 0");
    let mut back = vec![0u8; w * h * 3];
    chw_f32_to_hwc_u8(&planes, w, h, &mut back, 3);
    assert_eq!(back, src);
}

#[test]
fn rgba_keeps_alpha_untouched() {
    let src = [10u8, 20, 30, 99, 40, 50, 60, 98];
    let mut planes = vec![0.0f32; 6];
    hwc_u8_to_chw_f32(&src, 2, 1, 4, &mut planes);
    let mut back = [0u8, 0, 0, 7, 0, 0, 0, 8];
    chw_f32_to_hwc_u8(&planes, 2, 1, &mut back, 4);
    assert_eq!(back, [10, 20, 30, 7, 40, 50, 60, 8]);
}

#[test]
fn f32_to_u8_clamps_and_rounds_half_to_even() {
    // 0.5/255 and 2.5/255 in f32 are not exact; pick values whose ×255 is exactly x.5.
    let planes = [-1.0f32, 2.0, f32::NAN, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
    let mut out = [0u8; 9];
    chw_f32_to_hwc_u8(&planes, 3, 1, &mut out, 3);
    assert_eq!(
        &out[..3],
        &[0, 128, 128],
        "R of the 3 pixels: clamp low, G and B 127.5 -> 128"
    );
    assert_eq!(out[3], 255, "clamp high");
    assert_eq!(out[6], 0, "NaN becomes 0");
}

#[test]
fn invalid_conversions_write_nothing() {
    let mut dst = vec![7.0f32; 3];
    hwc_u8_to_chw_f32(&[1, 2], 1, 1, 3, &mut dst);
    hwc_u8_to_chw_f32(&[1, 2, 3], 1, 1, 2, &mut dst);
    assert_eq!(dst, [7.0; 3]);
    let mut out = vec![7u8; 2];
    chw_f32_to_hwc_u8(&[0.0; 3], 1, 1, &mut out, 3);
    assert_eq!(out, [7, 7]);
}

#[test]
fn y_of_known_colours() {
    let px = [255u8, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255];
    // 16 + 65.481 = 81.481, 16 + 128.553 = 144.553, 16 + 24.966 = 40.966.
    assert_eq!(rgb_u8_to_y(&px, 5, 1, 3), [235, 16, 81, 145, 41]);
    assert!(rgb_u8_to_y(&px, 6, 1, 3).is_empty(), "short buffer");
    assert!(rgb_u8_to_y(&px, 1, 1, 2).is_empty(), "too few channels");
}

#[test]
fn modcrop_crops_bottom_right() {
    let src: Vec<u8> = (0..5 * 3).map(|i| i as u8).collect(); // 5 wide, 3 high, 1 channel
    let (out, w, h) = modcrop_u8(&src, 5, 3, 1, 2);
    assert_eq!((w, h), (4, 2));
    assert_eq!(out, [0, 1, 2, 3, 5, 6, 7, 8]);
    assert_eq!(
        modcrop_u8(&src, 5, 3, 1, 0),
        (src.clone(), 5, 3),
        "s = 0: no crop"
    );
    assert_eq!(
        modcrop_u8(&src, 5, 3, 1, 7),
        (vec![], 0, 0),
        "s larger than the image"
    );
    assert_eq!(modcrop_u8(&src, 5, 4, 1, 2), (vec![], 0, 0), "short buffer");
}

#[test]
fn upscaling_a_constant_image_keeps_it_constant() {
    let src = [[37u8, 200, 0]; 5 * 4].concat();
    let out = imresize_u8(&src, 5, 4, 3, 17, 11);
    assert_eq!(out.len(), 17 * 11 * 3);
    assert!(out.chunks_exact(3).all(|p| p == [37, 200, 0]));
    let planes = vec![0.25f32; 2 * 5 * 4];
    let out = imresize_f32_chw(&planes, 5, 4, 2, 12, 9);
    assert_eq!(out.len(), 2 * 12 * 9);
    assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-6));
}

#[test]
fn arbitrary_sizes_give_the_requested_size() {
    let cases = [
        (1, 1, 7, 5),
        (7, 5, 1, 1),
        (1, 9, 4, 1),
        (320, 240, 1000, 750),
        (33, 17, 50, 9),
        (3, 3, 3, 3),
        (10, 10, 7, 13),
    ];
    for (w, h, ow, oh) in cases {
        let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        let out = imresize_u8(&src, w, h, 3, ow, oh);
        assert_eq!(out.len(), ow * oh * 3, "{w}x{h} -> {ow}x{oh}");
        let planes: Vec<f32> = src.iter().map(|&v| f32::from(v) / 255.0).collect();
        let out = imresize_f32_chw(&planes, w, h, 3, ow, oh);
        assert_eq!(out.len(), ow * oh * 3, "f32 {w}x{h} -> {ow}x{oh}");
    }
}

#[test]
fn identity_resize_is_the_identity() {
    let src: Vec<u8> = (0..9 * 6 * 3).map(|i| (i * 13 % 256) as u8).collect();
    assert_eq!(imresize_u8(&src, 9, 6, 3, 9, 6), src);
}

#[test]
fn empty_or_short_input_gives_empty_output() {
    assert!(imresize_u8(&[], 0, 0, 3, 4, 4).is_empty());
    assert!(imresize_u8(&[1, 2, 3], 1, 1, 3, 0, 5).is_empty());
    assert!(
        imresize_u8(&[1, 2, 3], 2, 1, 3, 4, 4).is_empty(),
        "short buffer"
    );
    assert!(
        imresize_u8(&[1, 2, 3], 1, 1, 0, 4, 4).is_empty(),
        "0 channels"
    );
    assert!(imresize_f32_chw(&[], 0, 3, 3, 4, 4).is_empty());
    assert!(try_imresize_u8(&[], 0, 0, 3, 4, 4).is_err());
    assert!(ResizeTable::new(0, 4).is_err());
    assert!(ResizeTable::with_scale(4, 4, 0.0).is_err());
    assert!(ResizeTable::with_scale(4, 4, f64::NAN).is_err());
    assert!(
        ResizeTable::with_scale(4, 4, 1e-300).is_err(),
        "absurd kernel width"
    );
}

#[test]
fn resize_table_matches_matlab_weights() {
    // Upscale ×2, first output at u = 0.75 (1-based): candidates -2..3, the outer two always
    // weigh 0 and are dropped; -1..2 mirror to 2,1,1,2 (1-based).
    let t = ResizeTable::new(4, 8).expect("valid sizes");
    assert_eq!(t.taps(), 4);
    let (idx, w) = t.row(0).expect("row 0");
    assert_eq!(idx, [1, 0, 0, 1]);
    let expected = [-0.0234375, 0.2265625, 0.8671875, -0.0703125];
    for (a, b) in w.iter().zip(expected) {
        assert!((a - b).abs() < 1e-15, "{w:?}");
    }
    // Downscale ×1/2: kernel widened to 8, so 10 candidate columns, all used here.
    let t = ResizeTable::new(8, 4).expect("valid sizes");
    assert_eq!(t.in_len(), 8);
    assert_eq!(t.out_len(), 4);
    assert_eq!(t.scale(), 0.5);
    let (_, w) = t.row(1).expect("row 1");
    assert!(t.row(4).is_none());
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}
