"""Dead-leaves images: a stated model of natural-image statistics, at any size, from a seed.

The dead-leaves model (Matheron 1968; Lee, Mumford & Huang, IJCV 2001) drops opaque disks in layers, later ones
occluding earlier ones.  With radii drawn from a density proportional to ``r^-exponent`` (3: scale invariance)
between ``r_min`` and ``r_max`` (default: one pixel and half the side), the images have occlusion edges and a power spectrum close to the ~1/f^2 of
natural photographs between the frequencies of the largest and the smallest leaves (steeper above 1 / r_min,
where single disk edges dominate).  They are *not* photographs: they stand in for them here because photographs
cannot be downloaded on the machines this project is built on.

How an image is made (all sizes are fractions of the image side, the unit square is the image):

1. ``K`` disks with centres uniform on the square enlarged by ``r_max`` on every side (so that the statistics
   are the same everywhere in the image), radii by inverse-CDF sampling of ``r^-exponent`` on [r_min, r_max],
   and one colour each ('rgb': each channel uniform on [0, 1]; 'grey': one uniform value in every channel).
2. Disks are painted in order, each over the previous ones; pixel centres are point-sampled (no anti-aliasing,
   as the classical model).  ``K`` is chosen so that every pixel is covered by ``coverage`` disks on average
   (default 7: a pixel is left bare with probability e^-7 < 0.1 %); a bare pixel shows a background leaf that
   fills the image (layer 0).
3. ``texture`` > 0 gives each leaf a mild linear gradient: value + texture * <u, p - c> / r with a random unit
   direction u, so a leaf spans at most +-texture around its colour (clipped to [0, 1]).
4. Values are quantised to uint8 (round(255 v)), as a photograph's pixels are.

Image ``i`` of seed ``s`` depends on (s, i) alone: its random numbers come from a Philox generator keyed
(s, i), so any slice of a set can be made independently, and images of different seeds never share a stream
(the train / test split uses two seeds).

    python -m data.deadleaves --size 32 --count 50000 --seed 0 --out data/deadleaves32_train.npz
    python -m data.deadleaves --size 64 --count 16 --png --out runs/leaves64/      # a folder of PNGs
    python -m data.deadleaves --report --sizes 32 64 128 256 --out results/deadleaves/   # spectra, grid

``open_dataset('deadleaves', config)`` generates the set a config describes (``config.data.dataset =
'DeadLeaves'``, parameters in ``config.data.deadleaves``) in memory; ``split='test'`` uses the test seed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ['DeadLeaves', 'DeadLeavesError', 'generate', 'radial_power', 'spectrum_slope', 'from_config',
           'DEFAULT_TRAIN_SEED', 'DEFAULT_TEST_SEED']

DEFAULT_TRAIN_SEED = 0
DEFAULT_TEST_SEED = 1
COLORS = ('rgb', 'grey')
_PAIRS_PER_CHUNK = 8_000_000    # pixel-disk pairs handled at once (memory ~ 100 bytes per pair)


class DeadLeavesError(ValueError):
    """A dead-leaves parameter out of range (one line: what was wrong and what was expected)."""


@dataclasses.dataclass(frozen=True)
class DeadLeaves:
    """The parameters of a dead-leaves image law.  ``r_min`` / ``r_max`` are fractions of the image side."""
    size: int
    channels: int = 3
    r_min: Optional[float] = None      # None: one pixel, 1 / size
    r_max: float = 0.5
    exponent: float = 3.0
    color: str = 'rgb'
    texture: float = 0.0
    coverage: float = 7.0

    def __post_init__(self):
        if not isinstance(self.size, (int, np.integer)) or self.size < 8:
            raise DeadLeavesError(f'dead leaves: size is {self.size}; expected an integer of at least 8 pixels')
        if self.r_min is None:
            object.__setattr__(self, 'r_min', 1. / self.size)
        if self.channels not in (1, 3):
            raise DeadLeavesError(f'dead leaves: channels is {self.channels}; expected 1 or 3')
        if not (0 < self.r_min < self.r_max):
            raise DeadLeavesError(f'dead leaves: r_min {self.r_min} and r_max {self.r_max}; expected '
                                  '0 < r_min < r_max (fractions of the image side)')
        if self.r_max > 4:
            raise DeadLeavesError(f'dead leaves: r_max is {self.r_max}; expected at most 4 image sides')
        if not math.isfinite(self.exponent):
            raise DeadLeavesError(f'dead leaves: exponent is {self.exponent}; expected a finite number (3: '
                                  'scale invariance)')
        if self.color not in COLORS:
            raise DeadLeavesError(f'dead leaves: color is {self.color!r}; expected one of {COLORS}')
        if not (0 <= self.texture <= 0.5):
            raise DeadLeavesError(f'dead leaves: texture is {self.texture}; expected 0 (flat leaves) to 0.5')
        if not (1 <= self.coverage <= 20):
            raise DeadLeavesError(f'dead leaves: coverage is {self.coverage}; expected 1 to 20 disks per pixel '
                                  'on average (7: under 0.1 % bare pixels)')
        if self.num_disks > 1_000_000:
            raise DeadLeavesError(f'dead leaves: r_min {self.r_min} needs {self.num_disks} disks per image; '
                                  'expected a larger r_min (at most 1,000,000 disks)')

    def _moment(self, p: float) -> float:
        """Integral of r^p r^-exponent over [r_min, r_max]."""
        q = p - self.exponent + 1
        a, b = self.r_min, self.r_max
        return math.log(b / a) if abs(q) < 1e-12 else (b ** q - a ** q) / q

    @property
    def mean_disk_area(self) -> float:
        """E[pi r^2] under the radius law (unit: image side squared)."""
        return math.pi * self._moment(2) / self._moment(0)

    @property
    def num_disks(self) -> int:
        """Disks per image: ``coverage`` layers on average over the enlarged square (1 + 2 r_max)^2."""
        return int(math.ceil(self.coverage * (1 + 2 * self.r_max) ** 2 / self.mean_disk_area))

    def radii(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF of the r^-exponent law on [r_min, r_max] at uniforms u."""
        a, b, q = self.r_min, self.r_max, 1 - self.exponent
        if abs(q) < 1e-12:
            return a * (b / a) ** u
        return (a ** q + u * (b ** q - a ** q)) ** (1 / q)

    def describe(self) -> str:
        return (f'dead leaves {self.size}x{self.size}x{self.channels}: disks r^-{self.exponent:g} on '
                f'[{self.r_min:g}, {self.r_max:g}] x side, colour {self.color}, texture {self.texture:g}, '
                f'{self.num_disks} disks per image (coverage {self.coverage:g})')


def _draw(spec: DeadLeaves, seed: int, index: int) -> np.ndarray:
    """The uniforms of image (seed, index): (K + 1, 4 + colours) float64 from Philox keyed (seed, index)."""
    ncol = spec.channels if spec.color == 'rgb' else 1
    rng = np.random.Generator(np.random.Philox(key=np.array([seed, index], dtype=np.uint64)))
    return rng.random((spec.num_disks + 1, 4 + ncol))


def _render(spec: DeadLeaves, u: np.ndarray) -> np.ndarray:
    """Paint the disks of B images (uniforms u: (B, K + 1, 4 + colours)) -> float (B, S, S, C) in [0, 1]."""
    B, K1, _ = u.shape
    S = spec.size
    u = torch.from_numpy(u)
    ext = 1 + 2 * spec.r_max
    cx = (u[..., 0] * ext - spec.r_max) * S                    # pixel units; pixel (i, j) has centre (j + .5, i + .5)
    cy = (u[..., 1] * ext - spec.r_max) * S
    r = torch.from_numpy(spec.radii(u[..., 2].numpy())) * S
    cx[:, 0], cy[:, 0], r[:, 0] = S / 2, S / 2, 2 * S            # layer 0: the background leaf
    # integer range of pixel centres inside each disk's bounding box, clipped to the image
    x0 = torch.ceil(cx - r - 0.5).clamp(min=0).long()
    x1 = torch.floor(cx + r - 0.5).clamp(max=S - 1).long()
    y0 = torch.ceil(cy - r - 0.5).clamp(min=0).long()
    y1 = torch.floor(cy + r - 0.5).clamp(max=S - 1).long()
    w = torch.maximum(x1 - x0 + 1, y1 - y0 + 1).reshape(-1)   # bounding-box side (<= 0: no pixel centre)
    top = torch.full((B * S * S + 1,), -1, dtype=torch.long)    # the last slot collects pixels outside a disk
    flat = lambda t: t.reshape(-1)                              # noqa: E731
    cxf, cyf, rf, x0f, y0f = flat(cx), flat(cy), flat(r), flat(x0), flat(y0)
    # The top disk of a pixel is the largest index covering it (later disks are painted over earlier ones).  Disks
    # are taken in buckets of similar box side W, each as an (n, W, W) block of candidate pixels.
    lo = 1
    while True:
        hi = max(lo + 1, int(lo * 1.25) + 1)
        sel = torch.nonzero((w >= lo) & (w < hi)).reshape(-1)
        for part in torch.split(sel, max(1, _PAIRS_PER_CHUNK // (hi - 1) ** 2)):
            ar = torch.arange(hi - 1)
            px = x0f[part, None] + ar                            # (n, W)
            py = y0f[part, None] + ar
            dx2 = (px + 0.5 - cxf[part, None]) ** 2
            dy2 = (py + 0.5 - cyf[part, None]) ** 2
            inside = (dy2[:, :, None] + dx2[:, None, :] <= rf[part, None, None] ** 2)
            inside &= (px < S)[:, None, :] & (py < S)[:, :, None]
            pix = ((part // K1) * (S * S))[:, None, None] + (py * S)[:, :, None] + px[:, None, :]
            pix = torch.where(inside, pix, B * S * S)
            top.scatter_reduce_(0, pix.reshape(-1), part[:, None, None].expand_as(pix).reshape(-1), reduce='amax')
        if hi > S:
            break
        lo = hi
    top = top[:-1]
    # colours of the top disks
    col = u[..., 4:].reshape(B * K1, -1)[top]                   # (B S S, ncol)
    if spec.texture > 0:
        ang = 2 * math.pi * u[..., 3].reshape(-1)[top]
        yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float64) + 0.5,
                                torch.arange(S, dtype=torch.float64) + 0.5, indexing='ij')
        xx, yy = xx.reshape(1, -1).expand(B, -1).reshape(-1), yy.reshape(1, -1).expand(B, -1).reshape(-1)
        proj = ((xx - cxf[top]) * torch.cos(ang) + (yy - cyf[top]) * torch.sin(ang)) / rf[top]
        col = col + spec.texture * proj.clamp(-1, 1)[:, None]
    col = col.reshape(B, S, S, -1)
    if col.shape[-1] != spec.channels:
        col = col.expand(B, S, S, spec.channels)
    return col.clamp(0, 1).numpy()


def generate(spec: DeadLeaves, count: int, seed: int = DEFAULT_TRAIN_SEED, start: int = 0,
             batch: Optional[int] = None) -> np.ndarray:
    """Images ``start .. start + count - 1`` of ``seed``: uint8 (count, S, S, C).  Image i depends on (seed, i)
    alone, so ``generate(spec, 10, s, 5)`` equals ``generate(spec, 20, s)[5:15]``."""
    if int(count) != count or count < 1:
        raise DeadLeavesError(f'dead leaves: count is {count}; expected a positive number of images')
    if int(seed) != seed or seed < 0 or int(start) != start or start < 0:
        raise DeadLeavesError(f'dead leaves: seed {seed} and start {start}; expected non-negative integers')
    count, seed, start = int(count), int(seed), int(start)
    S, C = spec.size, spec.channels
    out = np.empty((count, S, S, C), np.uint8)
    pairs_per_image = 1.3 * spec.coverage * S * S + 4 * spec.num_disks
    batch = batch or max(1, min(256, int(4 * _PAIRS_PER_CHUNK / pairs_per_image)))
    for b0 in range(0, count, batch):
        n = min(batch, count - b0)
        u = np.stack([_draw(spec, seed, start + b0 + i) for i in range(n)])
        out[b0:b0 + n] = np.rint(_render(spec, u) * 255)
    return out


def from_config(config) -> DeadLeaves:
    """The law ``config.data`` describes (``image_size``, ``num_channels``, ``deadleaves.*``)."""
    d = config.data
    p = dict(d.deadleaves) if 'deadleaves' in d else {}
    keep = {f.name for f in dataclasses.fields(DeadLeaves)} - {'size', 'channels'}
    unknown = sorted(set(p) - keep - {'train_seed', 'test_seed', 'train_count', 'test_count'})
    if unknown:
        raise DeadLeavesError(f'config.data.deadleaves has unknown keys {unknown}; expected some of {sorted(keep)} '
                              'and train_seed, test_seed, train_count, test_count')
    return DeadLeaves(size=int(d.image_size), channels=int(d.num_channels), **{k: p[k] for k in keep if k in p})


# ---------------------------------------------------------------------------------------------------------------
# Spectra

def radial_power(images, chunk: Optional[int] = None) -> tuple:
    """Radially averaged power spectrum of images (N, S, S[, C]) (uint8 or float; uint8 is divided by 255):
    the mean over images and channels of |orthonormal DFT(x - mean image)|^2, averaged over the rings of integer
    radius k = 1 .. S/2 on the unshifted grid.  Returns (f, P): f = k / S in cycles per pixel.  The images are
    taken ``chunk`` at a time (default: about 2^22 pixel values, 32 MB of float64), so that 10,000 images of 128 px
    need no more memory than a few hundred: the mean image is that of all N, as if they were taken at once."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    N, S = arr.shape[0], arr.shape[1]
    chunk = int(chunk or max(1, (1 << 22) // max(1, arr[0].size)))

    def part(i):
        x = torch.as_tensor(np.ascontiguousarray(arr[i:i + chunk]))
        return x.double() / 255 if x.dtype == torch.uint8 else x.double()
    mean = sum(part(i).sum(0) for i in range(0, N, chunk)) / N
    p = 0.
    for i in range(0, N, chunk):
        x = (part(i) - mean).permute(0, 3, 1, 2)
        p = p + torch.fft.fft2(x, norm='ortho').abs().pow(2).sum(0).mean(0)
    p = (p / N).numpy()
    fy, fx = np.meshgrid(np.fft.fftfreq(S) * S, np.fft.fftfreq(S) * S, indexing='ij')
    k = np.rint(np.hypot(fx, fy)).astype(int)
    ks = np.arange(1, S // 2 + 1)
    P = np.array([p[k == kk].mean() for kk in ks])
    return ks / S, P


def spectrum_slope(f, P, band=(None, 0.25)) -> float:
    """Least-squares slope of log P against log f over f in [band[0], band[1]] (band[0] None: from the second
    ring, 2 / S)."""
    f, P = np.asarray(f), np.asarray(P)
    lo = f[1] if band[0] is None else band[0]
    m = (f >= lo - 1e-12) & (f <= band[1] + 1e-12)
    return float(np.polyfit(np.log(f[m]), np.log(P[m]), 1)[0])


# ---------------------------------------------------------------------------------------------------------------
# Command line

def _write(images: np.ndarray, out: str, png: bool, meta: dict):
    from utils.atomic import atomic_write_bytes
    import io
    if png:
        from PIL import Image
        os.makedirs(out, exist_ok=True)
        width = len(str(meta['start'] + len(images) - 1))
        for i, im in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, format='PNG')
            atomic_write_bytes(os.path.join(out, f'{meta["start"] + i:0{width}d}.png'), buf.getvalue())
        atomic_write_bytes(os.path.join(out, 'deadleaves.json'), json.dumps(meta, indent=1).encode())
    else:
        buf = io.BytesIO()
        np.savez(buf, images=images, meta=np.array(json.dumps(meta)))
        atomic_write_bytes(out, buf.getvalue())


def report(sizes: Sequence[int], out: str, count: int, base: dict, log=print):
    """Spectrum, slope, pixel moments and a grid per size; writes <out>/spectra.json, spectra.png, grid_<S>.png."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from utils.images import make_grid, save_png
    os.makedirs(out, exist_ok=True)
    rows = []
    fig, ax = plt.subplots(figsize=(5, 4))
    for S in sizes:
        spec = DeadLeaves(size=S, **base)
        t = time.perf_counter()
        im = generate(spec, count, seed=DEFAULT_TRAIN_SEED)
        dt = time.perf_counter() - t
        f, P = radial_power(im)
        x = im / 255.
        row = dict(size=S, count=count, seconds=round(dt, 2), disks_per_image=spec.num_disks,
                   slope=round(spectrum_slope(f, P), 3), slope_low=round(spectrum_slope(f, P, (None, 0.125)), 3),
                   slope_high=round(spectrum_slope(f, P, (0.125, 0.5)), 3),
                   pixel_mean=round(float(x.mean()), 4), pixel_var=round(float(x.var()), 4),
                   f=f.tolist(), P=P.tolist())
        rows.append(row)
        log(f'{S:5d} px: slope {row["slope"]:.2f} (f 2/S..0.25), {row["slope_low"]:.2f} below 1/8, '
            f'{row["slope_high"]:.2f} above; mean {row["pixel_mean"]:.3f}, var {row["pixel_var"]:.4f}; '
            f'{count} images in {dt:.1f} s ({spec.num_disks} disks each)')
        ax.loglog(f, P, label=f'{S} px (slope {row["slope"]:.2f})')
        save_png(make_grid(im[:32], 8, fill=255), os.path.join(out, f'grid_{S}.png'))
    f = np.logspace(-2.5, math.log10(0.5))
    ax.loglog(f, rows[0]['P'][0] * (f / rows[0]['f'][0]) ** -2, 'k--', lw=0.8, label='f^-2')
    ax.set_xlabel('frequency (cycles / pixel)')
    ax.set_ylabel('radial power')
    ax.set_title(f'dead leaves, {count} images per size')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'spectra.png'), dpi=120)
    meta = dict(params=base, seed=DEFAULT_TRAIN_SEED, command='python -m data.deadleaves ' + ' '.join(sys.argv[1:]),
                torch=torch.__version__, numpy=np.__version__, threads=torch.get_num_threads(), rows=rows)
    with open(os.path.join(out, 'spectra.json'), 'w') as fh:
        json.dump(meta, fh, indent=1)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m data.deadleaves', description=__doc__.split('\n\n')[0])
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--channels', type=int, default=3)
    ap.add_argument('--r_min', type=float, default=None, help='fraction of the side (default: one pixel, 1/size)')
    ap.add_argument('--r_max', type=float, default=DeadLeaves.r_max)
    ap.add_argument('--exponent', type=float, default=DeadLeaves.exponent)
    ap.add_argument('--color', default=DeadLeaves.color, help=f'one of {COLORS}')
    ap.add_argument('--texture', type=float, default=DeadLeaves.texture)
    ap.add_argument('--coverage', type=float, default=DeadLeaves.coverage)
    ap.add_argument('--count', type=int, default=10000)
    ap.add_argument('--seed', type=int, default=DEFAULT_TRAIN_SEED, help='train 0, test 1 by convention')
    ap.add_argument('--start', type=int, default=0, help='index of the first image')
    ap.add_argument('--out', required=True, help='an .npz file, or a folder with --png / --report')
    ap.add_argument('--png', action='store_true', help='write a folder of PNGs instead of an .npz')
    ap.add_argument('--report', action='store_true', help='measure spectra at --sizes and write plots to --out')
    ap.add_argument('--sizes', type=int, nargs='+', default=[32, 64, 128, 256])
    a = ap.parse_args(argv)
    base = dict(channels=a.channels, r_min=a.r_min, r_max=a.r_max, exponent=a.exponent, color=a.color,
                texture=a.texture, coverage=a.coverage)
    try:
        if a.report:
            report(a.sizes, a.out, a.count, base)
            return 0
        spec = DeadLeaves(size=a.size, **base)
        if not a.png and not a.out.endswith('.npz'):
            raise DeadLeavesError(f"--out is '{a.out}'; expected a file ending in .npz (or pass --png for a folder)")
        if a.png and os.path.isfile(a.out):
            raise DeadLeavesError(f"--out '{a.out}' is a file; expected a folder for --png")
        t = time.perf_counter()
        im = generate(spec, a.count, seed=a.seed, start=a.start)
        meta = dict(dataclasses.asdict(spec), seed=a.seed, start=a.start, count=a.count)
        _write(im, a.out, a.png, meta)
        print(f'{spec.describe()}: images {a.start}..{a.start + a.count - 1} of seed {a.seed} -> {a.out} '
              f'({time.perf_counter() - t:.1f} s)')
    except (DeadLeavesError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
