#!/usr/bin/env python3
"""Upscales videos across a Ray cluster: each input is cut into segments at its keyframes
(`transcode plan`), each segment is a Ray task that runs `transcode --segment` on whichever node
picks it up, and the segments are joined into one MP4 with the input's audio copied as it is
(`transcode join`).

    cluster-upscale.py IN... --out DIR [--scale 2] [--segment-seconds 10] [--address auto|HOST:PORT]

- The inputs and the transcode binary must be at the same path on every node (a shared folder).
  DIR receives DIR/<name>_x<scale>.mp4 per input and the segments under DIR/segments/; it is a
  shared folder too, or object storage: a URL such as s3://bucket/prefix, through fsspec (with
  that protocol's package installed, e.g. s3fs; the tests use fsspec's own file://). One job at
  a time works in a DIR.
- A segment's file is named by a hash of the input's content, its time range and the settings,
  and written under a temporary name first: a rerun skips what is done, a killed task leaves
  nothing half-written behind, and a changed setting makes new segments.
- A task whose worker or node dies is retried by Ray (--retries); a segment whose frame count
  differs from the plan's fails the task.
- Each task asks Ray for --cpus-per-task CPUs and passes that count to the element as
  n-threads; --device auto lets a node with CUDA use it (--gpus-per-task reserves GPUs).
- Progress (segments, frames, frames/s, ETA over the whole cluster) goes to stderr every second;
  the last line is a JSON summary with the time spent planning, upscaling and joining.
"""

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRANSCODE = ROOT / "target" / "release" / "examples" / "transcode"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="IN")
    p.add_argument("--out", required=True,
                   help="output folder shared by all nodes, or an object storage URL (s3://...)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--segment-seconds", type=float, default=10.0)
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (auto, or HOST:PORT of its head; ray://HOST:10001 needs ray[client]); default: a Ray of this machine's own")
    p.add_argument("--transcode", type=Path, default=DEFAULT_TRANSCODE,
                   help=f"the transcode binary, the same path on every node (default {DEFAULT_TRANSCODE})")
    p.add_argument("--cpus-per-task", type=int, default=1)
    p.add_argument("--gpus-per-task", type=float, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--retries", type=int, default=3, help="retries of a failed task")
    p.add_argument("--model-path", default=None)
    p.add_argument("--codec", default="h264", choices=("h264", "h265"))
    p.add_argument("--quality", type=int, default=None)
    p.add_argument("--bitrate", type=int, default=None)
    return p.parse_args(argv)


def file_hash(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def plan(transcode, path, seconds):
    """The segments of `path` (dicts with start_ns, stop_ns, frames) and its frame count."""
    out = subprocess.run([str(transcode), "plan", str(path), "--segment-seconds", str(seconds)],
                         check=True, capture_output=True, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    segments = [line for line in lines if "segment" in line]
    return segments, lines[-1]["frames"]


def encoder_options(args):
    """The transcode options every segment of a job shares (they are part of its hash)."""
    opts = ["--scale", str(args.scale), "--codec", args.codec, "--device", args.device]
    for flag, value in (("--model-path", args.model_path), ("--quality", args.quality),
                        ("--bitrate", args.bitrate)):
        if value is not None:
            opts += [flag, str(value)]
    return opts


def segment_key(input_hash, segment, options):
    text = json.dumps([input_hash, segment["start_ns"], segment["stop_ns"], options])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def range_arg(segment):
    stop = segment["stop_ns"]
    return f"{segment['start_ns']}:{'' if stop is None else stop}"


def _die_with_parent():
    # the transcode dies with the Ray worker that runs it, so a killed task leaves no orphan
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Store:
    """Where a job's files go: a folder every node sees, or object storage through fsspec. A
    file is made under a temporary name and moved into place, so a name that exists is whole."""

    def __init__(self, out):
        self.remote = "://" in str(out)
        if self.remote:
            import fsspec
            self.fs, self.root = fsspec.core.url_to_fs(str(out))
            self.root = self.root.rstrip("/")
        else:
            self.fs, self.root = None, str(Path(out).resolve())

    def name(self, *parts):
        return "/".join([self.root, *parts])

    def url(self, name):
        """`name` as the user would write it (with its protocol)."""
        return self.fs.unstrip_protocol(name) if self.remote else name

    def exists(self, name):
        return self.fs.exists(name) if self.remote else os.path.exists(name)

    def scratch(self, name):
        """A temporary local file to make `name` in: beside it in a folder (the move is then a
        rename), in this node's temporary folder for object storage. Keeps the extension."""
        stem, ext = os.path.splitext(os.path.basename(name))
        folder = tempfile.gettempdir() if self.remote else os.path.dirname(name)
        return Path(folder) / f"{stem}.part-{uuid.uuid4().hex[:8]}{ext}"

    def publish(self, local, name):
        """Moves the finished local file `local` to `name`."""
        if self.remote:
            part = f"{name}.part-{uuid.uuid4().hex[:8]}"
            self.fs.put_file(str(local), part)
            self.fs.mv(part, name)
            Path(local).unlink(missing_ok=True)
        else:
            os.replace(local, name)

    def fetch(self, name, folder):
        """A local path holding `name`: itself in a folder, a copy in `folder` otherwise."""
        if not self.remote:
            return name
        local = Path(folder) / os.path.basename(name)
        self.fs.get_file(name, str(local))
        return str(local)

    def make_folder(self, name):
        if self.remote:
            self.fs.makedirs(name, exist_ok=True)
        else:
            os.makedirs(name, exist_ok=True)

    def remove_stale(self, folder):
        """What killed tasks left in `folder`: temporary files and running markers."""
        if self.remote:
            for stale in self.fs.glob(f"{folder}/*.part-*"):
                self.fs.rm(stale)
        else:
            for stale in [*Path(folder).glob("*.part-*"), *Path(folder).glob(".running/*")]:
                stale.unlink(missing_ok=True)


def upscale_segment(transcode, source, out, target, segment, options, threads):
    """One Ray task: `transcode --segment` into a temporary file, its frames checked against the
    plan, then moved into place in the store `out`. Returns (frames, seconds, node)."""
    import ray

    started = time.time()
    store = Store(out)
    part = store.scratch(target)
    # which process runs which segment, for whoever must find it (cluster_test.py kills one)
    running = part.parent / ".running"
    running.mkdir(exist_ok=True)
    marker = running / f"{Path(target).stem}.{os.getpid()}"
    marker.write_text(str(os.getpid()))
    try:
        cmd = [str(transcode), str(source), str(part), "--segment", range_arg(segment),
               "--n-threads", str(threads), *options]
        done = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        _, frames = plan(transcode, part, 3600)
        if frames != segment["frames"]:
            raise RuntimeError(f"{Path(target).name}: {frames} frames, the plan says {segment['frames']}")
        store.publish(part, target)
    finally:
        part.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
    return frames, time.time() - started, ray.get_runtime_context().get_node_id()


class Progress:
    """Segments and frames done over the whole cluster, printed at most once a second."""

    def __init__(self, segments, frames):
        self.segments, self.frames = segments, frames
        self.done_segments = self.done_frames = 0
        self.start = self.last = time.time()

    def add(self, frames):
        self.done_segments += 1
        self.done_frames += frames

    def line(self):
        elapsed = max(time.time() - self.start, 1e-9)
        fps = self.done_frames / elapsed
        left = self.frames - self.done_frames
        eta = f"{left / fps:.0f} s" if fps > 0 else "?"
        return (f"segments {self.done_segments}/{self.segments}, frames {self.done_frames}/{self.frames}, "
                f"{fps:.1f} frames/s, ETA {eta}")

    def report(self, force=False):
        if force or time.time() - self.last >= 1.0:
            self.last = time.time()
            print(self.line(), file=sys.stderr, flush=True)


class JobError(Exception):
    """What stops a job, said to the user without a traceback."""


def run(cmd):
    """Runs a transcode command; its stderr's end is the error if it fails."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        raise JobError(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def plan_jobs(args, transcode, store, options):
    """Per input: (input, output name, [(segment, segment file name)])."""
    jobs = []
    for source in map(Path, args.inputs):
        if not source.is_file():
            raise JobError(f"{source}: no such file")
        digest = file_hash(source)
        try:
            segments, frames = plan(transcode, source, args.segment_seconds)
        except subprocess.CalledProcessError as e:
            raise JobError(f"planning {source} failed:\n{e.stderr[-2000:]}") from e
        print(f"{source.name}: {frames} frames in {len(segments)} segments", file=sys.stderr)
        names = [store.name("segments", f"{source.stem}-{i:05d}-{segment_key(digest, s, options)}.mkv")
                 for i, s in enumerate(segments)]
        jobs.append((source.resolve(), store.name(f"{source.stem}_x{args.scale}.mp4"),
                     list(zip(segments, names))))
    return jobs


def upscale_segments(args, transcode, todo, options):
    """Runs `todo` ([(input, segment, name)]) as Ray tasks with progress; returns how many
    nodes took part."""
    import ray

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(upscale_segment).options(
        num_cpus=args.cpus_per_task, num_gpus=args.gpus_per_task,
        max_retries=args.retries, retry_exceptions=True)
    progress = Progress(len(todo), sum(s["frames"] for _, s, _ in todo))
    pending = {task.remote(str(transcode), str(source), args.out, name, s, options,
                           args.cpus_per_task): name
               for source, s, name in todo}
    nodes = set()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            name = pending.pop(ref)
            try:
                frames, _, node = ray.get(ref)
            except Exception as e:  # the task failed after its retries
                for other in pending:
                    ray.cancel(other, force=True)
                raise JobError(f"{os.path.basename(name)}: {e}") from e
            nodes.add(node)
            progress.add(frames)
        progress.report()
    progress.report(force=True)
    return len(nodes)


def join_output(transcode, store, source, output, names):
    """Joins the segments `names` and `source`'s audio into `output`."""
    part = store.scratch(output)
    with tempfile.TemporaryDirectory(prefix="cluster-join-") as fetched:
        try:
            local = [store.fetch(name, fetched) for name in names]
            run([transcode, "join", part, "--audio-from", source, *local])
            store.publish(part, output)
        finally:
            part.unlink(missing_ok=True)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    transcode = args.transcode.resolve()
    if not transcode.is_file():
        sys.exit(f"cluster-upscale: no transcode binary at {transcode} "
                 "(cargo build --release -p gst-plugin-imdn --example transcode)")
    store = Store(args.out)
    store.make_folder(store.name("segments"))
    options = encoder_options(args)
    times = {}
    try:
        t = time.time()
        jobs = plan_jobs(args, transcode, store, options)
        times["plan_s"] = time.time() - t

        todo = [(source, s, name) for source, _, pairs in jobs for s, name in pairs
                if not store.exists(name)]
        skipped = sum(len(pairs) for _, _, pairs in jobs) - len(todo)
        if skipped:
            print(f"{skipped} segments already done: skipped", file=sys.stderr)
        t = time.time()
        if todo:
            times["nodes"] = upscale_segments(args, transcode, todo, options)
        times["upscale_s"] = time.time() - t
        store.remove_stale(store.name("segments"))  # no task runs now

        t = time.time()
        for source, output, pairs in jobs:
            join_output(transcode, store, source, output, [name for _, name in pairs])
            print(store.url(output))
        times["join_s"] = time.time() - t
    except JobError as e:
        sys.exit(f"cluster-upscale: {e}")
    summary = {"segments": len(todo) + skipped, "skipped": skipped,
               **{k: round(v, 3) if isinstance(v, float) else v for k, v in times.items()}}
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
