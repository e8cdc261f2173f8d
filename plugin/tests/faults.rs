//! Faults a long-running pipeline meets: the weights file deleted or truncated between runs of
//! the same element, and a frame too large for the machine's memory without tiling. Each must
//! end in an error message naming the cause, never a hang or an abort. (A worker error
//! injected mid-stream: reliability.rs; `device=cuda` on a CPU build: imdnupscale.rs.)

mod common;

use gst::prelude::*;
use gst_check::Harness;
use gst_video::{VideoFormat, VideoInfo};

use common::pipeline::start;
use common::{init, weights};

#[test]
fn weights_deleted_or_truncated_between_runs() {
    init();
    let path = weights("rtc_x2.safetensors", imdn::model::Config::rtc(2));
    let elem = gst::ElementFactory::make("imdnupscale")
        .property("model-path", path.to_str().unwrap())
        .property_from_str("device", "cpu")
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&elem).unwrap();
    assert_eq!(start(&pipeline).map(|e| e.to_string()), None);

    // truncated: half of the file is gone
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = start(&pipeline).expect("truncated weights must fail the start");
    assert!(err.matches(gst::ResourceError::OpenRead), "{err}");
    assert!(err.message().contains("truncated"), "{err}");
    assert!(err.message().contains("rtc_x2.safetensors"), "{err}");

    // deleted
    std::fs::remove_file(&path).unwrap();
    let err = start(&pipeline).expect("deleted weights must fail the start");
    assert!(err.matches(gst::ResourceError::NotFound), "{err}");
    assert!(err.message().contains("no such file"), "{err}");

    // restored: the same element starts again
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(start(&pipeline).map(|e| e.to_string()), None);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_frame_too_large_for_memory_is_an_error_naming_tiles() {
    init();
    let Some(available) = imdn::memory::available_bytes() else {
        eprintln!("skipped: this system does not report its available memory");
        return;
    };
    // IMDN ×4 as a whole frame holds about 470 floats per input pixel: a frame needing twice
    // what is available (the u8 frame itself is ~1/600 of that)
    let path = weights("imdn_x4.safetensors", imdn::model::Config::imdn(4));
    // the output's sides stay within the element's 32767
    let w = 8000u32;
    let h = (available / (470 * 4) * 2).div_ceil(u64::from(w)).max(64);
    if h * 4 > 32_767 {
        eprintln!("skipped: {available} bytes available; no frame the caps allow exceeds it");
        return;
    }
    let h = h as u32;
    let mut harness = Harness::with_element(
        &gst::ElementFactory::make("imdnupscale")
            .property("model-path", path.to_str().unwrap())
            .property_from_str("device", "cpu")
            .property("scale", 4u32)
            .property("max-frames-in-flight", 0i32)
            .build()
            .unwrap(),
        Some("sink"),
        Some("src"),
    );
    let bus = gst::Bus::new();
    harness.element().unwrap().set_bus(Some(&bus));
    harness.play();
    harness.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={h},framerate=25/1"
    ));
    let vinfo = VideoInfo::builder(VideoFormat::Rgb, w, h).build().unwrap();
    let buf = gst::Buffer::with_size(vinfo.size()).unwrap();
    assert_eq!(harness.push(buf), Err(gst::FlowError::Error));
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(text.contains("out of memory"), "{text}");
    assert!(text.contains("tile"), "{text}");
    let _ = std::fs::remove_file(path);
}
