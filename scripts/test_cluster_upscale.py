"""The cluster driver's own rules, without Ray or binaries (its end-to-end test is
scripts/cluster_test.py): what names a segment, the options every segment of a job shares, the
ranges it hands to transcode, the progress line."""

import importlib.util
import unittest
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "cluster_upscale", Path(__file__).resolve().parent / "cluster-upscale.py")
cu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cu)

SEGMENT = {"segment": 3, "start_ns": 6_000_000_000, "stop_ns": 8_000_000_000, "frames": 50}


class SegmentNames(unittest.TestCase):
    def test_the_same_work_gets_the_same_name(self):
        options = cu.encoder_options(cu.parse_args(["in.mp4", "--out", "o"]))
        self.assertEqual(cu.segment_key("abc", SEGMENT, options),
                         cu.segment_key("abc", dict(SEGMENT), list(options)))

    def test_other_content_range_or_settings_get_another_name(self):
        options = cu.encoder_options(cu.parse_args(["in.mp4", "--out", "o"]))
        key = cu.segment_key("abc", SEGMENT, options)
        others = [
            cu.segment_key("abd", SEGMENT, options),
            cu.segment_key("abc", {**SEGMENT, "stop_ns": None}, options),
            cu.segment_key("abc", {**SEGMENT, "start_ns": 6_040_000_000}, options),
            cu.segment_key("abc", SEGMENT, cu.encoder_options(
                cu.parse_args(["in.mp4", "--out", "o", "--quality", "20"]))),
            cu.segment_key("abc", SEGMENT, cu.encoder_options(
                cu.parse_args(["in.mp4", "--out", "o", "--scale", "3"]))),
        ]
        self.assertNotIn(key, others)
        self.assertEqual(len(set(others)), len(others))

    def test_a_content_hash_reads_the_whole_file(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            a, b = Path(d, "a"), Path(d, "b")
            a.write_bytes(b"x" * 3_000_000)
            b.write_bytes(b"x" * 2_999_999 + b"y")
            self.assertNotEqual(cu.file_hash(a), cu.file_hash(b))


class TranscodeArguments(unittest.TestCase):
    def test_ranges_as_transcode_takes_them(self):
        self.assertEqual(cu.range_arg(SEGMENT), "6000000000:8000000000")
        self.assertEqual(cu.range_arg({**SEGMENT, "stop_ns": None}), "6000000000:")

    def test_settings_reach_every_segment(self):
        args = cu.parse_args(["a.mp4", "b.mp4", "--out", "o", "--scale", "4", "--quality", "0",
                              "--model-path", "w.safetensors", "--device", "cpu"])
        options = cu.encoder_options(args)
        for pair in (["--scale", "4"], ["--quality", "0"], ["--model-path", "w.safetensors"],
                     ["--device", "cpu"]):
            i = options.index(pair[0])
            self.assertEqual(options[i:i + 2], pair)
        self.assertNotIn("--bitrate", options)


class ProgressLine(unittest.TestCase):
    def test_counts_and_eta(self):
        p = cu.Progress(segments=10, frames=500)
        self.assertIn("ETA ?", p.line())
        p.start -= 10
        p.add(50)
        line = p.line()
        self.assertIn("segments 1/10", line)
        self.assertIn("frames 50/500", line)
        self.assertRegex(line, r"ETA (8[0-9]|9[0-9]) s")


class Stores(unittest.TestCase):
    """A folder and object storage (fsspec's file:// here; s3:// and the like the same way)."""

    def check(self, out):
        import tempfile
        store = cu.Store(out)
        folder = store.name("segments")
        store.make_folder(folder)
        name = f"{folder}/clip-00001-abc.mkv"
        self.assertFalse(store.exists(name))
        part = store.scratch(name)
        self.assertEqual(part.suffix, ".mkv", "the muxer is chosen by the extension")
        part.write_bytes(b"segment")
        store.publish(part, name)
        self.assertTrue(store.exists(name))
        self.assertFalse(part.exists())
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(Path(store.fetch(name, d)).read_bytes(), b"segment")
        return store, folder

    def test_a_folder(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            store, folder = self.check(d)
            self.assertFalse(store.remote)
            stale = Path(folder, "clip-00002-def.part-1234abcd.mkv")
            stale.write_bytes(b"half")
            store.remove_stale(folder)
            self.assertFalse(stale.exists())
            self.assertTrue(Path(folder, "clip-00001-abc.mkv").exists())

    def test_object_storage(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            store, folder = self.check(f"file://{d}/bucket")
            self.assertTrue(store.remote)
            self.assertTrue(Path(d, "bucket/segments/clip-00001-abc.mkv").is_file())
            store.fs.pipe_file(f"{folder}/clip-00002-def.mkv.part-1234abcd", b"half")
            store.remove_stale(folder)
            self.assertEqual(sorted(p.name for p in Path(d, "bucket/segments").iterdir()),
                             ["clip-00001-abc.mkv"])


if __name__ == "__main__":
    unittest.main()
