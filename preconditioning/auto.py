"""Automatic PDS (``pds.freq = 'auto'``): per-step frequency filters derived from the data's spectrum and the
sampler's schedule, with no alpha, lambda or step size to tune.  This docstring is the derivation:

Model the data as a Gaussian that is diagonal in the orthonormal 2-D DFT: frequency k has mean mu_k and variance
P_k (both from ``--mode stats``' ``<name>_spectrum.npy``).  At noise level sigma the score is then
s_k = -(x_k - mu_k) / T_k with T_k = P_k + sigma^2, and every sampler update with a frequency filter r_k,

    x <- x + h r_k^2 s(x) + sqrt(q) r_k z,

is linear per frequency.  With e = x - mu, its mean m_k (the mean error, complex) and variance V_k over the
sampler's randomness evolve as (beta = 1 - h r_k^2 / T_k)

    m_k <- beta m_k,    V_k <- beta^2 V_k + q r_k^2.                                                (A1)

So for a schedule we can follow (m, V) exactly, step by step, from the prior (PC: m = -mu, V = sigma_max^2;
annealed Langevin: the U[0, 1] start, m = F(1/2 - mu), V = 1/12), and choose r per frequency and per step to
bring N(m, V) closest, in KL, to the next level's marginal N(0, T'_k), T'_k = P_k + sigma_next^2 (N(0, P_k) at
the end).  The error measure is the same KL, averaged over frequencies (:func:`kl`): zero only when the variance
*and* the mean of every frequency are right (a second moment alone could be matched by a final gain).

* Langevin corrector (PC; q = 2h, h = eps from score_sde's snr rule): r_k^2 ∝ T_k, the covariance of p_sigma
  itself (Newton / affine-invariant Langevin).  Every frequency then mixes at the same rate a = eps r^2 / T, the
  snr rule sets a = 2 snr^2 sum(T) / sum(|m|^2 + V) whatever the scale of r, and the chain keeps p_sigma invariant
  for this (invertible) M at every level: supp. Theorem 1 covers it.                               (A2)
* reverse-diffusion predictor (PC; h = q = Delta = sigma_i^2 - sigma_{i+1}^2): with b = Delta r^2 / T, (A1) is
  m' = (1 - b) m, V' = (1 - b)^2 V + b T; b in [1e-6, 1] (no sign flip: the stability bound) minimising the KL to
  N(0, T'), by a log grid refined around its best point.  At the last step with noise removal (x_mean only,
  V' = (1 - b)^2 V) the target is N(0, P).  Vanilla is b = Delta / T (r = 1).  This preconditions the predictor,
  which is *beyond* Theorem 1: it changes the reverse-diffusion step itself (exact for a Gaussian, a hypothesis
  for a learned score).                                                                            (A3)
* annealed Langevin (NCSN / NCSNv2; h = alpha_c = step_lr (sigma_c / sigma_L)^2, q = 2h, n steps per level):
  with a = alpha_c r^2 / T, n steps give m_n = (1 - a)^n m, V_n = (1 - a)^{2n} (V - V_inf) + V_inf,
  V_inf = 2T / (2 - a) (the discretised chain's own stationary value); a in [1e-4, 1] minimising the KL to
  N(0, T_c), or to N(0, P) at the last level (NCSN v1 stops there); NCSNv2's final denoising step is chosen as
  the last predictor above.  The filter is r^2 = a T / alpha_c, so ``step_lr`` no longer matters.  Langevin steps
  only (r > 0 at every level): Theorem 1 covers every step but NCSNv2's final denoising step.        (A4)

Stability bound.  For *any* data, -Hess log p_sigma = (I - Cov[x_0 | x] / sigma^2) / sigma^2 <= I / sigma^2, so an
update whose largest gain h r_k^2 / sigma^2 stays <= GAIN_CAP = 1 never overshoots, whatever the true score; the
Gaussian model alone (curvature 1 / T_k, much softer at low frequencies) would allow far larger gains there, and a
learned or empirical score, which is as sharp as 1 / sigma^2 near the data, diverges under them (seen: the exact
score of 1,000 MNIST images went to NaN at sigma = 0.017 without the bound).  Every gain above is chosen inside the
bound (the corrector's r^2 ∝ min(T, kappa sigma^2), kappa as large as the snr rule allows).  Vanilla PC and
annealed Langevin at the official step sizes are inside it too.

* the VP SDE (score_sde's VP PC sampler, any predictor, corrector 'langevin' or 'none'): the marginal at t is
  N(sqrt(alpha_bar) mu, alpha_bar P + 1 - alpha_bar) per frequency and every update is affine,
  x <- a x + b s + sqrt(q) r z, so (A1) becomes (A5) below; the corrector filter is (A2) around the moving mean, and
  the predictor gain r^2 (official form: f and the score term both times r^2) is chosen per frequency to land
  closest to the next marginal, within the bound b <= max(GAIN_CAP (1 - alpha_bar), vanilla's b)
  (:class:`AutoVPPC`).  Beyond Theorem 1 in the predictor, as (A3).                                       (A5)

The choice is greedy (each step lands as close as it can to the next marginal).  On exact Gaussians it is at
the Monte-Carlo floor from 20 steps on and better than vanilla at every N; at 5-10 steps fixed filters whose
gains exceed the bound can do better on a Gaussian (tests/preconditioning/test_auto.py says which).

The tables are computed once per run, cheaply (one pass of (A1) over the schedule), and streamed step by step
(O(C H W) memory), so a sampler step still costs one FFT round trip per update.
"""
import math

import numpy as np
import torch

from preconditioning.filters import FilterError
from preconditioning.operator import Identity, Preconditioner

P_FLOOR = 1e-8          # variances below P_FLOOR * max(P) are raised to it (a zero would make T = sigma^2 only)


# ---------------------------------------------------------------------------------------------------------------
# The data's spectrum

class Spectrum:
    """Per-frequency mean ``mu`` (complex) and variance ``P`` of the data in the orthonormal 2-D DFT, (C, H, W),
    float64, on the unshifted grid (DC at [0, 0])."""

    def __init__(self, power, mean):
        power, mean = np.asarray(power, np.float64), np.asarray(mean, np.float64)
        h, w = power.shape[-2:]
        self.mu = np.fft.fft2(mean) / math.sqrt(h * w)                     # orthonormal DFT of the mean image
        P = power / (h * w) - np.abs(self.mu) ** 2                         # E|F x|^2 = |F mu|^2 + HW Var
        self.P = np.maximum(P, P_FLOOR * P.max())
        self.shape = power.shape

    @classmethod
    def load(cls, path, shape):
        """From ``--mode stats``' ``<name>_spectrum.npy`` ((2, C, H, W): mean |fft2 x|^2, mean x)."""
        try:
            arr = np.load(path)
        except FileNotFoundError:
            raise FilterError(f'PDS spectrum file {path!r} does not exist; make one with '
                              '`python main.py --config <cfg> --mode stats --data <dataset> --stats_dir <its '
                              'folder>`') from None
        except Exception as err:  # noqa: BLE001 -- any unreadable file gets one clear message
            raise FilterError(f'PDS spectrum file {path!r} is not a readable .npy array ({err})') from None
        if arr.ndim != 4 or arr.shape[0] != 2 or tuple(arr.shape[1:]) != tuple(shape):
            raise FilterError(f'PDS spectrum file {path!r} has shape {tuple(arr.shape)}; expected (2, C, H, W) = '
                              f'(2, {", ".join(map(str, shape))}) (mean power, mean image) from --mode stats')
        if not np.isfinite(arr).all() or (arr[0] < 0).any():
            raise FilterError(f'PDS spectrum file {path!r} holds non-finite or negative power')
        return cls(arr[0], arr[1])

    @classmethod
    def gaussian(cls, P, mean=None):
        """A stationary Gaussian with orthonormal per-frequency variance ``P`` (C, H, W) and mean image ``mean``."""
        P = np.asarray(P, np.float64)
        mean = np.zeros_like(P) if mean is None else np.asarray(mean, np.float64)
        h, w = P.shape[-2:]
        return cls(P * h * w + np.abs(np.fft.fft2(mean)) ** 2, mean)

    def freq_statistic(self, pixels=None):
        """The statistic ``--mode stats`` writes for data of this law (data/stats.py; Eq. 22's input):
        log(1 + mean |fft2 x|^2) with the unnormalised DFT, i.e. log(1 + HW (P + |mu|^2)) in orthonormal terms.
        The DC term carries HW |mean|^2 and is the maximum that Eq. 21 normalises by.  ``pixels``: HW of the
        images (default this grid's; a spectrum that holds a strided subset of a larger image's frequencies passes
        the larger image's)."""
        h, w = self.shape[-2:]
        return np.log1p((h * w if pixels is None else pixels) * (self.P + np.abs(self.mu) ** 2))

    def affine(self, scale, offset):
        """The spectrum of scale x + offset (e.g. 2, -1: the centred data of VP configs; the statistics of
        ``--mode stats`` are always taken on [0, 1] images)."""
        new = object.__new__(Spectrum)
        h, w = self.shape[-2:]
        new.shape, new.P = self.shape, scale ** 2 * self.P
        new.mu = scale * self.mu + np.fft.fft2(np.full(self.shape, float(offset))) / math.sqrt(h * w)
        return new

    def mean_error_of(self, offset):
        """F(offset - mu): the mean error (complex, orthonormal) of a start whose mean image is ``offset``."""
        h, w = self.shape[-2:]
        return np.fft.fft2(np.broadcast_to(offset, self.shape)) / math.sqrt(h * w) - self.mu


def kl(m, V, P):
    """The error measure: mean over frequencies of KL(N(m_k, V_k) || N(0, P_k)) per real degree of freedom,
    0.5 (V/P - 1 - log(V/P) + |m|^2/P): zero only for the right variance *and* mean."""
    m, V, P = np.abs(np.asarray(m)) ** 2, np.asarray(V), np.asarray(P)
    return float(np.mean(0.5 * (V / P - 1 - np.log(V / P) + m / P)))


def _kl_terms(m2, V, T):
    return V / T - 1 - np.log(V / T) + m2 / T


# ---------------------------------------------------------------------------------------------------------------
# The moment recursion (A1) for the two samplers, for any filter schedule.  State: the mean error m_k (complex)
# and the variance V_k of e = x - mu per frequency; an update with beta, q r^2 maps m <- beta m, V <- beta^2 V + q r^2.

def _sde_steps(sde, eps):
    """Per PC step i: (sigma of the score, Delta of the predictor, sigma of the next step or 0 at the end)."""
    ts = torch.linspace(sde.T, eps, sde.N, dtype=torch.float32)
    sig = sde.sigma(ts).double().numpy()
    hi, lo = sde.grid(ts)
    delta = (hi.double() ** 2 - lo.double() ** 2).numpy()
    nxt = np.append(sig[1:], 0.)
    return sig, delta, nxt


def _snr_step(snr, r2, m2, V, T):
    """score_sde's Langevin step eps = 2 (snr |M z| / |M M^T s|)^2 with the norms' expectations."""
    return 2. * snr ** 2 * r2.sum() / (r2 ** 2 * (m2 + V) / T ** 2).sum()


def _ones(spec, filters):
    """``filters`` as a function that always gives a (C, H, W) table (None -> 1)."""
    one = np.ones(spec.shape)

    def r(i, role):
        table = None if filters is None else filters(i, role)
        return one if table is None else np.broadcast_to(table, spec.shape)
    return r


def pc_moments(spec, sde, eps, snr, n_steps, filters=None, noise_removal=True, predictor_drift='official'):
    """Final (m, V) of the PC sampler (corrector 'langevin', predictor 'reverse_diffusion') under (A1).

    ``filters(i, role)`` -> r (C, H, W) or None (= 1) for role 'prior' | 'corrector' | 'predictor';
    ``predictor_drift`` 'marginal': the predictor's drift gain is (1 + r^2) / 2 instead of r^2 (noise r)."""
    r = _ones(spec, filters)
    sig, delta, _ = _sde_steps(sde, eps)
    m, V = -spec.mu, sde.sigma_max ** 2 * r(0, 'prior') ** 2
    m_mean, V_mean = m, V
    for i in range(sde.N):
        T = spec.P + sig[i] ** 2
        rc2 = r(i, 'corrector') ** 2
        for _ in range(n_steps):
            a = _snr_step(snr, rc2, np.abs(m) ** 2, V, T) * rc2 / T
            m, V = (1 - a) * m, (1 - a) ** 2 * V + 2 * a * T
        rp2 = r(i, 'predictor') ** 2
        b = delta[i] * (rp2 if predictor_drift == 'official' else (1 + rp2) / 2) / T
        m_mean, V_mean = (1 - b) * m, (1 - b) ** 2 * V
        m, V = m_mean, V_mean + delta[i] * rp2
    return (m_mean, V_mean) if noise_removal else (m, V)


def ald_moments(spec, sigmas, step_lr, n_steps, filters=None, denoise=False, init_offset=0.5):
    """Final (m, V) of annealed Langevin (uniform [0, 1] init: mean ``init_offset``, variance 1/12) under (A1)."""
    r = _ones(spec, filters)
    m, V = spec.mean_error_of(init_offset), np.full(spec.shape, 1. / 12.)
    for c, sigma in enumerate(sigmas):
        alpha = step_lr * (sigma / sigmas[-1]) ** 2
        T = spec.P + sigma ** 2
        a = alpha * r(c, 'corrector') ** 2 / T
        for _ in range(n_steps):
            m, V = (1 - a) * m, (1 - a) ** 2 * V + 2 * a * T
    if denoise:
        b = sigmas[-1] ** 2 * r(len(sigmas) - 1, 'denoise') ** 2 / (spec.P + sigmas[-1] ** 2)
        m, V = (1 - b) * m, (1 - b) ** 2 * V
    return m, V


# ---------------------------------------------------------------------------------------------------------------
# (A5) The same recursion on the VP SDE.  The marginal at t is N(c, T) per frequency with c = sqrt(alpha_bar) mu and
# T = alpha_bar P + 1 - alpha_bar, the score is s = -(x - c) / T, and every VP update is affine,
# x <- a x + b s + sqrt(q) r z, so the mean m of x and its variance V evolve as
#
#     m <- a m - b (m - c) / T,    V <- (a - b / T)^2 V + q r^2.                                               (A5)
#
# A step's (a, b, q) with a filter r (gain r^2 = M M^T's eigenvalue) in the official form (D_f = D = r^2) or the
# marginal form (D_f = 1, D = (1 + r^2) / 2), see sampling/pc.py:
#   Euler-Maruyama:     a = 1 + beta(t) D_f / (2N),          b = beta(t) D / N,             q = beta(t) / N
#   reverse diffusion:  a = 1 - D_f (sqrt(alpha_j) - 1),     b = beta_j D,                  q = beta_j
#   ancestral:          a = 1 + D_f (1 / sqrt(1 - beta) - 1), b = beta D / sqrt(1 - beta),  q = beta (or DDPM's var)
# and the Langevin corrector (snr rule with VP's alpha_j) is (A1) around c.

def _vp_gains(r2, predictor_drift):
    """(D_f, D) of a predictor with filter gain r2 in the official ('official') or the marginal form."""
    if predictor_drift == 'official':
        return r2, r2
    if predictor_drift == 'marginal':
        return np.ones_like(r2), (1 + r2) / 2
    raise ValueError(f"predictor_drift must be 'official' or 'marginal', got {predictor_drift!r}")


def _vp_step(m, V, c, T, a, b, q):
    """(A5): one affine update x <- a x + b s + sqrt(q) z (q already times r^2) of N(m, V) under s = -(x - c) / T."""
    return a * m - b * (m - c) / T, (a - b / T) ** 2 * V + q


def vp_pc_moments(spec, sde, eps, predictor='reverse_diffusion', corrector='langevin', snr=0.16, n_steps=1,
                  filters=None, noise_removal=True, predictor_drift='official', exact_prior=False):
    """Final (mean error, V) per frequency of score_sde's VP PC sampler (sampling/pc.py, ``sde`` a VPSDE) under (A5).

    ``filters(i, role)`` -> r (C, H, W) or None (= 1) for role 'prior' | 'corrector' | 'predictor'; the prior is
    N(0, r^2), or N(0, 1) with ``exact_prior`` (the marginal form's).  The corrector's snr rule is taken in
    expectation (the batch-mean norms of a large batch)."""
    r = _ones(spec, filters)
    N = sde.N
    ts = torch.linspace(sde.T, eps, N, dtype=torch.float32)
    abar = sde.alpha_bar(ts.double()).numpy()
    j = sde.index(ts)
    betas, alphas = sde.discrete_betas.double()[j].numpy(), sde.alphas.double()[j].numpy()
    beta_t = sde.beta(ts.double()).numpy()
    m = np.zeros(spec.shape, complex)
    V = np.ones(spec.shape) if exact_prior else r(0, 'prior') ** 2 + 0.
    m_mean, V_mean = m, V
    for i in range(N):
        c, T = np.sqrt(abar[i]) * spec.mu, abar[i] * spec.P + 1 - abar[i]
        if corrector == 'langevin':
            rc2 = r(i, 'corrector') ** 2
            for _ in range(n_steps):
                h = alphas[i] * _snr_step(snr, rc2, np.abs(m - c) ** 2, V, T)
                m, V = _vp_step(m, V, c, T, 1., h * rc2, 2 * h * rc2)
        elif corrector != 'none':
            raise ValueError(f"corrector must be 'langevin' or 'none', got {corrector!r}")
        rp2 = r(i, 'predictor') ** 2
        d_f, d = _vp_gains(rp2, predictor_drift)
        if predictor == 'euler_maruyama':
            a, b, q = 1 + beta_t[i] * d_f / (2 * N), beta_t[i] * d / N, beta_t[i] / N
        elif predictor == 'reverse_diffusion':
            a, b, q = 1 - d_f * (np.sqrt(alphas[i]) - 1), betas[i] * d, betas[i]
        elif predictor == 'ancestral_sampling':
            root = np.sqrt(1 - betas[i])
            a, b, q = 1 + d_f * (1 / root - 1), betas[i] * d / root, betas[i]
        else:
            raise ValueError(f'unknown VP predictor {predictor!r}')
        m_mean, V_mean = _vp_step(m, V, c, T, a, b, 0.)
        m, V = m_mean, V_mean + q * rp2
    m, V = (m_mean, V_mean) if noise_removal else (m, V)
    return m - spec.mu, V


def ddpm_moments(spec, sde, tau, variance='beta', filters=None, predictor_drift='official', exact_prior=False):
    """Final (mean error, V) per frequency of DDPM ancestral sampling on the chain indices ``tau``
    (sampling/ddpm.py ``sample_ddpm``) under (A5)."""
    r = _ones(spec, filters)
    abar = np.append(sde.alphas_cumprod.double().numpy()[np.asarray(tau)[::-1]], 1.)
    m = np.zeros(spec.shape, complex)
    V = np.ones(spec.shape) if exact_prior else r(0, 'prior') ** 2 + 0.
    for i in range(len(tau)):
        ab, ab_prev = abar[i], abar[i + 1]
        c, T = np.sqrt(ab) * spec.mu, ab * spec.P + 1 - ab
        beta = 1 - ab / ab_prev
        rp2 = r(i, 'predictor') ** 2
        d_f, d = _vp_gains(rp2, predictor_drift)
        root = np.sqrt(1 - beta)
        var = 0. if i == len(tau) - 1 else (beta if variance == 'beta' else beta * (1 - ab_prev) / (1 - ab))
        m, V = _vp_step(m, V, c, T, 1 + d_f * (1 / root - 1), beta * d / root, var * rp2)
    return m - spec.mu, V


def ddim_moments(spec, sde, tau, eta=0.):
    """Final (mean error, V) per frequency of DDIM (sampling/ddpm.py ``sample_ddim``) on the chain indices ``tau``
    under (A5), from the prior N(0, I).  With a = alpha_bar of a step, a' of the next (1 after the last) and
    sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a'), Eq. 12 is the affine step
    x' = sqrt(a' / a) x + [sqrt(a' / a) (1 - a) - sqrt(1 - a' - sigma^2) sqrt(1 - a)] s + sigma z."""
    abar = np.append(sde.alphas_cumprod.double().numpy()[np.asarray(tau)[::-1]], 1.)
    m, V = np.zeros(spec.shape, complex), np.ones(spec.shape)
    for i in range(len(tau)):
        a, a_prev = abar[i], abar[i + 1]
        c, T = np.sqrt(a) * spec.mu, a * spec.P + 1 - a
        var = eta ** 2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
        scale = np.sqrt(a_prev / a)
        b = scale * (1 - a) - np.sqrt(max(1 - a_prev - var, 0.)) * np.sqrt(1 - a)
        m, V = _vp_step(m, V, c, T, scale, b, var)
    return m - spec.mu, V


# ---------------------------------------------------------------------------------------------------------------
# The automatic filters (A2-A4): per frequency, the gain that brings (m, V) closest (in KL) to the target N(0, T')

B_GRID = np.concatenate([np.geomspace(1e-6, 0.5, 40), 1 - np.geomspace(0.5, 1e-6, 40)[1:]])
A_GRID = np.geomspace(1e-4, 1., 64)
GAIN_CAP = 1.           # the largest gain h r^2 / sigma^2 a step may take: no overshoot for any score (vanilla
#                        reverse diffusion reaches 1 at its last step)


def _best(grid, m2_of, V_of, target, cap, refine=24):
    """Per frequency, the gain in cap * [grid[0], grid[-1]] with the smallest KL to N(0, target): the best grid
    point, then a uniform grid of ``refine`` points between its two neighbours."""
    def cost(g):
        return _kl_terms(m2_of(g), V_of(g), target)
    g = grid.reshape((-1,) + (1,) * target.ndim) * cap
    k = cost(g).argmin(axis=0)
    lo, hi = grid[np.maximum(k - 1, 0)] * cap, grid[np.minimum(k + 1, len(grid) - 1)] * cap
    u = np.linspace(0., 1., refine).reshape((-1,) + (1,) * target.ndim)
    fine = lo + u * (hi - lo)
    j = cost(fine).argmin(axis=0)
    return np.take_along_axis(fine, j[None], axis=0)[0]


def _stability_cap(T, sigma):
    """The largest b = h r^2 / T with h r^2 / sigma^2 <= GAIN_CAP: for *any* data, -Hess log p_sigma <= I / sigma^2
    (Tweedie: I / sigma^2 minus the posterior covariance / sigma^4), so an update whose largest h r^2 is below
    2 sigma^2 cannot blow up, whatever the true curvature; the Gaussian model alone (curvature 1 / T) would allow
    far larger gains at low frequencies, which a learned score (sharper than the Gaussian) does not survive."""
    return np.minimum(1., GAIN_CAP * sigma ** 2 / T)


def _land_predictor(m2, V, T, target, sigma):
    """(A3): b = Delta r^2 / T: m' = (1 - b) m, V' = (1 - b)^2 V + b T."""
    return _best(B_GRID, lambda b: (1 - b) ** 2 * m2, lambda b: (1 - b) ** 2 * V + b * T, target,
                 _stability_cap(T, sigma))


def _land_final(m2, V, P, T, sigma):
    """Noise removal / denoising (no noise added): m' = (1 - b) m, V' = (1 - b)^2 V."""
    return _best(B_GRID, lambda b: (1 - b) ** 2 * m2, lambda b: (1 - b) ** 2 * V, P, _stability_cap(T, sigma))


def _langevin_n(a, m2, V, T, n):
    """n Langevin steps of gain a at level T: (|m'|^2, V')."""
    Vinf = 2 * T / (2 - a)
    return (1 - a) ** (2 * n) * m2, (1 - a) ** (2 * n) * (V - Vinf) + Vinf


def _land_langevin(m2, V, T, target, n, sigma):
    """(A4): the Langevin gain a = alpha r^2 / T whose n-step result is closest to the target."""
    return _best(A_GRID, lambda a: _langevin_n(a, m2, V, T, n)[0], lambda a: _langevin_n(a, m2, V, T, n)[1], target,
                 _stability_cap(T, sigma))


def _corrector_filter(snr, m2, V, T, sigma):
    """(A2) within the stability cap: r^2 ∝ min(T, kappa sigma^2), kappa as large as the snr rule's step allows
    (eps max r^2 / sigma^2 <= GAIN_CAP); kappa = 1 is vanilla, kappa -> inf the full covariance."""
    kappa = 1. / snr ** 2
    for _ in range(30):
        rc2 = np.minimum(T, kappa * sigma ** 2)
        rc2 = rc2 / rc2.mean()
        gain = _snr_step(snr, rc2, m2, V, T) * rc2.max() / sigma ** 2
        if gain <= GAIN_CAP or kappa <= 1.:
            return rc2
        kappa = max(1., kappa * GAIN_CAP / gain * 0.99)
    return rc2


class _Schedule:
    """Streams the per-step filters of a sampler: ``filter(i, role)`` for i = 0, 1, ... in order (a step asked for
    again or out of order restarts the recursion, so any order is correct, in order is O(1) per step)."""

    def __init__(self, spec):
        self.spec = spec
        self._restart()

    def _restart(self):
        self.i, self.tables = -1, {}

    def filter(self, i, role):
        if i < self.i:
            self._restart()
        while self.i < i:
            self.i += 1
            self.tables = self._advance(self.i)
        return self.tables.get(role)


class AutoPC(_Schedule):
    """(A2-A3) for score_sde's PC sampler: reverse diffusion + Langevin (snr rule), ``n_steps`` corrector steps."""

    def __init__(self, spec, sde, eps, snr, n_steps, noise_removal=True):
        self.sig, self.delta, self.nxt = _sde_steps(sde, eps)
        self.snr, self.n_steps, self.noise_removal, self.N = snr, n_steps, noise_removal, sde.N
        self.start = (-spec.mu, np.full(spec.shape, sde.sigma_max ** 2))
        super().__init__(spec)

    def _advance(self, i):
        P = self.spec.P
        m, V = self.start if i == 0 else self.state
        T = P + self.sig[i] ** 2
        sigma = self.sig[i]
        rc2 = _corrector_filter(self.snr, np.abs(m) ** 2, V, T, sigma)   # (A2)
        for _ in range(self.n_steps):
            a = _snr_step(self.snr, rc2, np.abs(m) ** 2, V, T) * rc2 / T
            m, V = (1 - a) * m, (1 - a) ** 2 * V + 2 * a * T
        m2 = np.abs(m) ** 2
        if i == self.N - 1 and self.noise_removal:
            b = _land_final(m2, V, P, T, sigma)
        else:
            b = _land_predictor(m2, V, T, P + self.nxt[i] ** 2, sigma)     # (A3)
        self.state = ((1 - b) * m, (1 - b) ** 2 * V + b * T)
        tables = {'corrector': np.sqrt(rc2), 'predictor': np.sqrt(b * T / self.delta[i])}
        if i == 0:
            tables['prior'] = None
        return tables


R2_GRID = np.concatenate([np.geomspace(1e-3, 1e3, 61), [1.]])      # predictor gains tried per frequency (1 = vanilla)


def _vp_predictor_coeffs(predictor, r2, beta_t, beta_j, alpha_j, N):
    """(a, b, q / r^2) of a VP predictor in the official form (D_f = D = r^2), see (A5)."""
    if predictor == 'euler_maruyama':
        return 1 + beta_t * r2 / (2 * N), beta_t * r2 / N, beta_t / N
    if predictor == 'reverse_diffusion':
        return 1 - r2 * (np.sqrt(alpha_j) - 1), beta_j * r2, beta_j
    if predictor == 'ancestral_sampling':
        root = np.sqrt(1 - beta_j)
        return 1 + r2 * (1 / root - 1), beta_j * r2 / root, beta_j
    raise ValueError(f"pds.freq = 'auto' on VP: unknown predictor {predictor!r}")


class AutoVPPC(_Schedule):
    """(A2 + A5) for score_sde's PC sampler on the VP SDE: the corrector filter of (A2) around the marginal mean
    (``corrector = 'langevin'``, step with VP's alpha_j), and per frequency the predictor gain r^2 (official form:
    D_f = D = r^2, noise r) from ``R2_GRID`` whose step lands closest in KL to the next marginal N(c', T') (the data
    at the last step with noise removal), among the gains whose score step b stays within the stability bound
    b <= GAIN_CAP (1 - alpha_bar) (-Hess log p_t <= I / (1 - alpha_bar) for any data) or within vanilla's own b
    (which exceeds the bound in the last steps: beta_0 / (1 - alpha_bar(eps)) ~ 1000 / N).  The prior is N(0, I).
    Greedy, as AutoPC; r^2 = 1 (vanilla) is always a candidate.  The predictor is beyond Theorem 1 (exact for a
    Gaussian only); the corrector is covered by it."""

    def __init__(self, spec, sde, eps, predictor, corrector, snr, n_steps, noise_removal=True):
        if corrector not in ('langevin', 'none'):
            raise ValueError(f"pds.freq = 'auto' on VP: corrector must be 'langevin' or 'none', got {corrector!r}")
        ts = torch.linspace(sde.T, eps, sde.N, dtype=torch.float32)
        j = sde.index(ts)
        self.abar = np.append(sde.alpha_bar(ts.double()).numpy(), 1.)
        self.beta_t = sde.beta(ts.double()).numpy()
        self.betas, self.alphas = sde.discrete_betas.double()[j].numpy(), sde.alphas.double()[j].numpy()
        self.predictor, self.corrector, self.snr, self.n_steps = predictor, corrector, snr, n_steps
        self.noise_removal, self.N = noise_removal, sde.N
        _vp_predictor_coeffs(predictor, 1., 1., 0.5, 0.5, 1)          # validates the name
        self.start = (np.zeros(spec.shape, complex), np.ones(spec.shape))
        super().__init__(spec)

    def _advance(self, i):
        P, mu = self.spec.P, self.spec.mu
        m, V = self.start if i == 0 else self.state
        ab = self.abar[i]
        c, T = np.sqrt(ab) * mu, ab * P + 1 - ab
        tables = {'prior': None} if i == 0 else {}
        if self.corrector == 'langevin':
            rc2 = _corrector_filter(self.snr, np.abs(m - c) ** 2, V, T, np.sqrt(1 - ab))          # (A2)
            for _ in range(self.n_steps):
                h = self.alphas[i] * _snr_step(self.snr, rc2, np.abs(m - c) ** 2, V, T)
                m, V = _vp_step(m, V, c, T, 1., h * rc2, 2 * h * rc2)
            tables['corrector'] = np.sqrt(rc2)
        last = i == self.N - 1 and self.noise_removal
        if last:
            c_next, T_next = mu, P
        else:
            ab_next = self.abar[i + 1] if i < self.N - 1 else 1.
            c_next, T_next = np.sqrt(ab_next) * mu, ab_next * P + 1 - ab_next
        r2 = R2_GRID.reshape((-1,) + (1,) * P.ndim)
        a, b, q = _vp_predictor_coeffs(self.predictor, r2, self.beta_t[i], self.betas[i], self.alphas[i], self.N)
        m_new, V_new = _vp_step(m, V, c, T, a, b, 0. if last else q * r2)
        cost = _kl_terms(np.abs(m_new - c_next) ** 2, V_new, T_next)
        b_vanilla = _vp_predictor_coeffs(self.predictor, 1., self.beta_t[i], self.betas[i], self.alphas[i], self.N)[1]
        cost = np.where(b <= max(GAIN_CAP * (1 - ab), b_vanilla) + np.zeros_like(cost), cost, np.inf)
        k = np.nan_to_num(cost, nan=np.inf).argmin(axis=0)
        pick = lambda v: np.take_along_axis(np.broadcast_to(v, cost.shape), k[None], axis=0)[0]  # noqa: E731
        self.state = (pick(m_new), pick(V_new))
        tables['predictor'] = np.sqrt(pick(r2 + np.zeros_like(cost)))
        return tables


class AutoALD(_Schedule):
    """(A4) for annealed Langevin over the levels ``sigmas`` with ``n_steps`` steps each."""

    def __init__(self, spec, sigmas, step_lr, n_steps, denoise, init_offset=0.5):
        self.sigmas, self.step_lr, self.n, self.denoise = np.asarray(sigmas, np.float64), step_lr, n_steps, denoise
        self.start = (spec.mean_error_of(init_offset), np.full(spec.shape, 1. / 12.))
        super().__init__(spec)

    def _advance(self, c):
        P, L = self.spec.P, len(self.sigmas)
        m, V = self.start if c == 0 else self.state
        sigma = self.sigmas[c]
        alpha = self.step_lr * (sigma / self.sigmas[-1]) ** 2
        T = P + sigma ** 2
        target = P if (c == L - 1 and not self.denoise) else T
        m2 = np.abs(m) ** 2
        a = _land_langevin(m2, V, T, target, self.n, sigma)
        m2_n, V_n = _langevin_n(a, m2, V, T, self.n)
        self.state = ((1 - a) ** self.n * m, V_n)
        tables = {'corrector': np.sqrt(a * T / alpha)}
        if c == L - 1 and self.denoise:
            tables['denoise'] = np.sqrt(_land_final(m2_n, V_n, P, T, sigma) * T / sigma ** 2)
        return tables


class ScheduledPreconditioner:
    """The sampler-facing operator of a schedule: ``at_step(i, role)`` is a fixed :class:`Preconditioner` (or the
    identity where the schedule says None).  The operators of a run are kept (every batch reuses them) while they
    fit in ``cache_bytes``; beyond that they are rebuilt from the streamed recursion."""
    is_identity = False

    def __init__(self, schedule, device='cpu', dtype=torch.float32, cache_bytes=256 * 2 ** 20):
        self.schedule, self.device, self.dtype = schedule, device, dtype
        self._identity = Identity()
        self._cache, self._budget = {}, cache_bytes // (4 * int(np.prod(schedule.spec.shape)))

    def at_step(self, i, role='corrector'):
        key = (i, role)
        if key in self._cache:
            return self._cache[key]
        table = self.schedule.filter(i, role)
        op = self._identity if table is None else Preconditioner(table, device=self.device, dtype=self.dtype)
        if len(self._cache) < self._budget:
            self._cache[key] = op
        return op

    # A scheduled operator has no single M: samplers must ask at_step.
    def noise(self, z):
        raise TypeError("pds.freq = 'auto' changes M at every step; call P.at_step(i, role)")

    drift = noise
