//! Today's conversions as they were before the row-wise rewrite (commit 792907e), kept for
//! the tests only: the rewrite must give bit-identical planes and bytes, and the timing test
//! compares the two.

use gst_video::prelude::*;
use gst_video::{VideoChromaSite, VideoInfo};
use imdn::image_ops::f32_to_u8;

use super::yuv::{Yuv, YuvLayout, get, put};
use super::{
    ChromaKey, Frame, FrameMut, Layout, Planar, Tap, bilinear_axis, layout, plane_mut, plane_of,
    reuse, row, row_mut,
};

/// The buffers the old conversions kept between frames.
#[derive(Default)]
pub(super) struct RefScratch {
    cb: Vec<f32>,
    cr: Vec<f32>,
    count: Vec<u8>,
    chroma_axes: Option<(ChromaKey, Vec<Tap>, Vec<Tap>)>,
}

/// Reads a mapped frame into planar RGB f32 (plus alpha where the format has it), in `rgb`'s
/// allocation (an earlier frame's, handed back by the worker); the alpha plane goes into what
/// `spare_alpha` gives, called only for formats with alpha.
pub(super) fn read_frame(
    buffer: &gst::BufferRef,
    info: &VideoInfo,
    mut rgb: Vec<f32>,
    spare_alpha: impl FnOnce() -> Vec<u8>,
    scratch: &mut RefScratch,
) -> Result<Planar, String> {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
        .map_err(|e| format!("cannot map the input frame: {e}"))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    // every value is written below
    rgb.resize(3 * n, 0.0);
    let mut alpha = None;
    match layout(info)? {
        Layout::Packed(px) => {
            let (data, stride) = plane_of(&frame, 0)?;
            let mut a = match px.fourth {
                Some((_, true)) => {
                    let mut a = spare_alpha();
                    // every value is written below
                    a.resize(n, 0);
                    Some(a)
                }
                _ => None,
            };
            let (r_pl, rest) = rgb.split_at_mut(n);
            let (g_pl, b_pl) = rest.split_at_mut(n);
            for y in 0..h {
                let line = row(data, stride, y, w * px.bpp)?;
                for (x, p) in line.chunks_exact(px.bpp).enumerate() {
                    let i = y * w + x;
                    r_pl[i] = f32::from(p[px.rgb[0]]) / 255.0;
                    g_pl[i] = f32::from(p[px.rgb[1]]) / 255.0;
                    b_pl[i] = f32::from(p[px.rgb[2]]) / 255.0;
                }
                if let (Some(a), Some((off, true))) = (a.as_mut(), px.fourth) {
                    for (x, p) in line.chunks_exact(px.bpp).enumerate() {
                        a[y * w + x] = p[off];
                    }
                }
            }
            alpha = a.take();
        }
        Layout::Yuv(yl) => {
            let yuv = Yuv::for_info(info, yl.depth);
            if yl.wide {
                read_yuv::<true>(&frame, info, &yl, &yuv, &mut rgb, scratch)?;
            } else {
                read_yuv::<false>(&frame, info, &yl, &yuv, &mut rgb, scratch)?;
            }
        }
    }
    Ok(Planar {
        width: w,
        height: h,
        rgb,
        alpha,
    })
}

/// Writes planar RGB f32 (`info`'s size) into a mapped output frame. `alpha`, if any, is
/// already at the output size.
pub(super) fn write_frame(
    buffer: &mut gst::BufferRef,
    info: &VideoInfo,
    rgb: &[f32],
    alpha: Option<&[u8]>,
    scratch: &mut RefScratch,
) -> Result<(), String> {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info)
        .map_err(|e| format!("cannot map the output frame: {e}"))?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    if rgb.len() != 3 * n {
        return Err(format!(
            "network output holds {} values, the {w}×{h} output frame needs {}",
            rgb.len(),
            3 * n
        ));
    }
    match layout(info)? {
        Layout::Packed(px) => {
            let (r_pl, rest) = rgb.split_at(n);
            let (g_pl, b_pl) = rest.split_at(n);
            let (data, s0) = plane_mut(&mut frame, 0)?;
            for y in 0..h {
                let line = row_mut(data, s0, y, w * px.bpp)?;
                for (x, p) in line.chunks_exact_mut(px.bpp).enumerate() {
                    let i = y * w + x;
                    p[px.rgb[0]] = f32_to_u8(r_pl[i]);
                    p[px.rgb[1]] = f32_to_u8(g_pl[i]);
                    p[px.rgb[2]] = f32_to_u8(b_pl[i]);
                    if let Some((off, is_alpha)) = px.fourth {
                        p[off] = match alpha {
                            Some(a) if is_alpha => a.get(i).copied().unwrap_or(255),
                            _ => 255,
                        };
                    }
                }
            }
        }
        Layout::Yuv(yl) => {
            let yuv = Yuv::for_info(info, yl.depth);
            if yl.wide {
                write_yuv::<true>(&mut frame, &yl, &yuv, rgb, scratch)?;
            } else {
                write_yuv::<false>(&mut frame, &yl, &yuv, rgb, scratch)?;
            }
        }
    }
    Ok(())
}

/// The Y'CbCr / gray reader: chroma into two f32 planes at chroma resolution, then per pixel
/// luma plus bilinearly upsampled chroma → R'G'B'.
fn read_yuv<const WIDE: bool>(
    frame: &Frame<'_>,
    info: &VideoInfo,
    yl: &YuvLayout,
    yuv: &Yuv,
    rgb: &mut [f32],
    scratch: &mut RefScratch,
) -> Result<(), String> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    if n == 0 {
        return Ok(());
    }
    let (shift, mask, bytes) = (yl.shift, yl.mask(), yl.bytes());
    let yc = yl.comps[0];
    let (y_data, y_stride) = plane_of(frame, yc.plane)?;
    let y_len = yc.row_len(w, bytes);
    let (r_pl, rest) = rgb.split_at_mut(n);
    let (g_pl, b_pl) = rest.split_at_mut(n);
    if yl.gray {
        for y in 0..h {
            let line = row(y_data, y_stride, y, y_len)?;
            for x in 0..w {
                let v = yuv.gray(f32::from(get::<WIDE>(
                    line,
                    yc.offset + x * yc.step,
                    shift,
                    mask,
                )));
                let i = y * w + x;
                r_pl[i] = v;
                g_pl[i] = v;
                b_pl[i] = v;
            }
        }
        return Ok(());
    }
    let (sx, sy) = yl.sub;
    let (cw, ch) = yl.chroma_size(w, h);
    // Chroma sample j sits at luma s·j (co-sited) or s·j + (s − 1)/2 (centred), s the
    // subsampling along that axis: offsets only along subsampled axes.
    let site = info.chroma_site();
    let offset = |s: u32, cosited: bool| -> f32 {
        if cosited {
            0.0
        } else {
            ((1u32 << s) - 1) as f32 / 2.0
        }
    };
    let h_off = offset(sx, site.contains(VideoChromaSite::H_COSITED));
    let v_off = offset(sy, site.contains(VideoChromaSite::V_COSITED));
    let key = (w, h, sx, sy, h_off.to_bits(), v_off.to_bits());
    if scratch.chroma_axes.as_ref().is_none_or(|(k, ..)| *k != key) {
        let (fx, fy) = ((1u32 << sx) as f32, (1u32 << sy) as f32);
        let xs = bilinear_axis(w, cw, |x| (x as f32 - h_off) / fx);
        let ys = bilinear_axis(h, ch, |y| (y as f32 - v_off) / fy);
        scratch.chroma_axes = Some((key, xs, ys));
    }
    let Some((_, xs, ys)) = &scratch.chroma_axes else {
        return Err("chroma axes missing".into());
    };
    // Chroma as two f32 planes, so the upsampling below is layout independent.
    let cb = reuse(&mut scratch.cb, cw * ch, false);
    let cr = reuse(&mut scratch.cr, cw * ch, false);
    for (comp, dst) in [(yl.comps[1], &mut *cb), (yl.comps[2], &mut *cr)] {
        let (data, s) = plane_of(frame, comp.plane)?;
        let len = comp.row_len(cw, bytes);
        for (j, out) in dst.chunks_exact_mut(cw).enumerate() {
            let line = row(data, s, j, len)?;
            for (i, o) in out.iter_mut().enumerate() {
                *o = f32::from(get::<WIDE>(line, comp.offset + i * comp.step, shift, mask));
            }
        }
    }
    for (y, &(j0, j1, fy)) in ys.iter().enumerate() {
        let luma = row(y_data, y_stride, y, y_len)?;
        let (cb0, cb1) = (&cb[j0 * cw..][..cw], &cb[j1 * cw..][..cw]);
        let (cr0, cr1) = (&cr[j0 * cw..][..cw], &cr[j1 * cw..][..cw]);
        let (r_row, g_row, b_row) = (
            &mut r_pl[y * w..][..w],
            &mut g_pl[y * w..][..w],
            &mut b_pl[y * w..][..w],
        );
        for (x, &(i0, i1, fx)) in xs.iter().enumerate() {
            let lerp2 = |a: &[f32], b: &[f32]| {
                let top = a[i0] + (a[i1] - a[i0]) * fx;
                let bottom = b[i0] + (b[i1] - b[i0]) * fx;
                top + (bottom - top) * fy
            };
            let l = f32::from(get::<WIDE>(luma, yc.offset + x * yc.step, shift, mask));
            let [r, g, b] = yuv.rgb(l, lerp2(cb0, cb1), lerp2(cr0, cr1));
            r_row[x] = r;
            g_row[x] = g;
            b_row[x] = b;
        }
    }
    Ok(())
}

/// The Y'CbCr / gray writer: luma per pixel straight into its plane, chroma as the mean over
/// the subsampling block each sample covers (clipped at odd edges).
fn write_yuv<const WIDE: bool>(
    frame: &mut FrameMut<'_>,
    yl: &YuvLayout,
    yuv: &Yuv,
    rgb: &[f32],
    scratch: &mut RefScratch,
) -> Result<(), String> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = w * h;
    if n == 0 {
        return Ok(());
    }
    let (r_pl, rest) = rgb.split_at(n);
    let (g_pl, b_pl) = rest.split_at(n);
    let (shift, bytes) = (yl.shift, yl.bytes());
    let (sx, sy) = yl.sub;
    let (cw, ch) = if yl.gray {
        (0, 0)
    } else {
        yl.chroma_size(w, h)
    };
    let RefScratch { cb, cr, count, .. } = scratch;
    let cb = reuse(cb, cw * ch, true);
    let cr = reuse(cr, cw * ch, true);
    let count = reuse(count, cw * ch, true);
    let yc = yl.comps[0];
    // A packed 4:2:2 row holds two luma samples per chroma pair, also past an odd width: the
    // last pixel's luma is repeated there.
    let y_count = if !yl.gray && yl.comps[1].plane == yc.plane {
        cw << sx
    } else {
        w
    };
    let y_len = yc.row_len(y_count, bytes);
    {
        let (data, s) = plane_mut(frame, yc.plane)?;
        for y in 0..h {
            let line = row_mut(data, s, y, y_len)?;
            let (r_row, g_row, b_row) = (
                &r_pl[y * w..][..w],
                &g_pl[y * w..][..w],
                &b_pl[y * w..][..w],
            );
            let mut last = 0;
            if yl.gray {
                for x in 0..w {
                    let (r, g, b) = (
                        r_row[x].clamp(0.0, 1.0),
                        g_row[x].clamp(0.0, 1.0),
                        b_row[x].clamp(0.0, 1.0),
                    );
                    last = yuv.y_code(yuv.luma(r, g, b));
                    put::<WIDE>(line, yc.offset + x * yc.step, shift, last);
                }
            } else {
                let crow = (y >> sy) * cw;
                let (cb_row, cr_row, n_row) = (
                    &mut cb[crow..][..cw],
                    &mut cr[crow..][..cw],
                    &mut count[crow..][..cw],
                );
                for x in 0..w {
                    let (r, g, b) = (
                        r_row[x].clamp(0.0, 1.0),
                        g_row[x].clamp(0.0, 1.0),
                        b_row[x].clamp(0.0, 1.0),
                    );
                    let yv = yuv.luma(r, g, b);
                    last = yuv.y_code(yv);
                    put::<WIDE>(line, yc.offset + x * yc.step, shift, last);
                    let (u, v) = yuv.chroma(yv, r, b);
                    let c = x >> sx;
                    cb_row[c] += u;
                    cr_row[c] += v;
                    n_row[c] += 1;
                }
            }
            for x in w..y_count {
                put::<WIDE>(line, yc.offset + x * yc.step, shift, last);
            }
        }
    }
    if yl.gray {
        return Ok(());
    }
    for (comp, sums) in [(yl.comps[1], &*cb), (yl.comps[2], &*cr)] {
        let (data, s) = plane_mut(frame, comp.plane)?;
        let len = comp.row_len(cw, bytes);
        for (j, (sums, counts)) in sums
            .chunks_exact(cw)
            .zip(count.chunks_exact(cw))
            .enumerate()
        {
            let line = row_mut(data, s, j, len)?;
            for (i, (&sum, &k)) in sums.iter().zip(counts).enumerate() {
                let code = yuv.c_code(sum / f32::from(k.max(1)));
                put::<WIDE>(line, comp.offset + i * comp.step, shift, code);
            }
        }
    }
    Ok(())
}
