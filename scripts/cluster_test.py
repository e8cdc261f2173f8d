"""The cluster job end to end (issue 46): a local Ray cluster of two nodes on loopback upscales a
real clip of ten segments through scripts/cluster-upscale.py, once as it is and once with a
worker killed in the middle of a task, and each result is checked against the input and against
a single-machine `transcode` of the same file at the same x264 settings (the killed run's
lossless, so its frames must be the single machine's to the byte); last, a whole node is lost
in the middle of a job.

    python scripts/cluster_test.py   (env: TRANSCODE, SAMPLE_VIDEO = the example binaries)

Run by scripts/test.sh after the build. Needs Ray (scripts/requirements.txt) and the sample
photograph (scripts/sample-data.sh).
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import numpy as np

# Ray on Linux swaps 127.0.0.1 for the machine's address when it connects; this keeps the
# cluster, the driver and the workers (which inherit it) on loopback
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

ROOT = Path(__file__).resolve().parent.parent
TRANSCODE = Path(os.environ.get("TRANSCODE", ROOT / "target/debug/examples/transcode"))
SAMPLE_VIDEO = Path(os.environ.get("SAMPLE_VIDEO", ROOT / "target/debug/examples/sample-video"))
DRIVER = ROOT / "scripts" / "cluster-upscale.py"
# 20 s at 10 fps with a keyframe every 2 s (sample-video's GOP is 2 s): ten 2-second segments
SIZE, SECONDS, FPS, SEGMENT_SECONDS = (160, 96), 20, 10, 2
SCALE = 2
QUALITIES = ("default", "lossless")


def quality_args(quality):
    return ["--quality", "0"] if quality == "lossless" else []

CHAIN = re.compile(r"chain .*?\((\d+) bytes, dts: [^,]*, pts: (\d+):(\d+):(\d+)\.(\d+)")
SEGMENT = re.compile(r"type: segment.*?start=\(guint64\)(\d+).*?time=\(guint64\)(\d+)")


def gst(*args):
    return subprocess.run(["gst-launch-1.0", *args], check=True, capture_output=True, text=True).stdout


def packets(path, stream):
    """(stream time ns, size) of each packet of `stream` (video_0, audio_0), in file order."""
    out = gst("-v", "filesrc", f"location={path}", "!", "qtdemux", "name=d", f"d.{stream}", "!",
              "fakesink", "silent=false")
    start = time_ = 0
    result = []
    for line in out.splitlines():
        if m := SEGMENT.search(line):
            start, time_ = int(m[1]), int(m[2])
        elif m := CHAIN.search(line):
            h, mi, s, ns = map(int, m.groups()[1:])
            pts = ((h * 60 + mi) * 60 + s) * 10**9 + ns
            result.append((pts - start + time_, int(m[1])))
    return result


def audio_bytes(path, folder):
    dump = Path(folder) / (Path(path).stem + ".aac")
    gst("filesrc", f"location={path}", "!", "qtdemux", "name=d", "d.audio_0", "!", "filesink",
        f"location={dump}")
    return dump.read_bytes()


def decoded(path, size, folder):
    """The decoded frames, (n, h·3/2, w) I420 planes stacked, u8."""
    raw = Path(folder) / (Path(path).stem + ".yuv")
    w, h = size
    gst("filesrc", f"location={path}", "!", "qtdemux", "name=d", "d.video_0", "!", "decodebin", "!",
        "videoconvert", "!", f"video/x-raw,format=I420,width={w},height={h}", "!", "filesink",
        f"location={raw}")
    data = np.fromfile(raw, np.uint8)
    raw.unlink()
    return data.reshape(-1, h * 3 // 2, w)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


class ClusterUpscale(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cluster-test-")
        cls.dir = Path(cls.tmp.name)
        # Ray's sessions (logs, sockets) in the test's folder, removed with it; the driver and
        # the workers inherit it
        os.environ["RAY_TMPDIR"] = str(cls.dir)
        import ray
        from ray.cluster_utils import Cluster

        cls.input = cls.dir / "clip.mp4"
        subprocess.run([str(SAMPLE_VIDEO), str(ROOT / "data/samples/coffee.png"), str(cls.input),
                        "--size", f"{SIZE[0]}x{SIZE[1]}", "--seconds", str(SECONDS),
                        "--fps", str(FPS)], check=True, capture_output=True)
        # single-machine runs at the x264 settings the jobs use: the default and lossless; one
        # thread, as each task here has one CPU (more threads round a few pixels differently)
        cls.reference = {}
        for quality in QUALITIES:
            cls.reference[quality] = cls.dir / f"single-{quality}.mp4"
            subprocess.run([str(TRANSCODE), str(cls.input), str(cls.reference[quality]), "--scale",
                            str(SCALE), "--n-threads", "1", *quality_args(quality)],
                           check=True, capture_output=True)
        node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 << 20}
        cls.cluster = Cluster(initialize_head=True,
                              head_node_args={**node, "include_dashboard": False})
        cls.worker_node = cls.cluster.add_node(**node)
        cls.cluster.wait_for_nodes()
        ray.shutdown()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.shutdown()
        cls.tmp.cleanup()

    def driver(self, out, quality, *extra):
        cmd = [sys.executable, str(DRIVER), str(self.input), "--out", str(out), "--scale",
               str(SCALE), "--segment-seconds", str(SEGMENT_SECONDS), "--address",
               self.cluster.address, "--transcode", str(TRANSCODE), *quality_args(quality), *extra]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc):
        out, err = proc.communicate(timeout=900)
        self.assertEqual(proc.returncode, 0, err[-3000:])
        # the output's path, among what Ray itself may print when a node goes away
        return Path([line for line in out.splitlines() if line.endswith(".mp4")][-1]), err

    def check_output(self, output, quality):
        """Every frame once at its time, the audio as it was, the size ×SCALE, the pictures those
        of the single-machine run (encoder noise aside; lossless: the same to the byte)."""
        src, got = packets(self.input, "video_0"), packets(output, "video_0")
        self.assertEqual(len(got), SECONDS * FPS)
        times = sorted(t for t, _ in got)
        self.assertEqual(times, sorted(t for t, _ in src), "output frame times differ from the input's")
        steps = set(np.diff(times).tolist())
        self.assertEqual(steps, {10**9 // FPS}, "a frame missing or duplicated at a join")
        self.assertEqual(packets(output, "audio_0"), packets(self.input, "audio_0"))
        self.assertEqual(audio_bytes(output, self.dir), audio_bytes(self.input, self.dir))
        big = (SIZE[0] * SCALE, SIZE[1] * SCALE)
        ours = decoded(output, big, self.dir)
        single = decoded(self.reference[quality], big, self.dir)
        self.assertEqual(ours.shape, single.shape)
        print(f"\n{output.name}, x264 {quality}: {psnr(ours, single):.2f} dB from one machine's",
              file=sys.stderr)
        if quality == "lossless":
            self.assertTrue(np.array_equal(ours, single), "lossless frames differ from one machine's")
        self.assertGreaterEqual(psnr(ours, single), 45.0)

    def test_a_cluster_job_equals_one_machine_and_a_rerun_skips_what_is_done(self):
        out = self.dir / "job"
        output, err = self.finish(self.driver(out, "default"))
        self.assertIn('"nodes": 2', err, "both nodes should have taken segments")
        self.check_output(output, "default")
        segments = sorted((out / "segments").glob("*.mkv"))
        self.assertEqual(len(segments), SECONDS // SEGMENT_SECONDS)
        mtimes = [p.stat().st_mtime_ns for p in segments]
        _, err = self.finish(self.driver(out, "default"))
        self.assertIn('"skipped": 10', err)
        self.assertEqual([p.stat().st_mtime_ns for p in segments], mtimes)
        self.check_output(output, "default")

    def test_a_worker_killed_mid_task_is_retried(self):
        out = self.dir / "killed"
        proc = self.driver(out, "lossless")
        running = out / "segments" / ".running"
        deadline, killed = time.time() + 300, None
        while killed is None and time.time() < deadline and proc.poll() is None:
            for marker in running.glob("*") if running.is_dir() else []:
                try:
                    pid = int(marker.read_text())
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
                except (ValueError, OSError):
                    continue
            time.sleep(0.05)
        self.assertIsNotNone(killed, "no task was seen running")
        output, err = self.finish(proc)
        self.check_output(output, "lossless")
        self.assertEqual(list((out / "segments").glob("*.part-*")), [], "a half-written segment left")

    def test_a_job_into_object_storage(self):
        bucket = self.dir / "bucket"
        proc = self.driver(f"file://{bucket}", "default")
        out, err = proc.communicate(timeout=900)
        self.assertEqual(proc.returncode, 0, err[-3000:])
        self.assertIn(f"file://{bucket}/clip_x2.mp4", out.splitlines())
        self.check_output(bucket / "clip_x2.mp4", "default")
        self.assertEqual(len(list((bucket / "segments").glob("*.mkv"))), SECONDS // SEGMENT_SECONDS)
        self.assertEqual(list(bucket.rglob("*.part-*")), [])

    def test_segments_of_open_groups_of_pictures_hold_every_frame(self):
        """Frames an open group of pictures shows before its keyframe decode after it, and libav
        drops such a group's first frame when it starts there: `transcode plan`, `--segment`
        and `join` without Ray, against one machine, lossless."""
        clip = self.dir / "open-gop.mp4"
        gst("videotestsrc", "num-buffers=250", "pattern=ball", "!",
            f"video/x-raw,width={SIZE[0]},height={SIZE[1]},framerate=25/1", "!", "x264enc",
            "key-int-max=50", "option-string=open-gop=1:bframes=3", "!", "h264parse", "!",
            "mp4mux", "!", "filesink", f"location={clip}")
        lossless = ["--scale", str(SCALE), "--n-threads", "1", *quality_args("lossless")]
        plan = subprocess.run([str(TRANSCODE), "plan", str(clip), "--segment-seconds", "2"],
                              check=True, capture_output=True, text=True).stdout
        ranges = [re.search(r'"start_ns": (\d+), "stop_ns": (\d+|null)', line).groups()
                  for line in plan.splitlines() if '"segment"' in line]
        self.assertEqual(len(ranges), 5)
        pieces = []
        for i, (start, stop) in enumerate(ranges):
            piece = self.dir / f"open-{i}.mkv"
            subprocess.run([str(TRANSCODE), str(clip), str(piece), "--segment",
                            f"{start}:{'' if stop == 'null' else stop}", *lossless],
                           check=True, capture_output=True)
            pieces.append(str(piece))
        joined, single = self.dir / "open-joined.mp4", self.dir / "open-single.mp4"
        subprocess.run([str(TRANSCODE), "join", str(joined), *pieces], check=True, capture_output=True)
        subprocess.run([str(TRANSCODE), str(clip), str(single), *lossless], check=True,
                       capture_output=True)
        self.assertEqual(sorted(t for t, _ in packets(joined, "video_0")),
                         sorted(t for t, _ in packets(clip, "video_0")))
        big = (SIZE[0] * SCALE, SIZE[1] * SCALE)
        ours, one = decoded(joined, big, self.dir), decoded(single, big, self.dir)
        self.assertEqual(ours.shape[0], 250)
        self.assertTrue(np.array_equal(ours, one), "joined frames differ from one machine's")

    def test_segments_of_a_short_matroska_input_and_audio_mp4_cannot_hold(self):
        """A demuxer can reach the end of a short input before the seek: that end must not
        finish the segment's muxer. The join copies audio, so one MP4 cannot hold is refused
        by name."""
        clip = self.dir / "short.mkv"
        gst("videotestsrc", "num-buffers=50", "!", "video/x-raw,width=64,height=48,framerate=25/1",
            "!", "x264enc", "!", "h264parse", "!", "matroskamux", "name=m", "!", "filesink",
            f"location={clip}", "audiotestsrc", "num-buffers=20", "!", "audioconvert", "!",
            "vorbisenc", "!", "m.")
        counts = []
        for i, segment in enumerate(["0:", "1000000000:"]):
            piece = self.dir / f"short-{i}.mkv"
            subprocess.run([str(TRANSCODE), str(clip), str(piece), "--segment", segment,
                            "--n-threads", "1"], check=True, capture_output=True)
            summary = subprocess.run([str(TRANSCODE), "plan", str(piece)], check=True,
                                     capture_output=True, text=True).stdout.splitlines()[-1]
            counts.append(int(re.search(r'"frames": (\d+)', summary)[1]))
        self.assertEqual(counts, [50, 25])
        joined = subprocess.run([str(TRANSCODE), "join", str(self.dir / "short.mp4"), "--audio-from",
                                 str(clip), str(self.dir / "short-0.mkv")], capture_output=True, text=True)
        self.assertNotEqual(joined.returncode, 0)
        self.assertIn("audio/x-vorbis cannot go into an MP4 file", joined.stderr)

    def test_a_segment_that_cannot_be_made_fails_the_job_with_its_reason(self):
        out = self.dir / "failing"
        proc = self.driver(out, "default", "--model-path", str(self.dir / "missing.safetensors"),
                           "--retries", "0")
        _, err = proc.communicate(timeout=600)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("missing.safetensors", err)
        self.assertIn("cluster-upscale: clip-", err, "the message names the segment")
        self.assertEqual(list(out.glob("*.mp4")), [], "no output from a failed job")

    def test_whole_node_lost_mid_job_is_survived(self):
        """A node that goes away (its raylet and workers killed) while both nodes run segments:
        Ray runs its tasks again on the node left. Runs last: the cluster keeps one node."""
        out = self.dir / "node-lost"
        proc = self.driver(out, "lossless")
        running = out / "segments" / ".running"
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if running.is_dir() and len(list(running.glob("*"))) >= 2:
                break
            time.sleep(0.05)
        self.assertIsNone(proc.poll(), "the job ended before both nodes were busy")
        self.cluster.remove_node(self.worker_node, allow_graceful=False)
        output, err = self.finish(proc)
        self.assertIn('"nodes": ', err)
        self.check_output(output, "lossless")


if __name__ == "__main__":
    unittest.main(verbosity=2)
