"""Tests of scripts/eval_sets.py's grouping and subsets (run by scripts/test.sh with the other
test_*.py); the scores themselves come from `imdn eval`, tested in Rust."""

import tempfile
import unittest
from pathlib import Path

import eval_sets


def image(name, psnr, bicubic):
    return {"name": name, "psnr_y": psnr, "bicubic": {"psnr_y": bicubic}}


class KindTest(unittest.TestCase):
    def test_kind_from_a_procedural_name_only(self):
        self.assertEqual(eval_sets.kind_of("proc-v1--facade--0003.png"), "facade")
        self.assertIsNone(eval_sets.kind_of("mate-backgrounds--Wood--r01c02.png"))
        self.assertIsNone(eval_sets.kind_of("photo.png"))

    def test_means_per_kind(self):
        got = eval_sets.per_kind([image("proc-v1--text--0000.png", 30.0, 28.0),
                                  image("proc-v1--text--0001.png", 32.0, 27.0),
                                  image("proc-v1--grid--0000.png", 25.0, 24.0)])
        self.assertEqual(got, {"grid": (25.0, 24.0, 1), "text": (31.0, 27.5, 2)})


class SubsetTest(unittest.TestCase):
    def test_the_first_tiles_of_each_kind(self):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "val-structured"
            src.mkdir()
            for kind in ("grid", "text"):
                for i in range(3):
                    (src / f"proc-v1--{kind}--{i:04d}.png").write_bytes(b"")
            with tempfile.TemporaryDirectory() as links:
                got = eval_sets.subset(src, 4, links)
                self.assertEqual(sorted(p.name for p in got.iterdir()),
                                 ["proc-v1--grid--0000.png", "proc-v1--grid--0001.png",
                                  "proc-v1--text--0000.png", "proc-v1--text--0001.png"])
            self.assertEqual(eval_sets.subset(src, 0, tmp), src)

    def test_photographs_in_name_order(self):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "val"
            src.mkdir()
            for n in ("b.png", "a.png", "c.png"):
                (src / n).write_bytes(b"")
            with tempfile.TemporaryDirectory() as links:
                got = eval_sets.subset(src, 2, links)
                self.assertEqual(sorted(p.name for p in got.iterdir()), ["a.png", "b.png"])


class SetsTest(unittest.TestCase):
    """main() over a fake `imdn` that reports each folder's tile count as its PSNR."""

    FAKE = """#!/usr/bin/env python3
import json, sys
from pathlib import Path
hr = Path(sys.argv[sys.argv.index("--hr") + 1])
names = sorted(p.name for p in hr.iterdir())
images = [{"name": n, "psnr_y": 30.0, "bicubic": {"psnr_y": 28.0}} for n in names]
print(json.dumps({"mean": {"psnr_y": float(len(names))}, "bicubic": {"psnr_y": 1.0},
                  "images": images}))
"""

    def run_main(self, data, fake):
        import contextlib
        import io
        import json
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            eval_sets.main(["--weights", "w", "--scale", "2", "--data", str(data),
                            "--imdn", str(fake)])
        return json.loads(out.getvalue())

    def test_the_man_made_set_where_it_was_prepared(self):
        with tempfile.TemporaryDirectory() as tmp:
            fake = Path(tmp) / "imdn"
            fake.write_text(self.FAKE)
            fake.chmod(0o755)
            data = Path(tmp) / "data"
            for folder, n in (("val", 2), ("val-structured", 3)):
                (data / folder).mkdir(parents=True)
                for i in range(n):
                    (data / folder / f"proc-v1--grid--{i:04d}.png").write_bytes(b"")
            got = self.run_main(data, fake)
            self.assertEqual((got["natural"]["psnr_y"], got["structured"]["psnr_y"]), (2.0, 3.0))
            self.assertIsNone(got["manmade"])
            (data / "val-manmade").mkdir()
            for i in range(4):
                (data / "val-manmade" / f"budgie--casa-mila--r0{i}c00.png").write_bytes(b"")
            got = self.run_main(data, fake)
            self.assertEqual(got["manmade"]["psnr_y"], 4.0)
            self.assertEqual(got["manmade"]["tiles"], 4)


if __name__ == "__main__":
    unittest.main()
