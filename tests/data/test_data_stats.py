"""data.stats: the PDS statistics against analytic spectra, the official mask_gen_demo convention, determinism."""
import hashlib
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data import DataError, DataWarning, compute_stats, open_dataset, plot_stats, run_stats, subset_indices
from data.stats import STATS_FORMAT


def _cosine(h, w, ku, kv, amp, offset):
    hh = torch.arange(h, dtype=torch.float64)[:, None]
    ww = torch.arange(w, dtype=torch.float64)[None, :]
    return offset + amp * torch.cos(2 * math.pi * (ku * hh / h + kv * ww / w))


def test_cosine_and_constant_have_analytic_spectrum():
    h, w = 8, 12                                    # non-square: a transposed axis would put power elsewhere
    cos = _cosine(h, w, 1, 2, 0.25, 0.5)
    const = torch.full((h, w), 0.3, dtype=torch.float64)
    images = [cos[None].float(), const[None].float()]
    res = compute_stats(images, progress=False)
    assert res['count'] == 2
    assert res['freq'].dtype == np.float32 and res['freq'].shape == (1, h, w)
    power = np.zeros((h, w))
    power[0, 0] = ((0.5 * h * w) ** 2 + (0.3 * h * w) ** 2) / 2     # DC = HW * mean, mean over the 2 images
    power[1, 2] = power[h - 1, w - 2] = (0.25 * h * w / 2) ** 2 / 2  # cos -> HW/2 at +-(1,2), unshifted indices
    np.testing.assert_allclose(res['freq'][0], np.log(1 + power), rtol=1e-6, atol=1e-5)
    space = ((cos ** 2 + const ** 2) / 2).numpy()
    np.testing.assert_allclose(res['space'][0], space, rtol=1e-6)


def test_constant_image_space_is_square_and_dc_only():
    c = 0.7
    res = compute_stats([torch.full((3, 4, 4), c)] * 3, progress=False)
    np.testing.assert_allclose(res['space'], np.full((3, 4, 4), c * c, np.float32), rtol=1e-6)
    expected = np.zeros((3, 4, 4))
    expected[:, 0, 0] = np.log(1 + (c * 16) ** 2)
    np.testing.assert_allclose(res['freq'], expected, rtol=1e-6, atol=1e-6)


def test_channels_are_kept_apart():
    h = w = 8
    x = torch.stack([_cosine(h, w, 1, 2, 0.25, 0.5), _cosine(h, w, 0, 3, 0.25, 0.5),
                     torch.full((h, w), 0.2, dtype=torch.float64)]).float()
    res = compute_stats([x], progress=False)
    peak = math.log(1 + (0.25 * h * w / 2) ** 2)
    assert res['freq'][0, 1, 2] == pytest.approx(peak, rel=1e-6)
    assert res['freq'][0, 7, 6] == pytest.approx(peak, rel=1e-6)
    assert res['freq'][0, 0, 3] == pytest.approx(0, abs=1e-5)
    assert res['freq'][1, 0, 3] == pytest.approx(peak, rel=1e-6)
    assert res['freq'][1, 0, 5] == pytest.approx(peak, rel=1e-6)
    assert res['freq'][1, 1, 2] == pytest.approx(0, abs=1e-5)
    np.testing.assert_allclose(res['freq'][2].ravel()[1:], 0, atol=1e-5)
    assert res['freq'][2, 0, 0] == pytest.approx(math.log(1 + (0.2 * h * w) ** 2), rel=1e-6)


def test_matches_official_mask_gen_demo():
    # fudan-zvg/PDS mask_gen_demo.py: batch of 1, acc += |dft2d(img)|.mean(dim=0)**2, /N, log(1 + .); acc += img**2
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(10, 3, 8, 6, generator=g)

    def dft2d(x):
        return torch.fft.fft(torch.fft.fft(x, dim=2), dim=3)

    freq = torch.zeros(3, 8, 6)
    space = torch.zeros(3, 8, 6)
    for i in range(len(xs)):
        img = xs[i:i + 1]
        freq += torch.abs(dft2d(img)).mean(dim=0) ** 2
        space += (img ** 2).mean(dim=0)
    freq = torch.log(1 + freq / len(xs))
    space = space / len(xs)
    res = compute_stats(list(xs), batch_size=4, progress=False)
    np.testing.assert_allclose(res['freq'], freq.numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(res['space'], space.numpy(), rtol=2e-6)


def test_subset_is_seeded_sorted_and_reproducible():
    g = torch.Generator().manual_seed(1)
    xs = list(torch.rand(20, 1, 4, 4, generator=g))
    idx = subset_indices(20, 5, seed=3)
    g3 = torch.Generator()
    g3.manual_seed(3)
    assert idx == sorted(torch.randperm(20, generator=g3)[:5].tolist())
    a = compute_stats(xs, num_images=5, seed=3, batch_size=2, progress=False)
    b = compute_stats(xs, num_images=5, seed=3, batch_size=2, progress=False)
    c = compute_stats(xs, num_images=5, seed=4, batch_size=2, progress=False)
    direct = compute_stats([xs[i] for i in idx], progress=False)
    assert a['count'] == 5
    assert a['freq'].tobytes() == b['freq'].tobytes() and a['space'].tobytes() == b['space'].tobytes()
    np.testing.assert_allclose(a['freq'], direct['freq'], rtol=1e-6)
    np.testing.assert_allclose(a['space'], direct['space'], rtol=1e-6)
    assert not np.allclose(a['space'], c['space'])
    full = compute_stats(xs, progress=False)
    every = compute_stats(xs, num_images=20, seed=9, progress=False)
    np.testing.assert_allclose(full['freq'], every['freq'], rtol=1e-6)
    with pytest.raises(DataError, match='only 20'):
        compute_stats(xs, num_images=21, progress=False)


def test_rejects_centred_data(tmp_path, make_config):
    with pytest.raises(ValueError, match=r'\[0,1\]'):
        compute_stats([torch.full((1, 4, 4), -0.5)], progress=False)


def _write_folder(root, n=6, size=16, seed=0, mode='RGB'):
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for i in range(n):
        shape = (size, size, 3) if mode == 'RGB' else (size, size)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(os.path.join(root, f'{i:03d}.png'))
    return str(root)


def _read_all(paths):
    return {k: open(p, 'rb').read() for k, p in paths.items() if k in ('freq', 'space', 'spectrum', 'json')}


def test_run_stats_is_byte_identical_and_forces_uncentred(tmp_path, make_config):
    folder = _write_folder(tmp_path / 'imgs', n=7)
    cfg = make_config('TEST', 16, 3, 'none', centered=True)   # statistics are always on [0,1]
    r1 = run_stats(cfg, folder, str(tmp_path / 'a'), 'toy', progress=False, batch_size=3)
    r2 = run_stats(cfg, folder, str(tmp_path / 'b'), 'toy', progress=False, batch_size=3)
    r3 = run_stats(cfg, folder, str(tmp_path / 'a'), 'toy', progress=False, batch_size=3,
                   overwrite=True)                                                          # overwrite in place
    assert _read_all(r1) == _read_all(r2) == _read_all(r3)
    assert sorted(os.listdir(tmp_path / 'a')) == ['toy_freq.npy', 'toy_space.npy', 'toy_spectrum.npy',
                                                  'toy_stats.json']  # no tmp left
    freq, space = np.load(r1['freq']), np.load(r1['space'])
    assert freq.dtype == np.float32 and freq.shape == (3, 16, 16) and space.shape == (3, 16, 16)
    ds = open_dataset(folder, make_config('TEST', 16, 3, 'none', centered=False))
    ref = compute_stats(ds, progress=False)
    np.testing.assert_array_equal(freq, ref['freq'])
    np.testing.assert_array_equal(space, ref['space'])
    spectrum = np.load(r1['spectrum'])                     # [mean |fft2 x|^2, mean x], float64, no log
    assert spectrum.dtype == np.float64 and spectrum.shape == (2, 3, 16, 16)
    np.testing.assert_allclose(np.log1p(spectrum[0]), freq, rtol=1e-6)
    imgs = torch.stack([ds[i] for i in range(len(ds))]).double()
    np.testing.assert_allclose(spectrum[1], imgs.mean(0).numpy(), rtol=1e-12, atol=1e-14)
    text = open(r1['json']).read()
    rec = json.loads(text)
    assert text == json.dumps(rec, sort_keys=True, indent=2) + '\n'
    assert rec['count'] == 7 and rec['seed'] == 0 and rec['num_images'] is None and rec['data_path'] == folder
    assert rec['config'] == {'dataset': 'TEST', 'image_size': 16, 'num_channels': 3, 'crop': 'none',
                             'centered': True}
    assert rec['format'] == STATS_FORMAT and '[0,1] (uncentred)' in rec['transform']
    for fn, digest in rec['sha256'].items():
        assert hashlib.sha256(open(tmp_path / 'a' / fn, 'rb').read()).hexdigest() == digest


def test_run_stats_subset_and_workers(tmp_path, make_config):
    folder = _write_folder(tmp_path / 'imgs', n=9, seed=2)
    cfg = make_config('TEST', 16, 3, 'none')
    a = run_stats(cfg, folder, str(tmp_path / 'a'), 'sub', num_images=4, seed=5, progress=False, batch_size=2)
    b = run_stats(cfg, folder, str(tmp_path / 'b'), 'sub', num_images=4, seed=5, num_workers=2, progress=False,
                  batch_size=2)
    assert _read_all(a) == _read_all(b)
    rec = json.loads(open(a['json']).read())
    assert rec['count'] == 4 and rec['num_images'] == 4 and rec['seed'] == 5
    ds = open_dataset(folder, cfg)
    direct = compute_stats([ds[i] for i in subset_indices(9, 4, 5)], progress=False)
    np.testing.assert_allclose(np.load(a['freq']), direct['freq'], rtol=1e-6)
    c = run_stats(cfg, folder, str(tmp_path / 'c'), 'sub', num_images=4, seed=6, progress=False, batch_size=2)
    assert open(c['space'], 'rb').read() != open(a['space'], 'rb').read()


def test_run_stats_skip_bad_records_skipped(tmp_path, make_config):
    folder = _write_folder(tmp_path / 'imgs', n=3)
    (tmp_path / 'imgs' / 'zz_bad.png').write_bytes(b'not an image at all')
    cfg = make_config('TEST', 16, 3, 'none')
    with pytest.raises(DataError, match='zz_bad.png'):
        run_stats(cfg, folder, str(tmp_path / 'o'), 'x', progress=False)
    with pytest.warns(DataWarning, match='zz_bad.png'):
        r = run_stats(cfg, folder, str(tmp_path / 'o'), 'x', skip_bad=True, progress=False)
    assert r['count'] == 3 and r['skipped'] == ['zz_bad.png']
    rec = json.loads(open(r['json']).read())
    assert rec['skipped'] == ['zz_bad.png'] and rec['count'] == 3 and rec['skip_bad'] is True


def test_plot_stats_writes_png(tmp_path, make_config):
    pytest.importorskip('matplotlib')
    folder = _write_folder(tmp_path / 'imgs', n=3)
    r = run_stats(make_config('TEST', 16, 3, 'none'), folder, str(tmp_path / 'o'), 'toy', progress=False)
    out = plot_stats(r['freq'], r['space'], str(tmp_path / 'o' / 'toy_stats.png'))
    with Image.open(out) as im:
        assert im.format == 'PNG' and im.size[0] > 300 and im.size[1] > 300
    g = _write_folder(tmp_path / 'gray', n=2, mode='L')
    r = run_stats(make_config('TEST', 16, 1, 'none'), g, str(tmp_path / 'g'), 'gray', progress=False)
    out = plot_stats(r['freq'], None, str(tmp_path / 'g' / 'gray.png'))
    with Image.open(out) as im:
        assert im.format == 'PNG'
    with pytest.raises(ValueError):
        plot_stats(None, None, str(tmp_path / 'none.png'))
