"""EDM samplers (Karras, Aittala, Aila, Laine 2022, "Elucidating the Design Space of Diffusion-Based
Generative Models") on the VE score, and the Euler (DDIM-like) probability-flow ODE on the same grid.

VE in EDM's terms is sigma(t) = t, s(t) = 1, so the probability-flow ODE (EDM Eq. 1) is

    dx/dt = -t grad log p(x; t) = (x - D(x; t)) / t,     D(x; sigma) = x + sigma^2 score(x, sigma)   (EDM Eq. 3)

on the time steps of EDM Eq. 5 (``karras_sigmas``) or a geometric grid, ending at t_N = 0.  The last step
t_{N-1} = sigma_min -> 0 is an Euler step (Algorithm 1 line 6 / Algorithm 2 line 9 skip the second
evaluation at t = 0), i.e. x_N = D(x_{N-1}; sigma_min): the score is never asked at sigma = 0.

VP models run here unchanged, in EDM's view: a VP :class:`models.score.ScoreModel` answers score(y, sigma) with
y = x / sqrt(alpha_bar), sigma^2 = 1 / alpha_bar - 1, and ``sampling.sigma_range`` gives the grid's ends (the one
place that knows the process); the samplers never know which process they drive.

PDS here acts only through a Langevin corrector run after each step at the new level (``level_corrector``):
by supp. Theorem 1, dx = M M^T grad log p_sigma dt + sqrt(2) M dw leaves p_sigma invariant for any invertible
M, so a preconditioned corrector keeps every level's law.  Theorem 1 says nothing about preconditioning the
ODE drift itself -- M M^T (x - D) / t is a different flow with different marginals -- so the predictors
below are never preconditioned, and the prior and the S_churn noise stay isotropic.
"""
import math

import numpy as np
import torch

from models.score import geometric_sigmas
from sampling.pc import CORRECTORS, _lookup


def karras_sigmas(sigma_min, sigma_max, n, rho=7.):
    """EDM Eq. 5: t_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho for
    i < N, t_N = 0.  Returns the N + 1 levels, descending, float64."""
    ramp = np.arange(n) / max(n - 1, 1)
    t = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.append(t, 0.)


SCHEDULES = ('karras', 'geometric')


def sigma_schedule(name, sigma_min, sigma_max, n, rho=7.):
    """The N + 1 levels t_0 = sigma_max > ... > t_{N-1} = sigma_min > t_N = 0: ``'karras'`` (EDM Eq. 5) or
    ``'geometric'`` (the model's log-uniform spacing, as the VE SDE's sigma(t))."""
    if n < 1:
        raise ValueError(f'the EDM / Euler samplers need at least 1 step, got {n}')
    if name == 'karras':
        return karras_sigmas(sigma_min, sigma_max, n, rho)
    if name == 'geometric':
        return np.append(geometric_sigmas(sigma_max, sigma_min, n) if n > 1 else [sigma_max], 0.)
    raise ValueError(f"sampling.schedule must be one of {SCHEDULES}, got {name!r}")


def sample_edm(score, x, sigmas, draw, heun=True, s_churn=0., s_tmin=0., s_tmax=float('inf'), s_noise=1.,
               corrector=None, callback=None):
    """EDM Algorithm 2 (stochastic sampler); with ``s_churn = 0`` it is Algorithm 1 (deterministic Heun),
    with ``heun=False`` the Euler method (DDIM for VE).

    ``x``: the prior sample x_0 ~ N(0, t_0^2 I) (line 1, drawn by the caller); ``sigmas``: t_0 > ... > t_N = 0;
    ``draw()``: the next full-batch N(0, I).  ``corrector(i, x, sigma) -> (x, nfe)`` runs after step i at
    t_{i+1} > 0; ``callback(i, t_{i+1}, x)`` after every step.  Returns ``(x_N, nfe)``."""
    n = len(sigmas) - 1
    nfe = 0
    for i in range(n):                                                               # line 2
        t_cur, t_next = float(sigmas[i]), float(sigmas[i + 1])
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= t_cur <= s_tmax else 0.  # line 4
        t_hat = t_cur + gamma * t_cur                                                # line 5
        if gamma > 0:          # lines 3, 6 (eps_i ~ N(0, S_noise^2 I) is drawn only where it is used)
            x = x + math.sqrt(t_hat ** 2 - t_cur ** 2) * s_noise * draw()
        d = -t_hat * score(x, t_hat)                 # line 7: d_i = (x_hat - D(x_hat; t_hat)) / t_hat
        nfe += 1
        x_next = x + (t_next - t_hat) * d                                            # line 8
        if heun and t_next != 0:                                                     # line 9
            d_prime = -t_next * score(x_next, t_next)                                # line 10
            nfe += 1
            x_next = x + (t_next - t_hat) * (0.5 * d + 0.5 * d_prime)                # line 11
        x = x_next
        if corrector is not None and t_next != 0:
            x, n_c = corrector(i, x, t_next)
            nfe += n_c
        if callback is not None:
            callback(i, t_next, x)
    return x, nfe                                                                    # line 12


class _Level:
    """The ``sde`` argument of a sampling/pc.py corrector, pinned to one noise level: sigma(t) = sigma."""

    def __init__(self, sigma):
        self.value = float(sigma)

    def sigma(self, t):
        return torch.full_like(t, self.value)


def level_corrector(name, score, P, snr, n_steps, draw):
    """PDS behind any predictor: score_sde's corrector ``name`` of sampling/pc.py ('langevin': step
    2 (snr |M z| / |M M^T s|)^2; 'ald': step 2 (snr sigma)^2), ``n_steps`` preconditioned Langevin steps
    x <- x + eps M M^T s(x, sigma) + sqrt(2 eps) M z at a fixed level sigma (supp. Theorem 1: p_sigma is
    invariant for any invertible M).  The corrector after step i gets ``P.at_step(i, 'corrector')``.

    Returns ``correct(i, x, sigma) -> (x, nfe)``."""
    corrector_fn = _lookup(CORRECTORS, name, 'corrector')

    def correct(i, x, sigma):
        t = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        x, _, nfe = corrector_fn(score, _Level(sigma), x, t, draw, P.at_step(i, 'corrector'), snr=snr, n_steps=n_steps)
        return x, nfe
    return correct
