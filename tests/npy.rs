//! The minimal `.npy` reader and writer: the parity reference arrays, round trips, bad input.

mod common;

use std::path::Path;

use common::TempFile;
use common::npy::{NpyError, read_npy_f32, write_npy_f32};

/// The read must fail with a message naming the file; returns the error.
fn read_err(path: &Path) -> NpyError {
    match read_npy_f32(path) {
        Ok((shape, _)) => panic!(
            "{} read as shape {shape:?}, expected an error",
            path.display()
        ),
        Err(e) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            e
        }
    }
}

/// A hand-written version 1 file with the given header dict.
fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.to_owned();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn parity_reference_arrays_have_the_documented_shapes() {
    let Some(input) = common::reference("parity/butterflyx2_input_f32.npy") else {
        return;
    };
    let (shape, data) = read_npy_f32(&input).unwrap();
    assert_eq!(shape, [1, 3, 128, 128]);
    assert_eq!(data.len(), 3 * 128 * 128);
    // RGB in [0, 1].
    assert!(data.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(data.iter().any(|&v| v > 0.5));

    let Some(raw) = common::reference("parity/butterflyx2_raw_f32.npy") else {
        return;
    };
    let (shape, data) = read_npy_f32(&raw).unwrap();
    assert_eq!(shape, [1, 3, 256, 256]);
    assert_eq!(data.len(), 3 * 256 * 256);
    assert!(data.iter().all(|v| v.is_finite()));
}

#[test]
fn truncated_reference_array_is_an_error() {
    let Some(input) = common::reference("parity/butterflyx2_input_f32.npy") else {
        return;
    };
    let bytes = std::fs::read(input).unwrap();
    for cut in [4, 9, 50, 128, bytes.len() - 1] {
        let file = TempFile::with_bytes("cut.npy", &bytes[..cut]);
        let err = read_err(file.path());
        assert!(
            matches!(err, NpyError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn write_then_read_round_trips() {
    let cases: [(&[usize], Vec<f32>); 4] = [
        (&[], vec![3.25]),
        (&[5], vec![0.0, -1.0, 1e-30, f32::MAX, -0.0]),
        (&[2, 3], (0..6).map(|i| i as f32 / 7.0).collect()),
        (&[1, 3, 4, 4], (0..48).map(|i| (i as f32).sin()).collect()),
    ];
    for (shape, data) in cases {
        let file = TempFile::new("rt.npy");
        write_npy_f32(file.path(), shape, &data).unwrap();
        let bytes = std::fs::read(file.path()).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
        // numpy aligns the data to 64 bytes.
        assert_eq!((bytes.len() - data.len() * 4) % 64, 0);
        let (read_shape, read_data) = read_npy_f32(file.path()).unwrap();
        assert_eq!(read_shape, shape);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&read_data), bits(&data));
    }
}

#[test]
fn every_prefix_of_a_written_file_is_an_error() {
    let file = TempFile::new("full.npy");
    write_npy_f32(file.path(), &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let bytes = std::fs::read(file.path()).unwrap();
    let cut_file = TempFile::new("prefix.npy");
    for cut in 0..bytes.len() {
        std::fs::write(cut_file.path(), &bytes[..cut]).unwrap();
        let err = read_err(cut_file.path());
        assert!(
            matches!(err, NpyError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn other_dtypes_and_fortran_order_are_refused() {
    let f8 = npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    );
    let file = TempFile::with_bytes("f8.npy", &f8);
    assert!(matches!(
        read_err(file.path()),
        NpyError::Unsupported { .. }
    ));

    let big = npy_with_header(
        "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
    );
    let file = TempFile::with_bytes("big.npy", &big);
    assert!(matches!(
        read_err(file.path()),
        NpyError::Unsupported { .. }
    ));

    let fortran = npy_with_header(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
        &[0; 16],
    );
    let file = TempFile::with_bytes("fortran.npy", &fortran);
    assert!(matches!(
        read_err(file.path()),
        NpyError::Unsupported { .. }
    ));
}

#[test]
fn malformed_headers_are_errors() {
    for header in [
        "not a dict",
        "{'descr': '<f4', 'fortran_order': False, }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }",
    ] {
        let file = TempFile::with_bytes("header.npy", &npy_with_header(header, &[0; 8]));
        assert!(
            matches!(read_err(file.path()), NpyError::Header { .. }),
            "{header}"
        );
    }
    // More data than the shape holds.
    let long = npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    );
    let file = TempFile::with_bytes("long.npy", &long);
    assert!(matches!(read_err(file.path()), NpyError::Header { .. }));
}

#[test]
fn foreign_and_missing_files_are_errors() {
    let file = TempFile::with_bytes("image.npy", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    assert!(matches!(read_err(file.path()), NpyError::NotNpy { .. }));
    let path = common::temp_path("does-not-exist.npy");
    assert!(matches!(read_err(&path), NpyError::Io { .. }));
}

#[test]
fn writing_a_mismatched_shape_is_an_error() {
    let file = TempFile::new("mismatch.npy");
    let err = write_npy_f32(file.path(), &[2, 2], &[1.0, 2.0, 3.0]).unwrap_err();
    assert!(matches!(err, NpyError::ShapeMismatch { .. }), "{err}");
    assert!(!file.path().exists());
}

#[test]
fn npy_error_converts_to_the_crate_error() {
    let file = TempFile::with_bytes("bad.npy", b"not numpy at all");
    let err: imdn::Error = read_npy_f32(file.path()).unwrap_err().into();
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn preamble_is_aligned_and_parses_back() {
    for shape in [vec![], vec![5], vec![1, 3, 128, 128]] {
        let numel: usize = shape.iter().product();
        let file = TempFile::new("preamble.npy");
        write_npy_f32(file.path(), &shape, &vec![0.0; numel]).unwrap();
        let len = std::fs::read(file.path()).unwrap().len();
        // the preamble (magic, version, header length, header) fills whole 64-byte blocks
        assert_eq!((len - numel * 4) % 64, 0, "{shape:?}");
        let (parsed, data) = read_npy_f32(file.path()).unwrap();
        assert_eq!(parsed, shape);
        assert_eq!(data.len(), numel);
    }
}

#[test]
fn header_entries_split_at_top_level() {
    // the shape tuple's commas are no entry separators
    for (shape, want) in [("(2, 3)", vec![2, 3]), ("(7,)", vec![7]), ("()", vec![])] {
        let numel: usize = want.iter().product();
        let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        let file = TempFile::with_bytes(
            "entries.npy",
            &npy_with_header(&header, &vec![0; numel * 4]),
        );
        let (parsed, data) = read_npy_f32(file.path()).unwrap();
        assert_eq!(parsed, want, "{header}");
        assert_eq!(data.len(), numel);
    }
}
