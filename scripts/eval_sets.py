#!/usr/bin/env python3
"""Scores weights on the natural and the structured validation sets of scripts/prepare-data.sh
(DATA/val, DATA/val-structured) with `imdn eval --downscale` (whole frames, Y PSNR, the
authors' protocol, as `imdn train` validates), the structured set per kind, and the man-made
photographs (DATA/val-manmade, `prepare-data.sh --manmade-val`) where the set has them.

    target/python-venv/bin/python scripts/eval_sets.py --weights imdn_rtc_x2 --scale 2 \\
        [--data ~/.cache/imdn/data2k1k] [--imdn target/release/imdn] [--threads 2] [--limit N]

--limit N scores the first N tiles of each set in name order (the structured set: the first
N // 6 of each kind), for the slow 64-channel models on a CPU. Prints one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path


def kind_of(name):
    """The kind of a procedural tile from its name (proc-vN--KIND--INDEX.png), else None."""
    parts = name.split("--")
    return parts[1] if len(parts) == 3 and parts[0].startswith("proc-") else None


def per_kind(images):
    """{kind: (mean network PSNR, mean bicubic PSNR, count)} of `imdn eval --json` images."""
    groups = defaultdict(list)
    for im in images:
        groups[kind_of(im["name"])].append((im["psnr_y"], im["bicubic"]["psnr_y"]))
    return {k: (sum(p for p, _ in v) / len(v), sum(b for _, b in v) / len(v), len(v))
            for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def subset(folder, limit, tmp):
    """`folder` itself, or a folder of links to its first `limit` images (per kind for the
    procedural ones)."""
    if not limit:
        return folder
    names = sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    kinds = {kind_of(n) for n in names}
    if kinds != {None}:
        per = max(1, limit // len(kinds))
        names = [n for k in sorted(kinds, key=str)
                 for n in [m for m in names if kind_of(m) == k][:per]]
    else:
        names = names[:limit]
    out = Path(tmp) / folder.name
    out.mkdir()
    for n in names:
        os.symlink(folder / n, out / n)
    return out


def evaluate(imdn, threads, weights, scale, folder):
    cmd = [imdn, "--threads", str(threads), "eval", "--weights", weights, "--hr", str(folder),
           "--downscale", "--scale", str(scale), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--data", type=Path, default=Path.home() / ".cache/imdn/data2k1k")
    ap.add_argument("--imdn", default="target/release/imdn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    result = {"weights": args.weights, "scale": args.scale, "data": str(args.data),
              "limit": args.limit}
    with tempfile.TemporaryDirectory() as tmp:
        sets = [("natural", "val"), ("structured", "val-structured"), ("manmade", "val-manmade")]
        for key, name in sets:
            if key == "manmade" and not (args.data / name).is_dir():
                result[key] = None
                continue
            folder = subset(args.data / name, args.limit, tmp)
            r = evaluate(args.imdn, args.threads, args.weights, args.scale, folder)
            result[key] = {"psnr_y": r["mean"]["psnr_y"], "bicubic_psnr_y": r["bicubic"]["psnr_y"],
                           "tiles": len(r["images"])}
            if key == "structured":
                result["structured_kinds"] = {
                    k: {"psnr_y": p, "bicubic_psnr_y": b, "tiles": n}
                    for k, (p, b, n) in per_kind(r["images"]).items()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
