"""score_sde's predictor-corrector sampler for the VE and the VP SDE, with PDS (supp. Eq. 23) in every update.

Each update takes ``(score, sde, x, t, draw, P)``: ``score(x, sigma)`` the score function, ``draw()``
the next full-batch N(0, I) draw, ``P`` the preconditioner (``P.drift`` = M M^T (+ omega S),
``P.noise`` = M; the identity does nothing).  Each returns ``(x, x_mean, nfe)``.  The VE updates are
``PREDICTORS`` / ``CORRECTORS``, the VP ones ``VP_PREDICTORS`` / ``VP_CORRECTORS`` (same names, score_sde's VP
discretisation); :func:`pc_sampler` picks the table of its ``sde``.

PDS on VP.  The reverse VP SDE is dx = [f - g^2 s] dt + g dw_bar (Song et al. 2021, Eq. 6; f = -beta x / 2,
g^2 = beta).  A VP predictor step is x_mean = x - D_f f + G^2 D s, x = x_mean + G M z (``P.drift_f``, ``P.drift``,
``P.noise``):
* (a) ``pds.predictor_drift = 'official'``, D_f = D = M M^T: the official PDS form carried over, the whole reverse
  drift preconditioned, dx = M M^T [f - g^2 s] dt + g M dw_bar (what PDS's code does to the reverse-diffusion
  drift; its Euler-Maruyama and ancestral steps are treated alike here).  Its Fokker-Planck equation is not the
  reverse one unless M M^T = I, so it does **not** keep the marginals p_t: on a Gaussian it ends with the wrong
  covariance (tests/sampling/test_vp_gaussian.py measures by how much).
* (b) ``pds.predictor_drift = 'marginal'``, D_f = I, D = (I + M M^T) / 2: dx = [f - g^2 (I + M M^T) / 2 s] dt
  + g M dw_bar has the reverse Fokker-Planck equation for any constant invertible M (the M M^T / 2 part of the
  drift cancels the extra diffusion), so from the true prior N(0, I) it **keeps every marginal p_t** (in the
  continuous limit; the discrete steps are first order, as vanilla).
* (c) the Langevin corrector x <- x + eps M M^T s + sqrt(2 eps) M z (eps with VP's alpha) **leaves p_t
  invariant** for any invertible M (supp. Theorem 1), in either form.
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


# --- VP updates (score_sde's VP discretisation: beta_j, alpha_j of the sampler's N-step chain) ----------------

VP_PREDICTORS, VP_CORRECTORS = {}, {}


@_register(VP_PREDICTORS, 'euler_maruyama')
def vp_euler_maruyama(score, sde, x, t, draw, P, probability_flow=False, **_):
    """Reverse SDE (Song et al. Eq. 6), Euler-Maruyama with dt = -1/N: x_mean = x + [D_f f - g^2 D s] dt,
    x = x_mean + g sqrt(-dt) M z.  ``probability_flow``: the ODE (Eq. 13), g^2 / 2 and no noise (z is still drawn)."""
    dt = -1. / sde.N
    z = draw()
    g = _bcast(sde.diffusion(t))
    x_mean = x + (P.drift_f(sde.drift(x, t)) - g ** 2 * P.drift(sde.score(score, x, t)) * (0.5 if probability_flow
                                                                                            else 1.)) * dt
    return x_mean + (0 * g if probability_flow else g) * math.sqrt(-dt) * P.noise(z), x_mean, 1


@_register(VP_PREDICTORS, 'reverse_diffusion')
def vp_reverse_diffusion(score, sde, x, t, draw, P, probability_flow=False, **_):
    """The reverse of the chain step f = sqrt(alpha_j) x - x, G = sqrt(beta_j) (Song et al. Eq. 46):
    x_mean = x - D_f f + G^2 D s,  x = x_mean + G M z  (``probability_flow``: G^2 / 2 and no noise)."""
    f, G = sde.discretize(x, t)
    x_mean = x - (P.drift_f(f) - _bcast(G) ** 2 * P.drift(sde.score(score, x, t)) * (0.5 if probability_flow else 1.))
    return x_mean + _bcast(0 * G if probability_flow else G) * P.noise(draw()), x_mean, 1


def ancestral_step(x, s, beta, P):
    """DDPM's ancestral mean (Ho et al. Eq. 11 in score form, Song et al. Eq. 47): (x + beta D s) / sqrt(1 - beta),
    with D_f on its f part, the expansion u = x / sqrt(1 - beta) - x (the official form: x_mean + M M^T u - u)."""
    root = _bcast(torch.sqrt(1. - beta))
    x_mean = (x + _bcast(beta) * P.drift(s)) / root
    u = x / root - x
    u_pre = P.drift_f(u)
    return x_mean if u_pre is u else x_mean + (u_pre - u)


@_register(VP_PREDICTORS, 'ancestral_sampling')
def vp_ancestral_sampling(score, sde, x, t, draw, P, probability_flow=False, **_):
    """x_mean = (x + beta_j D s) / sqrt(1 - beta_j),  x = x_mean + sqrt(beta_j) M z."""
    if probability_flow:
        raise ValueError("the ancestral_sampling predictor has no probability-flow form; set sampling.probability_flow "
                         "= False or use 'euler_maruyama' / 'reverse_diffusion'")
    beta = sde.discrete_betas.to(t.device)[sde.index(t)]
    x_mean = ancestral_step(x, sde.score(score, x, t), beta, P)
    return x_mean + _bcast(torch.sqrt(beta)) * P.noise(draw()), x_mean, 1


VP_PREDICTORS['none'] = no_predictor


@_register(VP_CORRECTORS, 'langevin')
def vp_langevin(score, sde, x, t, draw, P, snr, n_steps, **_):
    """score_sde's Langevin corrector with VP's alpha_j: g = M M^T s, xi = M z,
    eps = 2 alpha_j (snr mean_b|xi_b| / mean_b|g_b|)^2, x_mean = x + eps g, x = x_mean + sqrt(2 eps) xi."""
    alpha = sde.alphas.to(t.device)[sde.index(t)]
    x_mean = x
    for _ in range(n_steps):
        grad = P.drift(sde.score(score, x, t))
        noise = P.noise(draw())
        step = (snr * _batch_mean_norm(noise) / _batch_mean_norm(grad)) ** 2 * 2 * alpha
        x_mean = x + _bcast(step) * grad
        x = x_mean + _bcast(torch.sqrt(step * 2)) * noise
    return x, x_mean, n_steps


VP_CORRECTORS['none'] = no_corrector
# which chain quantities a VP update takes a square root of: beta_j <= 1 (alpha_j >= 0), or beta_j < 1 (ancestral)
_VP_BETA_LIMIT = {'langevin': 'le', 'reverse_diffusion': 'le', 'ancestral_sampling': 'lt'}


def _check_vp_chain(sde, *names):
    top = float(sde.discrete_betas.max())
    for name in names:
        rule = _VP_BETA_LIMIT.get(name)
        if (rule == 'le' and top > 1) or (rule == 'lt' and top >= 1):
            raise ValueError(f'{name} on the VP SDE with N = {sde.N} steps: the chain\'s largest beta is beta_max / N '
                             f'= {top:.4g}, {"above" if top > 1 else "equal to"} 1, where the official update takes '
                             f'the square root of a negative number or divides by zero (an all-NaN sample); expected '
                             f'N > beta_max = {sde.beta_1:g} (or the euler_maruyama predictor without a corrector)')


# --- the loop ---------------------------------------------------------------------------------

def update_tables(sde):
    """(predictors, correctors) for the process of ``sde``: VE or VP."""
    return (VP_PREDICTORS, VP_CORRECTORS) if getattr(sde, 'kind', 've') == 'vp' else (PREDICTORS, CORRECTORS)


LAST_STEPS = ('predictor', 'denoiser')


def denoise(score, sde, x, t):
    """Tweedie's E[x_0 | x_t] from the score at time t: x + sigma(t)^2 s (VE); (x + (1 - alpha_bar) s) / sqrt(alpha_bar)
    (VP, s = grad log p_t(x)).  Exact for any data given the exact score."""
    if getattr(sde, 'kind', 've') == 'vp':
        log_mean = _bcast(sde.log_mean_coeff(t.double())).to(x.dtype)
        return (x - torch.expm1(2. * log_mean) * sde.score(score, x, t)) / torch.exp(log_mean)
    return x + _bcast(sde.sigma(t)) ** 2 * score(x, sde.sigma(t))


def pc_sampler(score, shape, sde, draw, predictor='reverse_diffusion', corrector='langevin', snr=0.16,
               n_steps=1, eps=1e-5, noise_removal=True, P=Identity(), device='cpu', callback=None,
               probability_flow=False, last_step='predictor'):
    """score_sde's PC sampler (corrector before predictor at each t_i = linspace(1, eps, N)[i]).

    The prior is x_T = sigma_max M z for VE (Eq. 23), M z for VP (N(0, I) unscaled); with ``noise_removal`` the
    result is the last predictor's mean.  ``last_step = 'denoiser'`` (not the official code's) replaces the last
    predictor step by :func:`denoise` at t_{N-1} = eps (the same NFE): score_sde's last step takes dt = 1/N from
    t = eps, a gain of ~beta(eps) / (N (1 - alpha_bar(eps))) on a score of curvature 1 / sigma^2 on VP (55 at
    N = 20, eps 1e-3), which multiplies the residual noise instead of removing it (docs/vp.md).
    Returns ``(x, nfe)`` (nfe: the score evaluations made).
    ``callback(i, sigma, x_mean)`` runs after every step (VP: sigma = the VE-equivalent level of t_i).
    ``probability_flow`` (VP predictors): score_sde's probability-flow predictors, deterministic (PDS refused)."""
    if last_step not in LAST_STEPS:
        raise ValueError(f'sampling.last_step = {last_step!r}: expected one of {LAST_STEPS}')
    predictors, correctors = update_tables(sde)
    predictor_fn = _lookup(predictors, predictor, 'predictor')
    corrector_fn = _lookup(correctors, corrector, 'corrector')
    if getattr(sde, 'kind', 've') == 'vp':
        _check_vp_chain(sde, predictor, corrector)
        if probability_flow and not getattr(P, 'is_identity', False):
            raise ValueError('sampling.probability_flow: a preconditioned probability-flow drift keeps no marginal (no '
                             'noise to balance M M^T); turn PDS off or set sampling.probability_flow = False')
        x = P.at_step(0, 'prior').noise(draw())
    else:
        if probability_flow:
            raise ValueError('sampling.probability_flow is implemented for the VP predictors; for VE use '
                             "sampling.method = 'ode' (or 'edm' / 'ode_euler')")
        x = P.at_step(0, 'prior').noise(draw()) * sde.sigma_max
    x_mean, nfe = x, 0
    for i, t in enumerate(torch.linspace(sde.T, eps, sde.N, device=device)):
        vec_t = torch.ones(shape[0], device=device) * t
        x, x_mean, n_c = corrector_fn(score, sde, x, vec_t, draw, P.at_step(i, 'corrector'), snr=snr, n_steps=n_steps)
        if last_step == 'denoiser' and i == sde.N - 1:
            x = x_mean = denoise(score, sde, x, vec_t)
            n_p = 1
        else:
            x, x_mean, n_p = predictor_fn(score, sde, x, vec_t, draw, P.at_step(i, 'predictor'),
                                          **({'probability_flow': True} if probability_flow else {}))
        nfe += n_c + n_p
        if callback is not None:
            callback(i, float(sde.sigma(t)), x_mean)
    return (x_mean if noise_removal else x), nfe


def _lookup(table, name, what):
    if name not in table:
        raise ValueError(f'unknown {what} {name!r}; expected one of {sorted(table)}')
    return table[name]
