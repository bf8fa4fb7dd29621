"""The official objectives against closed forms.

Data = one point x0, network = c times the exact score of the perturbed point mass, s(x~) = -c (x~ - x0) / sigma^2.
With x~ = x0 + sigma z every objective then has a closed form in z and c (c = 1 is the optimum, loss 0):

* NCSN/NCSNv2 DSM:  0.5 sum (s - (-z/sigma))^2 sigma^p = 0.5 (1 - c)^2 sum z^2 sigma^(p - 2)
* VE SDE:           0.5 sum (s sigma + z)^2 = 0.5 (1 - c)^2 sum z^2   (reduce_mean: (1 - c)^2 mean z^2)
  likelihood-weighted: 0.5 sum (s + z/sigma)^2 g^2 = 0.5 (1 - c)^2 sum z^2 * 2 log(sigma_max / sigma_min)
* SMLD:             0.5 sum (s - (-z/sigma))^2 sigma^2 = 0.5 (1 - c)^2 sum z^2
"""
import math

import numpy as np
import pytest
import torch

from models.score import geometric_sigmas
from training import losses
from train_helpers import tiny_ncsn, tiny_ncsnpp, tiny_ncsnv2

B, SHAPE = 5, (2, 3, 3)


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(1, *SHAPE, generator=g)
    return x0.expand(B, *SHAPE).clone(), torch.randn(B, *SHAPE, generator=g), g


class LabelNet(torch.nn.Module):
    """net(x~, labels) = c * exact score of the point mass at x0 at sigma = sigmas[labels]."""

    def __init__(self, x0, sigmas, c):
        super().__init__()
        self.x0, self.sigmas, self.c, self.calls = x0, sigmas, c, []

    def forward(self, x, labels):
        self.calls.append(labels.clone())
        s = self.sigmas[labels].view(-1, 1, 1, 1)
        return -self.c * (x - self.x0) / s ** 2


class SigmaNet(torch.nn.Module):
    """net(x~, sigma) = c * exact score at the given sigma (continuous conditioning)."""

    def __init__(self, x0, c):
        super().__init__()
        self.x0, self.c, self.calls = x0, c, []

    def forward(self, x, sigma):
        self.calls.append(sigma.clone())
        return -self.c * (x - self.x0) / sigma.view(-1, 1, 1, 1) ** 2


def _sum_z2(z):
    return z.double().square().flatten(1).sum(1)


@pytest.mark.parametrize('c', [1.0, 0.5, -0.3])
@pytest.mark.parametrize('power', [2.0, 1.0])
def test_anneal_dsm_closed_form(c, power):
    x, z, _ = _setup()
    sigmas = torch.tensor(geometric_sigmas(1., 0.01, 10), dtype=torch.float32)
    labels = torch.tensor([0, 3, 9, 9, 5])
    out = losses.anneal_dsm_loss(LabelNet(x[:1], sigmas, c), x, sigmas, power, labels=labels, z=z)
    sig = sigmas[labels].double()
    expect = 0.5 * (1 - c) ** 2 * _sum_z2(z) * sig ** (power - 2)
    torch.testing.assert_close(out.losses.double(), expect, rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(out.loss.double(), expect.mean(), rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(out.sigma, sigmas[labels])


def test_anneal_dsm_draws_from_generator():
    x, _, _ = _setup()
    sigmas = torch.tensor(geometric_sigmas(1., 0.01, 10), dtype=torch.float32)
    net = LabelNet(x[:1], sigmas, 0.5)
    a = losses.anneal_dsm_loss(net, x, sigmas, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)        # documented order: labels, then z
    labels = torch.randint(0, 10, (B,), generator=g)
    z = torch.randn(x.shape, generator=g)
    b = losses.anneal_dsm_loss(net, x, sigmas, labels=labels, z=z)
    assert torch.equal(net.calls[0], labels)
    assert torch.equal(a.losses, b.losses)


@pytest.mark.parametrize('c', [1.0, 0.5, 2.0])
@pytest.mark.parametrize('reduce_mean, weighting', [(False, False), (True, False), (False, True), (True, True)])
def test_ve_sde_closed_form(c, reduce_mean, weighting):
    x, z, _ = _setup(1)
    smin, smax = 0.01, 50.
    t = torch.tensor([1e-5, 0.2, 0.5, 0.9, 1.0])
    net = SigmaNet(x[:1], c)
    out = losses.ve_sde_loss(net, x, smin, smax, reduce_mean, weighting, t=t, z=z)
    sigma = smin * (smax / smin) ** t
    torch.testing.assert_close(net.calls[0], sigma)            # the network is conditioned on sigma(t)
    per_pixel = (1 - c) ** 2 * z.double().square().flatten(1)
    expect = per_pixel.mean(1) if reduce_mean else 0.5 * per_pixel.sum(1)
    if weighting:
        expect = expect * 2 * math.log(smax / smin)
    torch.testing.assert_close(out.losses.double(), expect, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.sigma, sigma)


def test_ve_sde_draws_t_in_range():
    x, _, _ = _setup()
    net = SigmaNet(x[:1], 1.)
    out = losses.ve_sde_loss(net, x.repeat(200, 1, 1, 1), 0.01, 50., generator=torch.Generator().manual_seed(0))
    t = torch.log(out.sigma / 0.01) / math.log(5000.)
    assert t.min() >= 1e-5 - 1e-6 and t.max() <= 1 + 1e-6
    assert 0.4 < t.mean() < 0.6


@pytest.mark.parametrize('c', [1.0, 0.5])
@pytest.mark.parametrize('reduce_mean', [False, True])
def test_smld_closed_form(c, reduce_mean):
    x, z, _ = _setup(2)
    sigmas = losses.smld_sigmas(0.01, 50., 1000)
    labels = torch.tensor([0, 1, 500, 998, 999])
    out = losses.smld_loss(LabelNet(x[:1], sigmas, c), x, sigmas, reduce_mean, labels=labels, z=z)
    per_pixel = (1 - c) ** 2 * z.double().square().flatten(1)
    expect = per_pixel.mean(1) if reduce_mean else 0.5 * per_pixel.sum(1)
    torch.testing.assert_close(out.losses.double(), expect, rtol=1e-4, atol=1e-6)


def test_smld_sigmas_are_the_flipped_vesde_grid():
    s = losses.smld_sigmas(0.01, 50., 1000)
    assert s.dtype == torch.float32 and s[0] > s[-1]
    np.testing.assert_allclose(s.numpy(), geometric_sigmas(50., 0.01, 1000), rtol=1e-5)


def test_get_loss_fn_dispatch():
    x, z, _ = _setup()
    for config, kind in [(tiny_ncsn(), 'labels'), (tiny_ncsnv2(), 'labels'),
                         (tiny_ncsnpp(continuous=True), 't'), (tiny_ncsnpp(continuous=False), 'labels')]:
        draws = losses.draw_levels(config, B, SHAPE, torch.Generator().manual_seed(0), 'cpu')
        assert draws[kind] is not None and draws['z'].shape == (B, *SHAPE)
        other = 't' if kind == 'labels' else 'labels'
        assert draws[other] is None
    # NCSN: the annealed DSM on the model's own float32 schedule, anneal_power from the config.
    config = tiny_ncsn()
    config.training.anneal_power = 1.
    sigmas = torch.tensor(geometric_sigmas(1., 0.01, 10), dtype=torch.float32)
    net = LabelNet(x[:1], sigmas, 0.5)
    labels = torch.tensor([0, 1, 2, 3, 9])
    out = losses.get_loss_fn(config)(net, x, {'labels': labels, 't': None, 'z': z})
    expect = 0.5 * 0.25 * _sum_z2(z) / sigmas[labels].double()
    torch.testing.assert_close(out.losses.double(), expect, rtol=2e-5, atol=1e-6)


def test_get_loss_fn_rejects_mismatched_settings():
    config = tiny_ncsnpp(continuous=True)
    config.training.continuous = False
    with pytest.raises(ValueError, match='continuous'):
        losses.get_loss_fn(config)
    config = tiny_ncsnv2()
    config.training.continuous = True
    with pytest.raises(ValueError, match='discrete'):
        losses.get_loss_fn(config)
