//! Fuzzing the element in a harness: random formats, sizes and layouts, valid and invalid
//! property values, state changes before and between the frames.

use std::time::{Duration, Instant};

use gst::glib;
use gst::glib::translate::{ToGlibPtr, ToGlibPtrMut};
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoInfo;

use super::Counts;
use super::WAIT;
use super::frames::{FORMATS, check_nearest, layout, make_frame, output_info, start_stream};
use super::pipeline::{OwnBus, Pipeline, describe, no_errors, pending_errors, wait_for};
use super::rng::XorShift;

/// A property value outside the ParamSpec's range (never set: GLib would warn).
pub fn invalid_value(elem: &gst::Element, rng: &mut XorShift) -> (&'static str, glib::Value) {
    match rng.below(8) {
        0 => (
            "scale",
            (rng.range(5, u64::from(u32::MAX)) as u32).to_value(),
        ),
        1 => (
            "max-frames-in-flight",
            if rng.chance(1, 2) {
                (-(rng.range(2, 1 << 31) as i64)) as i32
            } else {
                rng.range(9, i32::MAX as u64) as i32
            }
            .to_value(),
        ),
        2 => (
            "tile-size",
            (rng.range(32768, u64::from(u32::MAX)) as u32).to_value(),
        ),
        3 => (
            "n-threads",
            (rng.range(1025, u64::from(u32::MAX)) as u32).to_value(),
        ),
        4 => (
            "device-id",
            (rng.range(256, u64::from(u32::MAX)) as u32).to_value(),
        ),
        5 => ("processing-latency", u64::MAX.to_value()),
        n => {
            // an enum value that is no member of the enum
            let name = if n == 6 { "model" } else { "device" };
            let pspec = elem.find_property(name).unwrap();
            let mut v = glib::Value::from_type(pspec.value_type());
            // SAFETY: `v` holds an enum type; g_value_set_enum stores any int without checking
            unsafe {
                glib::gobject_ffi::g_value_set_enum(
                    v.to_glib_none_mut().0,
                    rng.range(4, 1 << 20) as i32,
                );
            }
            (name, v)
        }
    }
}

/// Whether `g_object_set_property` would take `value` for `pspec`: GLib validates a copy with
/// `g_param_value_validate`, which returns TRUE when it had to change (clamp) the value, and
/// then refuses to set it with a warning. (glib-rs has `ParamSpec::value_is_valid` only with its
/// `v2_74` feature, which this crate does not enable.)
pub fn paramspec_accepts(pspec: &glib::ParamSpec, value: &glib::Value) -> bool {
    let mut copy = value.clone();
    // SAFETY: both pointers are valid for the call; `copy` is ours to modify
    let changed = unsafe {
        glib::gobject_ffi::g_param_value_validate(pspec.to_glib_none().0, copy.to_glib_none_mut().0)
    };
    changed == glib::ffi::GFALSE
}

pub fn serialized(elem: &gst::Element, name: &str) -> String {
    elem.property_value(name)
        .serialize()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("{:?}", elem.property_value(name)))
}

/// Valid random properties: (name, value) pairs.
pub fn valid_properties(
    elem: &gst::Element,
    rng: &mut XorShift,
    large: bool,
) -> Vec<(&'static str, glib::Value)> {
    let scale: u32 = if large {
        2
    } else {
        *rng.pick(&[0, 2, 2, 3, 4])
    };
    // one random value per property, drawn before `pick` borrows the generator
    let (tile, threads, id) = (rng.below(32768), rng.below(1025), rng.below(256));
    let latency = (rng.below(100_000_000), rng.below(u64::MAX));
    let mut props = vec![
        ("scale", scale.to_value()),
        (
            "max-frames-in-flight",
            (rng.range(0, 9) as i32 - 1).to_value(),
        ),
        (
            "tile-size",
            (*rng.pick(&[0u64, 17, 256, 32767, tile]) as u32).to_value(),
        ),
        (
            "n-threads",
            (*rng.pick(&[0u64, 1, 1024, threads]) as u32).to_value(),
        ),
        ("device-id", (*rng.pick(&[0u64, 255, id]) as u32).to_value()),
        ("fallback-to-cpu", rng.chance(1, 2).to_value()),
        (
            "processing-latency",
            // the whole range, its top included (u64::MAX is GST_CLOCK_TIME_NONE)
            (*rng.pick(&[0u64, latency.0, latency.1, u64::MAX - 1])).to_value(),
        ),
    ];
    for (name, nicks) in [
        ("device", &["auto", "cpu", "cuda"][..]),
        ("model", &["auto", "imdn", "rtc", "as"][..]),
    ] {
        let t = elem.find_property(name).unwrap().value_type();
        let enum_class = glib::EnumClass::with_type(t).unwrap();
        let nick: &&str = rng.pick(nicks);
        let v = enum_class.to_value_by_nick(nick).unwrap();
        props.push((name, v));
    }
    props
}

/// What the fuzz cases covered.
#[derive(Debug, Default)]
pub struct FuzzStats {
    pub cases: u64,
    /// Cases whose (ParamSpec-valid) settings the element refuses at start.
    pub refused_at_start: u64,
    pub invalid_values: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Stops (READY or NULL) with frames in the worker.
    pub restarts: u64,
    pub with_meta: u64,
    pub auto_scale_fixed_downstream: u64,
    pub large: u64,
}

/// One fuzz case, drawn from `seed` and `case`: a random format and size (of them at most
/// `large_left` large ones, up to 4096×2304), padded layouts, valid and invalid property
/// values, state changes before and between the frames; exact frame counts, output sizes and
/// content. Returns a description of what failed.
pub fn fuzz_case(
    case: u64,
    seed: u64,
    large_left: &mut u64,
    stats: &mut FuzzStats,
) -> Result<(), String> {
    stats.cases += 1;
    let mut rng = XorShift::new(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let format = *rng.pick(&FORMATS);
    // sizes: mostly 1..64, some up to 512, a handful (bounded by `large_left`) up to 4096×2304
    let large = *large_left > 0 && rng.chance(1, 300);
    let (w, h) = if large {
        *large_left -= 1;
        (rng.range(1025, 4096) as u32, rng.range(577, 2304) as u32)
    } else if rng.chance(1, 10) {
        (rng.range(1, 512) as u32, rng.range(1, 512) as u32)
    } else {
        (rng.range(1, 64) as u32, rng.range(1, 64) as u32)
    };
    let what = format!("case {case}: {format:?} {w}x{h}");
    stats.large += u64::from(large);

    // A few cases use values the ParamSpecs allow but the element refuses at start: the state
    // change must fail with an error message, no panic, no hang.
    if rng.chance(1, 40) {
        let (name, value): (&str, glib::Value) = match rng.below(3) {
            0 => ("scale", 1u32.to_value()),
            1 => ("model-path", "/nonexistent/weights.safetensors".to_value()),
            _ => ("model-path", "test:no-such-backend".to_value()),
        };
        let elem = gst::ElementFactory::make("imdnupscale").build().unwrap();
        elem.set_property_from_value(name, &value);
        let p = Pipeline(gst::Pipeline::new());
        p.add(&elem).unwrap();
        if p.set_state(gst::State::Paused).is_ok() {
            return Err(format!("{what}: {name}={value:?} started"));
        }
        let msg = wait_for(&p.bus(), &[gst::MessageType::Error], WAIT)?;
        if msg.src() != Some(elem.upcast_ref()) {
            return Err(format!("{what}: error from elsewhere: {}", describe(&msg)));
        }
        stats.refused_at_start += 1;
        return Ok(());
    }

    let elem = gst::ElementFactory::make("imdnupscale")
        .property("model-path", "test:nearest")
        .build()
        .unwrap();
    let props = valid_properties(&elem, &mut rng, large);
    for (name, value) in &props {
        let pspec = elem.find_property(name).unwrap();
        if !paramspec_accepts(&pspec, value) {
            return Err(format!(
                "{what}: valid {name}={value:?} refused by its ParamSpec"
            ));
        }
        elem.set_property_from_value(name, value);
    }
    // invalid values: the ParamSpec refuses them (so GLib would not set them)
    for _ in 0..rng.range(1, 3) {
        stats.invalid_values += 1;
        let (name, value) = invalid_value(&elem, &mut rng);
        let before = serialized(&elem, name);
        let pspec = elem.find_property(name).unwrap();
        if paramspec_accepts(&pspec, &value) {
            return Err(format!("{what}: {name}={value:?} passes its ParamSpec"));
        }
        if serialized(&elem, name) != before {
            return Err(format!("{what}: {name} changed"));
        }
    }
    let frames_processed = elem.find_property("frames-processed").unwrap();
    if frames_processed
        .flags()
        .contains(glib::ParamFlags::WRITABLE)
    {
        return Err("frames-processed is writable".into());
    }
    let scale = elem.property::<u32>("scale");
    let depth = match elem.property::<i32>("max-frames-in-flight") {
        // auto in a harness: its source answers the latency query as live → 1
        -1 => 1,
        d => d as usize,
    };
    let latency_floor = elem.property::<u64>("processing-latency");

    let bus = OwnBus::on(&elem);
    let mut hs = Harness::with_element(&elem, Some("sink"), Some("src"));
    // scale=0: half the cases fix the output size downstream
    let mut out_size = match scale {
        0 => (2 * w, 2 * h),
        s => (w * s, h * s),
    };
    if scale == 0 && rng.chance(1, 2) {
        out_size = (
            rng.range(1, u64::from(3 * w).max(4)) as u32,
            rng.range(1, u64::from(3 * h).max(4)) as u32,
        );
        hs.set_sink_caps_str(&format!(
            "video/x-raw,width={},height={}",
            out_size.0, out_size.1
        ));
        stats.auto_scale_fixed_downstream += 1;
    }
    let info = VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(rng.range(1, 120) as i32, 1))
        .build()
        .map_err(|e| format!("{what}: {e}"))?;
    let caps = info.to_caps().unwrap();

    // random state changes before the stream
    let states = [
        gst::State::Null,
        gst::State::Ready,
        gst::State::Paused,
        gst::State::Playing,
    ];
    let mut plan: Vec<gst::State> = (0..rng.below(4)).map(|_| *rng.pick(&states)).collect();
    plan.push(gst::State::Playing);
    for s in plan {
        elem.set_state(s)
            .map_err(|e| format!("{what}: set_state({s:?}): {e}"))?;
    }
    if !start_stream(&mut hs, &caps, case) {
        return Err(format!("{what}: caps {caps} refused"));
    }
    // Frames, with state changes between them. Going through READY stops the element: the
    // frames still in the worker are discarded (all but the last `depth` pushed came out).
    let n_frames = if large { 1 } else { rng.range(1, 4) };
    let mut expected: Vec<u64> = Vec::new(); // seeds of the frames that must come out, in order
    let mut run: Vec<u64> = Vec::new(); // frames pushed since the last start
    for k in 0..n_frames {
        let lay = layout(&info, rng.chance(2, 3).then_some(&mut rng));
        let seed = (case << 8) | k;
        let buf = make_frame(&info, seed, &lay, gst::ClockTime::from_mseconds(10 * k));
        hs.push(buf)
            .map_err(|e| format!("{what}: frame {k}: {e:?} ({:?})", pending_errors(&bus)))?;
        stats.frames_in += 1;
        stats.with_meta += u64::from(lay.meta);
        run.push(seed);
        if k + 1 < n_frames && rng.chance(1, 4) {
            if rng.chance(1, 2) {
                for s in [gst::State::Paused, gst::State::Playing] {
                    elem.set_state(s).map_err(|e| format!("{what}: {e}"))?;
                }
            } else {
                let down = *rng.pick(&[gst::State::Ready, gst::State::Null]);
                elem.set_state(down).map_err(|e| format!("{what}: {e}"))?;
                let kept = run.len().saturating_sub(depth);
                expected.extend(&run[..kept]);
                run.clear();
                stats.restarts += 1;
                elem.set_state(gst::State::Playing)
                    .map_err(|e| format!("{what}: {e}"))?;
                if !start_stream(&mut hs, &caps, case) {
                    return Err(format!("{what}: caps refused after a restart"));
                }
            }
        }
    }
    let latency = hs.query_latency();
    if !hs.push_event(gst::event::Eos::new()) {
        return Err(format!("{what}: EOS refused ({:?})", pending_errors(&bus)));
    }
    expected.extend(&run);
    no_errors(&bus).map_err(|e| format!("{what}: {e}"))?;
    let processed = elem.property::<u64>("frames-processed");
    if processed != run.len() as u64 {
        return Err(format!(
            "{what}: frames-processed {processed}, {} since the last start",
            run.len()
        ));
    }
    match latency {
        Some(l) if l.nseconds() >= latency_floor => {}
        other => {
            return Err(format!(
                "{what}: latency {other:?} with processing-latency {latency_floor}"
            ));
        }
    }
    let n_out = hs.buffers_in_queue() as usize;
    if n_out != expected.len() {
        return Err(format!(
            "{what}: {n_out} frames out, expected {} (depth {depth})",
            expected.len()
        ));
    }
    let oinfo = output_info(&elem);
    if (oinfo.width(), oinfo.height()) != out_size || oinfo.format() != format {
        return Err(format!(
            "{what}: output {:?} {}x{}, expected {out_size:?}",
            oinfo.format(),
            oinfo.width(),
            oinfo.height()
        ));
    }
    for (i, seed) in expected.iter().enumerate() {
        let out = hs.pull().map_err(|e| format!("{what}: {e}"))?;
        if out.size() < oinfo.size() {
            return Err(format!("{what}: output {i} has {} bytes", out.size()));
        }
        let small = oinfo.width() * oinfo.height() <= 256 * 256;
        check_nearest(
            &out,
            &oinfo,
            (w as usize, h as usize),
            *seed,
            small,
            &mut rng,
        )
        .map_err(|e| format!("{what}: output {i}: {e}"))?;
        stats.frames_out += 1;
    }
    Ok(())
}

/// What [`fuzz_run`] covered, and the process's counts around it.
#[derive(Debug)]
pub struct FuzzRun {
    pub stats: FuzzStats,
    /// After a warm-up case.
    pub before: Counts,
    pub after: Counts,
    pub took: Duration,
    /// The slowest case: its time and number.
    pub slowest: (Duration, u64),
}

/// One warm-up case, then cases `0..n` of `seed`, at most `large` of them large. Nothing may
/// accumulate ([`Counts::no_growth_to`] of `before` and `after`): a leaked element would keep
/// its bus and with it the bus's file descriptors.
pub fn fuzz_run(n: u64, seed: u64, large: u64) -> Result<FuzzRun, String> {
    let mut stats = FuzzStats::default();
    let mut large_left = large;
    let (t0, mut slowest) = (Instant::now(), (Duration::ZERO, 0));
    fuzz_case(u64::MAX, seed, &mut 0, &mut FuzzStats::default())?;
    let before = Counts::now();
    for case in 0..n {
        let t = Instant::now();
        fuzz_case(case, seed, &mut large_left, &mut stats)?;
        slowest = slowest.max((t.elapsed(), case));
    }
    Ok(FuzzRun {
        stats,
        before,
        after: Counts::now(),
        took: t0.elapsed(),
        slowest,
    })
}
