//! Weights files: the authors' legacy checkpoints (reference data), generated fixtures of every
//! format (tests/fixtures, made by make_fixtures.py), safetensors round trips, and bad input.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use imdn::weights::{self, Format, Tensors, WeightsError};

use common::TempFile;

// ---------------------------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn tensor<'a>(tensors: &'a Tensors, name: &str) -> &'a Tensor {
    tensors
        .get(name)
        .unwrap_or_else(|| panic!("no tensor {name:?}; have {:?}", sorted_keys(tensors)))
}

fn sorted_keys(tensors: &Tensors) -> Vec<&str> {
    let mut keys: Vec<&str> = tensors.keys().map(String::as_str).collect();
    keys.sort();
    keys
}

fn assert_tensor(tensors: &Tensors, name: &str, dims: &[usize], expected: &[f32]) {
    let t = tensor(tensors, name);
    assert_eq!(t.dims(), dims, "{name}: shape");
    assert_eq!(t.dtype(), candle_core::DType::F32, "{name}: dtype");
    assert_eq!(values(t), expected, "{name}: values");
}

/// The load must fail (not panic) with a message naming the file; returns the error.
fn load_err(path: &Path) -> WeightsError {
    match weights::load(path) {
        Ok(t) => panic!(
            "{} loaded ({} tensors), expected an error",
            path.display(),
            t.len()
        ),
        Err(e) => {
            eprintln!("expected error: {e}");
            let shown = path.display().to_string();
            assert!(
                e.to_string().contains(&shown),
                "message does not name the file: {e}"
            );
            assert_eq!(e.path(), path);
            e
        }
    }
}

fn assert_identical(a: &Tensors, b: &Tensors) {
    assert_eq!(sorted_keys(a), sorted_keys(b));
    for (name, ta) in a {
        let tb = tensor(b, name);
        assert_eq!(ta.dims(), tb.dims(), "{name}");
        let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(ta), bits(tb), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The authors' checkpoints (legacy format)

/// (file, parameter count, tensors, a few expected names)
const CHECKPOINTS: &[(&str, usize, usize, &[&str])] = &[
    (
        "IMDN_x2.pth",
        694_404,
        92,
        &[
            "fea_conv.weight",
            "IMDB1.c1.weight",
            "IMDB1.cca.conv_du.0.weight",
            "c.0.weight",
            "LR_conv.weight",
            "upsampler.0.weight",
        ],
    ),
    (
        "IMDN_x3.pth",
        703_059,
        92,
        &["fea_conv.weight", "IMDB6.c5.bias", "upsampler.0.bias"],
    ),
    (
        "IMDN_x4.pth",
        715_176,
        92,
        &[
            "fea_conv.weight",
            "IMDB3.cca.conv_du.2.weight",
            "upsampler.0.weight",
        ],
    ),
    (
        "IMDN_AS.pth",
        752_104,
        94,
        &[
            "fea_conv.0.weight",
            "fea_conv.2.weight",
            "upsampler.0.weight",
        ],
    ),
    (
        "model_RTC.pth",
        20_190,
        56,
        &[
            "model.0.weight",
            "model.1.sub.0.c1.weight",
            "model.1.sub.5.weight",
            "model.2.weight",
        ],
    ),
    // Counted with an independent Python reader (pickle + struct) over the same file.
    (
        "model_RTE.pth",
        89_748,
        48,
        &[
            "fea_conv.0.weight",
            "block1.c1.weight",
            "upsampler.0.weight",
        ],
    ),
];

#[test]
fn reference_checkpoints_load_with_expected_parameter_counts() {
    for &(file, params, count, names) in CHECKPOINTS {
        let Some(path) = common::reference(&format!("imdn-checkpoints/{file}")) else {
            return;
        };
        assert_eq!(
            weights::detect_format(&path).unwrap(),
            Format::TorchLegacy,
            "{file}"
        );
        let tensors = weights::load(&path).unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "{file}: {} tensors, {} parameters",
            tensors.len(),
            weights::parameter_count(&tensors)
        );
        assert_eq!(weights::parameter_count(&tensors), params, "{file}");
        assert_eq!(tensors.len(), count, "{file}");
        for name in names {
            tensor(&tensors, name);
        }
        assert!(
            tensors.keys().all(|k| !k.starts_with("module.")),
            "{file}: prefix left"
        );
        assert!(weights::load_metadata(&path).unwrap().is_empty());
    }
}

#[test]
fn reference_shapes_and_values_match_an_independent_reader() {
    let Some(path) = common::reference("imdn-checkpoints/IMDN_x2.pth") else {
        return;
    };
    let tensors = weights::load(&path).unwrap();
    let fea = tensor(&tensors, "fea_conv.weight");
    assert_eq!(fea.dims(), [64, 3, 3, 3]);
    assert_eq!(
        tensor(&tensors, "upsampler.0.weight").dims(),
        [12, 64, 3, 3]
    );
    assert_eq!(
        tensor(&tensors, "IMDB1.cca.conv_du.0.weight").dims(),
        [4, 64, 1, 1]
    );
    assert_eq!(tensor(&tensors, "c.0.weight").dims(), [64, 384, 1, 1]);
    // First element and sum as Python's struct module reads them from the storage bytes.
    let v = values(fea);
    assert_eq!(v[0], -0.160_195_25_f32);
    let sum: f64 = v.iter().map(|&x| f64::from(x)).sum();
    assert!((sum - -2.557_910).abs() < 1e-5, "sum {sum}");

    let Some(path) = common::reference("imdn-checkpoints/model_RTC.pth") else {
        return;
    };
    let tensors = weights::load(&path).unwrap();
    assert_eq!(tensor(&tensors, "model.0.weight").dims(), [12, 3, 3, 3]);
    assert_eq!(
        values(tensor(&tensors, "model.0.weight"))[0],
        -0.014_494_533_f32
    );
}

#[test]
fn reference_round_trip_through_safetensors() {
    let Some(path) = common::reference("imdn-checkpoints/IMDN_x2.pth") else {
        return;
    };
    let original = weights::load(&path).unwrap();
    let first = TempFile::new("x2.safetensors");
    weights::save_safetensors(&original, first.path()).unwrap();
    assert_eq!(
        weights::detect_format(first.path()).unwrap(),
        Format::Safetensors
    );
    let reloaded = weights::load(first.path()).unwrap();
    assert_identical(&original, &reloaded);

    // Deterministic: the same tensors give the same bytes.
    let second = TempFile::new("x2-again.safetensors");
    weights::save_safetensors(&reloaded, second.path()).unwrap();
    assert_eq!(
        std::fs::read(first.path()).unwrap(),
        std::fs::read(second.path()).unwrap()
    );
}

#[test]
fn truncated_reference_checkpoint_is_an_error() {
    let Some(path) = common::reference("imdn-checkpoints/IMDN_x2.pth") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    // Inside the magic, the version and sys-info pickles, the state dict (15..~15 600),
    // the key list, the first storage's count, and the storage data.
    let cuts = [
        6,
        12,
        18,
        40,
        136,
        500,
        9_000,
        15_500,
        16_000,
        17_000,
        100_000,
        1_000_000,
        bytes.len() - 1,
    ];
    for cut in cuts {
        let file = TempFile::with_bytes("cut.pth", &bytes[..cut]);
        let err = load_err(file.path());
        assert!(
            matches!(err, WeightsError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generated fixtures (always available)

#[test]
fn legacy_fixture_covers_dtypes_views_and_strides() {
    let path = fixture("legacy_small.pth");
    assert_eq!(weights::detect_format(&path).unwrap(), Format::TorchLegacy);
    let t = weights::load(&path).unwrap();
    let ramp: Vec<f32> = (0..8).map(|i| 0.5 * i as f32).collect();
    assert_tensor(&t, "conv.weight", &[2, 1, 2, 2], &ramp);
    // Two tensors sharing one storage at different offsets.
    assert_tensor(&t, "conv.bias", &[2], &[14.0, 15.0]);
    assert_tensor(&t, "head.weight", &[2, 2], &[10.0, 11.0, 12.0, 13.0]);
    // Stride (1, 3): a transposed view, gathered into row-major order.
    assert_tensor(&t, "transposed", &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    assert_tensor(&t, "half", &[3], &[0.5, -1.5, 2.0]);
    assert_tensor(&t, "double", &[1, 2], &[0.25, -8.0]);
    assert_tensor(&t, "bf16", &[2], &[1.0, -2.5]);
    // A legacy storage view: elements 2..5 of its storage.
    assert_tensor(&t, "view", &[3], &[102.0, 103.0, 104.0]);
    assert_tensor(&t, "param", &[1], &[9.0]);
    assert_tensor(&t, "scalar", &[], &[42.0]);
    // Integer buffers are not parameters.
    assert!(!t.contains_key("bn.num_batches_tracked"));
    assert_eq!(t.len(), 10);
}

#[test]
fn legacy_fixture_inside_a_wrapper_dict() {
    let t = weights::load(&fixture("legacy_wrapped.pth")).unwrap();
    assert_eq!(sorted_keys(&t), ["conv.bias", "conv.weight"]);
    assert_tensor(&t, "conv.weight", &[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_tensor(&t, "conv.bias", &[1], &[-2.0]);
}

#[test]
fn zip_fixture_is_read_by_candle() {
    let path = fixture("zip_small.pth");
    assert_eq!(weights::detect_format(&path).unwrap(), Format::TorchZip);
    let t = weights::load(&path).unwrap();
    assert_eq!(sorted_keys(&t), ["conv.bias", "conv.weight", "half"]);
    let ramp: Vec<f32> = (0..8).map(|i| 0.5 * i as f32).collect();
    assert_tensor(&t, "conv.weight", &[2, 1, 2, 2], &ramp);
    assert_tensor(&t, "conv.bias", &[2], &[14.0, 15.0]);
    assert_tensor(&t, "half", &[3], &[0.5, -1.5, 2.0]);
}

#[test]
fn zip_fixture_inside_a_wrapper_dict() {
    let t = weights::load(&fixture("zip_wrapped.pth")).unwrap();
    assert_tensor(&t, "conv.weight", &[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
}

/// candle's reader removes rebuild arguments by index: too few arguments panic inside it.
/// The panic must come back as an error.
#[test]
fn zip_with_malformed_rebuild_call_is_an_error() {
    let err = load_err(&fixture("zip_bad_args.pth"));
    eprintln!("zip_bad_args.pth: {err}");
}

/// A 10-byte LONG1 in data.pkl: candle's decoder shifts past 64 bits (a panic with overflow
/// checks, a wrong value without). Either way the tensors load or an error comes back.
#[test]
fn zip_with_a_wide_integer_does_not_panic() {
    match weights::load(&fixture("zip_long1.pth")) {
        Ok(t) => assert_tensor(&t, "w", &[2], &[1.0, 2.0]),
        Err(e) => {
            eprintln!("zip_long1.pth: {e}");
            assert!(matches!(e, WeightsError::Panicked { .. }), "{e}");
        }
    }
}

#[test]
fn safetensors_fixture_converts_to_f32() {
    let path = fixture("small.safetensors");
    let t = weights::load(&path).unwrap();
    assert_eq!(sorted_keys(&t), ["a", "b", "c", "d", "f"]);
    assert_tensor(&t, "a", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_tensor(&t, "b", &[3], &[0.5, -1.5, 2.0]);
    assert_tensor(&t, "c", &[2], &[1.0, -2.5]);
    assert_tensor(&t, "d", &[2], &[0.25, -8.0]);
    assert_tensor(&t, "f", &[1], &[5.0]);
    let metadata = weights::load_metadata(&path).unwrap();
    let expected: HashMap<String, String> = [("format", "pt"), ("scale", "2")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    assert_eq!(metadata, expected);
}

#[test]
fn format_follows_content_not_extension() {
    for (name, ext) in [
        ("small.safetensors", "pth"),
        ("legacy_small.pth", "safetensors"),
        ("zip_small.pth", "bin"),
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let file = TempFile::with_bytes(&format!("renamed.{ext}"), &bytes);
        assert!(
            !weights::load(file.path()).unwrap().is_empty(),
            "{name} as .{ext}"
        );
    }
}

#[test]
fn metadata_round_trip() {
    let tensors = weights::load(&fixture("legacy_small.pth")).unwrap();
    let metadata: HashMap<String, String> = [("variant", "IMDN"), ("scale", "2")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    let file = TempFile::new("meta.safetensors");
    weights::save_safetensors_with_metadata(&tensors, &metadata, file.path()).unwrap();
    assert_eq!(weights::load_metadata(file.path()).unwrap(), metadata);
    assert_identical(&tensors, &weights::load(file.path()).unwrap());
    // Without metadata, the map is empty.
    let plain = TempFile::new("plain.safetensors");
    weights::save_safetensors(&tensors, plain.path()).unwrap();
    assert!(weights::load_metadata(plain.path()).unwrap().is_empty());
}

#[test]
fn save_converts_other_dtypes_to_f32() {
    let dev = candle_core::Device::Cpu;
    let mut tensors = Tensors::new();
    tensors.insert("h".into(), Tensor::new(&[1.5f64, -2.0], &dev).unwrap());
    tensors.insert("i".into(), Tensor::new(&[3i64], &dev).unwrap());
    let file = TempFile::new("dtypes.safetensors");
    weights::save_safetensors(&tensors, file.path()).unwrap();
    let t = weights::load(file.path()).unwrap();
    assert_tensor(&t, "h", &[2], &[1.5, -2.0]);
    assert_tensor(&t, "i", &[1], &[3.0]);
}

#[test]
fn save_to_a_missing_directory_is_an_error() {
    let path = common::temp_path("no-such-dir").join("w.safetensors");
    let err = weights::save_safetensors(&Tensors::new(), &path).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// Every prefix of the legacy fixture fails as truncated: our reader is bounds-checked.
#[test]
fn every_prefix_of_a_legacy_file_is_truncated() {
    for name in ["legacy_small.pth", "legacy_wrapped.pth"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let file = TempFile::new("prefix.pth");
        for cut in 0..bytes.len() {
            std::fs::write(file.path(), &bytes[..cut]).unwrap();
            let err = load_err(file.path());
            // Under four bytes the file cannot be told from any other pickle.
            if cut >= 4 {
                assert!(
                    matches!(err, WeightsError::Truncated { .. }),
                    "{name} cut at {cut}: {err}"
                );
            }
        }
    }
}

/// Flipping any byte of the legacy fixture may give an error or (in the data) other values,
/// but never a panic, not even one caught by the guard.
#[test]
fn corrupt_legacy_files_never_panic() {
    let bytes = std::fs::read(fixture("legacy_small.pth")).unwrap();
    let file = TempFile::new("flip.pth");
    for i in 0..bytes.len() {
        for flip in [0xff, 0x01] {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= flip;
            std::fs::write(file.path(), &corrupt).unwrap();
            if let Err(e) = weights::load(file.path()) {
                assert!(!matches!(e, WeightsError::Panicked { .. }), "byte {i}: {e}");
                assert!(e.to_string().contains(&file.path().display().to_string()));
            }
        }
    }
}

/// The same over the zip fixture, read by candle: panics are caught and reported as errors.
#[test]
fn corrupt_zip_files_give_errors_not_panics() {
    let bytes = std::fs::read(fixture("zip_small.pth")).unwrap();
    let file = TempFile::new("flip-zip.pth");
    let mut panicked = Vec::new();
    let mut fewer = 0;
    for i in 0..bytes.len() {
        let mut corrupt = bytes.clone();
        corrupt[i] ^= 0xff;
        std::fs::write(file.path(), &corrupt).unwrap();
        match weights::load(file.path()) {
            Ok(t) if t.len() < 3 => fewer += 1,
            Ok(_) => {}
            Err(e) => {
                assert!(e.to_string().contains(&file.path().display().to_string()));
                if let WeightsError::Panicked { msg, .. } = e {
                    panicked.push((i, msg));
                }
            }
        }
    }
    // candle skips tensors it cannot describe (printing "skipping: ..."), so some corrupt
    // copies load with tensors missing; the model loader reports those as missing names.
    eprintln!(
        "{} corrupt copies: candle panicked (caught) on {}: {panicked:?}; {fewer} loaded with tensors missing",
        bytes.len(),
        panicked.len()
    );
}

#[test]
fn corrupt_safetensors_files_never_panic() {
    let bytes = std::fs::read(fixture("small.safetensors")).unwrap();
    let file = TempFile::new("flip.safetensors");
    for i in 0..bytes.len() {
        let mut corrupt = bytes.clone();
        corrupt[i] ^= 0xff;
        std::fs::write(file.path(), &corrupt).unwrap();
        if let Err(e) = weights::load(file.path()) {
            assert!(!matches!(e, WeightsError::Panicked { .. }), "byte {i}: {e}");
        }
    }
}

#[test]
fn truncated_zip_is_an_error() {
    let bytes = std::fs::read(fixture("zip_small.pth")).unwrap();
    for cut in [4, 30, 200, bytes.len() / 2, bytes.len() - 1] {
        let file = TempFile::with_bytes("cut-zip.pth", &bytes[..cut]);
        load_err(file.path());
    }
}

#[test]
fn truncated_safetensors_is_an_error() {
    let bytes = std::fs::read(fixture("small.safetensors")).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for cut in [
        9,
        20,
        header_end - 1,
        header_end,
        header_end + 3,
        bytes.len() - 1,
    ] {
        let file = TempFile::with_bytes("cut.safetensors", &bytes[..cut]);
        let err = load_err(file.path());
        assert!(
            matches!(err, WeightsError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
    // Too short to recognise at all.
    let file = TempFile::with_bytes("tiny.safetensors", &bytes[..5]);
    load_err(file.path());
}

#[test]
fn png_renamed_pth_is_an_error() {
    let png =
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00";
    let file = TempFile::with_bytes("image.pth", png);
    let err = load_err(file.path());
    assert!(matches!(err, WeightsError::UnknownFormat { .. }), "{err}");
    assert!(err.to_string().contains("PNG"), "{err}");
}

#[test]
fn text_renamed_pth_is_an_error() {
    let file = TempFile::with_bytes(
        "notes.pth",
        b"These are not the weights you are looking for.\n",
    );
    let err = load_err(file.path());
    assert!(matches!(err, WeightsError::UnknownFormat { .. }), "{err}");
    assert!(err.to_string().contains("text"), "{err}");
}

/// A fixed xorshift stream, so the random tests are reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_are_an_error() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    let file = TempFile::with_bytes("random.pth", &bytes);
    load_err(file.path());
}

/// Several random byte changes, sometimes a cut: errors or loads, never a panic.
#[test]
fn randomly_mutated_legacy_files_never_panic() {
    let bytes = std::fs::read(fixture("legacy_small.pth")).unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let file = TempFile::new("fuzz.pth");
    for round in 0..3000 {
        let mut mutated = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(mutated.len());
            mutated[i] = [0x00, 0xff, 0x7f, 0x80, rng.next() as u8][rng.below(5)];
        }
        if rng.below(4) == 0 {
            mutated.truncate(rng.below(mutated.len()));
        }
        std::fs::write(file.path(), &mutated).unwrap();
        if let Err(e) = weights::load(file.path()) {
            assert!(
                !matches!(e, WeightsError::Panicked { .. }),
                "round {round}: {e}"
            );
        }
    }
}

#[test]
fn empty_file_is_an_error() {
    let file = TempFile::with_bytes("empty.pth", b"");
    let err = load_err(file.path());
    assert!(err.to_string().contains("empty file"), "{err}");
}

#[test]
fn nonexistent_path_is_an_error() {
    let path = common::temp_path("does-not-exist.pth");
    let err = load_err(&path);
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");
}

#[test]
fn weights_error_converts_to_the_crate_error() {
    let path = common::temp_path("missing.safetensors");
    let err: imdn::Error = weights::load(&path).unwrap_err().into();
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_training_checkpoint_loads_as_its_parameters() {
    let dev = candle_core::Device::Cpu;
    let t = |v: f32| candle_core::Tensor::new(&[v, v], &dev).unwrap();
    let mut ck = weights::Tensors::new();
    ck.insert("param.fea_conv.weight".into(), t(1.0));
    ck.insert("adam_m.fea_conv.weight".into(), t(2.0));
    ck.insert("adam_v.fea_conv.weight".into(), t(3.0));
    let path = common::temp_path("checkpoint.safetensors");
    weights::save_safetensors(&ck, &path).unwrap();
    let loaded = weights::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.len(), 1);
    let v = loaded["fea_conv.weight"].to_vec1::<f32>().unwrap();
    assert_eq!(v, [1.0, 1.0]);
}
