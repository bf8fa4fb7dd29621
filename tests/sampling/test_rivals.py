"""The rival samplers (sampling/edm.py, ode.py, adaptive.py) on exact Gaussian scores.

Data: a diagonal Gaussian, coordinate j with mean MU_j and variance P_j spread over 1e-3 .. 1.  Its smoothed score
is exact, -(x - MU) / (P + sigma^2), and the probability-flow ODE has a closed-form solution from any starting
noise: x(sigma) - MU = (x(sigma_max) - MU) sqrt((P + sigma^2) / (P + sigma_max^2)) per coordinate.

The EDM grid ends with an Euler step t_{N-1} = sigma_min -> t_N = 0, i.e. x_N = D(x_{N-1}; sigma_min): a step of
fixed size sigma_min whose error (a factor P / (P + sigma_min^2) where the exact flow has its square root) does
not shrink with N.  The convergence orders are therefore measured at t_{N-1} = sigma_min, where the ODE
discretisation error lives, and the last step is checked separately to be exactly D(x; sigma_min).  For the same
reason the laws at the output are compared with P^2 / (P + sigma_min^2), the variance of D(x; sigma_min) for
x ~ p_sigma_min, which the samplers converge to (P / (P + sigma_min^2) = 0.91 .. 0.9999 times P here).
"""
import numpy as np
import pytest
import scipy.linalg
import torch

import preconditioning
import sampling
from configs import defaults
from preconditioning.operator import Preconditioner
from sampling.adaptive import sample_adaptive_sde
from sampling.edm import karras_sigmas, level_corrector, sample_edm, sigma_schedule
from sampling.ode import sample_ode
from tests.preconditioning.test_operator import dense

pytestmark = pytest.mark.usefixtures('single_thread')

SIGMA_MIN, SIGMA_MAX = 0.01, 50.
RIVALS = ('edm', 'edm_stochastic', 'ode_euler', 'ode', 'adaptive_sde')


def gaussian(side, dtype=torch.float64):
    """(P, MU) of shape (1, 1, side, side): the 16 variances 1e-3 .. 1 and means -0.5 .. 0.5, tiled."""
    n = side * side
    P = torch.tensor(np.tile(np.geomspace(1e-3, 1, 16), n // 16), dtype=dtype).reshape(1, 1, side, side)
    MU = torch.tensor(np.tile(np.linspace(-0.5, 0.5, 16), n // 16), dtype=dtype).reshape(1, 1, side, side)
    return P, MU


def exact_score(P, MU):
    def score(x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1, 1, 1)
        return -(x - MU.to(x.dtype)) / (P.to(x.dtype) + sigma ** 2)
    return score


def flow(x0, P, MU, sigma):
    """The exact probability-flow ODE solution at sigma from x0 at SIGMA_MAX."""
    return MU + (x0 - MU) * torch.sqrt((P + sigma ** 2) / (P + SIGMA_MAX ** 2))


def variance_error(x, P, target):
    """Mean and max over the 16 variances of |sample variance / target - 1| (tiled copies pooled)."""
    v = x.flatten(1).reshape(x.shape[0], -1, 16)
    var = ((v - v.mean((0, 1))) ** 2).mean((0, 1))
    rel = (var / target.flatten()[:16] - 1).abs()
    return float(rel.mean()), float(rel.max())


def draws(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return lambda: torch.randn(shape, generator=g, dtype=dtype)


# --- schedules ------------------------------------------------------------------------------------------------

def test_karras_schedule_is_eq5():
    t = karras_sigmas(0.002, 80., 18, rho=7.)
    assert len(t) == 19 and t[-1] == 0 and np.all(np.diff(t) < 0)
    assert t[0] == pytest.approx(80.) and t[-2] == pytest.approx(0.002)
    i = 5
    assert t[i] == pytest.approx((80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7)
    g = sigma_schedule('geometric', SIGMA_MIN, SIGMA_MAX, 10)
    assert g[-1] == 0 and np.allclose(np.diff(np.log(g[:-1])), np.log(SIGMA_MIN / SIGMA_MAX) / 9)
    assert list(sigma_schedule('karras', SIGMA_MIN, SIGMA_MAX, 1)) == [SIGMA_MAX, 0.]


# --- convergence orders of the deterministic samplers against the closed-form flow --------------------------

@pytest.mark.parametrize('schedule', ['karras', 'geometric'])
@pytest.mark.parametrize('heun,order,window', [(False, 1, (-1.2, -0.8)), (True, 2, (-2.4, -1.7))])
def test_euler_first_order_heun_second_order(schedule, heun, order, window):
    """Error at t_{N-1} = sigma_min (in units of the level's std) falls as N^-1 (Euler) and N^-2 (Heun).
    Measured: Euler slope -1.00 (both schedules); Heun -2.24 (karras), -2.26 (geometric) over N = 8..64."""
    P, MU = gaussian(4)
    score = exact_score(P, MU)
    x0 = SIGMA_MAX * draws((8, 1, 4, 4), 0)()
    ns, errors = [8, 16, 32, 64], []
    for n in ns:
        sigmas = sigma_schedule(schedule, SIGMA_MIN, SIGMA_MAX, n)
        states = {}
        x, nfe = sample_edm(score, x0.clone(), sigmas, None, heun=heun,
                            callback=lambda i, sigma, x: states.__setitem__(i, x.clone()))
        assert nfe == (2 * n - 1 if heun else n)
        at_min = states[n - 2]                                          # x_{N-1}, at t_{N-1} = sigma_min
        errors.append(float(((at_min - flow(x0, P, MU, SIGMA_MIN)).abs() / (P + SIGMA_MIN ** 2).sqrt()).max()))
        # the last step is the Euler step to t_N = 0: exactly the denoiser D(x; sigma_min) = x + sigma_min^2 s
        assert torch.allclose(x, at_min + SIGMA_MIN ** 2 * score(at_min, SIGMA_MIN), rtol=0, atol=1e-12)
    slope = np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert window[0] <= slope <= window[1], (errors, slope)
    assert errors[-1] < (0.2 if order == 1 else 0.03)


# --- the adaptive probability-flow ODE (scipy RK45) -----------------------------------------------------------

def test_rk45_ode_reaches_its_tolerance():
    """|x - x*| <= atol + rtol |x*| per coordinate at t = eps (measured: max ratio 0.80, 0.67, 0.73 for tol =
    1e-3, 1e-5, 1e-7) and the NFE grows as the tolerance shrinks (measured 56, 110, 254)."""
    P, MU = gaussian(4)
    score = exact_score(P, MU)
    x0 = SIGMA_MAX * draws((8, 1, 4, 4), 0)()
    eps = 1e-5
    exact = flow(x0, P, MU, SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** eps)
    nfes = []
    for tol in (1e-3, 1e-5, 1e-7):
        x, nfe = sample_ode(score, x0.clone(), SIGMA_MIN, SIGMA_MAX, eps=eps, rtol=tol, atol=tol, denoise=False)
        ratio = float(((x - exact).abs() / (tol + tol * exact.abs())).max())
        assert ratio < 3, (tol, ratio)
        nfes.append(nfe)
    assert nfes[0] < nfes[1] < nfes[2]
    # the optional denoising step is one Tweedie step at sigma(eps), one more score call
    x, nfe = sample_ode(score, x0.clone(), SIGMA_MIN, SIGMA_MAX, eps=eps, denoise=False)      # defaults 1e-5
    xd, nfe_d = sample_ode(score, x0.clone(), SIGMA_MIN, SIGMA_MAX, eps=eps, denoise=True)
    s = SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** eps
    assert nfe == nfes[1] and nfe_d == nfe + 1
    assert torch.allclose(xd, x + s ** 2 * score(x, s), rtol=0, atol=1e-12)


# --- stochastic samplers: per-coordinate laws converge with the budget ----------------------------------------

@pytest.mark.slow
def test_edm_stochastic_variances_converge():
    """EDM Algorithm 2 (S_churn = 40 on [0.05, 50], S_noise = 1): per-coordinate variance error vs N.
    Measured (1024 samples x 256 coordinates): mean |var / target - 1| = 0.35, 0.047, 0.008 for N = 16, 64, 256."""
    P, MU = gaussian(16)
    score = exact_score(P, MU)
    target = P ** 2 / (P + SIGMA_MIN ** 2)
    errors = []
    for n in (16, 64, 256):
        draw = draws((1024, 1, 16, 16), 1)
        x, nfe = sample_edm(score, SIGMA_MAX * draw(), sigma_schedule('karras', SIGMA_MIN, SIGMA_MAX, n), draw,
                            s_churn=40., s_tmin=0.05, s_tmax=50., s_noise=1.)
        assert nfe == 2 * n - 1
        errors.append(variance_error(x, P, target))
    means = [e[0] for e in errors]
    assert means[0] > means[1] > means[2], errors
    assert means[2] < 0.02 and errors[2][1] < 0.05, errors


@pytest.mark.slow
def test_adaptive_sde_variances_converge():
    """Gotta Go Fast Algorithm 1 (eps_abs = 0.0039): variance error and NFE vs eps_rel.  Measured (1024 samples x
    256 coordinates): mean error 0.048, 0.011, 0.007 and NFE 75, 165, 513 for eps_rel = 0.5, 0.1, 0.02.
    (With only 16 coordinates per sample the mixed tolerance, which depends on |x'| and so on the fresh noise,
    biases the variance up at tight tolerances -- +10 % at eps_rel = 0.02 -- the scaled norm then averages too
    few coordinates; images have >= 784.)"""
    P, MU = gaussian(16)
    score = exact_score(P, MU)
    eps = 1e-5
    s_eps = SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** eps
    target = P ** 2 / (P + s_eps ** 2)
    errors, nfes = [], []
    for reltol in (0.5, 0.1, 0.02):
        draw = draws((1024, 1, 16, 16), 1)
        calls = [0]

        def counted(x, sigma):
            calls[0] += 1
            return score(x, sigma)
        x, nfe = sample_adaptive_sde(counted, SIGMA_MAX * draw(), SIGMA_MIN, SIGMA_MAX, draw, eps=eps,
                                     abstol=0.0039, reltol=reltol)
        assert nfe == calls[0]
        errors.append(variance_error(x, P, target))
        nfes.append(nfe)
    means = [e[0] for e in errors]
    assert means[0] > means[1] > means[2], errors
    assert means[2] < 0.02 and errors[2][1] < 0.05, errors
    assert nfes[0] < nfes[1] < nfes[2]


def test_adaptive_sde_per_sample_steps():
    """Each sample has its own t and h: samples end at t = eps after different numbers of accepted steps, and the
    score is called on the samples still running only."""
    P, MU = gaussian(4)
    score = exact_score(P, MU)
    sizes = []

    def spy(x, sigma):
        sizes.append((x.shape[0], torch.as_tensor(sigma).numel()))
        return score(x, sigma)
    draw = draws((32, 1, 4, 4), 3)
    sample_adaptive_sde(spy, SIGMA_MAX * draw(), SIGMA_MIN, SIGMA_MAX, draw, reltol=0.05)
    batch = [b for b, _ in sizes[:-1]]
    assert all(b == k for b, k in sizes[:-1])               # one sigma per running sample
    assert batch[0] == 32 and min(batch) < 32               # some samples finish before others
    assert sizes[-1][0] == 32                               # the final denoising step sees the whole batch


# --- PDS behind a predictor: Theorem 1 for the corrector --------------------------------------------------

SHAPE = (1, 8, 8)


def test_theorem1_pds_corrector_keeps_the_level_law():
    """The step corrector at a fixed sigma is the linear chain x' = A x + B z with A = I - h M M^T Sigma^-1 and
    B = sqrt(2h) M (probed from the implementation); its stationary covariance (discrete Lyapunov equation)
    tends to Sigma = diag(P + sigma^2) as h -> 0 although M M^T does not commute with Sigma."""
    P, MU = gaussian(8)
    score = exact_score(P, MU)
    sigma = 0.5
    Sigma = np.diag((P + sigma ** 2).flatten().numpy())
    Pre = Preconditioner(preconditioning.radial_filter(SHAPE, 0.2, 1.6).double(), dtype=torch.float64)
    K, M = dense(Pre.gram, SHAPE).numpy(), dense(Pre.noise, SHAPE).numpy()
    n = len(Sigma)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *SHAPE)
    errors = []
    for h in (1e-3, 1e-4):
        snr = np.sqrt(h / 2) / sigma                              # 'ald' step: eps = 2 (snr sigma)^2 = h
        noise = {'z': torch.zeros(n, *SHAPE, dtype=torch.float64)}
        correct = level_corrector('ald', score, Pre, snr, 1, lambda: noise['z'])
        A = (correct(0, MU + basis, sigma)[0] - MU).reshape(n, n).T.numpy()
        noise['z'] = basis
        B = (correct(0, MU.expand(n, *SHAPE), sigma)[0] - MU).reshape(n, n).T.numpy()
        assert np.allclose(A, np.eye(n) - h * K @ np.linalg.inv(Sigma), atol=1e-12)
        assert np.allclose(B, np.sqrt(2 * h) * M, atol=1e-12)
        C = scipy.linalg.solve_discrete_lyapunov(A, B @ B.T)
        errors.append(np.linalg.norm(C - Sigma) / np.linalg.norm(Sigma))
    assert errors[1] < 2e-3 and errors[1] < errors[0] / 5, errors


class _DriftOnly:
    """A wrong preconditioner: M M^T on the score but the noise left isotropic (Theorem 1 does not hold)."""
    is_identity = False

    def __init__(self, P):
        self.P = P

    def drift(self, v):
        return self.P.drift(v)

    def noise(self, z):
        return z

    def at_step(self, i, role=None):
        return self


def _rival_config(method='edm', **sampling_fields):
    config = defaults.ve_ncsnpp()
    config.model.sigma_min, config.model.sigma_max = SIGMA_MIN, SIGMA_MAX
    config.sampling.method = method
    for key, value in sampling_fields.items():
        config.sampling[key] = value
    return config


def test_heun_with_pds_corrector_draws_the_gaussian():
    """EDM Heun (N = 40) + 5 preconditioned Langevin steps per level (radial PDS filter, lambda = 1.6, snr 0.05):
    per-coordinate variances within 3 % on average (measured 0.016, max 0.036).  The same corrector with the noise
    left unpreconditioned ends 30 % off (measured 0.31): the check can fail."""
    P, MU = gaussian(16, torch.float32)
    score = exact_score(P, MU)
    target = (P ** 2 / (P + SIGMA_MIN ** 2)).double()
    config = _rival_config('edm', num_steps=40, step_corrector='langevin', snr=0.05, n_steps_each=5)
    Pre = Preconditioner(preconditioning.radial_filter((1, 16, 16), 0.2, 1.6))
    x, nfe = sampling.sample(config, score, (1024, 1, 16, 16), torch.Generator().manual_seed(0), P=Pre)
    assert nfe == sampling.iterations(config)[1] == 2 * 40 - 1 + 39 * 5
    mean, worst = variance_error(x.double(), P, target)
    assert mean < 0.03 and worst < 0.06, (mean, worst)
    x, _ = sampling.sample(config, score, (1024, 1, 16, 16), torch.Generator().manual_seed(0), P=_DriftOnly(Pre))
    assert variance_error(x.double(), P, target)[0] > 0.2


@pytest.mark.parametrize('method', ['edm', 'edm_stochastic', 'ode_euler', 'ode', 'adaptive_sde'])
def test_pds_without_a_corrector_is_refused(method):
    config = _rival_config(method, num_steps=4)
    config.pds.enabled, config.pds.freq = True, 'radial'
    P, MU = gaussian(4, torch.float32)
    with pytest.raises(ValueError, match='only through a Langevin corrector'):
        sampling.sample(config, exact_score(P, MU), (2, 1, 4, 4), torch.Generator().manual_seed(0))
    if method in ('ode', 'adaptive_sde'):          # no corrector to put PDS in: refused even with one asked for
        config.sampling.step_corrector = 'langevin'
        with pytest.raises(ValueError, match='no corrector'):
            sampling.sample(config, exact_score(P, MU), (2, 1, 4, 4), torch.Generator().manual_seed(0))


# --- NFE counted exactly ----------------------------------------------------------------------------------

@pytest.mark.parametrize('method,corrector,pds', [
    ('edm', 'none', False), ('edm', 'langevin', True), ('edm', 'ald', False),
    ('edm_stochastic', 'none', False), ('edm_stochastic', 'langevin', True),
    ('ode_euler', 'none', False), ('ode_euler', 'langevin', True),
    ('ode', 'none', False), ('adaptive_sde', 'none', False)])
def test_nfe_is_the_number_of_score_calls(method, corrector, pds):
    config = _rival_config(method, num_steps=7, step_corrector=corrector, n_steps_each=2, s_tmax=50.,
                           ode_rtol=1e-3, ode_atol=1e-3)
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
    assert nfe == calls[0] > 0 and torch.isfinite(x).all()
    its, expected = sampling.iterations(config)
    if method in ('ode', 'adaptive_sde'):
        assert (its, expected) == (None, None)          # adaptive: known only after running
    else:
        assert its == 7 == len(steps) and steps[-1] == 0
        assert nfe == expected == (7 if method == 'ode_euler' else 13) + (6 * 2 if corrector != 'none' else 0)


def test_rivals_draw_only_from_the_generator():
    P, MU = gaussian(4, torch.float32)
    for method in RIVALS:
        config = _rival_config(method, num_steps=5, s_tmax=50.)
        a = sampling.sample(config, exact_score(P, MU), (4, 1, 4, 4), torch.Generator().manual_seed(5))[0]
        b = sampling.sample(config, exact_score(P, MU), (4, 1, 4, 4), torch.Generator().manual_seed(5))[0]
        c = sampling.sample(config, exact_score(P, MU), (4, 1, 4, 4), torch.Generator().manual_seed(6))[0]
        assert torch.equal(a, b) and not torch.equal(a, c), method
