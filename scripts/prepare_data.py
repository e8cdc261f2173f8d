#!/usr/bin/env python3
"""Cuts the photographs of extracted Debian wallpaper packages into PNG tiles for training.

Called by scripts/prepare-data.sh, which downloads and extracts the packages. Steps:

1. Candidates: every .jpg/.jpeg/.png/.webp under each package's usr/share, without theme
   previews and KDE `screenshot.*` thumbnails; one file per wallpaper (KDE ships a wallpaper
   at several sizes, MATE some at several sizes: the largest is kept); byte-identical files once.
   For the MORE packages (GCompris, KPhotoAlbum, Tux Paint: `--more` of prepare-data.sh; Budgie's
   backgrounds: `--trixie`) only their selected files, some read out of Qt resource files.
2. Photographs only. Each candidate is classified by a simple heuristic (see `looks_like_photo`:
   large flat areas, few distinct colours, little fine texture -> not a photo). For the package
   versions of Debian 12 every file was also reviewed by eye, and that verdict (REVIEWED) wins;
   the heuristic alone decides files the review has not seen (other package versions).
3. A fixed set of whole photographs is held out for validation (never tiled into training).
4. Optionally (--max-side) photographs larger than that are downscaled with Lanczos first;
   optionally (--extra-side) every photograph is tiled once more at that smaller longer side
   (sharper per pixel: more of the crisp edges the usual SR test sets are made of).
5. Tiles: non-overlapping `tile`x`tile` squares on a grid centred on the image; a tile that is
   mostly flat or has almost no detail is dropped (see `tile_ok`).
   Validation keeps the VAL_TILES_PER_IMAGE most detailed tiles of each of its photographs
   (at each size).

Idempotent: tiles already present are not rewritten, stale ones are removed (not the
procedural `proc-` tiles of scripts/structured_data.py, which keeps its own), and
`manifest.json` in the output folder records the sources, verdicts, licences and counts.
"""

import argparse
import fnmatch
import hashlib
import json
import os
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None

FORMAT = 1
VAL_TILES_PER_IMAGE = 3
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}

# Verdicts by eye for Debian 12 (bookworm) package versions, keyed "package/name" (name: the
# file name, or the wallpaper folder for KDE). True: a photograph.
REVIEWED = {
    **{f"lomiri-wallpapers-16.04/{n}": True for n in [
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg",
        "aitzgorri_by_Aitzol_Berasategi.jpg", "analogpattern_by_Peter_Nerlich.jpg",
        "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg"]},
    "lomiri-wallpapers-16.04/umang_by_Abhishek_Mudgal.jpg": False,
    "lomiri-wallpapers-20.04/Kleiber_by_Lukas_Baubkus.jpg": True,
    "lomiri-wallpapers-20.04/Fossa_by_Jasper_Roks.jpg": False,
    "lomiri-wallpapers-20.04/Infinite-Sea_by_Aury88.jpg": False,
    "lomiri-wallpapers-20.04/Painting-Colors_by__herobrine7gamer.jpg": False,
    **{f"lxqt-themes/{n}": True for n in [
        "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png",
        "beam.png", "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg",
        "this-is-not-windows.jpg"]},
    **{f"lxqt-themes/{n}": False for n in [
        "kde-plasma.png", "lxqt-origami-green.png", "origami-bright-logo.png", "origami-dark.png",
        "origami-light.png", "plasma-logo-bright.png", "plasma-logo-dark.png", "plasma_arch.png",
        "simple_blue_widescreen.png", "triangles-logo.png", "triangles.png", "waves-logo.png",
        "waves-purple-logo.jpg"]},
    **{f"mate-backgrounds/{n}": True for n in [
        "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
        "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg",
        "YellowFlower.jpg"]},
    **{f"mate-backgrounds/{n}": False for n in [
        "Arc-Colors-Transparent-Wallpaper.png", "Elephants_5640x3172.jpg", "Flow.png", "Gulp.png",
        "Silk.png", "Spring.png", "Waves.png", "Float-into-MATE.png", "GreenTraditional.jpg",
        "MATE-Stripes-Dark.png", "MATE-Stripes-Light.png", "Stripes.png",
        "Ubuntu-Mate-Cold-no-logo.png", "Ubuntu-Mate-Dark-no-logo.png",
        "Ubuntu-Mate-Radioactive-no-logo.png", "Ubuntu-Mate-Warm-no-logo.png"]},
    **{f"plasma-workspace-wallpapers/{n}": True for n in [
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
        "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]},
    **{f"plasma-workspace-wallpapers/{n}": False for n in [
        "Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui",
        "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills", "Patak",
        "SafeLanding", "Shell", "Volna"]},
}

# Photographs inside other Debian packages, added by `prepare-data.sh --more` (Debian 12) and
# `--trixie` (Debian 13). Only the files matched here are read (globs under usr/share;
# "FILE.rcc:GLOB" matches the members of a Qt resource file), each of them reviewed by eye as a
# photograph, and they only go to training: validation stays the same tiles. (GCompris's
# `details` pictures are left out: paintings, or under 480 px.)
# `side`: the longest side they are tiled at (0: the usual sides). GCompris keeps its photos as
# lossy WebP at 0.4-1 bit per pixel; at about half size the compression no longer shows.
# `licence`: for a copyright file that is not machine-readable (DEP-5).
MORE = {
    "gcompris-qt-data": {"side": 1020, "files": [
        f"gcompris-qt/rcc/{activity}.rcc:*.webp" for activity in [
            "erase", "explore_farm_animals", "explore_monuments",
            "explore_world_animals", "explore_world_music"]]
        + ["gcompris-qt/rcc/clickgame.rcc:sea*.webp"]},
    "kphotoalbum": {"files": ["kphotoalbum/demo/*.jpg"],
                    "licence": "GPL-2+ (the package's copyright file)"},
    "tuxpaint-data": {"files": ["tuxpaint/templates/*.jpg"]},
    # Debian 13's Budgie backgrounds (`--trixie`): 3840-px photographs, CC0. Left out:
    # ocean-waves (a painting), saturnian-profile (Saturn on black), valley-midnight and
    # waves-midnight (vector art).
    "budgie-backgrounds": {"files": [f"backgrounds/budgie/{n}.jpg" for n in [
        "abstract-spiral", "beacon-street-sunset", "blue-periwinkle", "canyon-wren", "casa-mila",
        "extreme-desert-hike", "high-trestle-trail", "lake-sherburne", "oakland-zoo-otters",
        "perched-osprey", "piazza-gae-aulenti", "roman-colosseum", "singaporean-cityscape",
        "tea-gardens"]]},
}

# Photographs of buildings and structures, held out as the man-made validation set (issue 45:
# DIR/val-manmade, `--manmade-val`): never trained on, even with `--trixie`.
MANMADE_VAL = {
    "budgie-backgrounds": ["beacon-street-sunset.jpg", "casa-mila.jpg", "high-trestle-trail.jpg",
                           "piazza-gae-aulenti.jpg", "roman-colosseum.jpg",
                           "singaporean-cityscape.jpg"],
}


def luma(a):
    a = a.astype(np.float32)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def flat_fraction(y, block=16, threshold=1.0):
    """Fraction of block x block squares whose luma standard deviation is below threshold."""
    h, w = (y.shape[0] // block) * block, (y.shape[1] // block) * block
    if h == 0 or w == 0:
        return 1.0
    b = y[:h, :w].reshape(h // block, block, w // block, block)
    return float((b.std(axis=(1, 3)) < threshold).mean())


def image_features(img):
    """Flat area, smooth-pixel fraction and distinct colours of an RGB PIL image."""
    work = img.copy()
    work.thumbnail((2048, 2048), Image.BILINEAR)
    a = np.asarray(work)
    y = luma(a)
    lap = np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    small = img.copy()
    small.thumbnail((512, 512), Image.BILINEAR)
    s = np.asarray(small).reshape(-1, 3).astype(np.uint32)
    colours = len(np.unique(s[:, 0] << 16 | s[:, 1] << 8 | s[:, 2])) / len(s)
    chroma = float(np.abs(a.astype(np.int16) - a[..., 1:2]).mean())
    return {
        "flat": round(flat_fraction(y), 4),
        "smooth": round(float((lap < 1.0).mean()), 4),
        "colours": round(colours, 4),
        "chroma": round(chroma, 2),
    }


def looks_like_photo(f):
    """The heuristic: photographs have texture nearly everywhere and many distinct colours
    (or are grey-scale); vector art and renders have large flat areas, smooth gradients and
    few colours. Thresholds fitted to the reviewed images (it agrees with 81 of 101: it is a
    coarse filter for files nobody has looked at, not a classifier)."""
    if f["flat"] > 0.6 or f["smooth"] > 0.45:
        return False
    greyish = f["chroma"] < 4.0
    return greyish or f["colours"] >= 0.1


def copyright_licences(path):
    """(file pattern, licence) pairs of a DEP-5 copyright file, in order."""
    stanzas = []
    patterns, licence = None, None
    for line in Path(path).read_text(errors="replace").splitlines() + [""]:
        if not line.strip():
            if patterns and licence:
                stanzas.append((patterns, licence))
            patterns, licence = None, None
            continue
        if line.startswith("Files:"):
            patterns = line[6:].split()
        elif patterns is not None and line.startswith((" ", "\t")) and licence is None:
            patterns += line.split()
        elif line.startswith("License:") and patterns is not None:
            licence = line[8:].strip()
    return stanzas


def licence_for(stanzas, name, package_licence):
    # the last matching stanza wins (DEP-5); patterns are upstream paths: match the basename
    found = None
    for patterns, licence in stanzas:
        for p in patterns:
            base = os.path.basename(p)
            if base.strip("*") and fnmatch.fnmatch(name, base):
                found = licence
    if found is None:
        for patterns, licence in stanzas:
            if "*" in patterns:
                found = licence
    return found or package_licence


def pixels(path):
    with Image.open(path) as im:
        return im.size[0] * im.size[1]


def rcc_members(blob):
    """(path, bytes) of every file in a Qt resource (.rcc) file, format versions 1-3: a header,
    a tree of fixed-size nodes, UTF-16 names and length-prefixed data (zlib when flagged)."""
    if len(blob) < 20 or blob[:4] != b"qres":
        raise ValueError("not a Qt resource file (no qres header)")
    magic, version, tree, data, names = struct.unpack(">4sIIII", blob[:20])
    if not 1 <= version <= 3:
        raise ValueError(f"not a Qt resource file (magic {magic!r}, version {version})")
    node_size = 14 if version == 1 else 22

    def name(offset):
        (length,) = struct.unpack(">H", blob[names + offset:names + offset + 2])
        start = names + offset + 6  # after the length and the name's hash
        return blob[start:start + 2 * length].decode("utf-16-be")

    def walk(index, prefix):
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[at:at + 6])
        path = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # a directory: its children are consecutive nodes
            count, first = struct.unpack(">II", blob[at + 6:at + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack(">I", blob[at + 10:at + 14])
        (size,) = struct.unpack(">I", blob[data + offset:data + offset + 4])
        payload = blob[data + offset + 4:data + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"{path}: zstd-compressed resources are not supported")
        if flags & 1:  # qCompress: the uncompressed length, then a zlib stream
            payload = zlib.decompress(payload[4:])
        yield path, payload

    try:
        yield from walk(0, "")
    except (struct.error, UnicodeDecodeError, zlib.error) as e:
        raise ValueError(f"truncated or corrupt Qt resource file ({e})") from e


def readme_licences(text):
    """{file name: licence} from a resource README of stanzas of "Copyright:", "License:",
    "Source:" and "Files:" (names on that line or the lines after it), as GCompris keeps them
    beside its pictures."""
    out = {}
    for stanza in re.split(r"\n\s*\n", text):
        licence, files, in_files = None, [], False
        for line in stanza.splitlines():
            key, colon, value = line.partition(":")
            if colon and key in ("Copyright", "License", "Source", "Comments", "Files"):
                in_files = key == "Files"
                if key == "License":
                    licence = value.strip()
                if in_files:
                    files += value.split()
            elif in_files:
                files += line.split()
        for name in files:
            out[os.path.basename(name)] = licence
    return out


def selected_files(root, patterns):
    """(path, licence or None) of the files under `root` that `patterns` (MORE's "files")
    select. Members of .rcc files are written once next to them, into FILE.rcc.members/; their
    licence comes from a README in their folder (or one above) in the resource file."""
    out = []
    for pattern in patterns:
        if ":" not in pattern:
            out += [(p, None) for p in sorted(root.glob(pattern)) if p.is_file()]
            continue
        rcc, member_glob = pattern.split(":", 1)
        rcc = root / rcc
        members = dict(rcc_members(rcc.read_bytes()))
        readmes = {os.path.dirname(path): readme_licences(payload.decode("utf-8", "replace"))
                   for path, payload in members.items() if os.path.basename(path) == "README"}
        found = []
        for path, payload in members.items():
            if not fnmatch.fnmatch(os.path.basename(path), member_glob):
                continue
            # the nearest README, in the file's folder or one above, that names it
            folders = Path(path).parents
            licence = next((readmes[str(f)][Path(path).name] for f in folders
                            if Path(path).name in readmes.get(str(f), {})), None)
            # named after the resource file: activities reuse names (giraffe, horse)
            dest = rcc.with_name(rcc.name + ".members") / f"{rcc.stem}_{os.path.basename(path)}"
            if not dest.exists():
                dest.parent.mkdir(exist_ok=True)
                tmp = dest.with_suffix(".tmp")
                tmp.write_bytes(payload)
                os.replace(tmp, dest)
            found.append((dest, licence))
        out += sorted(found)
    return out


def candidates(extract, package):
    """(key name, path, digest, licence or None) of one image per wallpaper in an extracted
    package (for a MORE package: its selected files)."""
    root = extract / package / "usr" / "share"
    if package in MORE:
        return [(p.name, p, hashlib.sha256(p.read_bytes()).hexdigest(), licence)
                for p, licence in selected_files(root, MORE[package]["files"])]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    groups = {}
    for p in files:
        rel = str(p.relative_to(root))
        if "/themes/" in f"/{rel}" or p.stem == "screenshot" or "/images_dark/" in rel:
            continue
        m = re.search(r"wallpapers/([^/]+)/contents/images/", rel)
        if m:
            key = m.group(1)
        else:
            key = re.sub(r"_\d+x\d+$", "", p.stem)
        groups.setdefault(key, []).append(p)
    seen = set()
    out = []
    for key, paths in sorted(groups.items()):
        best = max(paths, key=lambda p: (pixels(p), str(p)))
        digest = hashlib.sha256(best.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        name = key if re.search(r"wallpapers/[^/]+/contents/", str(best)) else best.name
        out.append((name, best, digest, None))
    return out


def tile_ok(y):
    """A tile is kept unless it is mostly flat (over half of its 16x16 blocks with a luma
    standard deviation below 1) or has almost no detail (under 5% of its blocks with a standard
    deviation of 4 or more: clear sky, out-of-focus background)."""
    if flat_fraction(y) > 0.5:
        return False
    return 1.0 - flat_fraction(y, threshold=4.0) >= 0.05


def tile_grid(w, h, tile):
    nx, ny = w // tile, h // tile
    x0, y0 = (w - nx * tile) // 2, (h - ny * tile) // 2
    return [(r, c, x0 + c * tile, y0 + r * tile) for r in range(ny) for c in range(nx)]


def stale_tiles(dirs, plan):
    """Files in `dirs` that `plan` does not hold, but for the procedural tiles (`proc-` names:
    scripts/structured_data.py keeps those)."""
    return sorted(p for d in dirs for p in d.iterdir()
                  if p not in plan and not p.name.startswith("proc-"))


def is_val(package, name, digest):
    # about one photograph in eight, fixed by content; MORE's only train
    return package not in MORE and int(digest[:8], 16) % 8 == 0


def split_of(package, name, digest, val_only=()):
    """Where a photograph's tiles go: "val-manmade" (MANMADE_VAL), "val" or "train"; None for
    the other photographs of a package taken only for the man-made set (`val_only`)."""
    if name in MANMADE_VAL.get(package, ()):
        return "val-manmade"
    if package in val_only:
        return None
    return "val" if is_val(package, name, digest) else "train"


def tiling_sides(args, cap):
    """The longer sides a photograph is tiled at, first the main one (0: as it is): --max-side
    and --extra-side, each at most `cap` when that is set, without repeats."""
    sides = []
    for side in [args.max_side] + ([args.extra_side] if args.extra_side else []):
        if cap and (not side or side > cap):
            side = cap
        if side not in sides:
            sides.append(side)
    return sides


def downscaled(img, side):
    """`img` with its longer side reduced to `side` (Lanczos); `img` itself when it is not
    larger or `side` is 0."""
    if not side or max(img.size) <= side:
        return img
    # wallpapers are soft at full size (4-5K); at about 2K they carry the per-pixel detail of
    # the usual SR training sets, at 1K sharper still
    f = side / max(img.size)
    return img.resize((round(img.size[0] * f), round(img.size[1] * f)), Image.LANCZOS)


def cut_tiles(img, side, split, package, name, source, args, plan):
    """Writes the kept tiles of `img` (missing ones only) into the folder `split`, records them
    in `plan` and returns how many there are."""
    val = split != "train"
    y = luma(np.asarray(img))
    grid = tile_grid(img.size[0], img.size[1], args.tile)
    kept = [g for g in grid if tile_ok(y[g[3]:g[3] + args.tile, g[2]:g[2] + args.tile])]
    if val and len(kept) > VAL_TILES_PER_IMAGE:
        # the most detailed tiles: a validation PSNR that moves
        def detail(g):
            t = y[g[3]:g[3] + args.tile, g[2]:g[2] + args.tile]
            return 1.0 - flat_fraction(t, threshold=4.0)
        kept = sorted(sorted(kept, key=detail, reverse=True)[:VAL_TILES_PER_IMAGE])
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).stem)
    out_dir = args.out / split
    prefix = f"m{side}--" if side else ""
    for r, c, x, y0 in kept:
        dest = out_dir / f"{package}--{stem}--{prefix}r{r:02d}c{c:02d}.png"
        plan[dest] = source
        if not dest.exists():
            tmp = dest.with_suffix(".tmp")
            img.crop((x, y0, x + args.tile, y0 + args.tile)).save(
                tmp, format="PNG", compress_level=3)
            os.replace(tmp, dest)
    return len(kept)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extract", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--packages", required=True, help="comma-separated package names")
    ap.add_argument("--versions", default="", help="comma-separated package=version pairs")
    ap.add_argument("--tile", type=int, default=480)
    ap.add_argument("--max-side", type=int, default=0,
                    help="downscale photographs whose longer side exceeds this (Lanczos) before "
                         "tiling; 0 keeps full resolution")
    ap.add_argument("--extra-side", type=int, default=0,
                    help="also tile each photograph downscaled to this longer side "
                         "(Lanczos, from the original); 0: no second size")
    ap.add_argument("--val-only", default="",
                    help="comma-separated packages taken only for the man-made validation set "
                         "(MANMADE_VAL): their other photographs are left out")
    args = ap.parse_args()
    val_only = set(filter(None, args.val_only.split(",")))
    if args.extra_side < 0 or (args.extra_side and args.max_side
                               and args.extra_side >= args.max_side):
        ap.error("--extra-side must be 0 (none) or a side smaller than --max-side")

    versions = dict(kv.split("=", 1) for kv in args.versions.split(",") if "=" in kv)
    train_dir, val_dir = args.out / "train", args.out / "val"
    manmade_dir = args.out / "val-manmade"
    for d in (train_dir, val_dir, manmade_dir):
        d.mkdir(parents=True, exist_ok=True)
    plan = {}  # tile path -> source path
    sources = []
    for package in args.packages.split(","):
        copyright_file = args.extract / package / "usr/share/doc" / package / "copyright"
        stanzas = copyright_licences(copyright_file) if copyright_file.exists() else []
        more = MORE.get(package, {})
        for name, path, digest, own_licence in candidates(args.extract, package):
            with Image.open(path) as im:
                img = im.convert("RGB")
            feats = image_features(img)
            guess = looks_like_photo(feats)
            # a MORE package's selection is its review
            reviewed = True if more else REVIEWED.get(f"{package}/{name}")
            photo = guess if reviewed is None else reviewed
            entry = {
                "package": package,
                "version": versions.get(package, ""),
                "name": name,
                "file": str(path.relative_to(args.extract / package)),
                "size": list(img.size),
                "features": feats,
                "heuristic_photo": guess,
                "reviewed_photo": reviewed,
                "photo": photo,
                "licence": own_licence or more.get("licence")
                or licence_for(stanzas, path.name, "see copyright"),
                "split": None,
                "tiles": 0,
            }
            sources.append(entry)
            split = split_of(package, name, digest, val_only)
            if not photo or split is None:
                continue
            entry["split"] = split
            tiles = 0
            for i, side in enumerate(tiling_sides(args, more.get("side", 0))):
                scaled = downscaled(img, side)
                if i == 0 and scaled is not img:
                    entry["tiled_size"] = list(scaled.size)
                if i > 0 and scaled is img:
                    continue  # not larger than the second side: its tiles would repeat
                tiles += cut_tiles(scaled, side, split, package, name, path, args, plan)
            entry["tiles"] = tiles

    stale = stale_tiles((train_dir, val_dir, manmade_dir), plan)
    for p in stale:
        p.unlink()
    stale = len(stale)
    n_train = sum(1 for p in plan if p.parent == train_dir)
    n_manmade = sum(1 for p in plan if p.parent == manmade_dir)
    n_val = len(plan) - n_train - n_manmade
    manifest = {
        "format": FORMAT,
        "tile": args.tile,
        "max_side": args.max_side,
        "extra_side": args.extra_side,
        "packages": {p: versions.get(p, "") for p in args.packages.split(",")},
        "train_tiles": n_train,
        "val_tiles": n_val,
        "manmade_val_tiles": n_manmade,
        "sources": sources,
    }
    tmp = args.out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, args.out / "manifest.json")

    print(f"{'package':32} {'images':>6} {'photos':>6} {'train':>6} {'val':>4}  licence(s) of the photos")
    for package in args.packages.split(","):
        rows = [s for s in sources if s["package"] == package]
        photos = [s for s in rows if s["photo"]]
        tr = sum(s["tiles"] for s in photos if s["split"] == "train")
        va = sum(s["tiles"] for s in photos if s["split"] in ("val", "val-manmade"))
        lic = ", ".join(sorted({s["licence"] for s in photos}))
        print(f"{package:32} {len(rows):6} {len(photos):6} {tr:6} {va:4}  {lic}")
    reviewed = [s for s in sources if s["reviewed_photo"] is not None]
    agree = sum(1 for s in reviewed if s["heuristic_photo"] == s["reviewed_photo"])
    print(f"heuristic agrees with the review on {agree} of {len(reviewed)} reviewed images; "
          f"{len(sources) - len(reviewed)} images judged by the heuristic alone")
    print(f"tiles: {n_train} train in {train_dir}, {n_val} val in {val_dir}"
          + (f", {n_manmade} man-made val in {manmade_dir}" if n_manmade else "")
          + (f" ({stale} stale removed)" if stale else ""))
    val_names = sorted(s["name"] for s in sources if s["split"] == "val")
    print(f"validation photographs ({len(val_names)}): {', '.join(val_names)}")


if __name__ == "__main__":
    sys.exit(main())
