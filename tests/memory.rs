//! A frame too large for the machine is refused with a message naming the cure, before any
//! allocation could abort the process; tiles make the same frame fit.

use candle_core::Device;
use imdn::Error;
use imdn::acs::Acs;
use imdn::engine::Upscaler;
use imdn::model::{Config, init_tensors};

#[test]
fn a_frame_beyond_available_memory_is_refused_and_tiles_fit() {
    let Some(available) = imdn::memory::available_bytes() else {
        eprintln!("skipped: this system does not report its available memory");
        return;
    };
    let config = Config::imdn(4);
    let mut up =
        Upscaler::from_tensors(init_tensors(&config, &Device::Cpu).unwrap(), &Device::Cpu).unwrap();
    // IMDN ×4 holds about 470 floats per input pixel as a whole frame: pick a frame that needs
    // at least twice what is available
    let pixels = (available / (470 * 4) * 2).max(1 << 20) as usize;
    let w = 4096usize;
    let h = pixels.div_ceil(w);
    let input = vec![0.5f32; 3 * w * h];
    up.acs.tile = 0;
    match up.forward_planar(&input, (w, h)) {
        Err(Error::OutOfMemory(msg)) => {
            assert!(msg.contains(&format!("{w}×{h}")), "{msg}");
            assert!(msg.contains("tile"), "{msg}");
        }
        other => panic!("expected OutOfMemory, got {:?}", other.map(|v| v.len())),
    }
    // the same frame in 256-pixel tiles passes the check (not run: it would take minutes)
    let tiled = Acs {
        tile: 256,
        ..up.acs
    };
    let floats = tiled.peak_floats((w, h), 4, 1, |tw, th, n| {
        imdn::cpu::CpuNet::layerwise_working_floats(&config, n, th, tw)
    });
    let whole = up.acs.peak_floats((w, h), 4, 1, |tw, th, n| {
        imdn::cpu::CpuNet::layerwise_working_floats(&config, n, th, tw)
    });
    // tiles bound the activations; what is left is mostly the ×4 output itself
    assert!(floats < whole / 8, "tiles: {floats} floats, whole: {whole}");
    assert!((floats * 4) as u64 <= available, "tiles: {floats} floats");
}

#[test]
fn a_streamed_network_counts_its_rings_not_whole_frame_activations() {
    use imdn::cpu::CpuNet;
    let config = Config::rtc(2);
    let t = init_tensors(&config, &Device::Cpu).unwrap();
    let streamed = CpuNet::new(&config, &t, 2).unwrap();
    assert!(streamed.streams());
    let (h, w) = (4320, 7680);
    let output = 3 * h * w * 4;
    let floats = streamed.working_floats(1, h, w);
    // the 8K ×2 output itself, plus rings of a few rows a strip: not the ~90 floats a pixel of
    // whole-frame activations the layer-by-layer executor holds
    assert!(floats >= output, "{floats} < the output's {output}");
    assert!(
        floats < output + output / 10,
        "{floats} floats for an {w}×{h} frame"
    );
    assert!(floats * 3 < CpuNet::layerwise_working_floats(&config, 1, h, w));
}
