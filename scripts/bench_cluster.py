"""Throughput of the cluster job on this machine: one Ray node against two (local, loopback), and
a single-machine `transcode` on the same cores, in one run, alternated. Prints each run and the
ratios as JSON lines.

    target/python-venv/bin/python scripts/bench_cluster.py [--seconds 40] [--size 320x180] [--rounds 2]

The two nodes share this machine's cores, one CPU each: 2 nodes / 1 node is how far the job
scales when the second node adds a core, and half of it the per-core efficiency. The driver's
own planning and joining (its JSON summary) are the overhead of splitting and joining.
Needs the release binaries: cargo build --release -p gst-plugin-imdn --example transcode --example sample-video
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback, see cluster_test.py
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release" / "examples"


def timed(cmd):
    t = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{done.stderr[-2000:]}")
    return time.time() - t, done.stderr


def cluster_run(nodes, clip, out, seconds):
    from ray.cluster_utils import Cluster
    import ray

    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 << 20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.shutdown()
    try:
        wall, err = timed([sys.executable, ROOT / "scripts" / "cluster-upscale.py", clip, "--out", out,
                           "--segment-seconds", str(seconds), "--address", cluster.address,
                           "--transcode", RELEASE / "transcode"])
    finally:
        cluster.shutdown()
    summary = json.loads(err.strip().splitlines()[-1])
    return wall, summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=40, help="clip length (25 fps, a keyframe every 2 s)")
    p.add_argument("--size", default="320x180")
    p.add_argument("--segment-seconds", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp = Path(tmp)
        os.environ["RAY_TMPDIR"] = str(tmp)
        clip = tmp / "clip.mp4"
        timed([RELEASE / "sample-video", ROOT / "data/samples/coffee.png", clip, "--size", a.size,
               "--seconds", str(a.seconds), "--fps", "25"])
        frames = a.seconds * 25
        print(json.dumps({"command": " ".join(sys.argv), "frames": frames, "size": a.size,
                          "cores": os.cpu_count()}))
        runs = {"single_2_threads": [], "cluster_1_node": [], "cluster_2_nodes": []}
        overhead = []
        for r in range(a.rounds):
            wall, _ = timed([RELEASE / "transcode", clip, tmp / "single.mp4", "--n-threads", "2"])
            runs["single_2_threads"].append(wall)
            for nodes in (1, 2):
                wall, summary = cluster_run(nodes, clip, tmp / f"out-{r}-{nodes}", a.segment_seconds)
                runs[f"cluster_{nodes}_node{'s' if nodes > 1 else ''}"].append(wall)
                overhead.append((summary["plan_s"] + summary["join_s"]) / wall)
                print(json.dumps({"round": r, "nodes": nodes, "wall_s": round(wall, 2),
                                  "frames_per_s": round(frames / wall, 1), **summary}))
        best = {k: min(v) for k, v in runs.items()}
        scale = best["cluster_1_node"] / best["cluster_2_nodes"]
        print(json.dumps({
            "fps": {k: round(frames / v, 1) for k, v in best.items()},
            "2_nodes_over_1_node": round(scale, 2),
            "per_core_efficiency": round(scale / 2, 2),
            "2_nodes_over_single_machine_2_threads": round(best["single_2_threads"] / best["cluster_2_nodes"], 2),
            "plan_and_join_share_of_wall_time": round(max(overhead), 3),
        }))


if __name__ == "__main__":
    main()
