"""Dead-leaves generator (data/deadleaves.py): determinism, disjoint splits, the 1/f^2 spectrum, clear errors."""
import hashlib

import ml_collections
import numpy as np
import pytest

from data import deadleaves as dl
from data.readers import DataError, open_dataset


def _config(size=32, channels=3, **params):
    return ml_collections.ConfigDict(dict(data=dict(
        dataset='DeadLeaves', image_size=size, num_channels=channels, centered=False, crop='none', random_flip=False,
        uniform_dequantization=False, deadleaves=dict(params))))


def test_same_seed_same_bytes_and_slices_agree():
    spec = dl.DeadLeaves(size=32)
    a = dl.generate(spec, 12, seed=3)
    b = dl.generate(spec, 12, seed=3, batch=5)          # another batching: still image i = f(seed, i)
    c = dl.generate(spec, 4, seed=3, start=7)
    assert hashlib.sha256(a.tobytes()).hexdigest() == hashlib.sha256(b.tobytes()).hexdigest()
    assert np.array_equal(a[7:11], c)
    assert not np.array_equal(a, dl.generate(spec, 12, seed=4))


@pytest.mark.slow
def test_train_and_test_splits_are_disjoint():
    cfg = _config(train_count=300, test_count=300)
    train, test = open_dataset('deadleaves', cfg), open_dataset('deadleaves', cfg, split='test')
    assert len(train) == len(test) == 300
    h = lambda ds: {hashlib.sha256(ds.source.arr[i].tobytes()).hexdigest() for i in range(len(ds))}  # noqa: E731
    assert len(h(train)) == 300 and not h(train) & h(test)
    assert 'seed 0 (train)' in train.describe() and 'seed 1 (test)' in test.describe()
    x = train[0]
    assert x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1


@pytest.mark.slow
@pytest.mark.parametrize('size, band', [(32, (-2.0, -1.55)), (64, (-2.05, -1.6))])
def test_spectrum_is_close_to_one_over_f_squared(size, band):
    # measured with 1,000+ images: slope -1.76 at 32 px, -1.80 at 64 px (f from 2/S to 0.25 cycles / pixel);
    # white noise gives 0, a smooth image well below -3
    im = dl.generate(dl.DeadLeaves(size=size), 200 if size == 32 else 80)
    f, P = dl.radial_power(im)
    assert band[0] < dl.spectrum_slope(f, P) < band[1]
    x = im / 255.
    assert abs(x.mean() - 0.5) < 0.02 and abs(x.var() - 1 / 12) < 0.006      # uniform colours: 1/2, 1/12


def test_radial_power_and_slope_on_known_spectra():
    rng = np.random.default_rng(0)
    white = rng.standard_normal((64, 32, 32))
    f, P = dl.radial_power(white)
    assert abs(dl.spectrum_slope(f, P)) < 0.15 and np.allclose(P, 1, rtol=0.2)
    # a field with power exactly k^-2 per frequency
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing='ij'))
    k[0, 0] = 1
    spec = np.fft.fft2(rng.standard_normal((128, 64, 64))) * k ** -1.
    field = np.real(np.fft.ifft2(spec))
    f, P = dl.radial_power(field)
    assert -2.15 < dl.spectrum_slope(f, P) < -1.85


def test_texture_and_grey():
    g = dl.generate(dl.DeadLeaves(size=16, color='grey'), 4)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 0], g[..., 2])
    flat = dl.generate(dl.DeadLeaves(size=32, channels=1), 8)
    tex = dl.generate(dl.DeadLeaves(size=32, channels=1, texture=0.2), 8)
    assert tex.shape == (8, 32, 32, 1)
    # the same leaves (same draws): a texture changes values by at most 0.2 around each leaf's colour
    d = np.abs(tex.astype(int) - flat.astype(int))
    assert 0 < d.max() <= 0.2 * 255 + 1


@pytest.mark.parametrize('kwargs, words', [
    (dict(size=32, r_min=0.5, r_max=0.5), 'expected 0 < r_min < r_max'),
    (dict(size=32, r_min=0.6, r_max=0.5), 'expected 0 < r_min < r_max'),
    (dict(size=4), 'expected an integer of at least 8'),
    (dict(size=32, channels=2), 'expected 1 or 3'),
    (dict(size=32, color='blue'), 'expected one of'),
])
def test_bad_parameters_one_line(kwargs, words):
    with pytest.raises(dl.DeadLeavesError) as e:
        dl.DeadLeaves(**kwargs)
    assert words in str(e.value) and '\n' not in str(e.value)


def test_bad_count_and_cli_errors(tmp_path, capsys):
    with pytest.raises(dl.DeadLeavesError, match='count is 0; expected a positive number'):
        dl.generate(dl.DeadLeaves(size=16), 0)
    assert dl.main(['--size', '16', '--count', '0', '--out', str(tmp_path / 'a.npz')]) == 2
    assert dl.main(['--size', '16', '--r_min', '0.6', '--r_max', '0.5', '--out', str(tmp_path / 'a.npz')]) == 2
    assert dl.main(['--size', '16', '--count', '2', '--out', str(tmp_path / 'a.png')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith('error: dead leaves') or '.npz' in line for line in err)
    assert not (tmp_path / 'a.npz').exists()
    with pytest.raises(DataError, match='r_min 0.6 and r_max 0.5'):
        open_dataset('deadleaves:4', _config(r_min=0.6, r_max=0.5))


def test_cli_writes_what_the_readers_read(tmp_path):
    assert dl.main(['--size', '16', '--count', '6', '--seed', '2', '--out', str(tmp_path / 'l.npz')]) == 0
    assert dl.main(['--size', '16', '--count', '6', '--seed', '2', '--png', '--out', str(tmp_path / 'png')]) == 0
    cfg = _config(16)
    want = dl.generate(dl.DeadLeaves(size=16), 6, seed=2)
    for path in (tmp_path / 'l.npz', tmp_path / 'png'):
        ds = open_dataset(str(path), cfg)
        got = np.stack([(ds[i].permute(1, 2, 0).numpy() * 255).round() for i in range(6)])
        assert np.array_equal(got, want)
