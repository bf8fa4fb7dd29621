"""Samplers on the discrete DDPM chain of the VP SDE: DDPM ancestral sampling (Ho, Jain, Abbeel 2020, Algorithm 2)
and DDIM (Song, Meng, Ermon 2021, Eq. 12), both on any subsequence of the chain's steps.

The chain of ``sde`` (:class:`sampling.sde.VPSDE`, N steps) has alpha_bar_j = prod_{i <= j} (1 - beta_i).  A
subsequence tau_1 < ... < tau_S of {0, ..., N - 1} is visited from the top, tau_S, down; after tau_1 comes
alpha_bar = 1 (the data).  The score at level j comes through the one VE-form seam, ``score(y, sigma_j)`` with
y = x / sqrt(alpha_bar_j) and sigma_j = sqrt(1 / alpha_bar_j - 1) (EDM's view of VP; a VP model answers it with
its own labels, :meth:`models.score.ScoreModel.vp_label`), so any score plugs in: a DDPM, a DDPM++ or an exact
Gaussian.  In VP terms grad log p_j(x) = score(y, sigma_j) / sqrt(alpha_bar_j) and the noise prediction is
eps = -sqrt(1 - alpha_bar_j) grad log p_j(x).

PDS.  DDPM ancestral steps take the predictor's preconditioner ``P.at_step(i, 'predictor')`` in the same form as the
PC predictors (sampling/pc.py): mean (x + beta D s) / sqrt(1 - beta) and noise sigma M z, with D = M M^T (the
official form carried over, (a): does not keep the marginals) or D = (I + M M^T) / 2 (``pds.predictor_drift =
'marginal'``, (b): the discretisation of dx = [f - g^2 (I + M M^T) / 2 s] dt + g M dw_bar, which keeps every
marginal in the continuous limit; first order in the step, as the vanilla step).  No step of this form can be exact
for every Gaussian at finite step: with one score evaluation the new covariance carries a B Sigma^-1 B^T term that no
choice of scalars cancels, so (b) is exact only as the steps shrink.  The prior of the marginal form is the true
prior N(0, I) (M z would start off the marginal).  DDIM is a discretised probability-flow ODE (eta = 0) or its
SDE family; it takes no PDS.
"""
import math

import numpy as np
import torch

from preconditioning import Identity
from sampling.pc import ancestral_step


def chain_steps(n, steps=(), num_steps=0):
    """The visited chain indices, ascending: ``steps`` itself (a subsequence of 0..n-1), else ``num_steps`` indices
    spread evenly over 0..n-1 with both ends (0 or n = every step)."""
    if steps:
        tau = [int(j) for j in steps]
        if any(j != s for j, s in zip(tau, steps)) or any(b <= a for a, b in zip(tau, tau[1:])) \
                or tau[0] < 0 or tau[-1] > n - 1:
            raise ValueError(f'sampling.chain_steps = {tuple(steps)} does not fit the N = {n} step chain; expected a '
                             f'strictly increasing sequence of integers in 0..{n - 1}')
        return np.asarray(tau)
    if num_steps in (0, n):
        return np.arange(n)
    if not 1 <= num_steps <= n:
        raise ValueError(f'sampling.num_steps = {num_steps} steps of the N = {n} step chain; expected 1..{n} (0 = all)')
    if num_steps == 1:
        return np.array([n - 1])
    return np.unique(np.round(np.linspace(0, n - 1, num_steps)).astype(np.int64))


def _levels(sde, tau):
    """alpha_bar at the visited indices, from the top down, then 1 (Python floats)."""
    return sde.alphas_cumprod.double()[torch.as_tensor(tau[::-1].copy())].tolist() + [1.]


def _vp_score(score, x, ab):
    """grad log p(x) of the chain level alpha_bar = ab through the VE-form seam."""
    scale = math.sqrt(ab)
    sigma = torch.full((x.shape[0],), math.sqrt(1. / ab - 1.), dtype=torch.float64, device=x.device)
    return score(x / scale, sigma.to(x.dtype)) / scale


VARIANCES = ('beta', 'beta_tilde')      # sampling.ddpm_variance: sigma^2 of the ancestral step


def sample_ddpm(score, x, sde, tau, draw, variance='beta', P=Identity(), callback=None):
    """DDPM ancestral sampling (Ho et al. Algorithm 2) on the chain indices ``tau`` (ascending; the respaced chain
    of Nichol & Dhariwal when ``tau`` skips steps: beta_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}}).

    ``x``: the prior sample; per step from the top: x_mean = (x + beta D s) / sqrt(1 - beta) (Eq. 11 in score form),
    x = x_mean + sigma M z with sigma^2 = beta (``variance='beta'``) or the posterior variance
    beta (1 - alpha_bar_prev) / (1 - alpha_bar) (``'beta_tilde'``); the last step adds no noise (line 4: z = 0
    at t = 1) and draws nothing.  Returns ``(x, nfe)``."""
    if variance not in VARIANCES:
        raise ValueError(f"sampling.ddpm_variance must be one of {VARIANCES}, got {variance!r}")
    abar = _levels(sde, tau)
    for i in range(len(tau)):
        ab, ab_prev = abar[i], abar[i + 1]
        Pi = P.at_step(i, 'predictor')
        beta = 1. - ab / ab_prev
        b = torch.full((x.shape[0],), beta, dtype=x.dtype, device=x.device)
        x = ancestral_step(x, _vp_score(score, x, ab), b, Pi)                                 # Eq. 11
        if i < len(tau) - 1:
            var = beta if variance == 'beta' else beta * (1. - ab_prev) / (1. - ab)
            x = x + math.sqrt(var) * Pi.noise(draw())                                          # line 4
        if callback is not None:
            callback(i, math.sqrt(1. / ab_prev - 1.), x)
    return x, len(tau)


def sample_ddim(score, x, sde, tau, draw, eta=0., callback=None):
    """DDIM (Song, Meng, Ermon 2021, Eq. 12) on the chain indices ``tau`` (ascending), from the top down:

        eps = -sqrt(1 - a) grad log p(x),  x0 = (x - sqrt(1 - a) eps) / sqrt(a),
        sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a'),
        x' = sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z

    (a = alpha_bar of this step, a' of the next, 1 after the last).  eta = 0 is deterministic (no draws after the
    prior); eta = 1 is DDPM's ancestral sampler with the posterior variance (draws wherever sigma > 0, i.e. every
    step but the last).  Returns ``(x, nfe)``."""
    if not 0 <= eta <= 1:
        raise ValueError(f'sampling.ddim_eta must be in [0, 1] (0: DDIM, 1: DDPM), got {eta}')
    abar = _levels(sde, tau)
    for i in range(len(tau)):
        a, a_prev = abar[i], abar[i + 1]
        eps = -math.sqrt(1. - a) * _vp_score(score, x, a)
        x0 = (x - math.sqrt(1. - a) * eps) / math.sqrt(a)
        sigma = eta * math.sqrt((1. - a_prev) / (1. - a) * (1. - a / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1. - a_prev - sigma ** 2, 0.)) * eps               # Eq. 12
        if sigma > 0:
            x = x + sigma * draw()
        if callback is not None:
            callback(i, math.sqrt(1. / a_prev - 1.), x)
    return x, len(tau)
