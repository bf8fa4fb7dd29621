"""Annealed Langevin dynamics of NCSN (v1) and NCSNv2, with PDS (supp. Eq. 23).

For each noise level sigma_c (descending) and each of ``n_steps_each`` steps:

    alpha_c = step_lr (sigma_c / sigma_L)^2
    x <- x + alpha_c M M^T s(x, sigma_c) + sqrt(2 alpha_c) M z

NCSN v1 draws z before the score call and stops there; NCSNv2 draws it after and finishes with the
denoising step x <- x + sigma_L^2 M M^T s(x, sigma_L).  The step arithmetic runs in the dtype of
``sigmas`` (v1: float64, v2: float32), as the official code does.
"""
import numpy as np
import torch

from preconditioning import Identity


def level_indices(num_scales, num_levels):
    """Which of the model's levels a shortened run visits: ``num_levels`` evenly spread indices,
    always including the first (sigma_max) and the last (sigma_min).  0 or num_scales = all."""
    if num_levels in (0, num_scales):
        return np.arange(num_scales)
    if not 1 <= num_levels <= num_scales:
        raise ValueError(f'sampling.num_levels must be in 1..{num_scales} (0 = all), got {num_levels}')
    if num_levels == 1:
        return np.array([num_scales - 1])
    return np.round(np.linspace(0, num_scales - 1, num_levels)).astype(np.int64)


def annealed_langevin(score, shape, sigmas, draw, step_lr, n_steps_each, variant='ncsnv2', denoise=True,
                      P=Identity(), device='cpu', x_init=None, uniform=None, callback=None):
    """Annealed Langevin dynamics.  ``sigmas``: descending NumPy array of the levels to visit;
    ``draw()`` the next N(0, I) draw, ``uniform()`` the U[0, 1] draw of the initial state (official init).
    ``callback(i, sigma, x)`` runs after every step.  Returns ``(x, nfe)`` (unclamped)."""
    if variant not in ('ncsn', 'ncsnv2'):
        raise ValueError(f"annealed Langevin variant must be 'ncsn' or 'ncsnv2', got {variant!r}")
    x = x_init if x_init is not None else uniform().to(device)
    nfe = 0
    for c, sigma in enumerate(sigmas):
        Pc = P.at_step(c, 'corrector')
        step = step_lr * (sigma / sigmas[-1]) ** 2
        noise_scale = float(np.sqrt(step * 2))
        step = float(step)
        for _ in range(n_steps_each):
            if variant == 'ncsn':
                noise = Pc.noise(draw()) * noise_scale
                x = x + step * Pc.drift(score(x, float(sigma))) + noise
            else:
                grad = Pc.drift(score(x, float(sigma)))
                x = x + step * grad + Pc.noise(draw()) * noise_scale
            nfe += 1
            if callback is not None:
                callback(nfe - 1, float(sigma), x)
    if denoise:
        x = x + float(sigmas[-1] ** 2) * P.at_step(len(sigmas) - 1, 'denoise').drift(score(x, float(sigmas[-1])))
        nfe += 1
    return x, nfe
