"""score_sde's predictor-corrector sampler for the VE SDE, with PDS (supp. Eq. 23) in every update.

Each update takes ``(score, sde, x, t, draw, P)``: ``score(x, sigma)`` the score function, ``draw()``
the next full-batch N(0, I) draw, ``P`` the preconditioner (``P.drift`` = M M^T (+ omega S),
``P.noise`` = M; the identity does nothing).  Each returns ``(x, x_mean, nfe)``.
"""
import math

import torch

from preconditioning import Identity

PREDICTORS, CORRECTORS = {}, {}


def _register(table, name):
    def wrap(fn):
        table[name] = fn
        return fn
    return wrap


def _bcast(v):
    return v[:, None, None, None]


# --- predictors (one reverse-time step from t_i to t_{i+1}) ------------------------------------

@_register(PREDICTORS, 'reverse_diffusion')
def reverse_diffusion(score, sde, x, t, draw, P, **_):
    """x_mean = x + G^2 M M^T s(x, sigma(t)),  x = x_mean + G M z,  G^2 = sigma_j^2 - sigma_{j-1}^2."""
    sigma, prev = sde.grid(t)
    G = torch.sqrt(sigma ** 2 - prev ** 2)
    x_mean = x - P.drift(-_bcast(G) ** 2 * score(x, sde.sigma(t)))
    return x_mean + _bcast(G) * P.noise(draw()), x_mean, 1


@_register(PREDICTORS, 'euler_maruyama')
def euler_maruyama(score, sde, x, t, draw, P, **_):
    """x_mean = x + g(t)^2 M M^T s dt',  x = x_mean + g(t) sqrt(dt') M z,  dt' = 1 / N."""
    dt = -1. / sde.N
    z = draw()
    g = _bcast(sde.diffusion(t))
    x_mean = x + P.drift(-g ** 2 * score(x, sde.sigma(t))) * dt
    return x_mean + g * math.sqrt(-dt) * P.noise(z), x_mean, 1


@_register(PREDICTORS, 'ancestral_sampling')
def ancestral_sampling(score, sde, x, t, draw, P, **_):
    """SMLD ancestral step: x_mean = x + (sigma_j^2 - sigma_{j-1}^2) M M^T s, std^2 = sigma_{j-1}^2 (sigma_j^2 - sigma_{j-1}^2) / sigma_j^2."""
    sigma, prev = sde.grid(t)
    s = score(x, sde.sigma(t))
    x_mean = x + P.drift(s * _bcast(sigma ** 2 - prev ** 2))
    std = torch.sqrt(prev ** 2 * (sigma ** 2 - prev ** 2) / sigma ** 2)
    return x_mean + _bcast(std) * P.noise(draw()), x_mean, 1


@_register(PREDICTORS, 'none')
def no_predictor(score, sde, x, t, draw, P, **_):
    return x, x, 0


# --- correctors (Langevin steps at fixed t) -----------------------------------------------------

def _batch_mean_norm(v):
    return torch.norm(v.reshape(v.shape[0], -1), dim=-1).mean()


@_register(CORRECTORS, 'langevin')
def langevin(score, sde, x, t, draw, P, snr, n_steps, **_):
    """g = M M^T s, xi = M z, eps = 2 (snr mean_b|xi_b| / mean_b|g_b|)^2 (one scalar per batch),
    x_mean = x + eps g, x = x_mean + sqrt(2 eps) xi."""
    x_mean = x
    for _ in range(n_steps):
        grad = P.drift(score(x, sde.sigma(t)))
        noise = P.noise(draw())
        step = (snr * _batch_mean_norm(noise) / _batch_mean_norm(grad)) ** 2 * 2 * torch.ones_like(t)
        x_mean = x + _bcast(step) * grad
        x = x_mean + _bcast(torch.sqrt(step * 2)) * noise
    return x, x_mean, n_steps


@_register(CORRECTORS, 'ald')
def annealed_langevin_corrector(score, sde, x, t, draw, P, snr, n_steps, **_):
    """score_sde's AnnealedLangevinDynamics: eps = 2 (snr sigma(t))^2, x_mean = x + eps M M^T s, x = x_mean + sqrt(2 eps) M z."""
    x_mean = x
    step = (snr * sde.sigma(t)) ** 2 * 2 * torch.ones_like(t)
    for _ in range(n_steps):
        grad = P.drift(score(x, sde.sigma(t)))
        noise = P.noise(draw())
        x_mean = x + _bcast(step) * grad
        x = x_mean + noise * _bcast(torch.sqrt(step * 2))
    return x, x_mean, n_steps


@_register(CORRECTORS, 'none')
def no_corrector(score, sde, x, t, draw, P, **_):
    return x, x, 0


# --- the loop ---------------------------------------------------------------------------------

def pc_sampler(score, shape, sde, draw, predictor='reverse_diffusion', corrector='langevin', snr=0.16,
               n_steps=1, eps=1e-5, noise_removal=True, P=Identity(), device='cpu', callback=None):
    """score_sde's PC sampler (corrector before predictor at each t_i = linspace(1, eps, N)[i]).

    The prior is x_T = sigma_max M z (Eq. 23); with ``noise_removal`` the result is the last
    predictor's mean.  Returns ``(x, nfe)``.  ``callback(i, sigma, x_mean)`` runs after every step."""
    predictor_fn, corrector_fn = _lookup(PREDICTORS, predictor, 'predictor'), _lookup(CORRECTORS, corrector, 'corrector')
    x = P.at_step(0, 'prior').noise(draw()) * sde.sigma_max
    x_mean, nfe = x, 0
    for i, t in enumerate(torch.linspace(sde.T, eps, sde.N, device=device)):
        vec_t = torch.ones(shape[0], device=device) * t
        x, x_mean, n_c = corrector_fn(score, sde, x, vec_t, draw, P.at_step(i, 'corrector'), snr=snr, n_steps=n_steps)
        x, x_mean, n_p = predictor_fn(score, sde, x, vec_t, draw, P.at_step(i, 'predictor'))
        nfe += n_c + n_p
        if callback is not None:
            callback(i, float(sde.sigma(t)), x_mean)
    return (x_mean if noise_removal else x), nfe


def _lookup(table, name, what):
    if name not in table:
        raise ValueError(f'unknown {what} {name!r}; expected one of {sorted(table)}')
    return table[name]
