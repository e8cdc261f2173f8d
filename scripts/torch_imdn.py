#!/usr/bin/env python3
"""PyTorch reference timing for the same weights and frame sizes as `imdn bench`.

Our own compact PyTorch definition of IMDN / IMDN_RTC (parameter names as the authors'
state dicts), used only to time PyTorch on the same machine in the same run:
  torch_imdn.py WEIGHTS.pth WIDTHxHEIGHT [--iters N] [--precision f32|tf32|f16] [--channels-last]
Prints one JSON line: {"ms_per_frame": median, ...}. Input is device-resident; cuDNN benchmark
mode on, as a tuned PyTorch deployment would run.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2)


def lrelu(x):
    return F.leaky_relu(x, 0.05)


class Distill(nn.Module):
    def __init__(self, c, cca):
        super().__init__()
        self.d, self.r = c // 4, c - c // 4
        self.c1, self.c2, self.c3 = conv(c, c, 3), conv(self.r, c, 3), conv(self.r, c, 3)
        self.c4 = conv(self.r, self.d, 3)
        self.c5 = conv(4 * self.d, c, 1)
        if cca:
            self.cca = nn.Module()
            self.cca.conv_du = nn.Sequential(conv(4 * self.d, 4 * self.d // 16, 1), nn.ReLU(),
                                             conv(4 * self.d // 16, 4 * self.d, 1), nn.Sigmoid())
        else:
            self.cca = None

    def forward(self, x):
        d, r = self.d, self.r
        o1 = lrelu(self.c1(x))
        o2 = lrelu(self.c2(o1[:, d:]))
        o3 = lrelu(self.c3(o2[:, d:]))
        cat = torch.cat([o1[:, :d], o2[:, :d], o3[:, :d], self.c4(o3[:, d:])], 1)
        if self.cca is not None:
            m = cat.mean((2, 3), keepdim=True)
            s = (cat - m).pow(2).mean((2, 3), keepdim=True).sqrt()
            cat = cat * self.cca.conv_du(s + m)
        return self.c5(cat) + x


class Imdn(nn.Module):
    def __init__(self, scale, c=64, n=6):
        super().__init__()
        self.fea_conv = conv(3, c, 3)
        for i in range(n):
            setattr(self, f"IMDB{i + 1}", Distill(c, True))
        self.n = n
        self.c = nn.Sequential(conv(c * n, c, 1))
        self.LR_conv = conv(c, c, 3)
        self.upsampler = nn.Sequential(conv(c, 3 * scale * scale, 3), nn.PixelShuffle(scale))

    def forward(self, x):
        fea = self.fea_conv(x)
        outs, y = [], fea
        for i in range(self.n):
            y = getattr(self, f"IMDB{i + 1}")(y)
            outs.append(y)
        y = self.LR_conv(lrelu(self.c(torch.cat(outs, 1)))) + fea
        return self.upsampler(y)


class Rtc(nn.Module):
    def __init__(self, scale, c=12, n=5):
        super().__init__()
        sub = nn.Sequential(*[Distill(c, False) for _ in range(n)], conv(c, c, 1))
        shortcut = nn.Module()
        shortcut.sub = sub
        self.model = nn.Sequential(conv(3, c, 3), shortcut, conv(c, 3 * scale * scale, 3), nn.PixelShuffle(scale))

    def forward(self, x):
        fea = self.model[0](x)
        y = self.model[1].sub(fea) + fea
        return self.model[3](self.model[2](y))


def load(path):
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # legacy files this torch's safe unpickler refuses
        sd = torch.load(path, map_location="cpu", weights_only=False)
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
    if "model.0.weight" in sd:
        scale = int(round((sd["model.2.weight"].shape[0] / 3) ** 0.5))
        net = Rtc(scale)
    else:
        scale = int(round((sd["upsampler.0.weight"].shape[0] / 3) ** 0.5))
        net = Imdn(scale)
    net.load_state_dict(sd, strict=True)
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("size")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--precision", default="f32", choices=["f32", "tf32", "f16"])
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    torch.backends.cudnn.benchmark = True
    tf32 = a.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dev = torch.device("cuda")
    dtype = torch.float16 if a.precision == "f16" else torch.float32
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = load(a.weights).to(dev, dtype).to(memory_format=fmt).eval()
    x = torch.rand(1, 3, h, w, device=dev, dtype=dtype).to(memory_format=fmt)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            net(x)
        torch.cuda.synchronize()
        for _ in range(a.iters):
            t0 = time.perf_counter()
            net(x)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    print(json.dumps({"engine": "pytorch " + torch.__version__, "weights": a.weights, "size": a.size,
                      "precision": a.precision, "channels_last": a.channels_last,
                      "ms_per_frame": times[len(times) // 2], "ms_min": times[0],
                      "max_mem_mib": torch.cuda.max_memory_allocated() / 2**20}))


if __name__ == "__main__":
    main()
