//! What the examples share: reading an error off the bus, and the exit-code convention
//! (2: bad arguments, 1: the pipeline failed).

use std::process::ExitCode;

use gst::prelude::*;

/// The text of an error message on the bus, with the element that posted it.
pub fn describe(msg: &gst::Message) -> Option<String> {
    match msg.view() {
        gst::MessageView::Error(e) => Some(format!(
            "error from {}: {}{}",
            msg.src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default(),
            e.error(),
            e.debug().map(|d| format!("\n  ({d})")).unwrap_or_default()
        )),
        _ => None,
    }
}

/// Parses the arguments, runs, and maps the outcome to an exit code; errors go to stderr.
pub fn main_with<A>(
    name: &str,
    parse: impl FnOnce() -> Result<A, String>,
    run: impl FnOnce(A) -> Result<(), String>,
) -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sets `pipeline` to PLAYING; if it refuses, the error its elements posted on `bus`.
pub fn play(pipeline: &gst::Pipeline, bus: &gst::Bus) -> Result<(), String> {
    if pipeline.set_state(gst::State::Playing).is_ok() {
        return Ok(());
    }
    let why = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
        .and_then(|m| describe(&m));
    Err(why.unwrap_or_else(|| "the pipeline could not start".into()))
}

/// Plays `pipeline` to its end: Ok at end of stream, the error posted otherwise; it is left
/// stopped either way.
#[allow(dead_code)] // each example compiles this module; those that report progress wait their own way
pub fn run_to_end(pipeline: &gst::Pipeline) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    let result = play(pipeline, &bus).and_then(|()| {
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::NONE,
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .ok_or("no message on the bus")?;
        describe(&msg).map_or(Ok(()), Err)
    });
    let _ = pipeline.set_state(gst::State::Null);
    result
}
