//! Frames converted on the device (issue 43), by `kernels.cu`'s conversions, which
//! `gpu_conversions.rs` holds to the CPU's bit for bit: a mapped input frame as an
//! [`imdn::cuda::executor::RawInput`] (its planes, uploaded as they are, and the sizes of the
//! output's), the launches that read the input into the network's planar input and write its
//! planar output into the output's planes at the addresses the device gives, and later the
//! mapped output's planes, which the device's planes are copied into.

use gst_video::VideoInfo;
use gst_video::prelude::*;
use imdn::cuda::executor::{Conversions, MAX_PLANES, RawAddresses, RawInput};

use super::yuv::{Yuv, chroma_axes_for, gpu_reader_args, gpu_writer_args};
use super::{ChromaKey, Layout, Tap, layout, packed, stride};

/// Whether frames of `info` convert on the device: every format the element takes but those
/// with alpha, whose alpha the host resizes.
pub fn converts(info: &VideoInfo) -> bool {
    match layout(info) {
        Ok(Layout::Packed(px)) => !px.fourth.is_some_and(|(_, alpha)| alpha),
        Ok(Layout::Yuv(_)) => true,
        Err(_) => false,
    }
}

/// What a stream's device conversions keep between frames: the input's chroma taps and the
/// table of them the device reads.
#[derive(Default)]
pub struct DeviceScratch {
    axes: Option<(ChromaKey, Vec<Tap>, Vec<Tap>)>,
    /// The taps, columns then rows, as `kernels.cu`'s `struct Tap`s, and the geometry they
    /// were made for.
    table: Vec<u8>,
    table_key: Option<ChromaKey>,
}

/// Bytes of one `kernels.cu` `struct Tap`.
const TAP_BYTES: usize = size_of::<imdn::cuda::args::Tap>();

/// Maps `input` (at `in_info`) and `output` (at `out_info`, read for its planes' strides
/// and sizes) and hands `run` the input as a raw frame with the sizes of the output's planes,
/// and the conversions between them and the network's planar frames. The output is written
/// later, by [`with_raw_output`].
pub fn with_raw_input(
    (input, in_info): (&gst::BufferRef, &VideoInfo),
    (output, out_info): (&gst::BufferRef, &VideoInfo),
    scratch: &mut DeviceScratch,
    run: impl FnOnce(
        RawInput,
        &dyn Fn(&RawAddresses, &mut Conversions) -> imdn::Result<()>,
    ) -> Result<(), String>,
) -> Result<(), String> {
    let (in_layout, out_layout) = (layout(in_info)?, layout(out_info)?);
    let inframe = gst_video::VideoFrameRef::from_buffer_ref_readable(input, in_info)
        .map_err(|e| format!("cannot map the input frame: {e}"))?;
    let outframe = gst_video::VideoFrameRef::from_buffer_ref_readable(output, out_info)
        .map_err(|e| format!("cannot map the output frame: {e}"))?;
    let size = |f: &VideoInfo| (f.width() as usize, f.height() as usize);
    let (in_size, out_size) = (size(in_info), size(out_info));
    let in_strides = strides(inframe.plane_stride(), inframe.n_planes())?;
    let out_strides = strides(outframe.plane_stride(), outframe.n_planes())?;
    let (xs_at, table) = match &in_layout {
        Layout::Yuv(yl) => {
            chroma_axes_for(&mut scratch.axes, in_info, yl, in_size);
            let DeviceScratch {
                axes: Some((key, xs, ys)),
                table,
                table_key,
            } = scratch
            else {
                return Err("no chroma axes for the input".into());
            };
            // made again only when the axes were
            if *table_key != Some(*key) {
                table.clear();
                for &(i0, i1, f) in xs.iter().chain(ys.iter()) {
                    table.extend((i0 as i32).to_ne_bytes());
                    table.extend((i1 as i32).to_ne_bytes());
                    table.extend(f.to_ne_bytes());
                }
                *table_key = Some(*key);
            }
            (xs.len() * TAP_BYTES, table.as_slice())
        }
        Layout::Packed(_) => (0, &[][..]),
    };
    let convert = |at: &RawAddresses, (into, out_of): &mut Conversions| -> imdn::Result<()> {
        let bad = |e: String| imdn::Error::InvalidInput(e);
        into.push(match &in_layout {
            Layout::Packed(px) => {
                let plane = (at.inputs[0], in_strides[0]);
                packed::gpu_args(px, plane, (at.planar_in, 0), in_size).launch(true)?
            }
            Layout::Yuv(yl) => {
                let yuv = Yuv::for_info(in_info, yl.depth);
                let plane = |p: usize| Ok((at.inputs[p], in_strides[p]));
                let taps = (at.tables, at.tables + xs_at as u64);
                gpu_reader_args((yl, &yuv), in_size, plane, taps, at.planar_in)
                    .map_err(bad)?
                    .launch()?
            }
        });
        match &out_layout {
            Layout::Packed(px) => {
                let plane = (at.outputs[0], out_strides[0]);
                let args = packed::gpu_args(px, plane, (at.planar_out, 0), out_size);
                out_of.push(args.launch(false)?);
            }
            Layout::Yuv(yl) => {
                let yuv = Yuv::for_info(out_info, yl.depth);
                let plane = |p: usize| Ok((at.outputs[p], out_strides[p]));
                let args = gpu_writer_args((yl, &yuv), out_size, plane, at.planar_out);
                out_of.extend(args.map_err(bad)?.launches()?);
            }
        }
        Ok(())
    };
    let inputs = inframe.planes_data();
    let n_out = outframe.n_planes() as usize;
    let mut output_lens = [0; MAX_PLANES];
    for (len, plane) in output_lens.iter_mut().zip(&outframe.planes_data()[..n_out]) {
        *len = plane.len();
    }
    let frame = RawInput {
        inputs: &inputs[..inframe.n_planes() as usize],
        tables: table,
        outputs: &output_lens[..n_out],
    };
    run(frame, &convert)
}

/// Maps `output` (at `out_info`) and hands `run` its planes, to write a frame queued by
/// [`with_raw_input`] into.
pub fn with_raw_output(
    (output, out_info): (&mut gst::BufferRef, &VideoInfo),
    run: impl FnOnce(&mut [&mut [u8]]) -> Result<(), String>,
) -> Result<(), String> {
    let mut outframe = gst_video::VideoFrameRef::from_buffer_ref_writable(output, out_info)
        .map_err(|e| format!("cannot map the output frame: {e}"))?;
    let n_out = outframe.n_planes() as usize;
    let mut outputs = outframe.planes_data_mut();
    run(&mut outputs[..n_out])
}

/// The first `n` plane strides (of at most 4).
fn strides(all: &[i32], n: u32) -> Result<[usize; 4], String> {
    let mut out = [0; 4];
    for (p, s) in out.iter_mut().enumerate().take(n as usize) {
        *s = stride(all, p)?;
    }
    Ok(out)
}
