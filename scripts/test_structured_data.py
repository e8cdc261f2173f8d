"""Tests of scripts/structured_data.py (run by scripts/test.sh with the other test_*.py):
`python3 -m unittest discover -s scripts -p 'test_*.py'`. Without extracted font packages the
text kinds draw in Pillow's own font; the rules tested are the same."""

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

import prepare_data
import structured_data as sd

SIDE = 96  # small tiles: the rules do not depend on the size


def pixels(img):
    return np.asarray(img).copy()


class DeterminismTest(unittest.TestCase):
    def test_a_tile_is_a_function_of_its_identity(self):
        for kind in sd.KINDS:
            a = pixels(sd.tile("train", kind, 3, SIDE, []))
            b = pixels(sd.tile("train", kind, 3, SIDE, []))
            self.assertTrue(np.array_equal(a, b), kind)
            self.assertEqual(a.shape, (SIDE, SIDE, 3), kind)

    def test_other_indices_and_the_validation_split_draw_other_tiles(self):
        for kind in sd.KINDS:
            a = pixels(sd.tile("train", kind, 0, SIDE, []))
            self.assertFalse(np.array_equal(a, pixels(sd.tile("train", kind, 1, SIDE, []))), kind)
            self.assertFalse(np.array_equal(a, pixels(sd.tile("val", kind, 0, SIDE, []))), kind)


class DrawingTest(unittest.TestCase):
    def test_every_kind_passes_the_photographs_detail_filter(self):
        for kind in sd.KINDS:
            for i in range(3):
                img = sd.tile("val", kind, i, 240, [])
                self.assertTrue(prepare_data.tile_ok(prepare_data.luma(pixels(img))), (kind, i))

    def test_supersampled_kinds_are_anti_aliased(self):
        # line art in at most three inks on one paper colour: drawn at 1x (Pillow's lines are
        # not anti-aliased) it holds at most four colours; box-filtered from SS x it holds the
        # blends in between along every stroke (without the sensor noise, which adds colours)
        def colours(ss, i):
            saved = sd.SS, sd.NOISE, sd.BLUR
            sd.SS, sd.NOISE, sd.BLUR = ss, (0.0, 0.0), (0.0, 0.0)
            try:
                img = pixels(sd.draw_drawing(sd.tile_rng("train", "drawing", i), SIDE, []))
            finally:
                sd.SS, sd.NOISE, sd.BLUR = saved
            return len({tuple(c) for c in img.reshape(-1, 3)})
        for i in range(4):
            self.assertGreater(colours(sd.SS, i), 20, i)
            self.assertLessEqual(colours(1, i), 4, i)  # the premise

    def test_the_lens_spreads_an_edge_over_more_pixels_than_the_box_filter(self):
        edge = np.zeros((SIDE * sd.SS, SIDE * sd.SS, 3), np.uint8)
        edge[:, SIDE * sd.SS // 2 + 1:] = 255  # a step inside a pixel's SS x SS area
        saved = sd.NOISE, sd.BLUR
        widths = []
        try:
            for blur in ((0.0, 0.0), (0.6, 0.6)):
                sd.NOISE, sd.BLUR = (0.0, 0.0), blur
                row = pixels(sd.camera(Image.fromarray(edge), sd.tile_rng("t", "x", 0)))[0, :, 0]
                widths.append(int(((row > 0) & (row < 255)).sum()))
        finally:
            sd.NOISE, sd.BLUR = saved
        self.assertEqual(widths[0], 1)  # the box filter alone: one blended pixel
        self.assertGreaterEqual(widths[1], 3)

    def test_sensor_noise_on_flat_areas(self):
        img = Image.new("RGB", (SIDE * sd.SS, SIDE * sd.SS), (128, 128, 128))
        arr = pixels(sd.camera(img, sd.tile_rng("train", "x", 0))).astype(float)
        self.assertTrue(0.4 < arr.std() < 2.2, arr.std())
        self.assertAlmostEqual(arr.mean(), 128, delta=0.2)

    def test_homography_maps_the_four_points(self):
        src = [(0, 0), (10, 0), (10, 10), (0, 10)]
        dst = [(1, 2), (12, 1), (14, 15), (-1, 11)]
        h = sd.homography(src, dst)
        for (x, y), (u, v) in zip(src, dst):
            p = h @ np.array([x, y, 1.0])
            self.assertAlmostEqual(p[0] / p[2], u, places=9)
            self.assertAlmostEqual(p[1] / p[2], v, places=9)


class FontsTest(unittest.TestCase):
    FONTS = [Path("x/fonts-dejavu-core/usr/share/fonts/DejaVuSans.ttf"),
             Path("x/fonts-freefont-ttf/usr/share/fonts/FreeSans.ttf"),
             Path("x/fonts-liberation2/usr/share/fonts/LiberationSerif-Regular.ttf")]

    def test_validation_text_uses_only_the_held_out_package(self):
        self.assertEqual(sd.font_files(self.FONTS, "val"), [self.FONTS[1]])
        self.assertEqual(sd.font_files(self.FONTS, "train"), [self.FONTS[0], self.FONTS[2]])

    def test_without_fonts_pillows_own(self):
        self.assertEqual(sd.font_files([], "train"), [None])


class CountTest(unittest.TestCase):
    def test_the_share_of_all_training_tiles(self):
        self.assertEqual(sd.train_count(340, 1 / 3), 170)
        self.assertEqual(sd.train_count(542, 0.25), 181)
        self.assertEqual(sd.train_count(340, 0), 0)
        with self.assertRaises(ValueError):
            sd.train_count(340, 1.0)

    def test_plan_takes_the_kinds_in_turn_and_validation_apart(self):
        tiles = sd.plan(8, 2)
        train = [t for t in tiles if t[0] == "train"]
        self.assertEqual([t[2] for t in train], list(sd.KINDS) + list(sd.KINDS[:2]))
        self.assertEqual({t[1] for t in train}, {"train"})
        val = [t for t in tiles if t[0] == "val"]
        self.assertEqual(len(val), 2 * len(sd.KINDS))
        self.assertEqual({t[1] for t in val}, {"val-structured"})


class FolderTest(unittest.TestCase):
    def run_main(self, out, share, per_kind=1):
        sd.main(["--out", str(out), "--tile", str(SIDE), "--share", str(share),
                 "--val-per-kind", str(per_kind)])

    def test_idempotent_with_stale_tiles_removed_and_photographs_kept(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "train").mkdir()
            for i in range(6):  # six "photograph" tiles
                Image.new("RGB", (SIDE, SIDE)).save(out / "train" / f"pkg--p{i}--r00c00.png")
            (out / "manifest.json").write_text(json.dumps({"train_tiles": 6}))
            self.run_main(out, 0.5)
            procs = sorted(p.name for p in (out / "train").glob("proc-*"))
            self.assertEqual(len(procs), 6)  # as many as the photographs: a share of 1/2
            val = sorted((out / "val-structured").iterdir())
            self.assertEqual(len(val), len(sd.KINDS))
            stamps = {p: p.stat().st_mtime_ns for p in (out / "train").iterdir()}
            self.run_main(out, 0.5)
            self.assertEqual({p: p.stat().st_mtime_ns for p in (out / "train").iterdir()}, stamps)
            manifest = json.loads((out / "manifest.json").read_text())
            self.assertEqual(manifest["train_tiles"], 6)  # the photographs' own section stays
            self.assertEqual(manifest["structured"]["train_tiles"], 6)
            self.assertEqual(manifest["structured"]["photo_train_tiles"], 6)
            self.assertEqual(manifest["structured"]["val_tiles"], len(sd.KINDS))
            # a share of 0 removes every procedural tile and nothing else
            self.run_main(out, 0)
            self.assertEqual(sorted(p.name for p in (out / "train").iterdir()),
                             [f"pkg--p{i}--r00c00.png" for i in range(6)])
            self.assertEqual(list((out / "val-structured").iterdir()), [])

    def test_the_photographs_script_leaves_procedural_tiles_alone(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            kept, old, proc = d / "a--x--r00c00.png", d / "a--gone--r00c00.png", d / "proc-v1--x.png"
            for p in (kept, old, proc):
                p.write_bytes(b"")
            self.assertEqual(prepare_data.stale_tiles([d], {kept: None}), [old])


if __name__ == "__main__":
    unittest.main()
