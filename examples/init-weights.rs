//! Writes random-init IMDN weights (for benchmarks and smoke tests, not for quality):
//!
//! ```text
//! cargo run --release -p gst-plugin-imdn --example init-weights -- rtc 2 /tmp/rtc_x2.safetensors
//! ```
//!
//! Variants: `imdn` (×2/×3/×4), `rtc` (×2/×3/×4), `as` (any scale; SCALE ignored).

use std::process::ExitCode;

use imdn::model::Config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [variant, scale, out] = args.as_slice() else {
        eprintln!("usage: init-weights imdn|rtc|as SCALE OUT.safetensors");
        return ExitCode::from(2);
    };
    let scale = match scale.parse::<usize>() {
        Ok(s @ 2..=4) => s,
        _ => {
            eprintln!("SCALE must be 2, 3 or 4");
            return ExitCode::from(2);
        }
    };
    let config = match variant.as_str() {
        "imdn" => Config::imdn(scale),
        "rtc" => Config::rtc(scale),
        "as" => Config::imdn_as(),
        v => {
            eprintln!("unknown variant {v}: imdn, rtc or as");
            return ExitCode::from(2);
        }
    };
    let result = imdn::model::init_tensors(&config, &candle_core::Device::Cpu)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            imdn::weights::save_safetensors(&t, std::path::Path::new(out))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            eprintln!("wrote random-init {config} to {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("init-weights: {e}");
            ExitCode::FAILURE
        }
    }
}
