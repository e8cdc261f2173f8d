//! The before/after picture: its layout, the panels' pixels, and the choice of the most
//! detailed region.

use imdn::compare::{GAP, compose, most_detailed};

/// A flat grey `w`×`h` image with a checkerboard patch of `side` at (`px`, `py`).
fn flat_with_patch((w, h): (usize, usize), (px, py): (usize, usize), side: usize) -> Vec<u8> {
    let mut img = vec![120u8; w * h * 3];
    for y in py..py + side {
        for x in px..px + side {
            let v = if (x + y) % 2 == 0 { 20 } else { 230 };
            img[(y * w + x) * 3..][..3].fill(v);
        }
    }
    img
}

#[test]
fn the_most_detailed_window_is_the_textured_one() {
    let img = flat_with_patch((100, 60), (64, 20), 16);
    let (x, y) = most_detailed(&img, (100, 60), 16);
    // on a grid of side/4 = 4: the window that covers the whole patch
    assert_eq!((x, y), (64, 20));
    // a window larger than the image is clamped to its 60×60, and still covers the patch
    let (x, y) = most_detailed(&img, (100, 60), 500);
    assert!(y == 0 && x <= 63 && x + 60 >= 81, "({x}, {y})");
}

#[test]
fn panels_hold_bicubic_left_network_right_and_their_enlarged_crops_below() {
    let (w, h) = (96, 48);
    let bicubic: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    // the patch on the search grid (side / 4 = 6), so that one window holds exactly it
    let network = flat_with_patch((w, h), (36, 6), 24);
    let (pic, (pw, ph), crop) = compose(&bicubic, &network, (w, h), 24);
    assert_eq!((pw, ph), (2 * w + GAP, h + GAP + 24 * 4));
    assert_eq!(pic.len(), pw * ph * 3);
    assert_eq!((crop.x, crop.y, crop.side, crop.zoom), (36, 6, 24, 4));
    let px = |x: usize, y: usize| &pic[(y * pw + x) * 3..][..3];
    let inside_outline = |x: usize, y: usize| {
        (crop.x..crop.x + crop.side).contains(&x)
            && (crop.y..crop.y + crop.side).contains(&y)
            && (x == crop.x || y == crop.y || x == crop.x + 23 || y == crop.y + 23)
    };
    for y in 0..h {
        for x in 0..w {
            if inside_outline(x, y) {
                assert_eq!(px(x, y), [255, 200, 0]);
                assert_eq!(px(w + GAP + x, y), [255, 200, 0]);
            } else {
                assert_eq!(
                    px(x, y),
                    &bicubic[(y * w + x) * 3..][..3],
                    "bicubic at {x},{y}"
                );
                assert_eq!(px(w + GAP + x, y), &network[(y * w + x) * 3..][..3]);
            }
        }
    }
    // the enlarged crops: each source pixel 4×4 times (the outline is only drawn above)
    for y in 0..24 * 4 {
        for x in 0..24 * 4 {
            let s = ((crop.y + y / 4) * w + crop.x + x / 4) * 3;
            assert_eq!(px(x, h + GAP + y), &bicubic[s..s + 3]);
            assert_eq!(px(w + GAP + x, h + GAP + y), &network[s..s + 3]);
        }
    }
    // the divider is grey
    assert_eq!(px(w + 1, 5), [96, 96, 96]);
}
