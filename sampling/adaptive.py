"""The adaptive SDE solver of Jolicoeur-Martineau, Li, Piche-Taillefer, Kachman, Mitliagkas 2021 ("Gotta Go
Fast When Generating Data with Score-Based Models", arXiv 2105.14080, Algorithm 1) for the reverse VE SDE

    dx = -g(t)^2 score(x, sigma(t)) dt + g(t) dw_bar,   sigma(t) = sigma_min (sigma_max / sigma_min)^t,
    g(t) = sigma(t) sqrt(2 log(sigma_max / sigma_min)),  t from 1 down to eps.

Each step from t to t - h: an Euler-Maruyama step x', a second evaluation at (x', t - h) with the *same* z,
their mean x'' (stochastic improved Euler); the local error is estimated by x' - x'' and measured with the
mixed tolerance delta = max(eps_abs, eps_rel max(|x'|, |x'_prev|)) in the scaled L2 norm
E = ||(x' - x'') / delta||_2 / sqrt(n); the step is accepted if E <= 1 (then x <- x'', extrapolation), and
h <- min(t - eps, theta h E^-r) either way.  Every sample has its own t and h, as in the paper; the score is
called on the samples still running.  The paper's defaults: theta = 0.9, r = 0.9, h_init = 0.01; eps_abs =
0.0078 for data in [-1, 1] (one intensity level, 2/256) and 0.0039 for the VE models' data in [0, 1]; eps_rel
0.01 .. 0.1 trades quality for speed (we default to 0.05).  Finally, as the paper, one Tweedie denoising step
x + sigma(eps)^2 score(x, sigma(eps)).  The NFE is known only after running; it is returned with the sample.

No PDS: preconditioning this predictor is not covered by supp. Theorem 1 (which covers a Langevin corrector).
"""
import math

import torch

from models.score import denoise as denoiser      # the argument ``denoise`` is the on / off switch


def sample_adaptive_sde(score, x, sigma_min, sigma_max, draw, eps=1e-5, abstol=0.0039, reltol=0.05, h_init=0.01,
                        safety=0.9, exponent=0.9, denoise=True, callback=None):
    """Algorithm 1 of Gotta Go Fast from ``x`` (the prior sample sigma_max z at t = 1) to t = ``eps``.

    ``draw()`` gives the full-batch N(0, I) of each iteration (the samples still running use their rows).
    Returns ``(x, nfe)``, nfe = the number of (batched) score calls."""
    batch, n = x.shape[0], x[0].numel()
    log_ratio = math.log(sigma_max / sigma_min)

    def sigma(t):
        return sigma_min * (sigma_max / sigma_min) ** t

    def g(t):
        return sigma(t) * math.sqrt(2 * log_ratio)

    def per_sample(v):                       # (b,) float64 -> broadcastable in x's dtype
        return v.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))

    x = x.clone()
    x_prev = x.clone()                                               # x'_prev <- x
    t = torch.ones(batch, dtype=torch.float64, device=x.device)      # t <- 1
    h = torch.full_like(t, h_init)                                   # h <- h_init
    nfe = it = 0
    while bool((t > eps).any()):
        idx = (t > eps).nonzero().squeeze(1)
        z = draw()[idx]
        xi, ti, hi = x[idx], t[idx], h[idx]
        # x' = x + h g(t)^2 s(x, t) + sqrt(h) g(t) z                          (Euler-Maruyama)
        x1 = xi + per_sample(hi * g(ti) ** 2) * score(xi, sigma(ti).to(x.dtype)) \
            + per_sample(hi.sqrt() * g(ti)) * z
        # x~ = x + h g(t-h)^2 s(x', t-h) + sqrt(h) g(t-h) z,  x'' = (x' + x~) / 2  (improved Euler, same z)
        ts = ti - hi
        x_tilde = xi + per_sample(hi * g(ts) ** 2) * score(x1, sigma(ts).to(x.dtype)) \
            + per_sample(hi.sqrt() * g(ts)) * z
        x2 = 0.5 * (x1 + x_tilde)
        nfe += 2
        # delta = max(eps_abs, eps_rel max(|x'|, |x'_prev|)),  E = ||(x' - x'') / delta||_2 / sqrt(n)
        delta = torch.clamp(reltol * torch.maximum(x1.abs(), x_prev[idx].abs()), min=abstol)
        err = (((x1 - x2) / delta) ** 2).flatten(1).sum(1).div(n).sqrt().double()
        if not bool(torch.isfinite(err).all()):
            raise RuntimeError('adaptive SDE solver: non-finite error estimate at sigma = '
                               f'{float(sigma(ti.max())):.6g}')
        accept = err <= 1
        acc = per_sample(accept.double()).bool()
        x[idx] = torch.where(acc, x2, xi)                                # accept: x <- x''
        x_prev[idx] = torch.where(acc, x1, x_prev[idx])                  #         x'_prev <- x'
        landed = accept & (hi >= ti - eps)
        t_new = torch.where(landed, torch.full_like(ti, eps), torch.where(accept, ts, ti))  # t <- t - h
        t[idx] = t_new
        # h <- min(t - eps, theta h E^-r)   (E = 0: the step is only bounded by the distance to eps)
        h[idx] = torch.minimum(t_new - eps, safety * hi * err.pow(-exponent))
        if callback is not None:
            callback(it, float(sigma(t.max())), x)
        it += 1
    if denoise:                                                 # Tweedie: E[x_0 | x_eps] = x + sigma^2 s
        x = denoiser(score, x, sigma(eps))
        nfe += 1
    return x, nfe
