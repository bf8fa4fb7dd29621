"""The curvature diagnostic (evaluation/curvature.py): exact on a Gaussian score, a real estimator otherwise, and a
command that runs on a checkpoint (or says in one line what is wrong)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from evaluation import curvature as cv
from preconditioning import auto
from tests.evaluation.eval_helpers import ONE_THREAD, ROOT
from tests.preconditioning.test_auto import gaussian_score, powerlaw


def test_exact_on_a_gaussian_score_whatever_the_probes():
    """A score linear and diagonal in the DFT: the estimate is 1 / (P + sigma^2) at every frequency, one probe."""
    spec = auto.Spectrum.gaussian(powerlaw(2.), 0.3 * np.ones((1, 16, 16)))
    score = gaussian_score(spec)
    x0 = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    for sigma in (1., 0.1, 0.01):
        c = cv.curvature(score, x0, sigma, probes=1, generator=torch.Generator().manual_seed(2))
        np.testing.assert_allclose(c, 1. / (spec.P + sigma ** 2), rtol=2e-3)
    # at sigma = 0.1 the lowest band is ~6x softer than the highest (P(0) = 0.05 against ~6e-4): the bands show it
    res = cv.measure(score, x0, [0.1], spec.P, probes=1)
    low, *_, high = cv.band_medians(res['learned'][0], 0.1, cv.radial_bands(spec.shape))
    assert low < 0.3 and high > 0.9


def test_the_dft_diagonal_of_a_pixel_space_operator():
    """s(x) = -w * x with w varying over pixels is not DFT-diagonal; the DFT-diagonal of diag(w) is mean(w) at
    every frequency.  The estimate converges to it (Monte-Carlo error ~ 1 / sqrt(images x probes))."""
    w = torch.linspace(0.5, 3., 16 * 16, dtype=torch.float64).reshape(1, 1, 16, 16)

    def score(x, sigma):
        return (-w * x.double()).float()
    x0 = torch.zeros(64, 1, 16, 16)
    c = cv.curvature(score, x0, 0.5, probes=8, generator=torch.Generator().manual_seed(0))
    assert abs(np.median(c) - float(w.mean())) < 0.02 * float(w.mean())
    assert np.abs(c - float(w.mean())).max() < 0.25 * float(w.mean())   # per frequency: noisy, unbiased
    assert np.std(c) > 1e-3                                              # a real estimate, not a constant


def test_report_says_learned_against_model():
    spec = auto.Spectrum.gaussian(powerlaw(2.))
    res = dict(sigmas=np.array([1., .1]), learned=np.stack([np.ones(spec.shape), 100 * np.ones(spec.shape)]),
               gaussian=np.stack([1. / (spec.P + 1.), 1. / (spec.P + .01)]))
    text = cv.report(res)
    lines = text.splitlines()
    assert lines[0].startswith('| sigma | |f| 0-0.05 | |f| 0.05-0.15 |')
    assert lines[2].startswith('| 1 | 1.00 / ') and lines[3].startswith('| 0.1 | 1.00 / ')
    assert 'learned 1.00 .. 1.00' in text


@pytest.mark.slow
def test_command_on_a_checkpoint_and_its_errors(tiny_checkpoint, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    data = str(tmp_path / 'imgs.npy')
    np.save(data, images)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('from configs import mnist_pds\n\ndef get_config():\n    c = mnist_pds.get_config()\n'
                   '    c.model.nf = 4\n    return c\n')
    out = tmp_path / 'c.npz'
    args = ['-m', 'evaluation.curvature', '--config', str(cfg), '--checkpoint', tiny_checkpoint, '--data', data,
            '--split', 'train', '--num_images', '4', '--probes', '1', '--levels', '3', '--save', str(out)]
    env = dict(os.environ, **ONE_THREAD)
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '24 NFE' in r.stdout and '| sigma |' in r.stdout
    z = np.load(out)
    assert z['learned'].shape == (3, 1, 28, 28) and np.isfinite(z['learned']).all()
    np.testing.assert_allclose(z['sigmas'], [1., 0.1, 0.01], rtol=1e-6)
    import hashlib
    import json
    meta = json.loads(str(z['meta']))            # what made it: the checkpoint's hash and the settings
    with open(tiny_checkpoint, 'rb') as f:
        assert meta['checkpoint_sha256'] == hashlib.sha256(f.read()).hexdigest()
    assert (meta['num_images'], meta['probes'], meta['split']) == (4, 1, 'train')
    bad = subprocess.run([sys.executable, *args[:-2], '--num_images', '7'], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=300)
    assert bad.returncode == 2 and 'holds 6 images; --num_images is 7' in bad.stderr and 'Traceback' not in bad.stderr
