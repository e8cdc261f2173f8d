"""Tests of scripts/gpu_results.py: the gpu-result lines from a hand-made results.jsonl."""

import json
import tempfile
import unittest

import gpu_results

CK = ".gpu/reference/imdn-checkpoints"
ROWS = [
    # candle's f16 bench (no "kernels"): not ours, must not be picked
    {"check": "bench", "weights": "IMDN_x2", "model": "IMDN x2", "size": "1920x1080",
     "precision": "F16", "ms_per_frame": 300.0, "network_ms": 298.0, "launches_ms": None},
    {"check": "bench", "kernels": "ours", "weights": "IMDN_x2", "model": "IMDN x2",
     "size": "1920x1080", "precision": "F32", "ms_per_frame": 99.0, "launches_ms": 90.0},
    {"check": "bench", "kernels": "ours", "weights": "IMDN_x2", "model": "IMDN x2",
     "size": "1920x1080", "precision": "F16", "ms_per_frame": 30.5, "network_ms": 21.0,
     "launches_ms": 12.346, "raw_frame_ms": 21.5},
    {"check": "torch", "weights": f"{CK}/IMDN_x2.pth", "size": "1920x1080", "precision": "f16",
     "channels_last": False, "ms_per_frame": 42.3},
    {"check": "torch", "weights": f"{CK}/IMDN_x2.pth", "size": "1920x1080", "precision": "f16",
     "channels_last": True, "ms_per_frame": 38.81},
    {"check": "element", "weights": "IMDN_x2", "size": "1920x1080", "device": "cuda",
     "precision": "f16", "kernels": "candle", "fps": 5.0, "ok": True},
    {"check": "element", "weights": "IMDN_x2", "size": "1920x1080", "device": "cuda",
     "precision": "f16", "kernels": "ours", "fps": 61.04, "ok": True},
    # RTC: the element failed (its fps is not a figure), no torch line
    {"check": "bench", "kernels": "ours", "weights": "model_RTC", "size": "1920x1080",
     "precision": "F16", "ms_per_frame": 14.0, "launches_ms": 3.5, "raw_frame_ms": 9.0},
    {"check": "element", "weights": "model_RTC", "size": "1920x1080", "device": "cuda",
     "precision": "f16", "kernels": "ours", "fps": 12.0, "ok": False},
    # IMDN ×4 at another size than the spec's: not this line's figure
    {"check": "bench", "kernels": "ours", "weights": "IMDN_x4", "size": "480x270",
     "precision": "F16", "ms_per_frame": 5.0, "launches_ms": 4.0},
]


class GpuResultsTest(unittest.TestCase):
    def test_lines(self):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
            for r in ROWS:
                f.write(json.dumps(r) + "\n")
            f.write('{"check": "bench", "cut short\n')  # a run that died mid-line
            f.write("IMDN x2 on 1920x1080: not JSON\n")
            f.flush()
            rows = gpu_results.load(f.name)
        self.assertEqual(
            gpu_results.lines(rows, "NVIDIA_H100_80GB_HBM3"),
            [
                "gpu-result: device=NVIDIA_H100_80GB_HBM3 model=imdn_x2 size=1920x1080 precision=f16 "
                "network_ms=12.35 frame_ms=21.50 element_fps=61.0 torch_f16_ms=38.81",
                "gpu-result: device=NVIDIA_H100_80GB_HBM3 model=imdn_rtc_x2 size=1920x1080 precision=f16 "
                "network_ms=3.50 frame_ms=9.00 element_fps=NA torch_f16_ms=NA",
                "gpu-result: device=NVIDIA_H100_80GB_HBM3 model=imdn_x4 size=960x540 precision=f16 "
                "network_ms=NA frame_ms=NA element_fps=NA torch_f16_ms=NA",
            ],
        )

    def test_a_rerun_wins(self):
        rows = [
            {"check": "element", "weights": "IMDN_x4", "size": "960x540", "device": "cuda",
             "precision": "f16", "kernels": "ours", "fps": 50.0, "ok": True},
            {"check": "element", "weights": "IMDN_x4", "size": "960x540", "device": "cuda",
             "precision": "f16", "kernels": "ours", "fps": 55.0, "ok": True},
        ]
        self.assertEqual(gpu_results.figures(rows, "IMDN_x4", "960x540")["element_fps"], 55.0)

    def test_model_names(self):
        self.assertEqual(gpu_results.model_name("IMDN_x2"), "imdn_x2")
        self.assertEqual(gpu_results.model_name(f"{CK}/model_RTC.pth"), "imdn_rtc_x2")
        self.assertEqual(gpu_results.model_name("IMDN_x4.pth"), "imdn_x4")


if __name__ == "__main__":
    unittest.main()
