//! The GPU's frame conversions (`kernels.cu`'s `yuv_in_f32`, `yuv_out_*_f32`, `packed_*_f32`,
//! compiled for the host as the library's tests compile them) against the element's: the same
//! R'G'B' (and alpha) read and the same bytes written, bit for bit, for every format the
//! element accepts, colorimetry, chroma siting, odd size and padded stride.

// the shared test support
#[allow(dead_code)]
#[path = "../../../../tests/common/host_kernels.rs"]
mod host_kernels;

use gst_video::VideoFrameRef;
use imdn::cuda::args::Tap;

use super::equivalence::{Rng, SIZES, bits, buffer, cases, info};
use super::yuv::{Yuv, chroma_axes_for, gpu_reader_args, gpu_writer_args};
use super::{
    FORMATS, Layout, Scratch, layout, packed, plane_mut, plane_of, read_frame, write_frame,
};

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
            let plane = |p| plane_of(&frame, p).map(|(data, s)| (data.as_ptr() as u64, s));
            let args = gpu_reader_args((&yl, &yuv), (w, h), plane, at, got.as_mut_ptr() as u64);
            let args = args.unwrap();
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
                let (w, h) = (size.0 as usize, size.1 as usize);
                let plane =
                    |p| plane_mut(&mut frame, p).map(|(data, s)| (data.as_mut_ptr() as u64, s));
                let args = gpu_writer_args((&yl, &yuv), (w, h), plane, rgb.as_ptr() as u64);
                let args = args.unwrap();
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

/// Runs a launch on the host.
fn run(l: &imdn::cuda::args::Launch) {
    // SAFETY: the callers' arguments point into mapped frames and buffers alive for the call
    assert!(unsafe { host_kernels::launch(l.kernel, l.args.bytes(), l.grid, l.block) });
}

#[test]
fn the_gpu_reads_and_writes_packed_rgb_as_the_element_does() {
    gst::init().unwrap();
    let mut rng = Rng(0xa54f_f53a_5f1d_36f1);
    let mut scratch = Scratch::default();
    let mut checked = 0;
    for (f, cm, site, pad) in cases() {
        for size in SIZES {
            let info = info(f, size, cm, site, pad);
            let Layout::Packed(px) = layout(&info).unwrap() else {
                continue;
            };
            let (w, h) = (size.0 as usize, size.1 as usize);
            let n = w * h;
            // reading
            let buf = buffer(rng.bytes(info.size()));
            let want = read_frame(&buf, &info, Vec::new(), Vec::new, &mut scratch).unwrap();
            let (mut rgb, mut alpha) = (vec![f32::NAN; 3 * n], vec![0u8; n]);
            {
                let frame = VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info).unwrap();
                let (data, stride) = plane_of(&frame, 0).unwrap();
                let at = (rgb.as_mut_ptr() as u64, alpha.as_mut_ptr() as u64);
                let args = packed::gpu_args(&px, (data.as_ptr() as u64, stride), at, (w, h));
                run(&args.launch(true).unwrap());
            }
            assert_eq!(bits(&rgb), bits(&want.rgb), "{f:?} {size:?}");
            if let Some(a) = &want.alpha {
                assert_eq!(&alpha, a, "{f:?} {size:?}");
            }
            // writing, with an alpha plane (used where the format has alpha)
            let rgb: Vec<f32> = (0..3 * n).map(|_| rng.unit()).collect();
            let alpha = rng.bytes(n);
            let before = rng.bytes(info.size());
            let (mut want, mut got) = (buffer(before.clone()), buffer(before));
            write_frame(want.make_mut(), &info, &rgb, Some(&alpha), &mut scratch).unwrap();
            {
                let mut frame =
                    VideoFrameRef::from_buffer_ref_writable(got.make_mut(), &info).unwrap();
                let (data, stride) = plane_mut(&mut frame, 0).unwrap();
                let plane = (data.as_mut_ptr() as u64, stride);
                let at = (rgb.as_ptr() as u64, alpha.as_ptr() as u64);
                run(&packed::gpu_args(&px, plane, at, (w, h))
                    .launch(false)
                    .unwrap());
            }
            let (want, got) = (want.map_readable().unwrap(), got.map_readable().unwrap());
            assert!(got.as_slice() == want.as_slice(), "{f:?} {size:?}");
            checked += 1;
        }
    }
    // the ten packed R'G'B' formats
    let packed = FORMATS.len() - 10;
    assert_eq!(checked, packed * 4 * SIZES.len());
}

#[test]
fn frames_converted_on_the_device_come_out_as_on_the_host() {
    // the shipped RTC ×2 on our executor (the host standing in for the GPU) with the edge
    // mode's margin: the element's host path (read, replicate, the network, crop, write)
    // against `device::with_raw_input` and `with_raw_output` (planes up, conversions, padding
    // and cropping on the device, planes down), for every format converted on the device
    use super::device::{self, DeviceScratch};
    use imdn::acs::Framing;
    use imdn::cuda::Schedule;
    use imdn::cuda::args::Storage;
    use imdn::cuda::executor::Executor;

    gst::init().unwrap();
    let tensors = imdn::weights::shipped::by_name("imdn_rtc_x2")
        .unwrap()
        .tensors()
        .unwrap();
    let config = imdn::model::Config::detect(&tensors).unwrap();
    let schedule = Schedule::new(&config, &tensors).unwrap();
    let (s, margin) = (config.net_scale(), config.edge_margin());
    let mut on_device = Executor::new(host_kernels::HOST, schedule.clone(), Storage::F32).unwrap();
    let mut on_host = Executor::new(host_kernels::HOST, schedule, Storage::F32).unwrap();
    let mut rng = Rng(0x2f8b_9e4c_1d37_a605);
    let (mut scratch, mut device_scratch) = (Scratch::default(), DeviceScratch::default());
    let mut checked = 0;
    for (f, cm, site, pad) in cases() {
        for size in [(5, 3), (18, 11)] {
            let (info, out_info) = (
                info(f, size, cm, site, pad),
                info(f, (2 * size.0, 2 * size.1), cm, site, pad),
            );
            if !device::converts(&info) {
                continue;
            }
            let (w, h) = (size.0 as usize, size.1 as usize);
            let (pw, ph) = (w + 2 * margin, h + 2 * margin);
            let buf = buffer(rng.bytes(info.size()));
            // on the host
            let planar = read_frame(&buf, &info, Vec::new(), Vec::new, &mut scratch).unwrap();
            let mut out = Vec::new();
            let padded = host_kernels::replicate(&planar.rgb, (w, h), (pw, ph), margin);
            on_host.run(&padded, (1, ph, pw), None, &mut out).unwrap();
            let cropped = host_kernels::window(&out, (pw * s, ph * s), margin * s, (w * s, h * s));
            let mut want = buffer(vec![0; out_info.size()]);
            write_frame(want.make_mut(), &out_info, &cropped, None, &mut scratch).unwrap();
            // on the device
            let mut got = buffer(vec![0; out_info.size()]);
            let framing = Framing {
                frame: (h, w),
                margin,
            };
            let input = (buf.as_ref(), &info);
            let output = (got.as_ref(), &out_info);
            device::with_raw_input(input, output, &mut device_scratch, |frame, convert| {
                on_device
                    .submit_raw(((1, ph, pw), framing), None, frame, convert)
                    .map_err(|e| e.to_string())
            })
            .unwrap();
            device::with_raw_output((got.make_mut(), &out_info), |planes| {
                on_device.finish_raw(planes).map_err(|e| e.to_string())
            })
            .unwrap();
            let (want, got) = (want.map_readable().unwrap(), got.map_readable().unwrap());
            assert!(
                got.as_slice() == want.as_slice(),
                "{f:?} {cm} {site:?} {size:?}"
            );
            checked += 1;
        }
    }
    // every format but the four with alpha, at every colorimetry
    assert_eq!(checked, (FORMATS.len() - 4) * 4 * 2);
}
