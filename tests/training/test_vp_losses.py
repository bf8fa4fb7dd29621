"""The VP objectives of score_sde (continuous VP SDE loss, discrete DDPM loss) and VP training.

Hand computation (float64 NumPy, written from the description, not from training/losses.py): with m(t) =
-t^2 (beta_max - beta_min) / 4 - t beta_min / 2, x_t = e^m x + sqrt(1 - e^{2m}) z, the network gets labels 999 t and
its score is -out / std; on the chain, x_j = sqrt(alpha_bar_j) x + sqrt(1 - alpha_bar_j) z with alpha_bar_j the
cumulative product of 1 - linspace(beta_min / N, beta_max / N, N), and the network gets the integer j.

Analytic check.  Data N(0, s^2 I) and the exact score plugged in: x_t ~ N(0, v I), v = a^2 s^2 + std^2 with
a = sqrt(alpha_bar(t)), so score = -x_t / v and per dimension

    score std + z = z - std (a x + std z) / v = (a^2 s^2 / v) z - (a std / v) x,
    E (score std + z)^2 = (a^4 s^4 + a^2 std^2 s^2) / v^2 = a^2 s^2 / v = a^2 s^2 / (a^2 s^2 + std^2),

and with likelihood weighting E (score + z / std)^2 beta(t) = a^2 s^2 / (v std^2) beta(t).  The DDPM loss at level j
is the same with a^2 = alpha_bar_j, std^2 = 1 - alpha_bar_j (its noise prediction is -std score).  Swapping the mean
and std coefficients in x_t moves the expectation far beyond the Monte-Carlo error (checked in the test).
"""
import csv
import math

import numpy as np
import pytest
import torch

from training import losses, run_train
from training.ema import ema_rule
from training.train import Trainer
from models.sde import VPSDE
from train_helpers import blobs, tiny_ncsnpp, tiny_vp, trainable

B, SHAPE = 5, (2, 3, 3)
BMIN, BMAX, N = 0.1, 20., 1000


class AffineNet(torch.nn.Module):
    """out = 0.3 x - 0.002 label + 0.1: a tiny network whose output depends on its input and its label."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, labels):
        self.calls.append(labels.clone())
        return 0.3 * x - 0.002 * labels.to(x.dtype).view(-1, 1, 1, 1) + 0.1


def _draws(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, *SHAPE, generator=g) * 2 - 1, torch.randn(B, *SHAPE, generator=g)


def _reduce(sq, reduce_mean):
    sq = sq.reshape(sq.shape[0], -1)
    return sq.mean(1) if reduce_mean else 0.5 * sq.sum(1)


def _hand_continuous(x, z, t, reduce_mean, weighting):
    x, z, t = x.numpy().astype(np.float64), z.numpy().astype(np.float64), t.numpy().astype(np.float64)
    m = -0.25 * t ** 2 * (BMAX - BMIN) - 0.5 * t * BMIN
    a, std = np.exp(m)[:, None, None, None], np.sqrt(1 - np.exp(2 * m))[:, None, None, None]
    x_t = a * x + std * z
    out = 0.3 * x_t - 0.002 * (999 * t)[:, None, None, None] + 0.1
    score = -out / std
    if weighting:
        return _reduce((score + z / std) ** 2, reduce_mean) * (BMIN + t * (BMAX - BMIN)), np.sqrt(np.exp(-2 * m) - 1)
    return _reduce((score * std + z) ** 2, reduce_mean), np.sqrt(np.exp(-2 * m) - 1)


def _alpha_bar():
    betas = np.linspace(BMIN / N, BMAX / N, N, dtype=np.float32).astype(np.float64)
    return np.cumprod(1 - betas)


@pytest.mark.parametrize('reduce_mean, weighting', [(True, False), (False, False), (True, True), (False, True)])
def test_vp_sde_loss_by_hand(reduce_mean, weighting):
    x, z = _draws(1)
    t = torch.tensor([0.05, 0.2, 0.5, 0.9, 1.0])
    net = AffineNet()
    out = losses.vp_sde_loss(net, x, VPSDE(BMIN, BMAX, N), reduce_mean, weighting, t=t, z=z)
    assert torch.equal(net.calls[0], t * 999)                       # the float label 999 t, unrounded
    expect, sigma = _hand_continuous(x, z, t, reduce_mean, weighting)
    np.testing.assert_allclose(out.losses.double().numpy(), expect, rtol=1e-5)
    assert float(out.loss) == pytest.approx(float(expect.mean()), rel=1e-5)
    np.testing.assert_allclose(out.sigma.double().numpy(), sigma, rtol=1e-5)     # the VE view sqrt(1 / a^2 - 1)


@pytest.mark.parametrize('reduce_mean', [True, False])
def test_ddpm_loss_by_hand(reduce_mean):
    x, z = _draws(2)
    labels = torch.tensor([0, 1, 500, 998, 999])
    net = AffineNet()
    out = losses.ddpm_loss(net, x, VPSDE(BMIN, BMAX, N), reduce_mean, labels=labels, z=z)
    assert net.calls[0].dtype == torch.int64 and torch.equal(net.calls[0], labels)   # the integer chain index
    ab = _alpha_bar()[labels.numpy()][:, None, None, None]
    xn, zn = x.double().numpy(), z.double().numpy()
    x_j = np.sqrt(ab) * xn + np.sqrt(1 - ab) * zn
    expect = _reduce((0.3 * x_j - 0.002 * labels.numpy()[:, None, None, None] + 0.1 - zn) ** 2, reduce_mean)
    np.testing.assert_allclose(out.losses.double().numpy(), expect, rtol=1e-5)
    # the level of the float32 chain table: 1 - alpha_bar_0 = 1e-4 carries its float32 rounding (8e-5 relative)
    np.testing.assert_allclose(out.sigma.double().numpy(), np.sqrt(1 / ab.ravel() - 1), rtol=2e-4)


def test_the_loss_at_the_smallest_time_is_finite():
    x, z = _draws(3)
    t = torch.full((B,), losses.SDE_EPS)
    for weighting in (False, True):
        out = losses.vp_sde_loss(AffineNet(), x, VPSDE(BMIN, BMAX, N), True, weighting, t=t, z=z)
        assert torch.isfinite(out.losses).all()


# --- the analytic check: data N(0, s^2 I), exact score ---------------------------------------------------------

S = 0.5


class ExactNoise(torch.nn.Module):
    """The exact noise prediction for data N(0, S^2 I): eps(x) = -std score = std x / (a^2 S^2 + std^2), with a, std
    of time label / 999 (continuous) or of chain level j (discrete), computed here in float64."""

    def __init__(self, continuous):
        super().__init__()
        self.continuous = continuous

    def forward(self, x, labels):
        if self.continuous:
            t = labels.double() / 999
            ab = torch.exp(-0.5 * t ** 2 * (BMAX - BMIN) - t * BMIN)
        else:
            ab = torch.as_tensor(_alpha_bar())[labels]
        ab = ab.view(-1, 1, 1, 1)
        return (torch.sqrt(1 - ab) * x.double() / (ab * S ** 2 + 1 - ab)).to(x.dtype)


def _mc(losses_):
    v = losses_.double()
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


@pytest.mark.parametrize('t', [0.05, 0.3, 0.6])
def test_continuous_loss_of_the_exact_score_is_the_closed_form(t):
    """E = a^2 s^2 / (a^2 s^2 + std^2) per dimension (reduce_mean), to 4 standard errors (4096 samples x 64 pixels);
    x_t with mean and std swapped would give (1 - a std / v)^2 + std^4 s^2 / v^2, > 30 standard errors away."""
    g = torch.Generator().manual_seed(11)
    x = S * torch.randn(4096, 1, 8, 8, generator=g)
    tt = torch.full((4096,), t)
    sde = VPSDE(BMIN, BMAX, N)
    a2 = math.exp(-0.5 * t ** 2 * (BMAX - BMIN) - t * BMIN)
    std2, v = 1 - a2, a2 * S ** 2 + 1 - a2
    expect = a2 * S ** 2 / v
    mean, se = _mc(losses.vp_sde_loss(ExactNoise(True), x, sde, True, False, t=tt, generator=g).losses)
    assert abs(mean - expect) < 4 * se, (mean, expect, se)
    swapped = (1 - math.sqrt(a2 * std2) / v) ** 2 + std2 ** 2 * S ** 2 / v ** 2
    assert abs(swapped - expect) > 30 * se
    # likelihood weighting: the same residual divided by std^2, times beta(t)
    mean, se = _mc(losses.vp_sde_loss(ExactNoise(True), x, sde, True, True, t=tt, generator=g).losses)
    expect_w = expect / std2 * (BMIN + t * (BMAX - BMIN))
    assert abs(mean - expect_w) < 4 * se, (mean, expect_w, se)


@pytest.mark.parametrize('j', [10, 300, 900])
def test_ddpm_loss_of_the_exact_noise_is_the_closed_form(j):
    g = torch.Generator().manual_seed(12)
    x = S * torch.randn(4096, 1, 8, 8, generator=g)
    labels = torch.full((4096,), j)
    mean, se = _mc(losses.ddpm_loss(ExactNoise(False), x, VPSDE(BMIN, BMAX, N), True, labels=labels,
                                    generator=g).losses)
    ab = _alpha_bar()[j]
    expect = ab * S ** 2 / (ab * S ** 2 + 1 - ab)
    assert abs(mean - expect) < 4 * se, (mean, expect, se)


# --- get_loss_fn / draw_levels by config ----------------------------------------------------------------------

@pytest.mark.parametrize('name', ['ncsnpp', 'ddpm'])
@pytest.mark.parametrize('continuous', [True, False])
def test_get_loss_fn_picks_the_vp_objective(name, continuous):
    config = tiny_vp(name, continuous=continuous)
    draws = losses.draw_levels(config, B, SHAPE, torch.Generator().manual_seed(0), 'cpu')
    kind = 't' if continuous else 'labels'
    assert draws[kind] is not None and draws['t' if kind == 'labels' else 'labels'] is None
    if continuous:
        assert draws['t'].min() >= losses.SDE_EPS and draws['t'].max() <= 1
    else:
        assert draws['labels'].dtype == torch.int64 and 0 <= draws['labels'].min() <= draws['labels'].max() < N
    x, _ = _draws(4)
    out = losses.get_loss_fn(config)(AffineNet(), x, draws)
    sde = VPSDE(BMIN, BMAX, N)
    ref = (losses.vp_sde_loss(AffineNet(), x, sde, True, False, t=draws['t'], z=draws['z']) if continuous else
           losses.ddpm_loss(AffineNet(), x, sde, True, labels=draws['labels'], z=draws['z']))
    assert torch.equal(out.losses, ref.losses)            # reduce_mean from the config (the VP recipe: True)


def test_vp_trains_with_the_score_sde_ema_rule():
    assert ema_rule(tiny_vp('ddpm')) == ema_rule(tiny_vp('ncsnpp')) == 'score_sde'


def _one_line(err):
    text = str(err.value)
    assert '\n' not in text and len(text) < 400, text
    return text


def test_wrong_combinations_are_one_line():
    cases = []
    c = tiny_vp('ncsnpp', continuous=False)
    c.training.likelihood_weighting = True
    cases.append((c, 'no likelihood weighting'))
    c = tiny_vp('ncsnpp', continuous=False)
    c.model.embedding_type = 'fourier'
    cases.append((c, "cannot take"))
    c = tiny_vp('ncsnpp', continuous=False)
    c.model.num_scales = 20
    cases.append((c, 'expected N > beta_max'))
    c = tiny_vp('ncsnpp')
    c.model.num_scales = 100
    cases.append((c, 'expected model.num_scales >= 1000'))
    c = tiny_vp('ddpm')
    c.training.sde = 'vesde'
    cases.append((c, "set training.sde='vpsde'"))
    c = tiny_ncsnpp()
    c.training.sde = 'vpsde'
    c.model.family = 'ncsnv2'
    cases.append((c, 'is a VE network'))
    c = tiny_vp('ncsnpp')
    c.training.sde = 'subvpsde'
    cases.append((c, "training.sde = 'subvpsde' is not supported"))
    for config, match in cases:
        with pytest.raises(ValueError, match=match) as err:
            losses.get_loss_fn(config)
        _one_line(err)
    # the other VP combinations train (score_sde has all four: DDPM / DDPM++, continuous / discrete) ...
    for name in ('ncsnpp', 'ddpm'):
        for continuous in (True, False):
            losses.get_loss_fn(tiny_vp(name, continuous=continuous))
    c = tiny_vp('ncsnpp')                                   # ... and continuous with the Fourier embedding (999 t > 0)
    c.model.embedding_type = 'fourier'
    losses.get_loss_fn(c)


def test_noise_range_is_the_sigma_view():
    sde = VPSDE(BMIN, BMAX, N)
    lo, hi = losses.noise_range(tiny_vp('ncsnpp'))
    assert hi == pytest.approx(math.sqrt(math.expm1(BMIN + (BMAX - BMIN) / 2)), rel=1e-12)         # sigma(1) = 152.2
    assert lo == pytest.approx(math.sqrt(math.expm1(BMIN * 1e-5 + (BMAX - BMIN) / 2 * 1e-10)), rel=1e-9)
    lo, hi = losses.noise_range(tiny_vp('ddpm', continuous=False))
    assert (lo, hi) == (float(sde.level_sigmas()[0]), float(sde.level_sigmas()[-1]))
    assert hi == pytest.approx(math.sqrt(1 / _alpha_bar()[-1] - 1), rel=1e-4) and lo == pytest.approx(0.01, rel=1e-3)
    assert losses.noise_range(tiny_ncsnpp()) == (0.01, 5.)


# --- training ------------------------------------------------------------------------------------------------

def _state(result):
    ema = result['ema']
    return trainable(result['net']) + [s.clone() for s in ema.shadow_params], ema.num_updates


def _log(workdir):
    with open(workdir / 'train_log.csv') as f:
        rows = list(csv.reader(f))
    return [r[:3] + r[4:] for r in rows]                       # all but it/s


@pytest.mark.parametrize('name,continuous', [('ncsnpp', True), ('ddpm', False)])
def test_tiny_vp_trains_and_resumes_exactly(tmp_path, name, continuous):
    """DDPM++ on the continuous VP loss and DDPM on the discrete DDPM loss: 6 steps in one go and in pieces of 4 + 2
    end bit-identical (weights, EMA, log); the log's buckets are in the VP sigma view."""
    def config():
        c = tiny_vp(name, continuous=continuous, steps=6, log_freq=2, snapshot_freq=4)
        c.optim.grad_clip = 1.
        return c
    data = blobs(10)
    full = run_train(config(), str(tmp_path / 'a'), data, progress=False)
    first = run_train(config(), str(tmp_path / 'b'), data, progress=False, max_steps=4)
    assert first['step'] == 4
    resumed = run_train(config(), str(tmp_path / 'b'), data, progress=False)
    a, b = _state(full), _state(resumed)
    assert a[1] == b[1] == 6 and all(torch.equal(p, q) for p, q in zip(a[0], b[0]))
    assert _log(tmp_path / 'a') == _log(tmp_path / 'b')
    header = _log(tmp_path / 'a')[0]
    top = '152.2' if continuous else '157.4'
    assert header[3].startswith(f'loss_sigma_{top}_') and len(header) == 13
    assert header[-1].endswith('_0.001' if continuous else '_0.01')
    for row in full['history']:
        assert math.isfinite(row[1]) and row[1] > 0
    assert (tmp_path / 'a' / 'checkpoints' / 'checkpoint_6.pth').is_file()


def test_vp_training_sees_centred_data(tmp_path):
    """VP configs centre the data (data.centered): the loss gets 2 x - 1, in [-1, 1]."""
    config = tiny_vp('ncsnpp')
    assert config.data.centered
    run = Trainer(config, str(tmp_path), blobs(8), 0, False)
    seen = []
    loss_fn = run.loss_fn
    run.loss_fn = lambda net, x, d: (seen.append(x.detach().clone()), loss_fn(net, x, d))[1]
    batch = blobs(8).tensors[0][:4]
    run.train_step(batch)
    assert torch.equal(seen[0], 2 * batch - 1) and seen[0].min() < -0.9 and seen[0].max() <= 1
    run.close()
