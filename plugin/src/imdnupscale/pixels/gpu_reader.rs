//! The GPU's Y'CbCr reader (`kernels.cu`'s `yuv_in_f32`, compiled for the host as the
//! library's tests compile it) against the element's: the same R'G'B', bit for bit, for every
//! Y'CbCr and gray format, colorimetry, chroma siting, odd size and padded stride.

// the shared test support; this test uses only its launcher
#[allow(dead_code)]
#[path = "../../../../tests/common/host_kernels.rs"]
mod host_kernels;

use gst_video::VideoFrameRef;
use imdn::cuda::args::Tap;

use super::equivalence::{Rng, SIZES, bits, buffer, cases, info};
use super::yuv::{Yuv, chroma_axes_for, gpu_reader_args};
use super::{Layout, Scratch, layout, read_frame};

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
