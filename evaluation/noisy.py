"""The share of samples with a noisy background, for MNIST-like data (digits centred in an empty frame).

MNIST's digits sit in a 20 x 20 box centred in the 28 x 28 image, so a 4-pixel frame around every real digit is
black: on the 10,000 test images the frame's mean brightness is 0 for all of them.  A sample whose frame is not
black carries noise the sampler left behind (the "noisy background" that FID alone cannot separate from badly
drawn digits, e.g. the deterministic samplers of Model B in docs/results-model-b.md).  The measure:

    frame mean = the mean of the pixels within ``frame`` pixels of the border, in [0, 1];
    noisy      = frame mean > ``threshold`` (default 0.05: 5 % grey on average over the 96 frame pixels of 28 x 28,
                 where a clean sample has ~0 and a visibly noisy one 0.1-0.3).

It is a heuristic for data with an empty border and says nothing on other data (natural images, dead leaves).

    python -m evaluation.noisy runs/study/b_rivals/<sha8>/dpmpp_2m_10 results/model_b/grids/b_rivals/edm_10.png \\
        --reference data:$PDS_DATA/mnist

A source is a sample workdir (its ``batches/batch_*.npz``), an .npz / .npy array, a folder or zip of images
(``evaluation.spectrum.read_images``), or a grid PNG of ``utils.images.make_grid`` (2-pixel borders; ``--tile`` px
images, 28 by default), whose images are cut out again.  ``--reference data:<path>`` adds the test split of a
dataset as the calibration row.
"""
import argparse
import os
import sys

import numpy as np

from evaluation.spectrum import SpectrumError, read_images

FRAME = 4
THRESHOLD = 0.05


def frame_mean(images, frame=FRAME):
    """Per image (N,): the mean of the pixels within ``frame`` pixels of the border, in [0, 1] (uint8 / 255 or
    float), over every channel."""
    x = np.asarray(images)
    x = x.astype(np.float64) / 255. if x.dtype == np.uint8 else x.astype(np.float64)
    if x.ndim == 3:
        x = x[..., None]
    n, h, w = x.shape[:3]
    if not 0 < 2 * frame < min(h, w):
        raise ValueError(f'frame = {frame} pixels does not fit {h} x {w} images; expected 1 .. {min(h, w) // 2 - 1}')
    mask = np.ones((h, w), dtype=bool)
    mask[frame:h - frame, frame:w - frame] = False
    return x[:, mask].reshape(n, -1).mean(axis=1)


def noisy_fraction(images, frame=FRAME, threshold=THRESHOLD):
    """The share of ``images`` whose frame mean exceeds ``threshold``."""
    return float((frame_mean(images, frame) > threshold).mean())


def grid_tiles(grid, tile):
    """The images of a ``utils.images.make_grid`` grid (2-pixel borders) of ``tile`` x ``tile`` images, row by row
    (the empty cells of a part-filled last row come back black)."""
    g = np.asarray(grid)
    h, w = g.shape[:2]
    rows, cols = (h - 2) / (tile + 2), (w - 2) / (tile + 2)
    if rows != int(rows) or cols != int(cols) or rows < 1 or cols < 1:
        raise ValueError(f'a {w} x {h} grid is not made of {tile} px images with 2-pixel borders; expected '
                         f'(k ({tile} + 2) + 2) pixels a side (--tile)')
    tiles = [g[2 + r * (tile + 2): 2 + r * (tile + 2) + tile, 2 + c * (tile + 2): 2 + c * (tile + 2) + tile]
             for r in range(int(rows)) for c in range(int(cols))]
    return np.stack(tiles)


def read_source(path, tile=28):
    """(images, description) of one source (module docstring)."""
    if os.path.isfile(path) and path.lower().endswith('.png'):
        from PIL import Image
        with Image.open(path) as im:
            grid = np.asarray(im.convert('L'))
        tiles = grid_tiles(grid, tile)
        return tiles, f'grid {path} ({len(tiles)} images)'
    return read_images(path)


def reference_images(spec, size=28, channels=1):
    """The test split of ``data:<path>`` (a dataset open_dataset reads, at ``size`` px and ``channels``) as float
    NHWC in [0, 1]."""
    import ml_collections
    from data import open_dataset
    path = os.path.expandvars(spec[5:] if spec.startswith('data:') else spec)
    if '$' in path:
        raise SpectrumError(f"the reference {spec!r} names an unset environment variable")
    config = ml_collections.ConfigDict({'data': dict(dataset='reference', image_size=size, num_channels=channels,
                                                     centered=False, crop='none', random_flip=False,
                                                     uniform_dequantization=False)})
    ds = open_dataset(path, config, split='test')
    x = np.stack([np.asarray(ds[i]) for i in range(len(ds))]).transpose(0, 2, 3, 1)
    return x, f'{ds.describe()} (test split)'


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m evaluation.noisy', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('sources', nargs='+', help='sample workdirs, arrays, image folders or grid PNGs')
    p.add_argument('--reference', default=None, help='data:<path>: a dataset whose test split is the calibration row')
    p.add_argument('--frame', type=int, default=FRAME)
    p.add_argument('--threshold', type=float, default=THRESHOLD)
    p.add_argument('--tile', type=int, default=28, help='the image size of grid PNGs (default 28)')
    args = p.parse_args(argv)
    rows = []
    try:
        if args.reference:
            rows.append(('reference',) + reference_images(args.reference, args.tile))
        for path in args.sources:
            rows.append((os.path.basename(path.rstrip('/')),) + read_source(path, args.tile))
        print(f'| source | images | noisy (frame mean > {args.threshold:g}, {args.frame}-pixel frame) | median frame mean |')
        print('|---|---|---|---|')
        for name, images, _ in rows:
            m = frame_mean(images, args.frame)
            print(f'| {name} | {len(m)} | {float((m > args.threshold).mean()):.1%} | {float(np.median(m)):.4f} |')
    except (SpectrumError, ValueError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
