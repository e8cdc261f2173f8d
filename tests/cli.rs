//! The `imdn` command line end to end: info, convert, upscale (any size, any scale for
//! IMDN_AS), eval with --json, and clear failures.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use candle_core::Device;
use imdn::model::{Config, init_tensors};
use imdn::weights;

use common::TempFile;

fn imdn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdn"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run imdn")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Random-init weights of `config` saved as safetensors, removed when dropped.
fn weights_file(config: &Config, name: &str) -> TempFile {
    let file = TempFile::new(name);
    weights::save_safetensors(&init_tensors(config, &Device::Cpu).unwrap(), file.path()).unwrap();
    file
}

fn write_png(path: &Path, w: u32, h: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 9) as u8, (y * 13) as u8, ((x + y) * 5) as u8])
    });
    img.save(path).unwrap();
}

fn size_of(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap()
}

#[test]
fn info_describes_variant_scale_and_parameters() {
    let w = weights_file(&Config::rtc(3), "info.safetensors");
    let o = imdn(&["info", w.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("variant: IMDN_RTC") && t.contains("scale: 3"),
        "{t}"
    );
    assert!(t.contains("parameters: "), "{t}");
    assert!(!t.contains("input skip"), "{t}");
    // the shipped IMDN_AS has our input skip
    let o = imdn(&["info", "imdn_as"]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("input skip: yes"), "{t}");
}

#[test]
fn upscale_at_model_scale_and_to_exact_sizes() {
    let w = weights_file(&Config::rtc(2), "up.safetensors");
    let input = TempFile::new("in.png");
    let out = TempFile::new("out.png");
    write_png(input.path(), 7, 5);
    let run = |extra: &[&str]| {
        let mut args = vec!["upscale", "--weights", w.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend([input.path().to_str().unwrap(), out.path().to_str().unwrap()]);
        let o = imdn(&args);
        assert!(o.status.success(), "{}", text(&o));
        size_of(out.path())
    };
    assert_eq!(run(&[]), (14, 10));
    assert_eq!(run(&["--width", "20", "--height", "9"]), (20, 9));
    assert_eq!(run(&["--tile", "4", "--overlap", "2"]), (14, 10));
}

#[test]
fn imdn_as_takes_any_scale() {
    let w = weights_file(&Config::imdn_as(), "as.safetensors");
    let input = TempFile::new("as-in.png");
    let out = TempFile::new("as-out.png");
    write_png(input.path(), 9, 6);
    for (scale, want) in [("1", (9, 6)), ("2.5", (23, 15)), ("3", (27, 18))] {
        let o = imdn(&[
            "upscale",
            "--weights",
            w.path().to_str().unwrap(),
            "--scale",
            scale,
            input.path().to_str().unwrap(),
            out.path().to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(size_of(out.path()), want, "--scale {scale}");
    }
    let o = imdn(&[
        "upscale",
        "--weights",
        w.path().to_str().unwrap(),
        input.path().to_str().unwrap(),
        out.path().to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("need --scale"),
        "{}",
        text(&o)
    );
}

#[test]
fn convert_then_info_and_eval_json() {
    let Some(pth) = common::reference("imdn-checkpoints/model_RTC.pth") else {
        return;
    };
    let Some(hr) = common::reference("Set5/HR") else {
        return;
    };
    let st = TempFile::new("rtc.safetensors");
    let o = imdn(&[
        "convert",
        pth.to_str().unwrap(),
        st.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("20190 parameters"), "{}", text(&o));
    let o = imdn(&[
        "eval",
        "--weights",
        st.path().to_str().unwrap(),
        "--hr",
        hr.to_str().unwrap(),
        "--downscale",
        "--scale",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let json: serde_json::Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 5);
    // each image with its bicubic baseline, which the mean's baseline averages
    let per_image: f64 = images
        .iter()
        .map(|i| i["bicubic"]["psnr_y"].as_f64().unwrap())
        .sum::<f64>()
        / 5.0;
    assert!((per_image - json["bicubic"]["psnr_y"].as_f64().unwrap()).abs() < 1e-9);
    let psnr = json["mean"]["psnr_y"].as_f64().unwrap();
    // --downscale makes the LR bit-identical to the authors' LR set: same figure as the table
    assert!((psnr - 37.2406).abs() <= 0.01, "{psnr}");
    let bicubic = json["bicubic"]["psnr_y"].as_f64().unwrap();
    assert!((bicubic - 33.6396).abs() <= 0.01, "{bicubic}");
}

#[test]
fn failures_are_clear_messages() {
    let missing = imdn(&["info", "/nonexistent/w.safetensors"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("/nonexistent/w.safetensors"),
        "{}",
        text(&missing)
    );

    let junk = TempFile::with_bytes("junk.pth", b"hello, not weights");
    let o = imdn(&["info", junk.path().to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("junk.pth"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("panicked"), "{}", text(&o));

    let w = weights_file(&Config::rtc(2), "fail.safetensors");
    let o = imdn(&[
        "upscale",
        "--weights",
        w.path().to_str().unwrap(),
        "/nonexistent/in.png",
        "/tmp/x.png",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("/nonexistent/in.png"),
        "{}",
        text(&o)
    );
    let o = imdn(&[
        "upscale",
        "--weights",
        w.path().to_str().unwrap(),
        "--device",
        "cuda:7",
        "/nonexistent/in.png",
        "/tmp/x.png",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("CUDA"),
        "{}",
        text(&o)
    );
}

#[test]
fn shipped_models_need_no_path() {
    let o = imdn(&["info"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for s in 2..=4 {
        assert!(t.contains(&format!("imdn_rtc_x{s}: IMDN_RTC ×{s}")), "{t}");
    }

    let input = TempFile::new("shipped_in.png");
    let output = TempFile::new("shipped_out.png");
    write_png(input.path(), 15, 9);
    let o = imdn(&[
        "upscale",
        "--scale",
        "3",
        input.path().to_str().unwrap(),
        output.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(size_of(output.path()), (45, 27));
    assert!(text(&o).contains("IMDN_RTC ×3"), "{}", text(&o));

    // a shipped model by name, and a name that is neither a file nor shipped
    let o = imdn(&["info", "imdn_rtc_x4"]);
    assert!(text(&o).contains("scale: 4"), "{}", text(&o));
    let o = imdn(&["info", "imdn_rtc_x9"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("imdn_rtc_x9"), "{}", text(&o));
}

/// `bench --train-batch B --phases` times a training step's forward, backward and Adam update
/// apart (the breakdown a GPU machine's short lease needs from one command).
#[test]
fn bench_times_the_training_step_phases() {
    let o = imdn(&[
        "bench",
        "--device",
        "cpu",
        "--weights",
        "imdn_rtc_x2",
        "--size",
        "16x16",
        "--train-batch",
        "2",
        "--phases",
        "--iters",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let ms = |name: &str| -> f64 {
        let rest = out.split(&format!("{name} ")).nth(1).expect(name);
        rest.split(" ms").next().unwrap().parse().expect(name)
    };
    let (f, b, u, total) = (ms("forward"), ms("backward"), ms("Adam"), ms("total"));
    assert!(f > 0.0 && b > 0.0 && u > 0.0, "{out}");
    // each printed to 0.1 ms: their sum may differ from the total by rounding alone
    assert!((f + b + u - total).abs() < 0.25, "{out}");
    // --phases means nothing without --train-batch: refused, not ignored
    let o = imdn(&["bench", "--weights", "imdn_rtc_x2", "--phases"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("--train-batch"), "{}", text(&o));
}

#[test]
fn compare_writes_bicubic_and_network_side_by_side_with_a_crop() {
    let w = weights_file(&Config::rtc(2), "compare.safetensors");
    let input = TempFile::new("compare_in.png");
    let output = TempFile::new("compare_out.png");
    write_png(input.path(), 40, 30);
    let o = imdn(&[
        "compare",
        "--weights",
        w.path().to_str().unwrap(),
        "--crop",
        "20",
        input.path().to_str().unwrap(),
        output.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // panels of 80×60 with a 4-pixel gap; the 20-pixel crop enlarged ×4 (80 / 20) below
    assert_eq!(size_of(output.path()), (2 * 80 + 4, 60 + 4 + 80));
    assert!(text(&o).contains("bicubic (left)"), "{}", text(&o));
}

/// `calibrate` records a folder's ranges into a copy of the weights: `info` counts the same
/// parameters, and `--precision int8` then runs (without them it names the command to run).
#[test]
fn calibrate_writes_ranges_that_int8_runs_on() {
    let w = weights_file(&Config::rtc(2), "cal-in.safetensors");
    let dir = common::temp_path("cal-images");
    std::fs::create_dir_all(&dir).unwrap();
    write_png(&dir.join("a.png"), 40, 30);
    write_png(&dir.join("b.png"), 24, 50);
    let out = TempFile::new("cal-out.safetensors");
    let (png, up) = (TempFile::new("cal.png"), TempFile::new("cal-up.png"));
    write_png(png.path(), 20, 16);
    let run_int8 = |weights: &Path| {
        imdn(&[
            "upscale",
            "--weights",
            weights.to_str().unwrap(),
            "--precision",
            "int8",
            png.path().to_str().unwrap(),
            up.path().to_str().unwrap(),
        ])
    };
    if imdn::kernels::int8::available() {
        let o = run_int8(w.path());
        assert!(
            !o.status.success() && text(&o).contains("imdn calibrate"),
            "{}",
            text(&o)
        );
    }
    let calibrate = |clip: &str| {
        imdn(&[
            "calibrate",
            "--weights",
            w.path().to_str().unwrap(),
            "--images",
            dir.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--clip",
            clip,
        ])
    };
    let o = calibrate("0.5");
    assert!(
        !o.status.success() && text(&o).contains("--clip"),
        "{}",
        text(&o)
    );
    let o = calibrate("0.001");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("20 convs calibrated over 2 images"),
        "{}",
        text(&o)
    );
    let card = weights::load_metadata(out.path()).unwrap();
    let how = &card["int8_calibration"];
    assert!(
        how.contains("2 images") && how.contains("leaving out 0.001"),
        "{how}"
    );
    let count = |p: &Path| text(&imdn(&["info", p.to_str().unwrap()]));
    let params = |t: String| {
        t.lines()
            .find(|l| l.contains("parameters"))
            .map(str::to_owned)
    };
    assert_eq!(params(count(w.path())), params(count(out.path())));
    if imdn::kernels::int8::available() {
        let o = run_int8(out.path());
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(size_of(up.path()), (40, 32));
    }
}
