//! `imdn eval`: PSNR/SSIM on Y over a benchmark folder, as the authors measure them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use imdn::acs::EdgeMode;

use imdn::eval::{LrSource, evaluate};

use crate::common::{RunArgs, load, weights_label};

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Folder of HR images.
    #[arg(long)]
    hr: PathBuf,
    /// Folder of LR images (NAME.ext or NAMEx{scale}.ext for each HR NAME.ext).
    #[arg(
        long,
        conflicts_with = "downscale",
        required_unless_present = "downscale"
    )]
    lr: Option<PathBuf>,
    /// Make the LR images from HR with our MATLAB-style bicubic.
    #[arg(long)]
    downscale: bool,
    #[arg(long)]
    scale: usize,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Scores the weights on `a.hr`: per image on stderr, the table (or JSON) on stdout.
pub fn eval(a: EvalArgs) -> Result<()> {
    let s = a.scale;
    let mut up = load(&a.run, s, EdgeMode::Zero)?;
    if a.run.tile.is_none() {
        // benchmark images are small: whole frames, as the authors evaluate
        up.acs.tile = 0;
    }
    let lr = match &a.lr {
        Some(dir) => LrSource::Folder(dir),
        None => LrSource::Downscale,
    };
    let report = evaluate(&mut up, &a.hr, lr, s, |r| {
        let int8 = r.int8.map_or(String::new(), |q| {
            let rerun = if q.rerun { ", ran again in f32" } else { "" };
            format!(
                "  8-bit: {:.3} steps a pixel outside the ranges{rerun}",
                q.excess
            )
        });
        eprintln!(
            "{:>12}  PSNR {:.4} dB  SSIM {:.5}  (bicubic {:.4} / {:.5}){int8}",
            r.name, r.psnr_y, r.ssim_y, r.bicubic_psnr_y, r.bicubic_ssim_y
        )
    })?;
    let (mp, ms) = report.mean_sr();
    let (bp, bs) = report.mean_bicubic();
    if a.json {
        let images: Vec<_> = report
            .images
            .iter()
            .map(|r| {
                let mut image = serde_json::json!({
                    "name": r.name,
                    "psnr_y": r.psnr_y,
                    "ssim_y": r.ssim_y,
                    "bicubic": {"psnr_y": r.bicubic_psnr_y, "ssim_y": r.bicubic_ssim_y},
                });
                if let Some(q) = r.int8 {
                    image["int8"] = serde_json::json!({"excess": q.excess, "rerun": q.rerun});
                }
                image
            })
            .collect();
        let out = serde_json::json!({
            "weights": weights_label(&a.run, s),
            "model": up.config().to_string(),
            "scale": s,
            "images": images,
            "mean": {"psnr_y": mp, "ssim_y": ms},
            "bicubic": {"psnr_y": bp, "ssim_y": bs},
        });
        println!("{out}");
    } else {
        println!("{:>12}  {:>10}  {:>8}", "", "PSNR (Y)", "SSIM (Y)");
        for r in &report.images {
            println!("{:>12}  {:>10.4}  {:>8.5}", r.name, r.psnr_y, r.ssim_y);
        }
        println!("{:>12}  {:>10.4}  {:>8.5}", "mean", mp, ms);
        println!("{:>12}  {:>10.4}  {:>8.5}", "bicubic", bp, bs);
        let int8: Vec<_> = report.images.iter().filter_map(|r| r.int8).collect();
        if !int8.is_empty() {
            let reran = int8.iter().filter(|q| q.rerun).count();
            let most = int8.iter().map(|q| q.excess).fold(0.0, f64::max);
            println!(
                "8-bit: {reran} of {} images ran again in f32; at most {most:.3} steps a pixel \
                 outside the ranges",
                int8.len()
            );
        }
    }
    Ok(())
}
