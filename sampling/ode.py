"""score_sde's probability-flow ODE sampler for the VE SDE, with a black-box adaptive solver (scipy).

Song et al. 2021, Eq. 13 with f = 0: the reverse-time ODE

    dx/dt = -1/2 g(t)^2 score(x, sigma(t)),   sigma(t) = sigma_min (sigma_max / sigma_min)^t,
    g(t)^2 = d sigma(t)^2 / dt = 2 sigma(t)^2 log(sigma_max / sigma_min)

(equivalently dx/dsigma = -sigma score(x, sigma)), integrated from t = 1 (x = sigma_max z) down to t = eps with
``scipy.integrate.solve_ivp`` (RK45, rtol = atol = 1e-5 by default, as score_sde), then optionally one
Tweedie denoising step x + sigma(eps)^2 score(x, sigma(eps)).  The whole batch is one flat ODE state, as in
score_sde, so the step size is batch-global (scipy's RMS error norm over all samples).  The number of score
evaluations is known only after the solve; it is returned with the sample.

For the VP SDE (:func:`sample_vp_ode`) the same solver integrates Song et al.'s Eq. 13 with f = -beta x / 2,

    dx/dt = -1/2 beta(t) (x + grad log p_t(x)),

from t = 1 (x ~ N(0, I)) to eps, then, as score_sde's ODE sampler, one reverse-diffusion step of the chain at eps
(its mean) as the denoising step.

No PDS: Theorem 1 of the supplementary covers a preconditioned Langevin *corrector*, not a preconditioned ODE
drift (M M^T times the drift transports a different family of marginals), and a black-box solver has no
place for a corrector.
"""
import math

import numpy as np
import torch
from scipy import integrate

from models.score import denoise as denoiser      # the argument ``denoise`` is the on / off switch

# the methods of scipy.integrate.solve_ivp (sampling.ode_method; score_sde uses RK45)
ODE_METHODS = ('RK45', 'RK23', 'DOP853', 'Radau', 'BDF', 'LSODA')


def _solve(drift, x, t0, t1, rtol, atol, method):
    """scipy's ``solve_ivp`` of dx/dt = drift(t, x) from t0 to t1 with the whole batch as one flat float64 state."""
    shape, dtype, device = x.shape, x.dtype, x.device

    def flat_drift(t, y):
        out = drift(t, torch.from_numpy(y.reshape(shape)).to(device=device, dtype=dtype))
        return out.detach().to('cpu', torch.float64).numpy().reshape(-1)

    y0 = x.detach().to('cpu', torch.float64).numpy().reshape(-1)
    solution = integrate.solve_ivp(flat_drift, (t0, t1), y0, method=method, rtol=rtol, atol=atol)
    if not solution.success:
        raise RuntimeError(f'the probability-flow ODE solver ({method}) failed: {solution.message}')
    return torch.from_numpy(np.ascontiguousarray(solution.y[:, -1]).reshape(shape)).to(device=device, dtype=dtype)


def sample_ode(score, x, sigma_min, sigma_max, eps=1e-5, rtol=1e-5, atol=1e-5, method='RK45', denoise=True,
               callback=None):
    """Solve the VE probability-flow ODE from ``x`` (the prior sample at t = 1) to t = ``eps``.

    ``callback(k, sigma, x)`` runs at every evaluation.  Returns ``(x, nfe)``; nfe counts every score call
    (the solver's, plus 1 for the denoising step)."""
    log_ratio = math.log(sigma_max / sigma_min)

    def sigma(t):
        return sigma_min * (sigma_max / sigma_min) ** t
    nfe = 0

    def drift(t, xt):
        nonlocal nfe
        s = sigma(float(t))
        out = -0.5 * (2 * s ** 2 * log_ratio) * score(xt, s)                  # -1/2 g(t)^2 s(x, sigma(t))
        nfe += 1
        if callback is not None:
            callback(nfe - 1, s, xt)
        return out

    x = _solve(drift, x, 1., eps, rtol, atol, method)
    if denoise:                                                 # Tweedie: E[x_0 | x_eps] = x + sigma^2 s
        x = denoiser(score, x, sigma(eps))
        nfe += 1
    return x, nfe


def sample_vp_ode(score, x, sde, eps=1e-3, rtol=1e-5, atol=1e-5, method='RK45', denoise=True, callback=None):
    """Solve the VP probability-flow ODE dx/dt = -1/2 beta(t) (x + grad log p_t(x)) from ``x`` (the prior sample at
    t = 1) to t = ``eps``; with ``denoise``, score_sde's last step: the mean of one reverse-diffusion step of the
    chain at eps, x - f + G^2 s (f = sqrt(alpha_j) x - x, G^2 = beta_j, j = long(eps (N - 1))).
    ``score`` is any score the VP seam takes (``sde.score``).  Returns ``(x, nfe)``."""
    nfe = 0

    def drift(t, xt):
        nonlocal nfe
        vec_t = torch.full((xt.shape[0],), float(t), dtype=torch.float32, device=xt.device)
        out = sde.drift(xt, vec_t) - 0.5 * sde.diffusion(vec_t)[:, None, None, None] ** 2 * sde.score(score, xt, vec_t)
        nfe += 1
        if callback is not None:
            callback(nfe - 1, float(sde.sigma(vec_t[:1])), xt)
        return out

    x = _solve(drift, x, 1., eps, rtol, atol, method)
    if denoise:
        vec_t = torch.full((x.shape[0],), eps, dtype=torch.float32, device=x.device)
        f, G = sde.discretize(x, vec_t)
        x = x - (f - G[:, None, None, None] ** 2 * sde.score(score, x, vec_t))
        nfe += 1
    return x, nfe
