"""VP samplers on an exactly known distribution: data N(MU, C) on 4 x 4 images, C circulant (stationary, spectrum
P_K in 0.03 .. 0.43), exact score at every level through the VE-form seam score(y, sigma).

With a linear score and no batch-coupled step size, every sampler here is an affine map of its draws,
x_out = b + sum_k C_k z_k, so its output law is known *exactly* (no Monte Carlo): :func:`exact_law` runs the sampler
once on a batch where draw k is the basis vector e_p for batch row (k, p) and zero elsewhere, and one row of zeros
(float64 throughout).  The error is KL(N(mean, cov) || N(MU, C)).  Only the snr-rule Langevin corrector couples the
batch (mean norms), so its tests are Monte Carlo.

PDS uses a strongly anisotropic M: gain 3 above |k| = 1, 1/3 at and below (M M^T eigenvalues 9 and 1/9).
"""
import math

import numpy as np
import pytest
import torch

import sampling
from configs import defaults
from preconditioning import Identity, Preconditioner
from preconditioning.operator import CorrectorOnly, MarginalPredictor
from sampling.ddpm import chain_steps, sample_ddim, sample_ddpm
from sampling.ode import sample_vp_ode
from sampling.pc import pc_sampler
from sampling.sde import VPSDE

IMG = (1, 4, 4)
NPIX = 16
MU = 0.3
_K = np.sqrt((np.fft.fftfreq(4) * 4)[:, None] ** 2 + (np.fft.fftfreq(4) * 4)[None, :] ** 2)
P_K = torch.tensor((0.03 + 0.4 / (1 + _K ** 2))[None])
GAINS = np.where(_K > 1.1, 3., 1 / 3.)[None]


def score(y, sigma):
    """Exact score of N(MU, C) * N(0, sigma^2 I) at y, in y's dtype."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1, 1)
    Y = torch.fft.fft2(y.double() - MU, norm='ortho')
    return torch.fft.ifft2(-Y / (P_K + sigma ** 2), norm='ortho').real.to(y.dtype)


def target():
    E = torch.eye(NPIX, dtype=torch.float64).reshape(NPIX, *IMG)
    cov = torch.fft.ifft2(P_K * torch.fft.fft2(E, norm='ortho'), norm='ortho').real.reshape(NPIX, NPIX)
    return torch.full((NPIX,), MU, dtype=torch.float64), cov


def kl(mean, cov):
    """KL(N(mean, cov) || the data law)."""
    m0, c0 = target()
    ci, d = torch.linalg.inv(c0), mean - m0
    return float(0.5 * (torch.trace(ci @ cov) - NPIX + d @ ci @ d + torch.logdet(c0) - torch.logdet(cov)))


def exact_law(run, n_draws):
    """(mean, covariance) of the output of ``run(draw, batch)``, an affine function of its ``n_draws`` draws."""
    B = n_draws * NPIX + 1
    basis = torch.eye(NPIX, dtype=torch.float64).reshape(NPIX, *IMG)
    calls = [0]

    def draw():
        z = torch.zeros((B, *IMG), dtype=torch.float64)
        if calls[0] < n_draws:
            z[calls[0] * NPIX:(calls[0] + 1) * NPIX] = basis
        calls[0] += 1
        return z
    x = run(draw, B).reshape(B, NPIX)
    assert calls[0] == n_draws
    C = (x[:-1] - x[-1]).reshape(n_draws, NPIX, NPIX)
    return x[-1], torch.einsum('kpi,kpj->ij', C, C)


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    """Small tensors, many steps: one thread is fastest and immune to a busy machine."""


def anisotropic():
    return Preconditioner(GAINS, dtype=torch.float64)


FORMS = {'vanilla': lambda: Identity(), 'official': anisotropic,
         'marginal': lambda: MarginalPredictor(anisotropic(), exact_prior=True)}


def pc_law(predictor, N, P=None, eps=1e-5):
    sde = VPSDE(0.1, 20., N)
    return kl(*exact_law(lambda draw, B: pc_sampler(score, (B, *IMG), sde, draw, predictor, 'none', eps=eps,
                                                     P=P or Identity())[0], N + 1))


CHAIN = VPSDE(0.1, 20., 1000)


def ddpm_law(S, P=None, variance='beta'):
    P = P or Identity()
    tau = chain_steps(1000, (), S)
    return kl(*exact_law(lambda draw, B: sample_ddpm(score, P.at_step(0, 'prior').noise(draw()), CHAIN, tau, draw,
                                                     variance, P=P)[0], S))


def ddim_law(S, eta):
    tau = chain_steps(1000, (), S)
    return kl(*exact_law(lambda draw, B: sample_ddim(score, draw(), CHAIN, tau, draw, eta)[0], S if eta else 1))


# ---- the seam -------------------------------------------------------------------------------------------------

def test_vp_seam_is_the_exact_vp_score():
    """sde.score of a VE-form score: grad log p_t of x_t = sqrt(alpha_bar) x_0 + std n, against the closed form."""
    sde = VPSDE(0.1, 20., 1000)
    t = torch.tensor([0.9, 0.3, 1e-3], dtype=torch.float32)
    x = torch.randn((3, *IMG), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ab = torch.exp(2 * sde.log_mean_coeff(t.double()))[:, None, None, None]
    X = torch.fft.fft2(x - ab.sqrt() * MU, norm='ortho')
    ref = torch.fft.ifft2(-X / (ab * P_K + 1 - ab), norm='ortho').real
    assert torch.allclose(sde.score(score, x, t), ref, rtol=1e-10, atol=1e-10)
    # sigma(t) and its inverse
    assert torch.allclose(sde.t_of_sigma(sde.sigma(t.double())), t.double(), rtol=1e-12)
    assert abs(sde.sigma_max - math.sqrt(math.expm1(0.1 + 19.9 / 2))) < 1e-9


# ---- vanilla samplers: the right law at the right order -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('predictor', ['euler_maruyama', 'reverse_diffusion', 'ancestral_sampling'])
def test_vanilla_pc_predictors_are_first_order(predictor):
    """KL at N = 100, 200 (measured: EM 4.0e-4 -> 8.9e-5, reverse diffusion 8.6e-4 -> 2.0e-4, ancestral 7.9e-4 ->
    2.2e-4): the error halves with the step (KL, quadratic in it, falls ~4x)."""
    k100, k200 = pc_law(predictor, 100), pc_law(predictor, 200)
    assert k200 < 3e-4 and 3.2 < k100 / k200 < 5.5, (k100, k200)


def test_vanilla_ddpm_ancestral_is_first_order_on_any_subsequence():
    """Ho et al.'s Algorithm 2 on S evenly spread steps of the 1000-step chain (respaced), sigma^2 = beta or the
    posterior variance (measured at S = 50 -> 100: beta 5.3e-2 -> 1.3e-2, beta_tilde 3.2e-1 -> 1.0e-1, the latter
    equal to DDIM with eta = 1 and as slow to reach the 4x)."""
    for variance, bound in (('beta', 3e-2), ('beta_tilde', 0.15)):
        k50, k100 = ddpm_law(50, variance=variance), ddpm_law(100, variance=variance)
        assert k100 < bound and 2.8 < k50 / k100 < 5.5, (variance, k50, k100)
    assert ddpm_law(200) < 4e-3                # measured 3.0e-3


def test_the_chain_of_a_continuous_model_is_its_sde_at_t_j():
    """ddpm / ddim on a continuous VP model run on alpha_bar(t_j), t_j = (j + 1) / N (models.sde.VPTimeChain): its top
    level is sigma(1) (the discrete chain's is 157.4, beyond the model's 152.2), its lowest t = 1 / N; DDPM and DDIM
    on it land on the exact Gaussian at the discrete chain's rate."""
    from models.sde import VPTimeChain
    chain = VPTimeChain(CHAIN)
    levels = chain.level_sigmas()
    assert abs(float(levels[-1]) / CHAIN.sigma_max - 1) < 1e-12 and float(CHAIN.level_sigmas()[-1]) > 157.
    assert abs(float(levels[0]) - float(CHAIN.sigma(torch.tensor(1e-3, dtype=torch.float64)))) < 1e-12
    config = vp_config('ddpm', num_steps=200)
    assert isinstance(sampling.ddpm_chain(config), VPTimeChain) == bool(config.training.continuous)
    config.training.continuous = False
    assert sampling.ddpm_chain(config) is not None and not isinstance(sampling.ddpm_chain(config), VPTimeChain)
    tau = chain_steps(1000, (), 200)
    k_ddpm = kl(*exact_law(lambda draw, B: sample_ddpm(score, draw(), chain, tau, draw)[0], 200))
    k_ddim = kl(*exact_law(lambda draw, B: sample_ddim(score, draw(), chain, tau, draw, 0.)[0], 1))
    ref_ddpm, ref_ddim = ddpm_law(200), ddim_law(200, 0.)                  # the same samplers on the discrete chain
    assert k_ddpm < 4e-3 and 0.7 < k_ddpm / ref_ddpm < 1.4 and 0.7 < k_ddim / ref_ddim < 1.4, \
        (k_ddpm, ref_ddpm, k_ddim, ref_ddim)


@pytest.mark.parametrize('eta', [0., 1.])
def test_ddim_is_first_order(eta):
    """DDIM (Song et al. 2021, Eq. 12), eta 0 (deterministic: one draw, the prior) and 1 (measured: 8.3e-2 -> 2.1e-2
    and 3.2e-1 -> 1.1e-1 at S = 50 -> 100; eta = 1 approaches the 4x slowly, 3.3 at S = 200)."""
    k50, k100 = ddim_law(50, eta), ddim_law(100, eta)
    assert k100 < 0.12 and 2.8 < k50 / k100 < 5.5, (k50, k100)


def test_ddim_eta_one_on_the_full_chain_is_ddpm_with_the_posterior_variance():
    tau = chain_steps(1000, (), 40)
    prior = torch.randn((4, *IMG), generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def run(fn):
        g = torch.Generator().manual_seed(4)
        return fn(lambda: torch.randn((4, *IMG), generator=g, dtype=torch.float64))
    a = run(lambda draw: sample_ddim(score, prior.clone(), CHAIN, tau, draw, 1.)[0])
    b = run(lambda draw: sample_ddpm(score, prior.clone(), CHAIN, tau, draw, 'beta_tilde')[0])
    assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def test_probability_flow_ode_follows_the_exact_flow():
    """Without denoising, RK45 (rtol = atol = 1e-5) lands on the exact flow map of the Gaussian: per frequency
    x_eps - c(eps) = sqrt(T(eps) / T(1)) (x_1 - c(1)), c(t) = sqrt(alpha_bar) mu, T = alpha_bar P + 1 - alpha_bar."""
    sde = VPSDE(0.1, 20., 1000)
    x1 = torch.randn((8, *IMG), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x, nfe = sample_vp_ode(score, x1, sde, eps=1e-3, denoise=False)
    ab = [float(torch.exp(2 * sde.log_mean_coeff(torch.tensor(t, dtype=torch.float64)))) for t in (1., 1e-3)]
    T = [a * P_K + 1 - a for a in ab]
    X1 = torch.fft.fft2(x1 - math.sqrt(ab[0]) * MU, norm='ortho')
    ref = torch.fft.ifft2(X1 * torch.sqrt(T[1] / T[0]), norm='ortho').real + math.sqrt(ab[1]) * MU
    assert (x - ref).abs().max() < 1e-3 * ref.abs().max() and 20 < nfe < 400
    # with score_sde's denoising step, a batch of 4096 has the data's per-frequency variance
    x1 = torch.randn((4096, *IMG), generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x, _ = sample_vp_ode(score, x1, sde, eps=1e-3)
    V = (torch.fft.fft2(x - x.mean(0), norm='ortho').abs() ** 2).mean(0)
    assert ((V / P_K - 1).abs().max()) < 0.1 and abs(float(x.mean()) - MU) < 0.01


# ---- PDS: (a) the official form carried over, (b) the marginal form, (c) the preconditioned corrector ----------

@pytest.mark.slow
@pytest.mark.parametrize('predictor', ['euler_maruyama', 'reverse_diffusion', 'ancestral_sampling'])
def test_marginal_form_alone_lands_on_the_gaussian_and_the_official_form_does_not(predictor):
    """(b) converges to the exact law at first order for the anisotropic M (KL at N = 100 -> 200 measured:
    EM 5.0e-3 -> 9.0e-4, reverse diffusion 4.9e-2 -> 1.0e-2, ancestral 2.6e-2 -> 4.9e-3; at 400: 2.0e-4, 2.3e-3,
    1.0e-3); (a) does not converge at all: KL 2.6-2.7 at N = 200, 400 alike (measured 2.65, 2.67, 2.62 at 200):
    its slow directions (M M^T = 1/9) keep too much of the prior and miss the mean (the DC gain is 1/3)."""
    b100, b200 = pc_law(predictor, 100, FORMS['marginal']()), pc_law(predictor, 200, FORMS['marginal']())
    assert b200 < 0.02 and 3.5 < b100 / b200 < 6, (b100, b200)
    a200 = pc_law(predictor, 200, FORMS['official']())
    assert 2.4 < a200 < 2.8, a200


def test_marginal_form_needs_the_true_prior():
    """From the official PDS prior M z instead of N(0, I), the marginal form stays off: the 1/9-gain directions
    contract slowly and remember the prior's variance."""
    P = MarginalPredictor(anisotropic(), exact_prior=False)
    assert pc_law('euler_maruyama', 200, P) > 0.05


@pytest.mark.slow
def test_ddpm_ancestral_marginal_form_lands_on_the_gaussian():
    """DDPM ancestral steps in the marginal form, (x + beta (I + M M^T) / 2 s) / sqrt(1 - beta) + sqrt(beta) M z:
    first order (KL 9.2e-2 -> 1.9e-2 at S = 100 -> 200); the official form carried over stays at KL ~2.2-2.5."""
    b100, b200 = ddpm_law(100, FORMS['marginal']()), ddpm_law(200, FORMS['marginal']())
    assert b200 < 3e-2 and 3.5 < b100 / b200 < 6, (b100, b200)
    assert ddpm_law(200, FORMS['official']()) > 2.


def _mc_kl(x):
    """Per-frequency KL of a Monte-Carlo batch (mean and variance per DFT coefficient; the law is diagonal there)."""
    X = torch.fft.fft2(x.double(), norm='ortho')
    mu = torch.fft.fft2(torch.full(IMG, MU, dtype=torch.float64), norm='ortho')
    m, V = X.mean(0) - mu, (X - X.mean(0)).abs().pow(2).mean(0)
    return float((0.5 * (V / P_K - 1 - torch.log(V / P_K) + m.abs() ** 2 / P_K)).mean())


def _pc_mc(P, corrector, N=100, B=4096):
    g = torch.Generator().manual_seed(7)
    x, _ = pc_sampler(score, (B, *IMG), VPSDE(0.1, 20., N),
                      lambda: torch.randn((B, *IMG), generator=g, dtype=torch.float64), 'euler_maruyama', corrector,
                      eps=1e-3, P=P)
    return _mc_kl(x)


@pytest.mark.slow
def test_preconditioned_langevin_corrector_alone_keeps_the_gaussian():
    """(c): vanilla Euler-Maruyama predictor, preconditioned VP Langevin corrector (alpha_j, snr 0.16), 4096 samples,
    N = 100: at the Monte-Carlo floor as vanilla PC (measured 1.4e-4 and 1.7e-4).  The same corrector with M in the
    drift but not in the noise leaves the law (5.6e-3: Theorem 1 needs both), and the official form in every update,
    (a) + (c), ends at 0.16: the corrector pulls (a) back only partly."""
    vanilla = _pc_mc(Identity(), 'langevin')
    corrector_only = _pc_mc(CorrectorOnly(anisotropic()), 'langevin')
    assert vanilla < 5e-4 and corrector_only < 5e-4, (vanilla, corrector_only)

    class DriftOnly(Preconditioner):
        def noise(self, z):
            return z
    broken = _pc_mc(CorrectorOnly(DriftOnly(GAINS, dtype=torch.float64)), 'langevin')
    assert broken > 10 * corrector_only, (broken, corrector_only)
    assert 0.1 < _pc_mc(anisotropic(), 'langevin') < 0.25


# ---- the sampler API on a VP config ----------------------------------------------------------------------------

def vp_config(method='pc', **sampling_fields):
    config = defaults.vp('ncsnpp', continuous=True)
    config.data.num_channels, config.data.image_size = IMG[0], IMG[-1]
    config.sampling.method = method
    for key, value in sampling_fields.items():
        config.sampling[key] = value
    return config


@pytest.mark.parametrize('method,fields', [
    ('pc', dict(predictor='reverse_diffusion', corrector='langevin', num_steps=100)),
    ('pc', dict(predictor='euler_maruyama', corrector='none', num_steps=100)),
    ('ddpm', dict(num_steps=100)),
    ('ddim', dict(num_steps=50)),
    ('ddim', dict(num_steps=50, ddim_eta=1.)),
    ('ode', dict()),
])
def test_sample_api_draws_the_gaussian(method, fields):
    config = vp_config(method, **fields)
    x, nfe = sampling.sample(config, score, (2048, *IMG), torch.Generator().manual_seed(8))
    its = sampling.iterations(config)[1]
    assert its is None or nfe == its
    assert abs(float(x.mean()) - MU) < 0.02 and _mc_kl(x) < 0.03, _mc_kl(x)


def test_sample_api_marginal_form_on_ddpm():
    config = vp_config('ddpm', num_steps=200)
    config.pds.enabled, config.pds.freq, config.pds.radius, config.pds.lam = True, 'radial', 0.3, 3.
    config.pds.predictor_drift = 'marginal'
    x, nfe = sampling.sample(config, score, (2048, *IMG), torch.Generator().manual_seed(9))
    assert nfe == 200 and _mc_kl(x) < 0.03


def _one_line(err):
    text = str(err.value)
    assert '\n' not in text and len(text) < 600, text
    return text


def test_bad_input_is_one_line():
    # a PDS form a sampler does not support
    config = vp_config('ddim', num_steps=10)
    config.pds.enabled, config.pds.freq = True, 'radial'
    with pytest.raises(ValueError, match='ddim') as err:
        sampling.sample(config, score, (2, *IMG))
    _one_line(err)
    config = vp_config('ode')
    config.pds.enabled, config.pds.freq = True, 'radial'
    with pytest.raises(ValueError, match="'ode'") as err:
        sampling.sample(config, score, (2, *IMG))
    _one_line(err)
    config = vp_config('pc', num_steps=30, probability_flow=True)
    config.pds.enabled, config.pds.freq = True, 'radial'
    with pytest.raises(ValueError, match='probability') as err:
        sampling.sample(config, score, (2, *IMG))
    _one_line(err)
    config = vp_config('ddim', num_steps=10)
    config.pds.enabled, config.pds.freq, config.pds.predictor_drift = True, 'radial', 'marginal'
    with pytest.raises(ValueError, match="predictor_drift = 'marginal'") as err:
        sampling.sample(config, score, (2, *IMG))
    _one_line(err)
    config = vp_config('ddpm', num_steps=10)
    config.pds.enabled, config.pds.freq, config.pds.apply_to = True, 'radial', 'corrector'
    with pytest.raises(ValueError, match='no corrector steps') as err:
        sampling.sample(config, score, (2, *IMG))
    _one_line(err)
    # a DDIM subsequence that does not fit N
    for steps in ((0, 500, 1000), (10, 5), (-1, 3), (0.5, 3)):
        config = vp_config('ddim', chain_steps=steps)
        with pytest.raises(ValueError, match='does not fit the N = 1000 step chain') as err:
            sampling.sample(config, score, (2, *IMG))
        _one_line(err)
    with pytest.raises(ValueError, match='num_steps') as err:
        sampling.sample(vp_config('ddim', num_steps=2000), score, (2, *IMG))
    _one_line(err)
    # samplers of the other process (the fixed-step rivals run on VP: tests/sampling/test_vp_rivals.py)
    for method in ('adaptive_sde', 'ald'):
        with pytest.raises(ValueError, match="VP model") as err:
            sampling.sample(vp_config(method), score, (2, *IMG))
        _one_line(err)
    ve = defaults.ve_ncsnpp()
    ve.sampling.method = 'ddim'
    with pytest.raises(ValueError, match='VE') as err:
        sampling.sample(ve, score, (2, *IMG))
    _one_line(err)
    # the official code's NaN below N = 20 is refused where a discrete update would take it
    for predictor, corrector, N in (('ancestral_sampling', 'none', 20), ('euler_maruyama', 'langevin', 19),
                                    ('reverse_diffusion', 'none', 12)):
        with pytest.raises(ValueError, match='expected N > beta_max') as err:
            sampling.sample(vp_config('pc', predictor=predictor, corrector=corrector, num_steps=N), score, (2, *IMG))
        _one_line(err)
    x, _ = sampling.sample(vp_config('pc', predictor='euler_maruyama', corrector='none', num_steps=8), score,
                           (2, *IMG))
    assert torch.isfinite(x).all()


def test_chain_steps():
    assert chain_steps(1000).tolist() == list(range(1000))
    assert chain_steps(1000, num_steps=5).tolist() == [0, 250, 500, 749, 999]
    assert chain_steps(1000, num_steps=1).tolist() == [999]
    assert chain_steps(10, steps=(0, 3, 9)).tolist() == [0, 3, 9]


# ---- (A5): the moment recursion of preconditioning/auto.py on VP ----------------------------------------------

def _spec():
    from preconditioning import auto
    return auto.Spectrum.gaussian(P_K.numpy(), np.full(IMG, MU))


def _per_frequency(mean, cov):
    """The exact law's per-frequency mean error and variance (it is diagonal in the orthonormal DFT)."""
    F = torch.fft.fft2(torch.eye(NPIX, dtype=torch.complex128).reshape(NPIX, *IMG), norm='ortho').reshape(NPIX, NPIX).T
    m = (F @ mean.to(torch.complex128)).reshape(IMG).numpy() - _spec().mu
    V = torch.diagonal(F @ cov.to(torch.complex128) @ F.conj().T).real.reshape(IMG).numpy()
    return m, V


@pytest.mark.parametrize('predictor', ['euler_maruyama', 'reverse_diffusion', 'ancestral_sampling'])
@pytest.mark.parametrize('form', ['vanilla', 'official', 'marginal'])
def test_vp_moment_recursion_is_the_sampler(predictor, form):
    """(A5) gives the predictor-only sampler's exact law (both exact; they agree to the float32 rounding of the
    sampler's time grid and beta(t), ~1e-6 relative)."""
    from preconditioning import auto
    N = 40
    P = FORMS[form]()
    sde = VPSDE(0.1, 20., N)
    m, V = _per_frequency(*exact_law(lambda draw, B: pc_sampler(score, (B, *IMG), sde, draw, predictor, 'none',
                                                                 eps=1e-3, P=P)[0], N + 1))
    table = None if form == 'vanilla' else GAINS
    m_r, V_r = auto.vp_pc_moments(_spec(), sde, 1e-3, predictor, 'none', filters=lambda i, role: table,
                                  predictor_drift='marginal' if form == 'marginal' else 'official',
                                  exact_prior=form == 'marginal')
    assert np.abs(m - m_r).max() < 1e-5 * np.abs(m_r).max() and np.abs(V / V_r - 1).max() < 1e-5


@pytest.mark.parametrize('form', ['official', 'marginal'])
def test_ddpm_moment_recursion_is_the_sampler(form):
    from preconditioning import auto
    tau = chain_steps(1000, (), 60)
    P = FORMS[form]()
    m, V = _per_frequency(*exact_law(lambda draw, B: sample_ddpm(score, P.at_step(0, 'prior').noise(draw()), CHAIN,
                                                                  tau, draw, 'beta', P=P)[0], 60))
    m_r, V_r = auto.ddpm_moments(_spec(), CHAIN, tau, 'beta', lambda i, role: GAINS, form, form == 'marginal')
    assert np.abs(m - m_r).max() < 1e-5 * np.abs(m_r).max() and np.abs(V / V_r - 1).max() < 1e-5



@pytest.mark.parametrize('eta', [0., 1., 0.5])
def test_ddim_moment_recursion_is_the_sampler(eta):
    """DDIM's exact law (eta 0: deterministic, one draw for the prior) is the recursion's."""
    from preconditioning import auto
    tau = chain_steps(1000, (), 25)
    draws = 1 if eta == 0 else len(tau)
    m, V = _per_frequency(*exact_law(lambda draw, B: sample_ddim(score, draw(), CHAIN, tau, draw, eta)[0], draws))
    m_r, V_r = auto.ddim_moments(_spec(), CHAIN, tau, eta)
    assert np.abs(m - m_r).max() < 1e-5 * np.abs(m_r).max() and np.abs(V / V_r - 1).max() < 1e-5
    # and it is not any other sampler's: DDPM ancestral on the same steps has another law
    m_d, V_d = auto.ddpm_moments(_spec(), CHAIN, tau, 'beta')
    assert np.abs(V_d / V_r - 1).max() > 1e-3

@pytest.mark.slow
def test_vp_moment_recursion_with_the_corrector_matches_monte_carlo():
    """With the snr-rule Langevin corrector (taken in expectation by the recursion) the sampler's 4096-sample KL is
    the recursion's to the Monte-Carlo floor, for vanilla and for PDS everywhere (a) + (c)."""
    from preconditioning import auto
    sde = VPSDE(0.1, 20., 100)
    for P, table in ((Identity(), None), (anisotropic(), GAINS)):
        rec = auto.kl(*auto.vp_pc_moments(_spec(), sde, 1e-3, 'euler_maruyama', 'langevin',
                                          filters=lambda i, role: table), P_K.numpy())
        mc = _pc_mc(P, 'langevin')
        assert abs(mc - rec) < 3e-4 + 0.05 * rec, (mc, rec)


def test_denoiser_last_step_is_tweedie_and_removes_what_the_official_last_step_amplifies():
    """``last_step = 'denoiser'``: at N = 1 the output is Tweedie's E[x_0 | x_1] of the prior draw, exactly; on data with
    a near-degenerate direction (variance 1e-6, as a learned score sees off the data manifold at small sigma), score_sde's
    last Euler-Maruyama step from t = 1e-3 at N = 20 has gain ~55 and blows the residual noise up, the denoiser
    removes it."""
    from sampling.pc import denoise
    sde = VPSDE(0.1, 20., 1)
    g = torch.Generator().manual_seed(0)
    z = torch.randn((3, *IMG), generator=g, dtype=torch.float64)
    out, nfe = pc_sampler(score, (3, *IMG), sde, lambda: z, 'euler_maruyama', 'none', eps=1e-3, last_step='denoiser')
    ab = float(sde.alpha_bar(torch.tensor(1., dtype=torch.float64)))
    y = z / math.sqrt(ab)
    sigma = math.sqrt(1 / ab - 1)
    tweedie = (y + sigma ** 2 * score(y, torch.full((3,), sigma, dtype=torch.float64)))      # VE form at sigma(1)
    torch.testing.assert_close(out, tweedie, rtol=1e-10, atol=1e-10)
    assert nfe == 1
    t = torch.full((3,), 1., dtype=torch.float64)
    torch.testing.assert_close(denoise(score, sde, z, t), tweedie, rtol=1e-10, atol=1e-10)

    P_thin = torch.full(IMG, 0.2, dtype=torch.float64)
    P_thin[0, 1, 2] = P_thin[0, 3, 2] = 1e-6         # one frequency pair (k, -k) with (almost) no data variance

    def thin(y, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1, 1)
        Y = torch.fft.fft2(y.double(), norm='ortho')
        return torch.fft.ifft2(-Y / (P_thin + sigma ** 2), norm='ortho').real.to(y.dtype)
    sde = VPSDE(0.1, 20., 20)
    spread = {}
    for last in ('predictor', 'denoiser'):
        g = torch.Generator().manual_seed(1)
        x, _ = pc_sampler(thin, (512, *IMG), sde, lambda: torch.randn((512, *IMG), generator=g, dtype=torch.float64),
                          'euler_maruyama', 'none', eps=1e-3, last_step=last)
        spread[last] = torch.fft.fft2(x, norm='ortho')[:, 0, 1, 2].abs().pow(2).mean().item()
    assert spread['predictor'] > 100 * spread['denoiser'] and spread['denoiser'] < 1e-4, spread


def test_last_step_is_checked():
    with pytest.raises(ValueError, match="sampling.last_step = 'tweedie'"):
        pc_sampler(score, (1, *IMG), VPSDE(0.1, 20., 2), lambda: torch.zeros(1, *IMG), 'euler_maruyama', 'none',
                   last_step='tweedie')
