//! The GPU's Y'CbCr reader and writer (`kernels.cu`'s `yuv_in_f32` and `yuv_out_*_f32`,
//! compiled for the host as the library's tests compile them) against the element's: the same
//! R'G'B' and the same bytes, bit for bit, for every Y'CbCr and gray format, colorimetry,
//! chroma siting, odd size and padded stride.

// the shared test support; this test uses only its launcher
#[allow(dead_code)]
#[path = "../../../../tests/common/host_kernels.rs"]
mod host_kernels;

use gst_video::VideoFrameRef;
use imdn::cuda::args::Tap;

use super::equivalence::{Rng, SIZES, bits, buffer, cases, info};
use super::yuv::{Yuv, chroma_axes_for, gpu_reader_args, gpu_writer_args};
use super::{Layout, Scratch, layout, read_frame, write_frame};

fn taps(axis: &[(usize, usize, f32)]) -> Vec<Tap> {
    axis.iter()
        .map(|&(i0, i1, f)| Tap {
            i0: i0 as i32,
            i1: i1 as i32,
            f,
        })
        .collect()
}

#[test]
fn the_gpu_reader_reads_as_the_element_does() {
    gst::init().unwrap();
    let mut rng = Rng(0x51_7cc1_b727_220a);
    let mut scratch = Scratch::default();
    let mut checked = 0;
    for (f, cm, site, pad) in cases() {
        for size in SIZES {
            let info = info(f, size, cm, site, pad);
            let Layout::Yuv(yl) = layout(&info).unwrap() else {
                continue;
            };
            let buf = buffer(rng.bytes(info.size()));
            let want = read_frame(&buf, &info, Vec::new(), Vec::new, &mut scratch).unwrap();

            let frame = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info).unwrap();
            let (w, h) = (size.0 as usize, size.1 as usize);
            let mut axes = None;
            let (xs, ys) = chroma_axes_for(&mut axes, &info, &yl, (w, h));
            let (xs, ys) = (taps(xs), taps(ys));
            let mut got = vec![f32::NAN; 3 * w * h];
            let yuv = Yuv::for_info(&info, yl.depth);
            let at = (xs.as_ptr() as u64, ys.as_ptr() as u64);
            let args = gpu_reader_args(&frame, &yl, &yuv, at, got.as_mut_ptr() as u64).unwrap();
            let l = args.launch().unwrap();
            // SAFETY: the arguments point into the mapped frame, the taps and `got`, all alive
            assert!(unsafe { host_kernels::launch(l.kernel, l.args.bytes(), l.grid, l.block) });
            assert_eq!(bits(&got), bits(&want.rgb), "{f:?} {cm} {site:?} {size:?}");
            checked += 1;
        }
    }
    // every Y'CbCr and gray format, at every size and colorimetry
    assert!(checked >= 9 * 4 * SIZES.len(), "{checked}");
}

#[test]
fn the_gpu_writer_writes_as_the_element_does() {
    gst::init().unwrap();
    let mut rng = Rng(0x3c6e_f372_fe94_f82b);
    let mut scratch = Scratch::default();
    let mut checked = 0;
    for (f, cm, site, pad) in cases() {
        for size in SIZES {
            let info = info(f, size, cm, site, pad);
            let Layout::Yuv(yl) = layout(&info).unwrap() else {
                continue;
            };
            let n = (size.0 * size.1) as usize;
            // values past [0, 1], NaN and infinities among them: the clamping and rounding
            let rgb: Vec<f32> = (0..3 * n).map(|_| rng.unit()).collect();
            // the bytes neither writer touches (padding) must stay as they were
            let before = rng.bytes(info.size());
            let (mut want, mut got) = (buffer(before.clone()), buffer(before));
            write_frame(want.make_mut(), &info, &rgb, None, &mut scratch).unwrap();
            {
                let yuv = Yuv::for_info(&info, yl.depth);
                let mut frame =
                    VideoFrameRef::from_buffer_ref_writable(got.make_mut(), &info).unwrap();
                let args = gpu_writer_args(&mut frame, &yl, &yuv, rgb.as_ptr() as u64).unwrap();
                for l in args.launches().unwrap() {
                    // SAFETY: the arguments point into the mapped frame and `rgb`, both alive
                    assert!(unsafe {
                        host_kernels::launch(l.kernel, l.args.bytes(), l.grid, l.block)
                    });
                }
            }
            let (want, got) = (want.map_readable().unwrap(), got.map_readable().unwrap());
            assert!(
                got.as_slice() == want.as_slice(),
                "{f:?} {cm} {site:?} {size:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 9 * 4 * SIZES.len(), "{checked}");
}
