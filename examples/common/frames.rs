//! Decoded clips as RGB frames, and how far two frames are apart: what the measuring examples
//! (flicker, encode-loss) share.

use gst::prelude::*;
use gst_video::prelude::*;

/// Tightly packed RGB and its size.
pub type Frame = (Vec<u8>, (usize, usize));

/// The decoded frame as tightly packed RGB (GStreamer pads RGB rows to 4 bytes).
fn packed_rgb(sample: &gst::Sample) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("a sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let buffer = sample.buffer().ok_or("a sample without a buffer")?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| e.to_string())?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).map_err(|e| e.to_string())?;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        rgb.extend_from_slice(&data[row * stride..row * stride + w * 3]);
    }
    Ok((rgb, (w, h)))
}

/// A clip decoded to RGB frames through an appsink (its action signal: no gstreamer-app
/// dependency for one example).
pub struct Decoder {
    pipeline: gst::Pipeline,
    sink: gst::Element,
}

impl Decoder {
    pub fn open(path: &str) -> Result<Self, String> {
        Self::decoded(path, "")
    }

    /// `path` decoded, then through `filters` (a launch-line fragment ending in `!`, or empty).
    pub fn decoded(path: &str, filters: &str) -> Result<Self, String> {
        let rgb = "videoconvert ! video/x-raw,format=RGB";
        Self::launch(path, &format!("decodebin ! {filters} {rgb}"))
    }

    /// `path` through `chain` (a launch-line fragment) into the appsink.
    pub fn launch(path: &str, chain: &str) -> Result<Self, String> {
        let pipeline = gst::parse::launch(&format!(
            "filesrc location=\"{}\" ! {chain} ! appsink name=frames sync=false",
            path.replace('"', "\\\"")
        ))
        .map_err(|e| format!("{path}: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
        let sink = pipeline.by_name("frames").ok_or("no appsink")?;
        let bus = pipeline.bus().ok_or("pipeline without a bus")?;
        super::common::play(&pipeline, &bus).map_err(|e| format!("{path}: {e}"))?;
        Ok(Decoder { pipeline, sink })
    }

    /// The next sample, or `None` at the end (or on an error, which `close` reports).
    pub fn sample(&self) -> Option<gst::Sample> {
        self.sink
            .emit_by_name::<Option<gst::Sample>>("pull-sample", &[])
    }

    /// The next frame as packed RGB (for a pipeline that ends in RGB), or `None` at the end.
    pub fn next(&self) -> Result<Option<Frame>, String> {
        self.sample().map(|s| packed_rgb(&s)).transpose()
    }

    pub fn close(self) -> Result<(), String> {
        let error = self.pipeline.bus().and_then(|bus| {
            bus.pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| super::common::describe(&m))
        });
        self.pipeline
            .set_state(gst::State::Null)
            .map_err(|e| format!("stopping: {e}"))?;
        error.map_or(Ok(()), Err)
    }
}

/// Squared error between two frames, summed, and the number of samples.
pub fn squared_error(a: &[u8], b: &[u8]) -> (f64, usize) {
    let sum = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    (sum, a.len())
}

pub fn psnr((sum, n): (f64, usize)) -> f64 {
    10.0 * (255.0f64 * 255.0 / (sum / n.max(1) as f64)).log10()
}

/// One JSON object of numbers; a non-finite one (a lossless PSNR, a ratio to zero) is `null`.
pub fn json_line(fields: &[(&str, f64)]) -> String {
    let value = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            "null".into()
        }
    };
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\":{}", value(*v)))
        .collect();
    format!("{{{}}}", body.join(","))
}
