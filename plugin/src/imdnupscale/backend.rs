//! What the infer thread runs: the IMDN network from the `imdn` library, or a deterministic
//! nearest-neighbour stand-in that lets the element's plumbing be tested without weights.

use std::path::PathBuf;

use imdn::engine::{DeviceChoice, Options, Precision, Upscaler};
use imdn::image_ops::{ResizeTable, imresize_f32_chw_with};
use imdn::model::Variant;

/// `model-path` values that select test backends (never a default):
/// - `test:nearest`: [`Nearest`], a deterministic stand-in for the network;
/// - `test:error` / `test:panic`: [`Failing`], to exercise the runtime error paths.
pub fn test_backend(model_path: &str) -> Option<BackendSpec> {
    match model_path {
        "test:nearest" => Some(BackendSpec::Nearest),
        "test:error" => Some(BackendSpec::Failing { panic: false }),
        "test:panic" => Some(BackendSpec::Failing { panic: true }),
        _ => None,
    }
}

/// A network behind the worker. Owned by the infer thread, which is the only one that uses it.
pub trait Backend: Send {
    /// Upscales planar RGB f32 (`w`×`h`, values in [0, 1]) to exactly `scale·w × scale·h`
    /// planar RGB f32 (not clamped).
    fn upscale(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        scale: usize,
    ) -> Result<Vec<f32>, String>;
}

/// Test backend: every output pixel copies the input pixel it falls in.
pub struct Nearest;

impl Backend for Nearest {
    fn upscale(
        &mut self,
        input: &[f32],
        (w, h): (usize, usize),
        s: usize,
    ) -> Result<Vec<f32>, String> {
        if input.len() != 3 * w * h || s == 0 {
            return Err(format!("{w}×{h} frame with {} floats", input.len()));
        }
        let (ow, oh) = (w * s, h * s);
        let mut out = Vec::with_capacity(3 * ow * oh);
        for plane in input.chunks_exact(w * h) {
            for y in 0..oh {
                let row = &plane[(y / s) * w..][..w];
                out.extend((0..ow).map(|x| row[x / s]));
            }
        }
        Ok(out)
    }
}

/// Test backend whose every frame fails, with an error or a panic.
pub struct Failing {
    panic: bool,
}

impl Backend for Failing {
    fn upscale(&mut self, _: &[f32], _: (usize, usize), _: usize) -> Result<Vec<f32>, String> {
        if self.panic {
            panic!("test:panic backend");
        }
        Err("test:error backend".into())
    }
}

/// IMDN, IMDN_RTC or IMDN_AS from a weights file.
pub struct Imdn {
    upscaler: Upscaler,
    /// IMDN_AS's bicubic pre-upscale tables for the last frame size and scale.
    tables: Option<((usize, usize, usize), ResizeTable, ResizeTable)>,
}

impl Imdn {
    fn run(&mut self, input: &[f32], (w, h): (usize, usize), s: usize) -> Result<Vec<f32>, String> {
        if self.upscaler.config().variant != Variant::As {
            // `build` checked that the network's scale is the element's.
            return self
                .upscaler
                .forward_planar(input, (w, h))
                .map_err(|e| e.to_string());
        }
        // IMDN_AS refines a bicubic upscale; the tables are reused while the size holds.
        let (ow, oh) = (w * s, h * s);
        let key = (w, h, s);
        if self.tables.as_ref().is_none_or(|(k, _, _)| *k != key) {
            let rows = ResizeTable::new(h, oh).map_err(|e| e.to_string())?;
            let cols = ResizeTable::new(w, ow).map_err(|e| e.to_string())?;
            self.tables = Some((key, rows, cols));
        }
        let Some((_, rows, cols)) = &self.tables else {
            return Err("resize tables missing".into());
        };
        let big = imresize_f32_chw_with(input, w, h, 3, rows, cols).map_err(|e| e.to_string())?;
        self.upscaler
            .forward_planar(&big, (ow, oh))
            .map_err(|e| e.to_string())
    }
}

impl Backend for Imdn {
    fn upscale(
        &mut self,
        input: &[f32],
        size: (usize, usize),
        scale: usize,
    ) -> Result<Vec<f32>, String> {
        self.run(input, size, scale)
    }
}

/// Which device the element asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// CUDA device `id` if this build has CUDA and it answers, else the CPU (with a warning).
    Auto(usize),
    Cpu,
    Cuda(usize),
}

/// Everything needed to build a backend, snapshot from the settings in `start`.
#[derive(Clone, Debug)]
pub enum BackendSpec {
    Nearest,
    Failing {
        panic: bool,
    },
    Imdn {
        path: PathBuf,
        device: DeviceRequest,
        tile: usize,
        threads: usize,
        scale: usize,
    },
}

/// Why a backend could not be built; the element maps each to a GStreamer error domain.
#[derive(Debug)]
pub enum BuildError {
    /// The weights file does not exist.
    NotFound(String),
    /// The weights file exists but could not be read or does not hold a network we know.
    BadWeights(String),
    /// The requested device cannot be opened.
    Device(String),
    /// The settings do not fit the weights (e.g. a ×4 network for scale=2).
    Settings(String),
    /// A worker thread could not be started.
    Thread(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::NotFound(m)
            | BuildError::BadWeights(m)
            | BuildError::Device(m)
            | BuildError::Settings(m)
            | BuildError::Thread(m) => f.write_str(m),
        }
    }
}

/// A built backend with what the element should tell the user about it.
pub struct Loaded {
    pub backend: Box<dyn Backend>,
    /// e.g. "IMDN_RTC ×2 on Cpu", for the debug log.
    pub description: String,
    /// Set when `device=auto` could not use CUDA and fell back to the CPU.
    pub warning: Option<String>,
    pub on_cuda: bool,
}

impl BackendSpec {
    /// Builds the backend; called on the infer thread, which then owns the device.
    pub fn build(self) -> Result<Loaded, BuildError> {
        let (path, device, tile, threads, scale) = match self {
            BackendSpec::Nearest => {
                return Ok(Loaded {
                    backend: Box::new(Nearest),
                    description: "nearest-neighbour test backend".into(),
                    warning: None,
                    on_cuda: false,
                });
            }
            BackendSpec::Failing { panic } => {
                return Ok(Loaded {
                    backend: Box::new(Failing { panic }),
                    description: "failing test backend".into(),
                    warning: None,
                    on_cuda: false,
                });
            }
            BackendSpec::Imdn {
                path,
                device,
                tile,
                threads,
                scale,
            } => (path, device, tile, threads, scale),
        };
        if !path.exists() {
            return Err(BuildError::NotFound(format!(
                "model-path {}: no such file",
                path.display()
            )));
        }
        let mut warning = None;
        let dev = match device {
            DeviceRequest::Cpu => candle_core::Device::Cpu,
            DeviceRequest::Cuda(id) => DeviceChoice::Cuda(id)
                .open()
                .map_err(|e| BuildError::Device(e.to_string()))?,
            DeviceRequest::Auto(id) => match DeviceChoice::Cuda(id).open() {
                Ok(d) => d,
                Err(e) => {
                    warning = Some(format!("CUDA unavailable ({e}); running on the CPU"));
                    candle_core::Device::Cpu
                }
            },
        };
        // n-threads sizes the thread pool of the library's CPU kernels (0 = all cores)
        let options = Options {
            precision: Precision::F32,
            cpu_threads: threads,
        };
        let mut upscaler = Upscaler::load_with(&path, &dev, options)
            .map_err(|e| BuildError::BadWeights(format!("model-path {}: {e}", path.display())))?;
        let config = *upscaler.config();
        if config.variant != Variant::As && config.net_scale() != scale {
            return Err(BuildError::Settings(format!(
                "model-path {} holds a ×{} {} network, but scale={scale}: use ×{scale} weights \
                 or set scale={}",
                path.display(),
                config.net_scale(),
                config.variant.name(),
                config.net_scale()
            )));
        }
        if tile != 0 && tile <= upscaler.acs.overlap {
            return Err(BuildError::Settings(format!(
                "tile-size {tile} must be 0 (whole frame) or larger than the {}-pixel tile overlap",
                upscaler.acs.overlap
            )));
        }
        upscaler.acs.tile = tile;
        let description = format!(
            "{} ×{scale} on {:?}{}",
            config.variant.name(),
            dev.location(),
            if tile > 0 {
                format!(", tiles of {tile}")
            } else {
                String::new()
            }
        );
        Ok(Loaded {
            backend: Box::new(Imdn {
                upscaler,
                tables: None,
            }),
            description,
            warning,
            on_cuda: dev.is_cuda(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_repeats_pixels() {
        // one plane per channel, 2×1 → 4×2
        let input = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let out = Nearest.upscale(&input, (2, 1), 2).unwrap();
        assert_eq!(
            out,
            [
                0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.2, 0.2, //
                0.3, 0.3, 0.4, 0.4, 0.3, 0.3, 0.4, 0.4, //
                0.5, 0.5, 0.6, 0.6, 0.5, 0.5, 0.6, 0.6
            ]
        );
    }
}
