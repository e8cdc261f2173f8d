//! Training on generated data with tiny networks: the loss falls, a resumed run is bit-identical
//! to the uninterrupted one, `init_from` copies the tensors that match, and the CLI trains,
//! validates and exports weights that `imdn info` reads.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use imdn::model::{Config, Variant};
use imdn::train::{self, Loss, TrainOptions, checkpoint};
use imdn::weights::{self, Tensors};

/// A folder under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = common::temp_path(&format!(
            "train-{}-{tag}",
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Eight 64×64 "photos": smooth colour gradients, a few hard-edged shapes, mild noise.
fn synthetic_photos() -> TempDir {
    let dir = TempDir::new("data");
    let mut state: u64 = 0x1234_5678;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for k in 0..8 {
        let (w, h) = (64u32, 64u32);
        let base: [f64; 3] = [rnd() * 200.0, rnd() * 200.0, rnd() * 200.0];
        let grad: [f64; 3] = [rnd() * 2.0 - 1.0, rnd() * 2.0 - 1.0, rnd() * 2.0 - 1.0];
        let (cx, cy, r) = (rnd() * 64.0, rnd() * 64.0, 8.0 + rnd() * 16.0);
        let stripe = 4.0 + rnd() * 8.0;
        let shade = rnd() * 120.0 - 60.0;
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (xf, yf) = (f64::from(x), f64::from(y));
            let inside = (xf - cx).powi(2) + (yf - cy).powi(2) < r * r;
            let band = ((xf + yf * 0.5) / stripe) as i64 % 2 == 0 && y > 40;
            let mut px = [0u8; 3];
            for c in 0..3 {
                let mut v =
                    base[c] + grad[c] * (xf + yf) * 0.8 + (xf * 0.2 + c as f64).sin() * 10.0;
                if inside {
                    v += shade;
                }
                if band {
                    v = 255.0 - v;
                }
                v += (rnd() - 0.5) * 12.0;
                px[c] = v.clamp(0.0, 255.0) as u8;
            }
            image::Rgb(px)
        });
        img.save(dir.join(&format!("photo{k}.png"))).unwrap();
    }
    dir
}

/// Four 64×64 images of hard-edged stripes at different angles and periods: content unlike
/// [`synthetic_photos`], for a second validation set.
fn synthetic_stripes() -> TempDir {
    let dir = TempDir::new("stripes");
    for k in 0..4u32 {
        let angle = 0.4 + f64::from(k) * 0.7;
        let period = 3.0 + f64::from(k) * 2.5;
        let (c, s) = (angle.cos(), angle.sin());
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            let t = (f64::from(x) * c + f64::from(y) * s) / period;
            let v: u8 = if t.rem_euclid(1.0) < 0.5 { 30 } else { 220 };
            image::Rgb([v, v, v / 2 + 60])
        });
        img.save(dir.join(&format!("stripes{k}.png"))).unwrap();
    }
    dir
}

/// The smallest networks: IMDN and IMDN_AS need 16 channels for their attention (reduction 16).
fn tiny(variant: Variant, scale: usize) -> Config {
    Config {
        variant,
        channels: if variant == Variant::Rtc { 8 } else { 16 },
        blocks: 1,
        upsampler_scale: if variant == Variant::As { 4 } else { scale },
        input_skip: variant == Variant::As,
        scale_input: variant == Variant::As,
    }
}

fn options(config: Config, data: &Path, out: &Path) -> TrainOptions {
    let mut o = TrainOptions::new(config, data, out);
    o.batch = 2;
    o.patch = if config.variant == Variant::As { 4 } else { 16 };
    o.seed = 7;
    o.keep = 0;
    o
}

fn bits(t: &Tensors) -> Vec<(String, Vec<u32>)> {
    let mut v: Vec<_> = t
        .iter()
        .map(|(k, x)| {
            let vals = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (k.clone(), vals.iter().map(|f| f.to_bits()).collect())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn loss_falls() {
    let data = synthetic_photos();
    for loss in [Loss::L1, Loss::L2] {
        let out = TempDir::new("loss");
        let mut o = options(tiny(Variant::Rtc, 2), data.path(), out.path());
        o.steps = 30;
        o.lr = 2e-3;
        o.loss = loss;
        let s = train::train(&o).unwrap();
        assert_eq!(s.losses.len(), 30);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let (first, last) = (mean(&s.losses[..5]), mean(&s.losses[25..]));
        eprintln!("{loss:?} loss: first 5 steps {first:.5}, last 5 {last:.5}");
        // errors are below 1, so a squared error falls about as the square of an absolute one
        let ratio = if loss == Loss::L1 { 0.7 } else { 0.49 };
        assert!(
            last < ratio * first,
            "{loss:?} loss did not fall: {first:.5} → {last:.5} ({:?})",
            s.losses
        );
        let meta = weights::load_metadata(&s.export).unwrap();
        assert_eq!(meta.get("loss").map(String::as_str), Some(loss.describe()));
    }
}

/// PSNR of `weights` on `dir` as `imdn eval` scores it (whole frames, LR by our bicubic).
fn eval_psnr(weights: &Path, dir: &Path, scale: usize) -> (f64, f64) {
    let tensors = weights::load(weights).unwrap();
    let mut up = imdn::engine::Upscaler::from_tensors(tensors, &candle_core::Device::Cpu).unwrap();
    up.acs.tile = 0;
    let r =
        imdn::eval::evaluate(&mut up, dir, imdn::eval::LrSource::Downscale, scale, |_| {}).unwrap();
    (r.mean_sr().0, r.mean_bicubic().0)
}

/// A structured validation folder is scored beside the natural one at every validation, each
/// as `imdn eval` scores the weights, and logged; without it validation is as before.
#[test]
fn validates_a_structured_set_beside_the_natural_one() {
    let (photos, stripes) = (synthetic_photos(), synthetic_stripes());
    let out = TempDir::new("val2");
    let mut o = options(tiny(Variant::Rtc, 2), photos.path(), out.path());
    o.steps = 4;
    o.val = Some(photos.path().to_owned());
    o.val_structured = Some(stripes.path().to_owned());
    o.val_every = 2;
    let s = train::train(&o).unwrap();
    assert_eq!(
        s.validations.iter().map(|v| v.step).collect::<Vec<_>>(),
        [2, 4]
    );
    for v in &s.validations {
        let structured = v
            .structured
            .as_ref()
            .expect("structured scores at every validation");
        assert_eq!((structured.len(), structured[0].0), (1, 2));
        // different content, different bicubic baselines: the two sets are scored apart
        assert!((structured[0].2 - v.scores[0].2).abs() > 0.5, "{v:?}");
    }
    let last = s.validations.last().unwrap();
    let (p, b) = eval_psnr(&s.export, stripes.path(), 2);
    let got = last.structured.as_ref().unwrap()[0];
    assert!(
        (got.1 - p).abs() < 1e-9 && (got.2 - b).abs() < 1e-9,
        "{got:?} vs eval {p} {b}"
    );
    let (p, b) = eval_psnr(&s.export, photos.path(), 2);
    assert!((last.scores[0].1 - p).abs() < 1e-9 && (last.scores[0].2 - b).abs() < 1e-9);
    let log = std::fs::read_to_string(out.join(train::LOG_NAME)).unwrap();
    assert_eq!(log.matches("\"structured_validation\"").count(), 2, "{log}");

    // without the second folder: the natural scores alone
    let plain = TempDir::new("val1");
    let mut o1 = o.clone();
    o1.out = plain.path().to_owned();
    o1.val_structured = None;
    let s1 = train::train(&o1).unwrap();
    assert!(s1.validations.iter().all(|v| v.structured.is_none()));
    assert_eq!(s1.validations.last().unwrap().scores, last.scores);

    // a structured folder alone is refused before anything runs
    let lone = TempDir::new("val-lone");
    let mut o2 = o.clone();
    o2.out = lone.path().to_owned();
    o2.val = None;
    let err = train::train(&o2).unwrap_err().to_string();
    assert!(err.contains("give both"), "{err}");
    assert!(checkpoint::list(lone.path()).unwrap().is_empty());
}

#[test]
fn resume_is_bit_identical() {
    let data = synthetic_photos();
    // with and without a weight average
    for (config, ema) in [(tiny(Variant::Rtc, 2), 0.0), (tiny(Variant::As, 4), 0.9)] {
        // uninterrupted: 6 steps, checkpoints at 3 and 6
        let a = TempDir::new("uninterrupted");
        let mut o = options(config, data.path(), a.path());
        o.ema = ema;
        o.steps = 6;
        o.checkpoint_every = 3;
        let full = train::train(&o).unwrap();
        assert_eq!((full.start_step, full.step), (0, 6));
        let steps: Vec<u64> = checkpoint::list(a.path())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(steps, vec![3, 6]);

        // interrupted: a run stopped at 3, then a new run that resumes to 6
        let b = TempDir::new("resumed");
        let mut o3 = options(config, data.path(), b.path());
        o3.ema = ema;
        o3.steps = 3;
        o3.checkpoint_every = 3;
        train::train(&o3).unwrap();
        let first3 = checkpoint::load(&b.join(&checkpoint::file_name(3))).unwrap();
        let full3 = checkpoint::load(&a.join(&checkpoint::file_name(3))).unwrap();
        assert_eq!(bits(&first3.params), bits(&full3.params));
        assert_eq!(first3.state.rng, full3.state.rng);

        let mut o6 = o3.clone();
        o6.steps = 6;
        o6.resume = true;
        // the seed of a resumed run is the checkpoint's PRNG state, not this
        o6.seed = 12345;
        let resumed = train::train(&o6).unwrap();
        assert_eq!((resumed.start_step, resumed.step), (3, 6));
        assert_eq!(resumed.losses, full.losses[3..].to_vec(), "{config}");

        let wa = weights::load(&full.export).unwrap();
        let wb = weights::load(&resumed.export).unwrap();
        assert_eq!(bits(&wa), bits(&wb), "{config}: resumed weights differ");
        let ca = checkpoint::load(&a.join(&checkpoint::file_name(6))).unwrap();
        let cb = checkpoint::load(&b.join(&checkpoint::file_name(6))).unwrap();
        assert_eq!(bits(&ca.m), bits(&cb.m));
        assert_eq!(bits(&ca.v), bits(&cb.v));
        assert_eq!(bits(&ca.ema), bits(&cb.ema));
        assert_eq!(
            (cb.state.ema_decay, cb.state.ema_updates),
            (ema, 6 * (ema > 0.0) as u64)
        );
        if ema > 0.0 {
            // the export and a checkpoint read as weights are the average, not the last step
            assert_eq!(bits(&wa), bits(&ca.ema));
            assert_ne!(bits(&wa), bits(&ca.params));
            let as_weights = weights::load(&a.join(&checkpoint::file_name(6))).unwrap();
            assert_eq!(bits(&as_weights), bits(&ca.ema));
        } else {
            assert!(ca.ema.is_empty());
            assert_eq!(bits(&wa), bits(&ca.params));
        }
        assert_eq!(ca.state.rng, cb.state.rng);
        assert_eq!(ca.state.adam_t, 6);
        assert_eq!(cb.state.seed, 7, "the run keeps its first seed");

        // the exported weights load as the model they are
        let detected = Config::detect(&wa).unwrap();
        assert_eq!(detected, config);
        // and a new run in a used folder without --resume is refused
        assert!(train::train(&o).is_err());
    }
}

#[test]
fn init_from_copies_matching_tensors() {
    let data = synthetic_photos();
    let src_dir = TempDir::new("x2");
    let mut o = options(tiny(Variant::Imdn, 2), data.path(), src_dir.path());
    o.steps = 1;
    let x2 = train::train(&o).unwrap();
    let src = weights::load(&x2.export).unwrap();

    for target in [tiny(Variant::Imdn, 3), tiny(Variant::As, 4)] {
        let dir = TempDir::new("finetune");
        let mut o = options(target, data.path(), dir.path());
        o.steps = 0;
        o.seed = 99;
        o.init_from = Some(x2.export.clone());
        let s = train::train(&o).unwrap();
        let got = weights::load(&s.export).unwrap();
        let mut copied = 0;
        for (name, t) in &got {
            match src.get(name) {
                Some(x) if x.dims() == t.dims() => {
                    assert_eq!(
                        bits(&[(name.clone(), x.clone())].into()),
                        bits(&[(name.clone(), t.clone())].into()),
                        "{name} not copied into {target}"
                    );
                    assert!(s.init_copied.contains(name));
                    copied += 1;
                }
                _ => assert!(!s.init_copied.contains(name), "{name}"),
            }
        }
        assert_eq!(copied, s.init_copied.len());
        assert!(s.init_copied.iter().any(|n| n.starts_with("IMDB1.")));
        assert!(s.init_copied.iter().all(|n| !n.starts_with("upsampler")));
        if target.variant == Variant::Imdn {
            // everything but the upsampler
            assert_eq!(copied, src.len() - 2);
        } else {
            // IMDN_AS: the body, not the stride-2 front end nor the ×4 upsampler
            assert!(got.contains_key("fea_conv.0.weight"));
            assert!(!s.init_copied.iter().any(|n| n.starts_with("fea_conv")));
            assert!(s.init_copied.contains(&"LR_conv.weight".to_owned()));
        }
    }
}

/// With its input skip, a new IMDN_AS returns its (bicubic-upscaled) input unchanged, on
/// candle and on our CPU kernels, so training starts from bicubic and learns the detail.
#[test]
fn imdn_as_starts_as_the_identity() {
    use candle_core::{Device, Tensor};
    let data = synthetic_photos();
    let dir = TempDir::new("as-identity");
    let mut o = options(tiny(Variant::As, 4), data.path(), dir.path());
    o.steps = 0;
    let s = train::train(&o).unwrap();
    let tensors = weights::load(&s.export).unwrap();
    let (h, w) = (8, 12);
    let x: Vec<f32> = (0..3 * h * w)
        .map(|i| (i * 37 % 101) as f32 / 100.0)
        .collect();
    let (net, config) =
        imdn::model::Network::from_tensors(tensors.clone(), &Device::Cpu, candle_core::DType::F32)
            .unwrap();
    assert!(config.input_skip && config.scale_input, "{config}");
    let input = Tensor::from_vec(x.clone(), (1, 3, h, w), &Device::Cpu).unwrap();
    // at any scale
    let code = imdn::model::scale_code(3.0);
    let candle: Vec<f32> = net
        .forward_at(&input, Some(&Tensor::new(&[code], &Device::Cpu).unwrap()))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut ours = Vec::new();
    imdn::cpu::CpuNet::new(&config, &tensors, 1)
        .unwrap()
        .forward_at_into(&x, 1, h, w, Some(code), &mut ours)
        .unwrap();
    for out in [candle, ours] {
        let max = common::max_abs_diff(&out, &x);
        assert!(max < 1e-6, "output differs from the input by {max}");
    }
}

#[test]
fn cli_trains_validates_and_exports() {
    let data = synthetic_photos();
    let out = TempDir::new("cli");
    let exe = env!("CARGO_BIN_EXE_imdn");
    let run = |args: &[&str]| {
        let o = Command::new(exe).args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "imdn {args:?} failed:\n{text}");
        text
    };
    let (d, o) = (data.path().to_str().unwrap(), out.path().to_str().unwrap());
    let common = [
        "train",
        "--variant",
        "rtc",
        "--scale",
        "2",
        "--channels",
        "8",
        "--blocks",
        "1",
        "--data",
        d,
        "--out",
        o,
        "--patch",
        "8",
        "--batch",
        "2",
        "--threads",
        "2",
        "--checkpoint-every",
        "2",
        "--val",
        d,
        "--val-structured",
        d,
        "--val-every",
        "2",
        "--device",
        "cpu",
    ];
    let text = run(&[&common[..], &["--steps", "2"]].concat());
    assert!(text.contains("validation PSNR ×2"), "{text}");
    assert!(text.contains("; structured ×2"), "{text}");
    assert!(text.contains("\"structured_validation\":[{"), "{text}");
    let text = run(&[&common[..], &["--steps", "4", "--resume"]].concat());
    assert!(text.contains("resuming"), "{text}");
    assert!(text.contains("\"step\":4"), "{text}");
    let model = out.join(train::EXPORT_NAME);
    let info = run(&["info", model.to_str().unwrap()]);
    assert!(
        info.contains("IMDN_RTC") && info.contains("scale: 2"),
        "{info}"
    );
    let meta = weights::load_metadata(&model).unwrap();
    assert_eq!(meta.get("steps").map(String::as_str), Some("4"));
    assert_eq!(meta.get("variant").map(String::as_str), Some("IMDN_RTC"));
    let log = std::fs::read_to_string(out.join(train::LOG_NAME)).unwrap();
    assert!(log.contains("\"resumed_at\":2"), "{log}");

    // `imdn convert` of the last checkpoint writes the same weights with the same model card
    let ck = out.join(&checkpoint::file_name(4));
    let converted = out.join("converted.safetensors");
    run(&["convert", ck.to_str().unwrap(), converted.to_str().unwrap()]);
    assert_eq!(
        bits(&weights::load(&converted).unwrap()),
        bits(&weights::load(&model).unwrap())
    );
    let meta_c = weights::load_metadata(&converted).unwrap();
    for key in ["steps", "variant", "seed", "lr", "train_seconds", "format"] {
        assert_eq!(meta_c.get(key), meta.get(key), "{key}");
    }
    assert_eq!(
        meta_c.get("exported_from").map(String::as_str),
        Some("checkpoint-00000004.safetensors")
    );

    // a separate process running the 4 steps at once ends with the same weights
    let straight = TempDir::new("cli-straight");
    let o2 = straight.path().to_str().unwrap();
    let mut args = common.to_vec();
    let i = args.iter().position(|a| *a == o).unwrap();
    args[i] = o2;
    run(&[&args[..], &["--steps", "4"]].concat());
    let a = weights::load(&model).unwrap();
    let b = weights::load(&straight.join(train::EXPORT_NAME)).unwrap();
    assert_eq!(
        bits(&a),
        bits(&b),
        "2 + 2 resumed steps differ from 4 steps"
    );

    // an unknown loss is refused before anything is trained
    let bad = [&args[..], &["--steps", "6", "--resume", "--loss", "huber"]].concat();
    let o = Command::new(exe).args(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("unknown loss \"huber\""),
        "{err}"
    );
    assert!(!straight.join(&checkpoint::file_name(6)).exists());
}

/// `--no-scale-input` trains IMDN_AS as its first shipped run was (no `scale_embed`), and is
/// refused for the networks that have no scale input.
#[test]
fn cli_trains_imdn_as_with_or_without_its_scale_input() {
    let data = synthetic_photos();
    let exe = env!("CARGO_BIN_EXE_imdn");
    let d = data.path().to_str().unwrap();
    for (variant, extra, ok) in [
        ("as", None, true),
        ("as", Some("--no-scale-input"), true),
        ("rtc", Some("--no-scale-input"), false),
    ] {
        let out = TempDir::new("cli-as");
        let o = out.path().to_str().unwrap();
        let mut args = vec![
            "train",
            "--variant",
            variant,
            "--channels",
            "16",
            "--blocks",
            "1",
            "--data",
            d,
            "--out",
            o,
            "--patch",
            "4",
            "--batch",
            "1",
            "--threads",
            "1",
            "--steps",
            "1",
            "--device",
            "cpu",
        ];
        args.extend(extra);
        let run = Command::new(exe).args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.success(), ok, "imdn {args:?}:\n{text}");
        if !ok {
            assert!(text.contains("--no-scale-input"), "{text}");
            continue;
        }
        let tensors = weights::load(&out.join(train::EXPORT_NAME)).unwrap();
        let config = imdn::model::Config::detect(&tensors).unwrap();
        assert!(config.input_skip, "{config}");
        assert_eq!(config.scale_input, extra.is_none(), "{config}");
    }
}

#[test]
fn weight_average_starts_on_resume_without_changing_training() {
    let data = synthetic_photos();
    let config = tiny(Variant::Rtc, 2);
    let plain = TempDir::new("plain");
    let mut o = options(config, data.path(), plain.path());
    o.steps = 4;
    let full = train::train(&o).unwrap();

    // 2 steps without an average, then 2 more with one
    let mixed = TempDir::new("mixed");
    let mut o2 = options(config, data.path(), mixed.path());
    o2.steps = 2;
    train::train(&o2).unwrap();
    o2.steps = 4;
    o2.resume = true;
    o2.ema = 0.5;
    let resumed = train::train(&o2).unwrap();
    assert_eq!(
        resumed.losses,
        full.losses[2..].to_vec(),
        "the average changed training"
    );
    let ck = checkpoint::load(&mixed.join(&checkpoint::file_name(4))).unwrap();
    let plain_ck = checkpoint::load(&plain.join(&checkpoint::file_name(4))).unwrap();
    assert_eq!(bits(&ck.params), bits(&plain_ck.params));
    assert_eq!((ck.state.ema_decay, ck.state.ema_updates), (0.5, 2));
    assert_eq!(ck.ema.len(), ck.params.len());
    assert_ne!(bits(&ck.ema), bits(&ck.params));
}

#[test]
fn time_limit_stops_with_a_checkpoint_that_resumes() {
    let data = synthetic_photos();
    let config = tiny(Variant::Rtc, 2);
    let a = TempDir::new("timed-full");
    let mut o = options(config, data.path(), a.path());
    o.steps = 4;
    let full = train::train(&o).unwrap();

    // a limit of zero ends the session after its first step, as a lease running out would
    let b = TempDir::new("timed");
    let mut ob = options(config, data.path(), b.path());
    ob.steps = 4;
    ob.time_limit = Some(std::time::Duration::ZERO);
    let first = train::train(&ob).unwrap();
    assert_eq!((first.start_step, first.step), (0, 1));
    assert_eq!(first.losses, full.losses[..1].to_vec());
    let steps: Vec<u64> = checkpoint::list(b.path())
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(steps, vec![1], "the stop writes its checkpoint");

    ob.time_limit = None;
    ob.resume = true;
    let rest = train::train(&ob).unwrap();
    assert_eq!((rest.start_step, rest.step), (1, 4));
    assert_eq!(rest.losses, full.losses[1..].to_vec());
    let wa = weights::load(&full.export).unwrap();
    let wb = weights::load(&rest.export).unwrap();
    assert_eq!(bits(&wa), bits(&wb), "stopped-and-resumed weights differ");
}
