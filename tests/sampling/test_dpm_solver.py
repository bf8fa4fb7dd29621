"""DPM-Solver++ (sampling/dpm_solver.py) on the exact Gaussians of test_rivals.py.

As there, the last step sigma_min -> 0 returns D(x; sigma_min), a step whose error does not shrink with N, so the ODE
orders are measured at sigma_{N-1} = sigma_min against the closed-form flow, the last step is checked to be exactly D,
and the output laws are compared with P^2 / (P + sigma_min^2), the variance of D(x; sigma_min) for x ~ p_sigma_min.

The score is affine in x per coordinate, so a sampler's output is affine in the prior and the draws, x_N = c + a x_0
+ sum_i b_i z_i per coordinate: its exact law comes from probing the implementation with a zero batch element (c),
a unit prior (a) and one unit draw per step (b_i), with no Monte Carlo error.
"""
import numpy as np
import pytest
import torch

import sampling
from sampling.dpm_solver import sample_dpmpp_2m, sample_dpmpp_2m_sde, sample_dpmpp_3m_sde
from sampling.edm import sigma_schedule
from tests.sampling.test_rivals import (SIGMA_MAX, SIGMA_MIN, _rival_config, draws, exact_score, flow, gaussian,
                                        variance_error)

pytestmark = pytest.mark.usefixtures('single_thread')

METHODS = ('dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde')
SDE = {'2m_sde midpoint': (sample_dpmpp_2m_sde, {}), '2m_sde heun': (sample_dpmpp_2m_sde, dict(solver_type='heun')),
       '3m_sde': (sample_dpmpp_3m_sde, {})}


def error_at_sigma_min(sampler, n, schedule, **kwargs):
    """Max error at sigma_{N-1} = sigma_min in units of the level's std (side-4 Gaussian, 8 samples), the output,
    x_{N-1} and the NFE."""
    P, MU = gaussian(4)
    score = exact_score(P, MU)
    x0 = SIGMA_MAX * draws((8, 1, 4, 4), 0)()
    states = {}
    x, nfe = sampler(score, x0.clone(), sigma_schedule(schedule, SIGMA_MIN, SIGMA_MAX, n), None,
                     callback=lambda i, sigma, x: states.__setitem__(i, x.clone()), **kwargs)
    at_min = states[n - 2]
    error = float(((at_min - flow(x0, P, MU, SIGMA_MIN)).abs() / (P + SIGMA_MIN ** 2).sqrt()).max())
    return error, x, at_min, nfe


def slope(ns, errors):
    return np.polyfit(np.log(ns), np.log(errors), 1)[0]


# --- the ODE: second order, and the last step exactly D -----------------------------------------------------

@pytest.mark.parametrize('schedule', ['karras', 'geometric'])
@pytest.mark.parametrize('name,sampler,kwargs', [
    ('2m', sample_dpmpp_2m, {}), ('2m_sde heun, eta 0', sample_dpmpp_2m_sde, dict(eta=0., solver_type='heun'))])
def test_2m_is_second_order(schedule, name, sampler, kwargs):
    """Error at sigma_min falls as N^-2 over N = 8..64.  Measured slopes: 2M -1.98 (karras), -2.09 (geometric), last
    error 0.011 / 0.0031; 2M SDE 'heun' at eta = 0 (the ODE with the Taylor weight) -1.83 / -1.99."""
    ns = [8, 16, 32, 64]
    errors = []
    for n in ns:
        error, x, at_min, nfe = error_at_sigma_min(sampler, n, schedule, **kwargs)
        assert nfe == n
        errors.append(error)
    fit = slope(ns, errors)
    assert -2.5 <= fit <= -1.7, (errors, fit)
    assert errors[-1] < 0.02, errors


def test_2m_sde_midpoint_without_noise_is_2m():
    """2M SDE 'midpoint' at eta = 0 is 2M: phi_1 D_i + (phi_1 / 2)(D_i - D_{i-1}) / r_i, e^{-0 h} = 1."""
    for n in (5, 12):
        a = error_at_sigma_min(sample_dpmpp_2m, n, 'karras')[1]
        b = error_at_sigma_min(sample_dpmpp_2m_sde, n, 'karras', eta=0.)[1]
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize('schedule', ['karras', 'geometric'])
def test_3m_order_with_the_shipped_and_the_taylor_weight(schedule):
    """3M at eta = 0 over N = 128..512.  With the weight k-diffusion and diffusers ship on the second difference
    (d2_weight = 1) the x'' term enters at half its Taylor weight and the method is second order: measured slope
    -2.03 (geometric), -2.15 (karras).  With the Taylor weight (d2_weight = 2) it is third order: -3.10, -3.33."""
    ns = [128, 256, 512]
    for weight, window in ((1., (-2.3, -1.8)), (2., (-3.6, -2.8))):
        errors = [error_at_sigma_min(sample_dpmpp_3m_sde, n, schedule, eta=0., d2_weight=weight)[0] for n in ns]
        fit = slope(ns, errors)
        assert window[0] <= fit <= window[1], (weight, errors, fit)


@pytest.mark.parametrize('name', ['2m', '2m_sde midpoint', '2m_sde heun', '3m_sde'])
def test_last_step_is_exactly_d(name):
    """The step sigma_min -> 0 returns D(x_{N-1}; sigma_min) bit for bit, draws no noise (N - 1 draws in all for the
    SDEs, none for 2M) and asks the score at sigma_min, never at 0."""
    P, MU = gaussian(4)
    score, asked = exact_score(P, MU), []

    def spy(x, sigma):
        asked.append(sigma)
        return score(x, sigma)
    sampler, kwargs = (sample_dpmpp_2m, {}) if name == '2m' else SDE[name]
    draw, count = draws((8, 1, 4, 4), 2), [0]

    def counted_draw():
        count[0] += 1
        return draw()
    n, states = 9, {}
    sigmas = sigma_schedule('karras', SIGMA_MIN, SIGMA_MAX, n)
    s_min = float(sigmas[-2])                           # sigma_min up to Eq. 5's rounding (0.010000000000000024)
    x, nfe = sampler(spy, SIGMA_MAX * draw(), sigmas, counted_draw,
                     callback=lambda i, sigma, x: states.__setitem__(i, x.clone()), **kwargs)
    at_min = states[n - 2]
    assert torch.equal(x, at_min + s_min ** 2 * score(at_min, s_min))
    assert not torch.equal(x, at_min)
    assert count[0] == (0 if name == '2m' else n - 1)
    assert nfe == n == len(asked) and asked[-1] == s_min and min(asked) > 0


# --- one step at a time: exact for a denoiser polynomial in lambda up to the solver's degree -----------------------

def local_errors(sampler, coeffs, eta, **kwargs):
    """|x_{i+1} - x*_{i+1}| per step i < N - 1 (N = 6, Karras grid: unequal h; draws are zero) for the denoiser
    D = sum_k coeffs_k (lambda - lambda_0)^k, which ignores x, where x*_{i+1} is the step solved exactly from the
    sampler's own x_i: (sigma_{i+1} / sigma_i) e^{-eta h} x_i + (1 + eta) int_0^h e^{-(1 + eta)(h - u)} D du
    (20-point Gauss-Legendre)."""
    n = 6
    sigmas = sigma_schedule('karras', SIGMA_MIN, SIGMA_MAX, n)
    poly, lam_0 = np.polynomial.Polynomial(coeffs), -np.log(SIGMA_MAX)
    states = {-1: torch.tensor([0.3], dtype=torch.float64)}
    if sampler is not sample_dpmpp_2m:
        kwargs = dict(kwargs, eta=eta)
    sampler(lambda x, sigma: (poly(-np.log(sigma) - lam_0) - x) / sigma ** 2, states[-1].clone(), sigmas,
            lambda: torch.zeros(1, dtype=torch.float64), callback=lambda i, sigma, x: states.__setitem__(i, x.clone()),
            **kwargs)
    nodes, weights = np.polynomial.legendre.leggauss(20)
    errors = []
    for i in range(n - 1):
        s, t = float(sigmas[i]), float(sigmas[i + 1])
        h = np.log(s / t)
        u = h * (nodes + 1) / 2
        integral = h / 2 * np.sum(weights * (1 + eta) * np.exp(-(1 + eta) * (h - u)) * poly(-np.log(s) - lam_0 + u))
        errors.append(abs(float(states[i]) - (t / s * np.exp(-eta * h) * float(states[i - 1]) + integral)))
    return errors


@pytest.mark.parametrize('name,sampler,kwargs,eta,degree', [
    ('2m', sample_dpmpp_2m, {}, 0., 0),
    ('2m_sde midpoint', sample_dpmpp_2m_sde, {}, 1., 0),
    ('2m_sde heun', sample_dpmpp_2m_sde, dict(solver_type='heun'), 0., 1),
    ('2m_sde heun', sample_dpmpp_2m_sde, dict(solver_type='heun'), 1., 1),
    ('3m_sde', sample_dpmpp_3m_sde, {}, 0., 1),
    ('3m_sde', sample_dpmpp_3m_sde, {}, 1., 1),
    ('3m_sde taylor weight', sample_dpmpp_3m_sde, dict(d2_weight=2.), 0., 2),
    ('3m_sde taylor weight', sample_dpmpp_3m_sde, dict(d2_weight=2.), 1., 2)])
def test_steps_are_exact_up_to_their_degree(name, sampler, kwargs, eta, degree):
    """From step ``degree`` on (once that many earlier D's exist), a step is exact (< 1e-12; measured <= 3e-14) when
    D is a polynomial of degree ``degree`` in lambda, and off by > 1e-3 for one degree more.  2M and 2M SDE
    'midpoint' are exact for constant D only (their phi_1 / 2 weight on h D' is not the Taylor phi_2: measured
    0.027 .. 0.15 and 0.065 .. 0.26 off for linear D); 'heun' for linear D; 3M with the shipped weight on d'' only
    for linear D too (0.021 .. 0.096 off for quadratic D at eta 0, 0.032 .. 0.13 at eta 1); 3M with the Taylor weight
    for quadratic D."""
    coeffs = [1., 0.3, 0.05, 0.01]
    exact = local_errors(sampler, coeffs[:degree + 1], eta, **kwargs)[degree:]
    assert max(exact) < 1e-12, exact
    off = local_errors(sampler, coeffs[:degree + 2], eta, **kwargs)[degree + 1:]
    assert min(off) > 1e-3, off


# --- the SDEs: the output law converges ------------------------------------------------------------------------

def probe(sampler, n, **kwargs):
    """The exact output law of ``sampler`` on the side-4 Gaussian (see the module docstring): (mean, variance) per
    coordinate and the number of draws."""
    P, MU = gaussian(4)
    batch = n + 1                                       # element 0: c; 1: a sigma_max; 1 + j: b_j of draw j
    x0 = torch.zeros(batch, 1, 4, 4, dtype=torch.float64)
    x0[1] = SIGMA_MAX
    count = [0]

    def unit_draw():
        count[0] += 1
        z = torch.zeros_like(x0)
        z[1 + count[0]] = 1.
        return z
    x, _ = sampler(exact_score(P, MU), x0, sigma_schedule('karras', SIGMA_MIN, SIGMA_MAX, n), unit_draw, **kwargs)
    return x[0], ((x[1:] - x[0]) ** 2).sum(0), count[0]


@pytest.mark.parametrize('name', list(SDE))
def test_sde_variances_converge(name):
    """Exact per-coordinate output variance against P^2 / (P + sigma_min^2): mean |var / target - 1| falls as N^-2.
    Measured for N = 32, 128, 512: 2M SDE midpoint 0.058, 0.0039, 0.00024; heun 0.13, 0.0072, 0.00043; 3M SDE 0.066,
    0.0023, 0.00014 (slope -2.02 .. -2.04 from 128 to 512); worst coordinate at 512 <= 0.00053.  The means are
    within 2e-4 of MU in units of the std (the N(0, sigma_max^2) prior ignores MU)."""
    sampler, kwargs = SDE[name]
    P, MU = gaussian(4)
    target = P[0] ** 2 / (P[0] + SIGMA_MIN ** 2)
    ns, errors = [32, 128, 512], []
    for n in ns:
        mean, var, n_draws = probe(sampler, n, **kwargs)
        assert n_draws == n - 1                          # one full-batch draw per step, none on the last
        errors.append((float((var / target - 1).abs().mean()), float((var / target - 1).abs().max())))
        assert float(((mean - MU[0]).abs() / target.sqrt()).max()) < 1e-3
    means = [e[0] for e in errors]
    assert means[0] > means[1] > means[2], errors
    assert -2.3 <= slope(ns[1:], means[1:]) <= -1.7, errors
    assert means[2] < 1e-3 and errors[2][1] < 1e-3, errors


def test_probe_agrees_with_monte_carlo():
    """The probed law is the law of the samples: 2M SDE midpoint at N = 32, 1024 samples x 16 copies per variance
    (relative standard error 1.1 %): per-coordinate sample variances within 5 % of the probed ones (measured max
    1.7 %), and the error against the target as the probe says (0.057 vs 0.058)."""
    P, MU = gaussian(16)
    target = P ** 2 / (P + SIGMA_MIN ** 2)
    draw = draws((1024, 1, 16, 16), 1)
    sigmas = sigma_schedule('karras', SIGMA_MIN, SIGMA_MAX, 32)
    x, _ = sample_dpmpp_2m_sde(exact_score(P, MU), SIGMA_MAX * draw(), sigmas, draw)
    v = x.flatten(1).reshape(1024, -1, 16)
    var = ((v - v.mean((0, 1))) ** 2).mean((0, 1))
    _, probed, _ = probe(sample_dpmpp_2m_sde, 32)
    assert float((var / probed.flatten() - 1).abs().max()) < 0.05
    exact_error = float((probed.flatten() / target.flatten()[:16] - 1).abs().mean())
    assert abs(variance_error(x, P, target)[0] - exact_error) < 0.01


# --- through sampling.sample: NFE, PDS, configuration -------------------------------------------------------

@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('corrector,pds', [('none', False), ('langevin', True), ('ald', False)])
def test_nfe_is_the_number_of_score_calls(method, corrector, pds):
    """NFE = N (one denoiser call per step, the last to sigma = 0 included) + (N - 1) n_steps_each with a step
    corrector, as sampling.iterations says."""
    config = _rival_config(method, num_steps=7, step_corrector=corrector, n_steps_each=2)
    if pds:
        config.pds.enabled, config.pds.freq = True, 'radial'
    P, MU = gaussian(4, torch.float32)
    score, calls = exact_score(P, MU), [0]

    def counted(x, sigma):
        calls[0] += 1
        return score(x, sigma)
    steps = []
    x, nfe = sampling.sample(config, counted, (4, 1, 4, 4), torch.Generator().manual_seed(0),
                             callback=lambda i, sigma, x: steps.append(sigma))
    assert torch.isfinite(x).all()
    its, expected = sampling.iterations(config)
    assert its == 7 == len(steps) and steps[-1] == 0
    assert nfe == calls[0] == expected == 7 + (6 * 2 if corrector != 'none' else 0)


def test_draw_only_from_the_generator():
    P, MU = gaussian(4, torch.float32)
    for method in METHODS:
        config = _rival_config(method, num_steps=5)
        a = sampling.sample(config, exact_score(P, MU), (4, 1, 4, 4), torch.Generator().manual_seed(5))[0]
        b = sampling.sample(config, exact_score(P, MU), (4, 1, 4, 4), torch.Generator().manual_seed(5))[0]
        c = sampling.sample(config, exact_score(P, MU), (4, 1, 4, 4), torch.Generator().manual_seed(6))[0]
        assert torch.equal(a, b) and not torch.equal(a, c), method


def _one_line_error(config, match):
    P, MU = gaussian(4, torch.float32)
    with pytest.raises(ValueError, match=match) as info:
        sampling.sample(config, exact_score(P, MU), (2, 1, 4, 4), torch.Generator().manual_seed(0))
    assert '\n' not in str(info.value)


@pytest.mark.parametrize('method', METHODS)
def test_pds_without_a_corrector_is_refused(method):
    config = _rival_config(method, num_steps=4)
    config.pds.enabled, config.pds.freq = True, 'radial'
    _one_line_error(config, "only through a Langevin corrector.*sampling.step_corrector = 'langevin'")


def test_bad_config_is_refused():
    _one_line_error(_rival_config('dpmpp_2m_sde', num_steps=4, dpmpp_solver_type='rk4'),
                    r"sampling.dpmpp_solver_type must be one of \('midpoint', 'heun'\), got 'rk4'")
    _one_line_error(_rival_config('dpmpp_3m_sde', num_steps=4, dpmpp_eta=-0.5), 'sampling.dpmpp_eta must be >= 0')
    with pytest.raises(ValueError, match="solver_type must be one of"):
        sample_dpmpp_2m_sde(None, torch.zeros(1), [1., 0.], None, solver_type='euler')
