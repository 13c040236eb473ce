"""Side-by-side CPU baseline: StarGAN v2's translation networks in plain PyTorch eager mode,
with the official order of operations (NCHW, separate instance norm and affine, upsample
before the shortcut's 1x1 convolution, nn.LeakyReLU), timed like `stargan bench infer`.

Written for this project from the architecture description (not the official source), so
that our binary can be compared with PyTorch in the same run on the same machine:

    .venv/bin/python benches/pytorch_reference.py [--batch 1] [--iters 5] [--warmup 2]
    stargan bench infer --preset afhq --device cpu --batch 1 --iters 5

AFHQ preset: 256 px, 3 domains, style 64, latent 16, max 512 channels, w_hpf = 0.
"""
import argparse
import json
import math
import resource
import statistics
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

IMG, DOMAINS, STYLE, LATENT, MAXC = 256, 3, 64, 16, 512


class ResBlk(nn.Module):
    def __init__(self, cin, cout, normalize=False, downsample=False):
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.act = nn.LeakyReLU(0.2)
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(cin, affine=True)
            self.norm2 = nn.InstanceNorm2d(cin, affine=True)
        self.sc = nn.Conv2d(cin, cout, 1, 1, 0, bias=False) if cin != cout else None

    def forward(self, x):
        s = self.sc(x) if self.sc is not None else x
        if self.downsample:
            s = F.avg_pool2d(s, 2)
        h = self.norm1(x) if self.normalize else x
        h = self.conv1(self.act(h))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.normalize:
            h = self.norm2(h)
        h = self.conv2(self.act(h))
        return (s + h) / math.sqrt(2)


class AdaIN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.InstanceNorm2d(c, affine=False)
        self.fc = nn.Linear(STYLE, 2 * c)

    def forward(self, x, s):
        h = self.fc(s).view(s.size(0), -1, 1, 1)
        gamma, beta = torch.chunk(h, 2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    def __init__(self, cin, cout, upsample=False):
        super().__init__()
        self.upsample = upsample
        self.act = nn.LeakyReLU(0.2)
        self.norm1, self.norm2 = AdaIN(cin), AdaIN(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.sc = nn.Conv2d(cin, cout, 1, 1, 0, bias=False) if cin != cout else None

    def forward(self, x, s):
        h = self.act(self.norm1(x, s))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv2(self.act(self.norm2(self.conv1(h), s)))
        sc = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x
        if self.sc is not None:
            sc = self.sc(sc)
        return (h + sc) / math.sqrt(2)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        c = 2**14 // IMG
        self.from_rgb = nn.Conv2d(3, c, 3, 1, 1)
        self.encode, self.decode = nn.ModuleList(), nn.ModuleList()
        for _ in range(int(math.log2(IMG)) - 4):
            cout = min(c * 2, MAXC)
            self.encode.append(ResBlk(c, cout, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(cout, c, upsample=True))
            c = cout
        for _ in range(2):
            self.encode.append(ResBlk(c, c, normalize=True))
            self.decode.insert(0, AdainResBlk(c, c))
        c = 2**14 // IMG
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(c, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(c, 3, 1, 1, 0))

    def forward(self, x, s):
        x = self.from_rgb(x)
        for b in self.encode:
            x = b(x)
        for b in self.decode:
            x = b(x, s)
        return self.to_rgb(x)


class MappingNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Linear(LATENT, 512), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(512, 512), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(*[m for _ in range(3) for m in (nn.Linear(512, 512), nn.ReLU())], nn.Linear(512, STYLE))
            for _ in range(DOMAINS)
        )

    def forward(self, z, y):
        h = self.shared(z)
        out = torch.stack([u(h) for u in self.unshared], dim=1)
        return out[torch.arange(y.size(0)), y]


class StyleEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        c = 2**14 // IMG
        blocks = [nn.Conv2d(3, c, 3, 1, 1)]
        for _ in range(int(math.log2(IMG)) - 2):
            cout = min(c * 2, MAXC)
            blocks.append(ResBlk(c, cout, downsample=True))
            c = cout
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(c, c, 4, 1, 0), nn.LeakyReLU(0.2)]
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList(nn.Linear(c, STYLE) for _ in range(DOMAINS))

    def forward(self, x, y):
        h = self.shared(x).view(x.size(0), -1)
        out = torch.stack([u(h) for u in self.unshared], dim=1)
        return out[torch.arange(y.size(0)), y]


def median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    g, f, e = Generator().eval(), MappingNetwork().eval(), StyleEncoder().eval()
    x = torch.rand(a.batch, 3, IMG, IMG) * 2 - 1
    x_ref = torch.rand(a.batch, 3, IMG, IMG) * 2 - 1
    z = torch.randn(a.batch, LATENT)
    y = torch.zeros(a.batch, dtype=torch.long)
    with torch.no_grad():
        latent = median_ms(lambda: g(x, f(z, y)), a.warmup, a.iters)
        reference = median_ms(lambda: g(x, e(x_ref, y)), a.warmup, a.iters)
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in [("G", g), ("F", f), ("E", e)]}
    print(json.dumps({
        "implementation": f"pytorch {torch.__version__} eager, official op order",
        "threads": torch.get_num_threads(),
        "batch": a.batch,
        "latent_ms": latent,
        "reference_ms": reference,
        "parameters": params,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
