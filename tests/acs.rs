//! ACS against the whole frame with the shipped models: tiles overlapping by twice the
//! network's reach equal the whole frame (Set5 and a large photograph, at the CLI's default
//! tile and at other `tile-size` values), and edge replication keeps flat frames flat.

mod common;

use std::time::Instant;

use candle_core::Device;
use imdn::Result;
use imdn::acs::{Acs, EdgeMode, Forward, FrameStats, Nhw, Rect};
use imdn::cpu::CpuNet;
use imdn::engine::Upscaler;
use imdn::image_ops::{
    chw_f32_to_hwc_u8_vec, hwc_u8_to_chw_f32_vec, imresize_f32_chw, imresize_u8,
};
use imdn::metrics::psnr_y;
use imdn::model::{Config, Variant, scale_code};
use imdn::weights::shipped;

/// The whole frame's output against the tiled one's, per pixel (0..1) and in PSNR (dB).
const MAX_PIXEL: f32 = 1e-3;
const MAX_DB: f64 = 0.005;

/// The CLI's default tile (frames above 512×512 network-input pixels) and a smaller
/// `tile-size`.
const TILES: [usize; 2] = [256, 128];

/// A shipped model (IMDN_AS told ×2).
fn shipped_model(name: &str) -> Upscaler {
    let tensors = shipped::by_name(name).unwrap().tensors().unwrap();
    let mut up = Upscaler::from_tensors(tensors, &Device::Cpu).unwrap();
    up.set_refine_scale(2.0).unwrap();
    up
}

/// A picture for the network: its input (planar f32) and the HR it should approach (RGB u8).
struct Case {
    name: String,
    input: Vec<f32>,
    size: (usize, usize),
    hr: Vec<u8>,
}

fn read(path: &std::path::Path) -> (Vec<u8>, (usize, usize)) {
    let img = imdn::eval::read_rgb(path).unwrap();
    let size = (img.width() as usize, img.height() as usize);
    (img.into_raw(), size)
}

/// The top-left `side`×`side` (at most) of interleaved RGB `src`.
fn crop_rgb(src: &[u8], (w, h): (usize, usize), side: usize) -> (Vec<u8>, (usize, usize)) {
    let (cw, ch) = (w.min(side), h.min(side));
    let out = (0..ch)
        .flat_map(|y| &src[y * w * 3..][..cw * 3])
        .copied()
        .collect();
    (out, (cw, ch))
}

/// ×2 cases: Set5 (the authors' LR) and a large photograph (Set5's baby bicubic ×2 to
/// 1024×1024 as HR, its MATLAB-style ×½ as LR), each cut to at most `side` network-input
/// pixels a side: what is checked, the context a tile sees, is local. IMDN_AS's input is the
/// LR bicubic ×2, as `upscale_planar` makes it.
fn cases(variant: Variant, side: usize) -> Option<Vec<Case>> {
    let set5 = common::reference("Set5")?;
    let mut pictures = Vec::new();
    for name in ["baby", "bird", "butterfly", "head", "woman"] {
        let (hr, size) = read(&set5.join(format!("HR/{name}.bmp")));
        let (lr, lr_size) = read(&set5.join(format!("LR_bicubic/x2/{name}x2.bmp")));
        pictures.push((name.to_string(), hr, size, lr, lr_size));
    }
    let (baby, (w, h)) = read(&set5.join("HR/baby.bmp"));
    let hr = imresize_u8(&baby, w, h, 3, 2 * w, 2 * h);
    let lr = imresize_u8(&hr, 2 * w, 2 * h, 3, w, h);
    pictures.push(("large photograph".into(), hr, (2 * w, 2 * h), lr, (w, h)));
    let cases = pictures
        .into_iter()
        .map(|(name, hr, size, lr, lr_size)| {
            let lr_side = if variant == Variant::As {
                side / 2
            } else {
                side
            };
            let (lr, (lw, lh)) = crop_rgb(&lr, lr_size, lr_side);
            let (hr, _) = crop_rgb(&hr, size, 2 * lr_side);
            let planar = hwc_u8_to_chw_f32_vec(&lr, lw, lh, 3).unwrap();
            let (input, size) = match variant {
                Variant::As => (
                    imresize_f32_chw(&planar, lw, lh, 3, 2 * lw, 2 * lh),
                    (2 * lw, 2 * lh),
                ),
                _ => (planar, (lw, lh)),
            };
            Case {
                name,
                input,
                size,
                hr,
            }
        })
        .collect();
    Some(cases)
}

/// Runs every case whole and at every tile of [`TILES`] smaller than it; returns the largest
/// per-pixel difference and PSNR difference (dB) of tiles against the whole frame.
fn tiled_against_whole(up: &mut Upscaler, cases: &[Case]) -> (f32, f64) {
    let (mut worst_pixel, mut worst_db) = (0f32, 0f64);
    for case in cases {
        let (w, h) = case.size;
        let (ow, oh) = (w * up.config().net_scale(), h * up.config().net_scale());
        let psnr = |out: &[f32]| {
            let u8s = chw_f32_to_hwc_u8_vec(out, ow, oh).unwrap();
            // the authors shave the scale, 2, off every border
            psnr_y(&u8s, &case.hr, ow, oh, 3, 2)
        };
        up.acs.tile = 0;
        let whole = up.forward_planar(&case.input, (w, h)).unwrap();
        let whole_db = psnr(&whole);
        for tile in TILES.into_iter().filter(|&t| t < w.max(h)) {
            up.acs.tile = tile;
            let tiled = up.forward_planar(&case.input, (w, h)).unwrap();
            let (pixel, db) = (
                common::max_abs_diff(&whole, &tiled),
                (psnr(&tiled) - whole_db).abs(),
            );
            eprintln!(
                "{} {} {w}×{h}, tiles of {tile} (overlap {}): max {pixel:.1e}, {db:.4} dB \
                 (whole {whole_db:.2} dB)",
                up.config(),
                case.name,
                up.acs.overlap
            );
            worst_pixel = worst_pixel.max(pixel);
            worst_db = worst_db.max(db);
        }
    }
    up.acs.tile = 0;
    (worst_pixel, worst_db)
}

#[test]
fn rtc_tiles_equal_the_whole_frame() {
    // IMDN_RTC has no CCA: with 22 pixels of context a share sees all it depends on
    let Some(cases) = cases(Variant::Rtc, 512) else {
        return;
    };
    let mut up = shipped_model("imdn_rtc_x2");
    assert_eq!(up.acs.overlap, 44);
    let (pixel, db) = tiled_against_whole(&mut up, &cases);
    assert!(pixel <= MAX_PIXEL && db <= MAX_DB, "max {pixel}, {db} dB");
}

#[test]
fn imdn_and_as_tiles_equal_the_whole_frame() {
    // overlaps twice the reach (IMDN 27, IMDN_AS 48); CCA scales each block's channels by
    // statistics of the whole frame: the tiles gather them over their shares, a pass per
    // block, before the pass that makes the output (with each tile's own, IMDN_AS on the
    // large photograph lost 0.097 dB at 256-pixel tiles, 0.21 dB at 128, up to 3e-2 a pixel)
    for (name, side, overlap) in [("imdn_x2", 264, 54), ("imdn_as", 320, 96)] {
        let mut up = shipped_model(name);
        assert_eq!(up.acs.overlap, overlap, "{name}");
        let Some(cases) = cases(up.config().variant, side) else {
            return;
        };
        let (pixel, db) = tiled_against_whole(&mut up, &cases);
        assert!(
            pixel <= MAX_PIXEL && db <= MAX_DB,
            "{name}: max {pixel}, {db} dB"
        );
    }
}

#[test]
fn edge_replication_keeps_flat_frames_flat() {
    // zero padding at the frame border shifts flat frames' borders by up to 34 levels (RTC
    // ×4 at 255); the edge margin takes every pixel to within 1 level of the input's
    for name in [
        "imdn_rtc_x2",
        "imdn_rtc_x3",
        "imdn_rtc_x4",
        "imdn_x2",
        "imdn_x4",
        "imdn_as",
    ] {
        let mut up = shipped_model(name);
        let (w, h) = (23, 18);
        for mode in [EdgeMode::Zero, EdgeMode::Replicate] {
            up.set_edge_mode(mode);
            let worst = [0u8, 16, 128, 235, 255]
                .into_iter()
                .map(|level| {
                    let frame = vec![level as f32 / 255.0; 3 * w * h];
                    let out = up.forward_planar(&frame, (w, h)).unwrap();
                    out.iter()
                        .map(|&v| (v * 255.0 - level as f32).abs())
                        .fold(0f32, f32::max)
                })
                .fold(0f32, f32::max);
            eprintln!("{name} {mode:?}: up to {worst:.2} levels off");
            if mode == EdgeMode::Replicate {
                assert!(worst < 1.0, "{name}: {worst} levels");
            } else {
                assert!(worst > 1.0, "{name}: zero padding should show ({worst})");
            }
        }
    }
}

/// Our executor with IMDN_AS's scale code; `per_tile` hides its frame statistics from ACS, so
/// that each tile uses its own (as all tiles did before issue 44, and candle's still do).
struct Cpu<'a> {
    net: &'a CpuNet,
    code: Option<f32>,
    per_tile: bool,
}

impl Forward for Cpu<'_> {
    fn forward_batch_into(&self, x: &[f32], (n, h, w): Nhw, out: &mut Vec<f32>) -> Result<()> {
        self.net.forward_at_into(x, n, h, w, self.code, out)
    }

    fn frame_stages(&self) -> usize {
        match self.per_tile {
            true => 0,
            false => self.net.frame_stages(),
        }
    }

    fn add_stage_sums(
        &self,
        x: &[f32],
        nhw: Nhw,
        shares: &[Rect],
        stage: usize,
        stats: &mut FrameStats,
    ) -> Result<()> {
        self.net
            .add_block_sums_at(x, nhw, self.code, (shares, stage), stats)
    }

    fn forward_batch_with_stats_into(
        &self,
        x: &[f32],
        nhw: Nhw,
        stats: &FrameStats,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.net
            .forward_with_stats_at_into(x, nhw, self.code, stats, out)
    }
}

/// What tiles with the whole frame's statistics cost: IMDN ×2 and IMDN_AS on a 1024×1024
/// network input, the whole frame, 256-pixel tiles with the frame's statistics and with their
/// own, interleaved, `THREADS` threads (2 by default):
/// `cargo test --release --test acs -- --ignored timing --nocapture`.
#[test]
#[ignore = "timing, not a check"]
fn timing() {
    let threads = std::env::var("THREADS").map_or(2, |t| t.parse().unwrap());
    let rounds = std::env::var("ROUNDS").map_or(2, |t| t.parse().unwrap());
    let (w, h) = (1024, 1024);
    let frame: Vec<f32> = (0..3 * w * h)
        .map(|i| 0.5 + 0.4 * ((i % w) as f32 * 0.05).sin() * ((i / w) as f32 * 0.03).cos())
        .collect();
    for name in ["imdn_x2", "imdn_as"] {
        let tensors = shipped::by_name(name).unwrap().tensors().unwrap();
        let config = Config::detect(&tensors).unwrap();
        let net = CpuNet::new(&config, &tensors, threads).unwrap();
        let code = config.scale_input.then(|| scale_code(2.0));
        let runs = [
            ("whole frame", 0, false),
            ("tiles, frame statistics", 256, false),
            ("tiles, own statistics", 256, true),
        ];
        let mut times = vec![Vec::new(); runs.len()];
        for _ in 0..rounds {
            for ((_, tile, per_tile), times) in runs.iter().zip(&mut times) {
                let acs = Acs {
                    tile: *tile,
                    ..Acs::for_reach(config.reach())
                };
                let cpu = Cpu {
                    net: &net,
                    code,
                    per_tile: *per_tile,
                };
                let (m, s) = (config.input_multiple(), config.net_scale());
                let start = Instant::now();
                acs.run(&cpu, &frame, (w, h), s, m).unwrap();
                times.push(start.elapsed().as_secs_f64());
            }
        }
        for ((label, ..), times) in runs.iter().zip(&times) {
            let best = times.iter().copied().fold(f64::INFINITY, f64::min);
            eprintln!(
                "{name} {w}×{h}, {threads} threads, {label}: best {best:.2} s of {times:.2?}"
            );
        }
    }
}
