//! `imdn info`: what a weights file or shipped model is, or the list of shipped models.

use anyhow::Result;

use imdn::model::{Config, Variant};
use imdn::weights::parameter_count;
use imdn::weights::shipped;

/// One line per shipped model: name, configuration, parameter count.
pub fn list_shipped() -> Result<()> {
    for m in shipped::SHIPPED {
        let tensors = m.tensors()?;
        let config = Config::detect(&tensors).map_err(anyhow::Error::msg)?;
        println!(
            "{}: {config}, {} parameters",
            m.name,
            parameter_count(&tensors)
        );
    }
    Ok(())
}

/// Describes the weights file or shipped model `spec`.
pub fn info(spec: &str) -> Result<()> {
    let tensors = shipped::load_file_or_shipped(spec)?;
    let config = Config::detect(&tensors).map_err(|e| anyhow::anyhow!("{spec}: {e}"))?;
    println!("file: {spec}");
    println!("variant: {}", config.variant.name());
    match config.variant {
        Variant::As => println!("scale: any (output size = bicubic-upscaled input size)"),
        _ => println!("scale: {}", config.net_scale()),
    }
    if config.input_skip {
        println!("input skip: yes (the output adds the input frame: ours, not in the paper)");
    }
    if config.scale_input {
        println!("scale input: yes (the network is told the scale: ours, not in the paper)");
    }
    println!("channels: {}", config.channels);
    println!("blocks: {}", config.blocks);
    println!("parameters: {}", parameter_count(&tensors));
    println!(
        "GFLOP per megapixel of network input: {:.1}",
        config.flops_per_pixel() * 1e6 / 1e9
    );
    Ok(())
}
