#!/usr/bin/env python3
"""Procedural training and validation tiles with structure: facades, grids, stripes, text, line
drawings and screen content, drawn by this code (issue 45: the photographs are mostly nature).

Called by scripts/prepare-data.sh after scripts/prepare_data.py. Steps:

1. Every tile is a function of (split, kind, index) alone: its PRNG is seeded from their hash,
   so a tile never changes between runs and training and validation never share a seed.
2. Anti-aliased like a photograph: everything but screen content is drawn at SS times the tile
   side and box-filtered down (a sensor integrates light over each pixel); training makes LR by
   bicubic from these tiles, so aliased pixel art here would teach the wrong thing; and with a
   lens's blur (BLUR) and sensor noise (NOISE), as a camera's pictures have. Screen content is drawn at 1x, pixel-aligned, as a screen is (its text
   anti-aliased by FreeType), without noise.
3. Text uses fonts from Debian's font packages (`--fonts`, extracted by prepare-data.sh);
   fonts-freefont-ttf is held out: validation text uses only it, training text never.
4. Training gets as many tiles as make `--share` of all training tiles (the photographs'
   count is read from the folder), spread over the kinds in turn; validation gets
   `--val-per-kind` of each kind in DIR/val-structured.

Idempotent: tiles already present are not redrawn, stale `proc-` tiles are removed (the
photographs' tiles are left alone), and manifest.json gets a "structured" section.
"""

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

import prepare_data

# bump when the drawing changes: the names change, so stale tiles go and new ones are drawn
VERSION = 3
PREFIX = f"proc-v{VERSION}--"
KINDS = ("facade", "grid", "stripes", "text", "drawing", "screen")
SS = 4  # supersampling factor of the anti-aliased kinds
# sensor noise of the anti-aliased kinds, σ in 8-bit levels drawn per tile: noise-free HR taught
# the first fine-tuning to amplify every faint LR fluctuation (grain on the natural tiles lost up
# to 4 dB), as if it were a stripe to restore
NOISE = (0.5, 2.0)
# a lens's blur before the pixels, σ in HR pixels drawn per tile: with edges as crisp as the box
# filter alone makes them, the fine-tuning learned to sharpen every soft edge (the natural tiles'
# soft textures lost up to 4 dB)
BLUR = (0.3, 0.8)
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf")
VAL_FONT_PACKAGE = "fonts-freefont-ttf"
WORDS = (
    "the of and to in is for on with as by at from open closed exit entrance street avenue road "
    "station platform north south east west city hall market bank hotel cafe bakery pharmacy "
    "police museum library school office floor room parking bus stop tram metro taxi no entry "
    "one way speed limit keep left right push pull menu price total order invoice receipt date "
    "time monday tuesday friday january march october report chapter section figure table "
    "version build error warning file edit view help settings cancel apply save print window "
    "quality resolution frame video upscale network layer kernel pixel image sharp edge line "
    "Ελλάδα Αθήνα οδός Москва улица вход выход Straße Ausgang Öffnungszeiten café déjà vu "
    "THE QUICK BROWN FOX JUMPS OVER LAZY DOG 0123456789 € $ % & @ # ( ) [ ] / : ; , . ? !"
).split()


def tile_rng(split, kind, index, attempt=0):
    """The PRNG of one tile: seeded from its identity, nothing else."""
    digest = hashlib.sha256(f"{split}/{kind}/{index}/{attempt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def homography(src, dst):
    """The 3x3 matrix H with H·src[i] ∝ dst[i] for four point pairs."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    h = np.linalg.solve(np.array(a, float), np.array(b, float))
    return np.append(h, 1.0).reshape(3, 3)


def random_view(rng, side, tex):
    """A homography from output pixels to texture coordinates: a plane seen from a random
    direction (rotation, scale, converging edges) covering most of a side x side output."""
    c = side / 2
    angle = rng.normal(0, 0.25) if rng.random() < 0.7 else rng.uniform(-math.pi, math.pi)
    # where the output's corners land in the texture, before perspective
    corners = np.array([[-c, -c], [c, -c], [c, c], [-c, c]])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    scale = rng.uniform(0.6, 1.3)  # texture pixels per output pixel
    pts = corners @ rot.T * scale
    # perspective: one pair of opposite edges shrinks toward a vanishing point
    squeeze = rng.uniform(0.0, 0.45)
    edge = rng.integers(4)
    mid = pts.mean(axis=0)
    pts[edge] = mid + (pts[edge] - mid) * (1 + squeeze)
    pts[(edge + 1) % 4] = mid + (pts[(edge + 1) % 4] - mid) * (1 + squeeze)
    pts += tex / 2
    out = [(0, 0), (side, 0), (side, side), (0, side)]
    return homography(out, pts)


def texture_coords(h, side):
    """Texture coordinates (u, v) of every output pixel centre under homography `h`."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w


def warp(texture, h, side, fill):
    """`texture` (PIL) seen through homography `h` (output -> texture), bicubic, `fill` outside."""
    coeffs = (h / h[2, 2]).flatten()[:8]
    return texture.transform((side, side), Image.PERSPECTIVE, tuple(coeffs), Image.BICUBIC,
                             fillcolor=fill)


def colour(rng, lo=0, hi=255):
    return tuple(int(c) for c in rng.integers(lo, hi + 1, 3))


def contrasting(rng, bg):
    """A colour whose luma differs from `bg`'s by at least 80 levels."""
    while True:
        c = colour(rng)
        if abs(prepare_data.luma(np.array(c)) - prepare_data.luma(np.array(bg))) >= 80:
            return c


def mix(a, b, t):
    """Per-pixel blend of two RGB colours by a weight array t in [0, 1]: an HxWx3 float array."""
    a, b = np.array(a, float), np.array(b, float)
    return a + (b - a) * t[..., None]


def to_image(arr):
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def camera(img, rng):
    """What a camera makes of the scene `img` drawn at SS x: the lens's blur, each pixel the
    mean of its SS x SS area (anti-aliased), plus sensor noise."""
    sigma = rng.uniform(*BLUR) * SS
    if sigma > 0:
        img = img.filter(ImageFilter.GaussianBlur(sigma))
    arr = np.asarray(img.reduce(SS), float)
    return to_image(arr + rng.normal(0, rng.uniform(*NOISE), arr.shape))


# --- the kinds: each returns an RGB tile of side `side` ---


def draw_facade(rng, side, fonts):
    """A building face of bricks or plaster with a grid of windows, in perspective, sky around."""
    s = side * SS
    tex = int(s * 1.8)
    wall = colour(rng, 60, 220)
    img = Image.new("RGB", (tex, tex), wall)
    d = ImageDraw.Draw(img)
    u = SS * rng.uniform(0.6, 1.4)  # texture pixels per HR pixel at the facade's own scale
    if rng.random() < 0.6:  # bricks, every other row offset by half a brick
        bh = rng.uniform(5, 12) * u
        bw = bh * rng.uniform(1.8, 3.2)
        mortar = max(1.0, rng.uniform(0.6, 1.8) * u)
        mcol = colour(rng, 150, 230) if rng.random() < 0.7 else colour(rng, 30, 90)
        d.rectangle([0, 0, tex, tex], fill=mcol)
        for r in range(int(tex / bh) + 1):
            off = (r % 2) * bw / 2
            for k in range(-1, int(tex / bw) + 2):
                x0, y0 = k * bw - off, r * bh
                jitter = rng.integers(-18, 19, 3)
                c = tuple(int(np.clip(w + j, 0, 255)) for w, j in zip(wall, jitter))
                d.rectangle([x0 + mortar / 2, y0 + mortar / 2, x0 + bw - mortar / 2,
                             y0 + bh - mortar / 2], fill=c)
    floor_h = rng.uniform(40, 90) * u
    col_w = rng.uniform(30, 80) * u
    win_w, win_h = col_w * rng.uniform(0.45, 0.75), floor_h * rng.uniform(0.45, 0.7)
    frame = max(1.0, rng.uniform(1.5, 5) * u)
    frame_c = colour(rng, 180, 255) if rng.random() < 0.6 else colour(rng, 20, 80)
    glass = colour(rng, 20, 110)
    muntins = rng.integers(0, 3)
    ledge = rng.random() < 0.5
    for r in range(int(tex / floor_h) + 1):
        y0 = r * floor_h + (floor_h - win_h) / 2
        if ledge:
            d.rectangle([0, y0 + win_h + frame, tex, y0 + win_h + 3 * frame], fill=frame_c)
            d.rectangle([0, y0 + win_h + 3 * frame, tex, y0 + win_h + 4 * frame],
                        fill=tuple(c // 3 for c in wall))
        for k in range(int(tex / col_w) + 1):
            x0 = k * col_w + (col_w - win_w) / 2
            d.rectangle([x0, y0, x0 + win_w, y0 + win_h], fill=frame_c)
            g = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in glass)
            d.rectangle([x0 + frame, y0 + frame, x0 + win_w - frame, y0 + win_h - frame], fill=g)
            # a reflection: a lighter diagonal band across the pane
            if rng.random() < 0.5:
                t = rng.uniform(0.2, 0.6)
                light = tuple(min(255, c + 60) for c in g)
                d.polygon([(x0 + frame + t * win_w, y0 + frame), (x0 + frame + (t + 0.15) * win_w,
                           y0 + frame), (x0 + frame + (t - 0.1) * win_w, y0 + win_h - frame),
                           (x0 + frame + (t - 0.25) * win_w, y0 + win_h - frame)], fill=light)
            if muntins:
                d.line([x0 + win_w / 2, y0, x0 + win_w / 2, y0 + win_h], fill=frame_c,
                       width=max(1, int(frame / 2)))
            if muntins == 2:
                d.line([x0, y0 + win_h / 2, x0 + win_w, y0 + win_h / 2], fill=frame_c,
                       width=max(1, int(frame / 2)))
    # the far side of the building is darker: light falls off across the plane
    shade = np.linspace(1.0, rng.uniform(0.6, 1.0), tex)[None, :, None]
    img = to_image(np.asarray(img, float) * shade)
    sky = colour(rng, 120, 250)
    out = warp(img, random_view(rng, s, tex), s, sky)
    return camera(out, rng)


def pattern_view(rng, side):
    """Texture coordinates, in HR pixels, of a plane seen from a random direction."""
    s = side * SS
    h = random_view(rng, s, s)
    u, v = texture_coords(h, s)
    return u / SS, v / SS


def draw_grid(rng, side, fonts):
    """Lines on two axes: tiles and grout, mesh, graph paper, in perspective."""
    u, v = pattern_view(rng, side)
    if rng.random() < 0.3:  # a mesh: the axes at 45 degrees
        u, v = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
    period = math.exp(rng.uniform(math.log(6), math.log(48)))
    width = rng.uniform(1.0, max(1.2, period / 4))
    on = (np.mod(u, period) < width) | (np.mod(v, period * rng.choice([1, 1, 2])) < width)
    if rng.random() < 0.4:  # graph paper: a heavier line every fifth
        major = period * 5
        on = on.astype(float) * 0.6 + ((np.mod(u, major) < width * 1.8)
                                       | (np.mod(v, major) < width * 1.8)) * 0.4
    bg, fg = colour(rng), None
    fg = contrasting(rng, bg)
    if rng.random() < 0.5:  # tiles: each cell its own shade
        cells = (np.floor(u / period) * 7919 + np.floor(v / period) * 104729).astype(np.int64)
        jitter = (cells % 41 - 20)[..., None]
        base = mix(bg, bg, np.zeros_like(u)) + jitter
        arr = base * (1 - np.asarray(on, float)[..., None]) + np.array(fg) * np.asarray(on, float)[..., None]
    else:
        arr = mix(bg, fg, np.asarray(on, float))
    return camera(to_image(arr), rng)


def draw_stripes(rng, side, fonts):
    """Stripes at any angle and frequency (square, sine or triangle), sometimes crossed."""
    u, v = pattern_view(rng, side)
    waves = []
    for _ in range(1 if rng.random() < 0.6 else 2):
        angle = rng.uniform(0, math.pi)
        # above ×2's LR Nyquist period (4 HR px): finer ones alias in LR and cannot be restored,
        # so they only teach the network to invent contrast
        period = math.exp(rng.uniform(math.log(5), math.log(64)))
        phase = (u * math.cos(angle) + v * math.sin(angle)) / period
        wave = rng.integers(3)
        if wave == 0:
            w = (np.mod(phase, 1.0) < rng.uniform(0.2, 0.8)).astype(float)
        elif wave == 1:
            w = 0.5 + 0.5 * np.sin(2 * math.pi * phase)
        else:
            w = np.abs(2 * np.mod(phase, 1.0) - 1)
        waves.append(w)
    # two sets cross (the darker wins) or blend
    t = waves[0] if len(waves) == 1 else (
        np.maximum(*waves) if rng.random() < 0.5 else (waves[0] + waves[1]) / 2)
    bg = colour(rng)
    return camera(to_image(mix(bg, contrasting(rng, bg), t)), rng)


def font_files(fonts, split):
    """The fonts a split may use: validation only the held-out package, training the rest."""
    held = [f for f in fonts if f.parts and VAL_FONT_PACKAGE in f.parts]
    others = [f for f in fonts if f not in held]
    chosen = held if split == "val" else others
    return chosen or [None]  # none extracted (tests): Pillow's own font


def load_font(path, size):
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


def words(rng, n):
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def draw_text(rng, side, fonts):
    """Blocks of text in several fonts and sizes, sometimes tilted or in perspective (signs)."""
    s = side * SS
    bg = colour(rng, 200, 255) if rng.random() < 0.6 else colour(rng)
    img = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(img)
    y = rng.uniform(-10, 20) * SS
    while y < s:
        size = math.exp(rng.uniform(math.log(7), math.log(44)))
        font = load_font(fonts[rng.integers(len(fonts))], max(4, int(size * SS)))
        fg = contrasting(rng, bg)
        x = rng.uniform(-40, 30) * SS
        for _ in range(rng.integers(1, 6)):
            d.text((x, y), words(rng, 40), font=font, fill=fg)
            y += size * SS * rng.uniform(1.1, 1.6)
        y += size * SS * rng.uniform(0.3, 2.0)
    if rng.random() < 0.5:
        tex = s
        img = warp(img, random_view(rng, s, tex), s, bg)
    return camera(img, rng)


def draw_drawing(rng, side, fonts):
    """Line art: straight lines, polylines, boxes, circles, arcs and curves in thin ink."""
    s = side * SS
    bg = colour(rng, 215, 255)
    img = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(img)
    ink = [contrasting(rng, bg) for _ in range(rng.integers(1, 4))]
    for _ in range(rng.integers(25, 70)):
        c = ink[rng.integers(len(ink))]
        w = max(1, int(rng.uniform(0.7, 4) * SS))
        p = rng.uniform(-0.1, 1.1, 4) * s
        kind = rng.integers(6)
        if kind == 0:
            d.line(list(p), fill=c, width=w)
        elif kind == 1:
            pts = [tuple(q) for q in rng.uniform(0, 1, (rng.integers(3, 8), 2)) * s]
            d.line(pts, fill=c, width=w, joint="curve")
        elif kind == 2:
            d.rectangle([min(p[0], p[2]), min(p[1], p[3]), max(p[0], p[2]), max(p[1], p[3])],
                        outline=c, width=w)
        elif kind == 3:
            r = rng.uniform(5, 120) * SS
            d.ellipse([p[0] - r, p[1] - r * rng.uniform(0.4, 1), p[0] + r,
                       p[1] + r * rng.uniform(0.4, 1)], outline=c, width=w)
        elif kind == 4:
            r = rng.uniform(10, 150) * SS
            a0 = rng.uniform(0, 360)
            d.arc([p[0] - r, p[1] - r, p[0] + r, p[1] + r], a0, a0 + rng.uniform(30, 300),
                  fill=c, width=w)
        else:  # a cubic Bézier curve through four random points
            q = rng.uniform(0, 1, (4, 2)) * s
            t = np.linspace(0, 1, 200)[:, None]
            curve = ((1 - t) ** 3 * q[0] + 3 * (1 - t) ** 2 * t * q[1]
                     + 3 * (1 - t) * t ** 2 * q[2] + t ** 3 * q[3])
            d.line([tuple(pt) for pt in curve], fill=c, width=w, joint="curve")
    if rng.random() < 0.4:  # hatching in a box
        c = ink[0]
        x0, y0 = rng.uniform(0, 0.6, 2) * s
        gap = rng.uniform(3, 12) * SS
        k = 0.0
        while k < s * 0.4:
            d.line([x0 + k, y0, x0, y0 + k], fill=c, width=max(1, SS // 2))
            k += gap
    return camera(img, rng)


def draw_screen(rng, side, fonts):
    """Screen content at 1x, pixel-aligned: windows, title bars, buttons, lists, code, tables."""
    desk = colour(rng)
    img = Image.new("RGB", (side, side), desk)
    d = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 6)):
        x0, y0 = (int(v) for v in rng.integers(-side // 4, side * 3 // 4, 2))
        w, h = (int(v) for v in rng.integers(side // 3, side, 2))
        face = colour(rng, 210, 255) if rng.random() < 0.7 else colour(rng, 20, 60)
        text_c = contrasting(rng, face)
        d.rectangle([x0, y0, x0 + w, y0 + h], fill=face, outline=colour(rng, 60, 160))
        bar = int(rng.integers(16, 30))
        d.rectangle([x0 + 1, y0 + 1, x0 + w - 1, y0 + bar], fill=colour(rng, 40, 200))
        font = load_font(fonts[rng.integers(len(fonts))], int(rng.integers(10, 17)))
        d.text((x0 + 8, y0 + 3), words(rng, 4), font=font, fill=(255, 255, 255))
        y = y0 + bar + 6
        layout = rng.integers(3)
        row = int(font.size * 1.5)
        while y < y0 + h - row:
            if layout == 0:  # a list with alternate row shading and icons
                if (y // row) % 2:
                    d.rectangle([x0 + 1, y, x0 + w - 1, y + row - 1],
                                fill=tuple(max(0, c - 12) for c in face))
                d.rectangle([x0 + 6, y + 3, x0 + 6 + row - 6, y + row - 3], fill=colour(rng))
                d.text((x0 + row + 6, y + 2), words(rng, 5), font=font, fill=text_c)
            elif layout == 1:  # code: coloured tokens in a monospace-like run
                x = x0 + 8 + int(rng.integers(0, 4)) * 16
                for token in words(rng, int(rng.integers(2, 7))).split():
                    d.text((x, y), token, font=font, fill=contrasting(rng, face))
                    x += int(d.textlength(token + " ", font=font))
            else:  # a table: cells with 1-pixel rules
                cols = int(rng.integers(2, 6))
                for k in range(cols + 1):
                    xx = x0 + k * w // cols
                    d.line([xx, y, xx, y + row], fill=colour(rng, 100, 180))
                    if k < cols:
                        d.text((xx + 4, y + 2), words(rng, 1), font=font, fill=text_c)
                d.line([x0, y + row, x0 + w, y + row], fill=colour(rng, 100, 180))
            y += row
        for k in range(int(rng.integers(0, 4))):  # buttons
            bx, by = x0 + w - (k + 1) * 80, y0 + h - 30
            d.rounded_rectangle([bx, by, bx + 70, by + 22], radius=4, fill=colour(rng, 150, 240),
                                outline=colour(rng, 40, 120))
            d.text((bx + 8, by + 4), words(rng, 1), font=font, fill=(20, 20, 20))
        # a scroll bar
        d.rectangle([x0 + w - 10, y0 + bar, x0 + w - 1, y0 + h - 1], fill=colour(rng, 200, 240))
        sy = y0 + bar + int(rng.integers(0, max(1, h - bar - 40)))
        d.rectangle([x0 + w - 9, sy, x0 + w - 2, sy + 30], fill=colour(rng, 100, 170))
    return img


DRAW = {"facade": draw_facade, "grid": draw_grid, "stripes": draw_stripes, "text": draw_text,
        "drawing": draw_drawing, "screen": draw_screen}


def tile(split, kind, index, side, fonts):
    """The tile (split, kind, index): the first of its attempts that `tile_ok` keeps."""
    usable = font_files(fonts, split)
    for attempt in range(20):
        img = DRAW[kind](tile_rng(split, kind, index, attempt), side, usable)
        if prepare_data.tile_ok(prepare_data.luma(np.asarray(img))):
            return img
    raise RuntimeError(f"{split}/{kind}/{index}: no attempt passed the detail filter")


def tile_name(kind, index):
    return f"{PREFIX}{kind}--{index:04d}.png"


def train_count(photo_tiles, share):
    """Procedural training tiles that make `share` of all training tiles."""
    if not 0 <= share < 1:
        raise ValueError(f"share {share} must be in [0, 1)")
    return round(photo_tiles * share / (1 - share))


def plan(train_n, val_per_kind):
    """{(split, folder name, kind, index)} of every tile: training's kinds in turn."""
    tiles = [("train", "train", KINDS[i % len(KINDS)], i // len(KINDS)) for i in range(train_n)]
    tiles += [("val", "val-structured", k, i) for k in KINDS for i in range(val_per_kind)]
    return tiles


def find_fonts(extract):
    """The .ttf files of the extracted font packages, sorted (a stable order for the PRNG)."""
    out = []
    for pkg in FONT_PACKAGES:
        out += sorted((extract / pkg).rglob("*.ttf")) if extract else []
    return out


def write(out, tiles, side, fonts):
    """Writes the missing tiles, removes stale `proc-` ones; returns (written, removed)."""
    wanted = {out / folder / tile_name(kind, i): (split, kind, i)
              for split, folder, kind, i in tiles}
    written = removed = 0
    for folder in ("train", "val-structured"):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for p in (out / folder).iterdir():
            if p.name.startswith("proc-") and p not in wanted:
                p.unlink()
                removed += 1
    for dest, (split, kind, i) in sorted(wanted.items()):
        if dest.exists():
            continue
        tmp = dest.with_suffix(".tmp")
        tile(split, kind, i, side, fonts).save(tmp, format="PNG", compress_level=3)
        os.replace(tmp, dest)
        written += 1
    return written, removed


def font_licences(extract):
    out = {}
    for pkg in FONT_PACKAGES:
        path = extract / pkg / "usr/share/doc" / pkg / "copyright"
        if path.exists():
            stanzas = prepare_data.copyright_licences(path)
            out[pkg] = sorted({lic for _, lic in stanzas if lic} - {""})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--fonts", type=Path, help="the folder the font packages are extracted in")
    ap.add_argument("--versions", default="", help="comma-separated package=version pairs")
    ap.add_argument("--tile", type=int, default=480)
    ap.add_argument("--share", type=float, default=1 / 3,
                    help="the procedural tiles' share of all training tiles (0: none)")
    ap.add_argument("--val-per-kind", type=int, default=10)
    args = ap.parse_args(argv)

    photos = sum(1 for p in (args.out / "train").glob("*.png") if not p.name.startswith("proc-")) \
        if (args.out / "train").is_dir() else 0
    n_train = train_count(photos, args.share)
    val_per_kind = args.val_per_kind if args.share > 0 else 0
    tiles = plan(n_train, val_per_kind)
    fonts = find_fonts(args.fonts)
    written, removed = write(args.out, tiles, args.tile, fonts)

    versions = dict(kv.split("=", 1) for kv in args.versions.split(",") if "=" in kv)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    per_kind = {k: {"train": sum(1 for t in tiles if t[0] == "train" and t[2] == k),
                    "val": sum(1 for t in tiles if t[0] == "val" and t[2] == k)} for k in KINDS}
    manifest["structured"] = {
        "version": VERSION,
        "share": args.share,
        "photo_train_tiles": photos,
        "train_tiles": n_train,
        "val_tiles": len(tiles) - n_train,
        "val_folder": "val-structured",
        "kinds": per_kind,
        "supersampling": SS,
        "fonts": {p: versions.get(p, "") for p in FONT_PACKAGES},
        "font_files": [str(f.relative_to(args.fonts)) for f in fonts] if args.fonts else [],
        "font_licences": font_licences(args.fonts) if args.fonts else {},
        "validation_fonts": VAL_FONT_PACKAGE,
        "licence": "made by this project's code (scripts/structured_data.py)",
    }
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, manifest_path)
    total = photos + n_train
    print(f"procedural tiles: {n_train} train ({n_train / max(total, 1):.1%} of {total} training "
          f"tiles, beside {photos} photograph tiles), {len(tiles) - n_train} val in "
          f"{args.out / 'val-structured'}; {written} drawn, {removed} stale removed; "
          f"{len(fonts)} font files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
