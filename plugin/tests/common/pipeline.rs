//! Pipelines that go to NULL when dropped, and waits on a bus that always end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use super::WAIT;

/// A pipeline that is taken to NULL when dropped, also while an assertion unwinds (disposing a
/// playing pipeline is a GLib critical, fatal under `G_DEBUG=fatal_warnings`), within a bound:
/// a hang there is reported, not waited for.
pub struct Pipeline(pub gst::Pipeline);

impl Pipeline {
    pub fn launch(desc: &str) -> Result<Pipeline, String> {
        let p = gst::parse::launch(desc).map_err(|e| format!("{desc}: {e}"))?;
        p.downcast::<gst::Pipeline>()
            .map(Pipeline)
            .map_err(|_| format!("{desc}: not a pipeline"))
    }

    pub fn by(&self, name: &str) -> Result<gst::Element, String> {
        self.0.by_name(name).ok_or_else(|| format!("no {name}"))
    }

    /// The static pad `pad` of the element named `elem`.
    pub fn pad(&self, elem: &str, pad: &str) -> Result<gst::Pad, String> {
        self.by(elem)?
            .static_pad(pad)
            .ok_or_else(|| format!("no {elem}.{pad}"))
    }

    pub fn bus(&self) -> gst::Bus {
        self.0.bus().expect("a pipeline has a bus")
    }

    pub fn play(&self) -> Result<(), String> {
        self.0
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|e| format!("PLAYING: {e}"))
    }
}

impl std::ops::Deref for Pipeline {
    type Target = gst::Pipeline;
    fn deref(&self) -> &gst::Pipeline {
        &self.0
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Err(e) = stop_within(&self.0, WAIT) {
            // the helper thread keeps a reference: the pipeline is leaked, not disposed playing
            eprintln!("dropping the pipeline: {e}");
        }
    }
}

/// `set_state(NULL)` on a helper thread; `Err` if it fails or has not returned within `bound`
/// (a hang). Joins the helper when it returned, so thread counts stay exact.
pub fn stop_within(p: &gst::Pipeline, bound: Duration) -> Result<Duration, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = p.clone();
    let t0 = Instant::now();
    let handle = std::thread::spawn(move || {
        let ok = p2.set_state(gst::State::Null).is_ok();
        let _ = tx.send(ok);
    });
    match rx.recv_timeout(bound) {
        Ok(true) => {
            let _ = handle.join();
            Ok(t0.elapsed())
        }
        Ok(false) => {
            let _ = handle.join();
            Err("set_state(NULL) failed".into())
        }
        Err(_) => Err(format!("set_state(NULL) has not returned after {bound:?}")),
    }
}

/// The next message of `types` within `timeout`. An ERROR (always watched for) is returned
/// as `Err` unless asked for.
pub fn wait_for(
    bus: &gst::Bus,
    types: &[gst::MessageType],
    timeout: Duration,
) -> Result<gst::Message, String> {
    let mut all = types.to_vec();
    all.push(gst::MessageType::Error);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &all,
        )
        .ok_or_else(|| format!("no {types:?} within {timeout:?}"))?;
    if msg.type_() == gst::MessageType::Error && !types.contains(&gst::MessageType::Error) {
        return Err(describe(&msg));
    }
    Ok(msg)
}

/// An error message with the element that posted it; any other message as debug text.
pub fn describe(msg: &gst::Message) -> String {
    match msg.view() {
        gst::MessageView::Error(e) => format!(
            "error from {}: {} ({:?})",
            msg.src().map(|s| s.path_string()).unwrap_or_default(),
            e.error(),
            e.debug()
        ),
        _ => format!("{msg:?}"),
    }
}

/// Errors posted so far (without waiting).
pub fn pending_errors(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Error]))
        .map(|m| describe(&m))
        .collect()
}

/// `Err` listing the errors posted so far (without waiting), if there are any.
pub fn no_errors(bus: &gst::Bus) -> Result<(), String> {
    let errors = pending_errors(bus);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{errors:?}"))
    }
}

/// NULL → PAUSED, then back to NULL: the error on the bus, if the start failed. A failed start
/// without an error message panics.
pub fn start(pipeline: &gst::Pipeline) -> Option<glib::Error> {
    let result = pipeline.set_state(gst::State::Paused);
    let msg = result.is_err().then(|| {
        pipeline.bus().unwrap().timed_pop_filtered(
            gst::ClockTime::from_nseconds(WAIT.as_nanos() as u64),
            &[gst::MessageType::Error],
        )
    });
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.flatten().as_ref().map(|m| m.view()) {
        None if result.is_ok() => None,
        Some(gst::MessageView::Error(e)) => Some(e.error()),
        other => panic!("start failed without an error message: {other:?}"),
    }
}

/// [`start`] of `elem` alone in a new pipeline.
pub fn start_alone(elem: gst::Element) -> Option<glib::Error> {
    let pipeline = gst::Pipeline::new();
    pipeline.add(&elem).unwrap();
    start(&pipeline)
}

/// A bus of our own for an element outside a pipeline. Dropped, it is set flushing, which
/// drops the messages still queued: each holds a reference to the element, which holds the bus,
/// a cycle that would otherwise leak both (and the bus's file descriptors). A pipeline's bus is
/// flushed at NULL the same way.
pub struct OwnBus(gst::Bus);

impl OwnBus {
    pub fn on(elem: &gst::Element) -> OwnBus {
        let bus = gst::Bus::new();
        elem.set_bus(Some(&bus));
        OwnBus(bus)
    }
}

impl std::ops::Deref for OwnBus {
    type Target = gst::Bus;
    fn deref(&self) -> &gst::Bus {
        &self.0
    }
}

impl Drop for OwnBus {
    fn drop(&mut self) {
        self.0.set_flushing(true);
    }
}

/// The static pad `name` of `elem`.
pub fn pad(elem: &gst::Element, name: &str) -> gst::Pad {
    elem.static_pad(name).expect("pad")
}

/// Counts the buffers passing `pad`.
pub fn count_buffers(pad: &gst::Pad) -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        n2.fetch_add(1, Ordering::SeqCst);
        gst::PadProbeReturn::Ok
    })
    .expect("probe");
    n
}
