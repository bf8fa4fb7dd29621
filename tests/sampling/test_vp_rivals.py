"""The fixed-step rival samplers (EDM Heun / stochastic, Euler, DPM-Solver++) on VP models, through EDM's sigma view.

A VP model of an exact Gaussian: the network predicts the noise of data N(MU, P) (diagonal, the test_rivals.py
Gaussian) on the VP SDE, eps(x_t) = std (x_t - a MU) / (a^2 P + std^2) with a = sqrt(alpha_bar), std = sqrt(1 -
alpha_bar), read from its time label (continuous: t = label / 999; discrete: the fractional chain index), and
:class:`models.score.ScoreModel` turns it into score(y, sigma) (y = x / sqrt(alpha_bar), sigma^2 = 1 / alpha_bar - 1),
which is exactly the VE score -(y - MU) / (P + sigma^2).  So on the same sigma grid (``sampling.sigma_range``:
sigma(eps) .. sigma(1) continuous, the chain's smallest .. largest level discrete) and the same draws, a VP run must
equal the VE run of the same Gaussian to float precision.

Deterministic samplers are affine in the prior per coordinate here, x_N = b + c y_0, so their exact output law is
probed with y_0 = 0 and y_0 = 1: mean b, variance c^2 sigma_max^2.
"""
import math

import numpy as np
import pytest
import torch

import sampling
from configs import defaults
from models.score import ScoreModel
from models.sde import VPSDE
from preconditioning import Identity
from sampling.dpm_solver import sample_dpmpp_2m
from sampling.edm import sample_edm

pytestmark = pytest.mark.usefixtures('single_thread')

SIDE = 4
FIXED = ('edm', 'edm_stochastic', 'ode_euler', 'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde')


def gaussian(low=1e-3, dtype=torch.float64):
    """(P, MU) of shape (1, 1, 4, 4): 16 variances low .. 1, means -0.5 .. 0.5."""
    P = torch.tensor(np.geomspace(low, 1, 16), dtype=dtype).reshape(1, 1, SIDE, SIDE)
    MU = torch.tensor(np.linspace(-0.5, 0.5, 16), dtype=dtype).reshape(1, 1, SIDE, SIDE)
    return P, MU


class GaussianNoiseNet(torch.nn.Module):
    """The exact noise prediction of data N(MU, P) on the VP SDE of ``chain`` (float64 inside); counts its calls."""

    def __init__(self, chain, continuous, P, MU):
        super().__init__()
        self.chain, self.continuous, self.P, self.MU, self.calls = chain, continuous, P, MU, 0
        self.log_levels = np.log(chain.level_sigmas().numpy())

    def forward(self, x, labels):
        self.calls += 1
        labels = labels.double()
        if self.continuous:
            ab = torch.exp(2 * self.chain.log_mean_coeff(labels / 999))
        else:          # the chain's level at a fractional index (log-linear between the integer levels)
            sigma = np.exp(np.interp(labels.numpy(), np.arange(len(self.log_levels)), self.log_levels))
            ab = 1 / (1 + torch.as_tensor(sigma) ** 2)
        ab = ab.view(-1, 1, 1, 1)
        a, std = ab.sqrt(), (1 - ab).sqrt()
        return (std * (x.double() - a * self.MU) / (ab * self.P + 1 - ab)).to(x.dtype)


def vp_config(method, continuous=True, **fields):
    config = defaults.vp('ncsnpp' if continuous else 'ddpm', continuous)
    config.data.num_channels, config.data.image_size = 1, SIDE
    config.sampling.method = method
    for key, value in fields.items():
        config.sampling[key] = value
    return config


def vp_model(config, P, MU):
    m = config.model
    net = GaussianNoiseNet(VPSDE(m.beta_min, m.beta_max, m.num_scales), bool(config.training.continuous), P, MU)
    return ScoreModel(net, config)


def ve_twin(config):
    """The VE config of the same sampler (and PDS) on the VP config's sigma range."""
    ve = defaults.ve_ncsnpp()
    ve.model.sigma_min, ve.model.sigma_max = sampling.sigma_range(config)
    ve.sampling, ve.pds = config.sampling, config.pds
    return ve


def ve_score(P, MU):
    def score(y, sigma):
        sigma = torch.as_tensor(sigma, dtype=y.dtype).reshape(-1, 1, 1, 1)
        return -(y - MU.to(y.dtype)) / (P.to(y.dtype) + sigma ** 2)
    return score


# --- the sigma range -----------------------------------------------------------------------------------------

def test_sigma_range_of_vp_models():
    c = vp_config('edm')
    lo, hi = sampling.sigma_range(c)
    assert hi == pytest.approx(math.sqrt(math.expm1(0.1 + 19.9 / 2)), rel=1e-12)          # sigma(1) = 152.17
    assert lo == pytest.approx(math.sqrt(math.expm1(0.1e-3 + 19.9 / 2 * 1e-6)), rel=1e-9)   # sigma(eps = 1e-3)
    c.sampling.speed_up = 10.                                                              # eps = 1e-3 x speed_up
    assert sampling.sigma_range(c)[0] == pytest.approx(math.sqrt(math.expm1(0.1e-2 + 19.9 / 2 * 1e-4)), rel=1e-9)
    levels = VPSDE(0.1, 20., 1000).level_sigmas()
    assert sampling.sigma_range(vp_config('edm', False)) == (float(levels[0]), float(levels[-1]))    # 0.0100, 157.4
    sigmas = sampling.rival_sigmas(vp_config('edm', num_steps=7))
    assert len(sigmas) == 8 and sigmas[-1] == 0 and sigmas[0] == pytest.approx(hi) and sigmas[-2] == pytest.approx(lo)
    assert sampling.sigma_range(defaults.ve_ncsnpp()) == (0.01, 50.)


# --- a VP run equals the VE run of the same Gaussian --------------------------------------------------------

@pytest.mark.parametrize('continuous', [True, False], ids=['continuous', 'discrete'])
@pytest.mark.parametrize('method', FIXED)
def test_vp_model_equals_the_ve_run(method, continuous):
    """Same grid, same draws: max |VP - VE| <= 5e-6 max |VE| (float32 sampler state; measured <= 5.6e-7)."""
    P, MU = gaussian()
    config = vp_config(method, continuous, num_steps=12, s_tmax=50.)
    model = vp_model(config, P, MU)
    ve = ve_twin(config)
    assert np.array_equal(sampling.rival_sigmas(config), sampling.rival_sigmas(ve))
    x_vp, nfe_vp = sampling.sample(config, model, (8, 1, SIDE, SIDE), torch.Generator().manual_seed(3))
    x_ve, nfe_ve = sampling.sample(ve, ve_score(P, MU), (8, 1, SIDE, SIDE), torch.Generator().manual_seed(3))
    assert nfe_vp == nfe_ve == model.net.calls == sampling.iterations(config)[1]
    err = float((x_vp - x_ve).abs().max() / x_ve.abs().max())
    assert err < 5e-6, err


def test_pds_step_corrector_runs_unchanged_on_vp():
    """PDS behind EDM Heun through the step corrector (preconditioned Langevin at each level, supp. Theorem 1): the
    VP run equals the VE run with the same filter and draws."""
    P, MU = gaussian()
    config = vp_config('edm', num_steps=10, step_corrector='langevin', n_steps_each=2, snr=0.05)
    config.pds.enabled, config.pds.freq = True, 'radial'
    model = vp_model(config, P, MU)
    x_vp, nfe = sampling.sample(config, model, (8, 1, SIDE, SIDE), torch.Generator().manual_seed(4))
    x_ve, _ = sampling.sample(ve_twin(config), ve_score(P, MU), (8, 1, SIDE, SIDE), torch.Generator().manual_seed(4))
    assert nfe == model.net.calls == 2 * 10 - 1 + 9 * 2 == sampling.iterations(config)[1]
    assert float((x_vp - x_ve).abs().max() / x_ve.abs().max()) < 5e-6


# --- convergence to the data law -----------------------------------------------------------------------------

def _exact_law(sampler, config, P, MU, n):
    """(mean, variance) per coordinate of the deterministic sampler's output from y_0 ~ N(0, sigma_max^2 I)."""
    config.sampling.num_steps = n
    sigmas = sampling.rival_sigmas(config)
    y0 = torch.cat([torch.zeros(1, 1, SIDE, SIDE), torch.ones(1, 1, SIDE, SIDE)]).double()
    x, nfe = sampler(vp_model(config, P, MU), y0, sigmas, None)
    assert nfe == (2 * n - 1 if sampler is sample_edm else n)
    return x[0], (x[1] - x[0]) ** 2 * float(sigmas[0]) ** 2


@pytest.mark.parametrize('sampler', [sample_edm, sample_dpmpp_2m], ids=['edm_heun', 'dpmpp_2m'])
@pytest.mark.parametrize('continuous', [True, False], ids=['continuous', 'discrete'])
def test_variance_converges_to_the_data_variance(sampler, continuous):
    """Exact output law of the VP Gaussian model (variances P = 0.05 .. 1), Karras grid (rho 7) over the VP range.
    The largest |var / P - 1| at N = 8, 16, 32, 64, 128, measured (continuous; discrete within 4 %):
    Heun 1.5, 0.21, 0.042, 8.2e-3, 1.5e-3; DPM-Solver++ 2M 0.27, 0.16, 0.043, 8.4e-3, 1.6e-3 -- about 5x per doubling
    from N = 16, down to the floor of the last step D(x; sigma_min), 1 - P / (P + sigma_min^2) = 2.2e-3 at P = 0.05
    (a step of fixed size; at N = 256, 512 the error sits there, 1.4e-3 .. 2.1e-3).  The mean error,
    |MU| sqrt((P + sigma_min^2) / (P + sigma_max^2)) <= 0.5 / 152 = 3.3e-3, is EDM's prior N(0, sigma_max^2 I), which
    has the data's mean 0 where the exact marginal has MU."""
    P, MU = gaussian(0.05)
    config = vp_config('edm', continuous)
    errors = []
    for n in (8, 16, 32, 64, 128):
        mean, var = _exact_law(sampler, config, P, MU, n)
        errors.append(float((var / P - 1).abs().max()))
    assert all(a > 3 * b for a, b in zip(errors[2:], errors[3:])), errors
    assert errors[0] > errors[1] > errors[2] and errors[-1] < 2.5e-3, errors
    assert float((mean - MU).abs().max()) < 3.5e-3


def test_edm_stochastic_on_vp_draws_the_gaussian():
    """EDM Algorithm 2 (S_churn 40 on [0.05, 50]) on the VP model, 4096 samples: mean |var / P - 1| falls from N = 64
    to 256 (measured 0.066, 0.028, 0.019; the Monte-Carlo floor is ~0.018) and the mean is within 4 standard errors."""
    P, MU = gaussian(0.05, torch.float32)
    errors = []
    for n in (64, 256):
        config = vp_config('edm_stochastic', num_steps=n, s_churn=40.)
        x, nfe = sampling.sample(config, vp_model(config, P, MU), (4096, 1, SIDE, SIDE),
                                 torch.Generator().manual_seed(5))
        assert nfe == 2 * n - 1
        x = x.double()
        errors.append(float((x.var(0) / P.double() - 1).abs().mean()))
    assert errors[0] > errors[1] and errors[1] < 0.03, errors
    assert bool(((x.mean(0) - MU.double()).abs() < 4 * (P.double() / 4096).sqrt()).all())


# --- refusals --------------------------------------------------------------------------------------------------

def _one_line(err):
    text = str(err.value)
    assert '\n' not in text and len(text) < 600, text
    return text


def test_what_stays_unsupported_is_one_line():
    P, MU = gaussian()
    for method in ('adaptive_sde', 'ald'):
        config = vp_config(method)
        with pytest.raises(ValueError, match=f"sampling.method = '{method}' runs on the VE SDE.*VP model") as err:
            sampling.sample(config, vp_model(config, P, MU), (2, 1, SIDE, SIDE))
        _one_line(err)
    # PDS without a step corrector, the marginal form and automatic PDS: not on these samplers, VP as VE
    config = vp_config('dpmpp_2m', num_steps=4)
    config.pds.enabled, config.pds.freq = True, 'radial'
    with pytest.raises(ValueError, match='only through a Langevin corrector') as err:
        sampling.sample(config, vp_model(config, P, MU), (2, 1, SIDE, SIDE))
    _one_line(err)
    config.pds.predictor_drift = 'marginal'
    with pytest.raises(ValueError, match="predictor_drift = 'marginal'") as err:
        sampling.sample(config, vp_model(config, P, MU), (2, 1, SIDE, SIDE))
    _one_line(err)
    config = vp_config('edm', num_steps=4, step_corrector='langevin')
    config.pds.enabled, config.pds.freq, config.pds.spectrum_path = True, 'auto', 'assets/stats/mnist_spectrum.npy'
    with pytest.raises(ValueError, match="'auto' on a VP model is derived for sampling.method 'pc'") as err:
        sampling.sample(config, vp_model(config, P, MU), (2, 1, SIDE, SIDE))
    _one_line(err)
    # a level above the model's largest (S_churn lifting sigma_max): the model's one line
    config = vp_config('edm_stochastic', num_steps=4, s_tmax=1e4)
    with pytest.raises(ValueError, match='this VP model covers 0 < sigma <= 152.2') as err:
        sampling.sample(config, vp_model(config, P, MU), (2, 1, SIDE, SIDE))
    _one_line(err)


def test_divergence_bound_uses_the_vp_sigma_max():
    from runners.sample import divergence_bound
    assert divergence_bound(vp_config('edm'), Identity()) == pytest.approx(1 + 100 * sampling.sigma_range(
        vp_config('edm'))[1])
