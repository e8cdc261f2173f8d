//! The imdnupscale options that the transcode and live examples share: parsed from the command
//! line (checked against the properties' ranges) and set on the element.

use gst::prelude::*;

/// The element's properties given on the command line.
#[derive(Debug, Default)]
pub struct ElementArgs {
    pub scale: Option<u32>,
    pub size: Option<(i32, i32)>,
    pub model_path: Option<String>,
    pub model: Option<String>,
    pub device: Option<String>,
    pub n_threads: Option<u32>,
    pub max_frames_in_flight: Option<i32>,
}

/// The option lines for a usage text.
pub const USAGE: &str = "  --scale N                 2, 3 or 4 (default 2): output = input × N
  --size WxH                exact output size instead (scale=0: IMDN_AS, or a fixed-scale
                            model followed by a bicubic resize)
  --model-path P            weights (safetensors, the authors' .pth, or a shipped model's
                            name); default: the shipped model for the scale
  --model M                 auto, imdn, rtc or as
  --device D                auto, cpu or cuda
  --n-threads T             CPU threads (0: all cores)
  --max-frames-in-flight D  frames queued inside the element (-1: auto)";

impl ElementArgs {
    /// Takes `arg` if it is one of the element's options, reading its value with `value`;
    /// `Ok(false)` if it is not one of them.
    pub fn take(
        &mut self,
        arg: &str,
        value: impl FnOnce() -> Result<String, String>,
    ) -> Result<bool, String> {
        match arg {
            "--scale" => self.scale = Some(number(arg, &value()?, 2..=4)?),
            "--size" => self.size = Some(parse_size(&value()?)?),
            "--model-path" => self.model_path = Some(value()?),
            "--model" => self.model = Some(one_of(arg, value()?, &["auto", "imdn", "rtc", "as"])?),
            "--device" => self.device = Some(one_of(arg, value()?, &["auto", "cpu", "cuda"])?),
            "--n-threads" => self.n_threads = Some(number(arg, &value()?, 0..=1024)?),
            "--max-frames-in-flight" => {
                self.max_frames_in_flight = Some(number(arg, &value()?, -1..=8)?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The element's scale property: 0 when an exact size is asked for, else the scale (2 by
    /// default).
    pub fn scale_property(&self) -> u32 {
        if self.size.is_some() {
            0
        } else {
            self.scale.unwrap_or(2)
        }
    }

    /// Sets the given properties (all but the size, which is a caps filter's job) on `e`.
    pub fn apply(&self, e: &gst::Element) {
        e.set_property("scale", self.scale_property());
        if let Some(p) = &self.model_path {
            e.set_property("model-path", p);
        }
        // nicks checked by `one_of`
        if let Some(m) = &self.model {
            e.set_property_from_str("model", m);
        }
        if let Some(d) = &self.device {
            e.set_property_from_str("device", d);
        }
        if let Some(t) = self.n_threads {
            e.set_property("n-threads", t);
        }
        if let Some(d) = self.max_frames_in_flight {
            e.set_property("max-frames-in-flight", d);
        }
    }
}

/// `WxH` with sides in 1..=32767.
pub fn parse_size(s: &str) -> Result<(i32, i32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("--size {s}: expected WxH"))?;
    Ok((
        number("--size", w, 1..=32767)?,
        number("--size", h, 1..=32767)?,
    ))
}

pub fn one_of(name: &str, v: String, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!(
            "{name} {v}: expected one of {}",
            allowed.join(", ")
        ))
    }
}

pub fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    name: &str,
    v: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String> {
    v.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{name} {v}: expected {}..={}", range.start(), range.end()))
}
