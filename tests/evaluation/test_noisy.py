"""evaluation/noisy.py: the share of samples with a noisy background (MNIST-like data with an empty frame)."""
import numpy as np
import pytest

from evaluation import noisy
from utils.images import make_grid


def _digits(n, rng):
    """Clean 28 x 28 'digits': a bright blob inside the 20 x 20 centre, a black 4-pixel frame."""
    x = np.zeros((n, 28, 28, 1), dtype=np.uint8)
    x[:, 8:20, 10:18] = rng.integers(150, 256, size=(n, 12, 8, 1))
    return x


def test_clean_digits_are_not_noisy_and_background_noise_is():
    rng = np.random.default_rng(0)
    x = _digits(40, rng)
    assert noisy.noisy_fraction(x) == 0. and float(noisy.frame_mean(x).max()) == 0.
    noise = rng.normal(0., 0.25, size=x.shape).clip(0, 1)            # clipped N(0, 0.25^2): mean ~0.1 on the frame
    y = x.astype(np.float64) / 255.
    y[:10] = np.maximum(y[:10], noise[:10])
    m = noisy.frame_mean(y)
    assert noisy.noisy_fraction(y) == 0.25 and 0.08 < float(m[:10].mean()) < 0.12 and float(m[10:].max()) == 0.
    faint = y.copy()
    faint[:10] = np.maximum(x[:10] / 255., noise[:10] * 0.3)          # 30 % of that noise: under the threshold
    assert noisy.noisy_fraction(faint) == 0.


def test_grid_tiles_are_the_images_of_make_grid():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(61, 28, 28, 1), dtype=np.uint8)   # 8 x 8 grid, the last row part-filled
    tiles = noisy.grid_tiles(make_grid(x)[..., 0], 28)
    assert tiles.shape == (64, 28, 28) and np.array_equal(tiles[:61], x[..., 0]) and not tiles[61:].any()
    with pytest.raises(ValueError, match='not made of 30 px images'):
        noisy.grid_tiles(make_grid(x)[..., 0], 30)


def test_bad_frame_is_one_line():
    with pytest.raises(ValueError) as err:
        noisy.frame_mean(np.zeros((2, 8, 8)), frame=4)
    assert 'frame = 4 pixels does not fit 8 x 8 images' in str(err.value) and '\n' not in str(err.value)
