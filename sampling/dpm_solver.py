"""DPM-Solver++ (Lu, Zhou, Bao, Chen, Li, Zhu 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
Probabilistic Models") on the VE score: the multistep 2M (Algorithm 2) and the SDE variants 2M SDE / 3M SDE, the
solvers k-diffusion ships as ``sample_dpmpp_2m``, ``sample_dpmpp_2m_sde`` and ``sample_dpmpp_3m_sde``.

They integrate in lambda = -log sigma on the data prediction, the denoiser D(x; sigma) = x + sigma^2 score(x, sigma)
(VE: alpha = 1).  A step sigma_i -> sigma_{i+1} has h = lambda_{i+1} - lambda_i = log(sigma_i / sigma_{i+1}), and
its linear part is solved exactly (variation of constants):

    x_{i+1} = (sigma_{i+1} / sigma_i) e^{-eta h} x_i + (1 + eta) int_0^h e^{-(1 + eta)(h - u)} D(lambda_i + u) du
              + sigma_{i+1} sqrt(1 - e^{-2 eta h}) z_i.

eta = 0 is the probability-flow ODE, eta = 1 the reverse diffusion SDE: the form the DPM-Solver authors published as
the correction of the earlier, ancestral-sampling "DPM++ 2M SDE" (diffusers PR #3344, k-diffusion issue #59); for
eta = 1 the first coefficient is (sigma_{i+1} / sigma_i)^2.  With H = (1 + eta) h and D expanded in lambda,
D + u D' + u^2 / 2 D'', the integral is

    phi_1 D + phi_2 (h D') + (I_2 / H^2) (h^2 D''),   phi_1 = 1 - e^{-H},  phi_2 = 1 - phi_1 / H,
    I_2 / H^2 = 1 / 2 - phi_2 / H,

and the solvers differ in how they estimate h D' and h^2 D'' from earlier denoiser values (one new D per step).
Every solver starts with the first-order step (DPM-Solver++(1): phi_1 D alone) and ends, on a grid whose last level
is sigma_N = 0 (h = inf), with x_N = D(x_{N-1}; sigma_{N-1}) exactly: no noise is drawn and the score is never
asked at sigma = 0.

Noise: ``draw()`` gives the next full-batch N(0, I), one per stochastic step (none on the last), from the caller's
generator, as diffusers does.  k-diffusion draws it from a Brownian tree instead (noise that stays consistent when the
grid is refined); no Brownian tree here: independent per-step draws have the same law, and a seed reproduces a run.

PDS acts only through the optional ``corrector(i, x, sigma) -> (x, nfe)`` run after step i at sigma_{i+1} > 0, as in
sampling/edm.py (supp. Theorem 1 covers a Langevin corrector at a fixed level, not a preconditioned drift).  The
corrector moves x between steps; the stored denoiser values of the multistep formulas stay those of the steps.
"""
import math

from models.score import denoise

SOLVER_TYPES = ('midpoint', 'heun')


def _phis(H):
    """phi_1 = 1 - e^{-H}, phi_2 = 1 - phi_1 / H, I_2 / H^2 = 1 / 2 - phi_2 / H: the weights of D, h D', h^2 D''."""
    phi_1 = -math.expm1(-H)
    phi_2 = 1 - phi_1 / H
    return phi_1, phi_2, 0.5 - phi_2 / H


def _finish(i, x, sigma_next, corrector, callback, nfe):
    if corrector is not None and sigma_next != 0:
        x, n_c = corrector(i, x, sigma_next)
        nfe += n_c
    if callback is not None:
        callback(i, sigma_next, x)
    return x, nfe


def sample_dpmpp_2m(score, x, sigmas, draw=None, corrector=None, callback=None):
    """DPM-Solver++(2M), Algorithm 2: with D_i = D(x_i; sigma_i) and r_i = h_{i-1} / h_i,

        x_{i+1} = (sigma_{i+1} / sigma_i) x_i + (1 - e^{-h_i}) (D_i + (D_i - D_{i-1}) / (2 r_i)),

    the first step with D_0 alone (DPM-Solver++(1), i.e. DDIM), the last, to sigma_N = 0, returning D_{N-1}.
    Deterministic: ``draw`` is unused.  ``x``: the prior x_0 ~ N(0, sigma_0^2 I) (drawn by the caller);
    ``sigmas``: sigma_0 > ... > sigma_N = 0.  ``corrector(i, x, sigma) -> (x, nfe)`` runs after step i at
    sigma_{i+1} > 0; ``callback(i, sigma_{i+1}, x)`` after every step.  Returns ``(x_N, nfe)``: nfe = N (one
    denoiser call per step, the last included) plus the corrector's."""
    nfe, d_prev, h_prev = 0, None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        d = denoise(score, x, sigma)
        nfe += 1
        if sigma_next == 0:
            x = d                                                   # h = inf: x_N = D_{N-1}
        else:
            h = math.log(sigma / sigma_next)
            d_hat = d if d_prev is None else d + (d - d_prev) * (h / (2 * h_prev))   # D_i + (D_i - D_{i-1}) / (2 r_i)
            x = (sigma_next / sigma) * x - math.expm1(-h) * d_hat                  # Algorithm 2's update
            d_prev, h_prev = d, h
        x, nfe = _finish(i, x, sigma_next, corrector, callback, nfe)
    return x, nfe


def _sde_step(x, d, sigma, sigma_next, eta, draw):
    """The first-order part of an SDE step: (sigma_{i+1} / sigma_i) e^{-eta h} x + phi_1 D plus the fresh noise
    sigma_{i+1} sqrt(1 - e^{-2 eta h}) z, and (h, phi's of H = (1 + eta) h)."""
    h = math.log(sigma / sigma_next)
    phis = _phis((1 + eta) * h)
    x = (sigma_next / sigma) * math.exp(-eta * h) * x + phis[0] * d
    if eta > 0:
        x = x + sigma_next * math.sqrt(-math.expm1(-2 * eta * h)) * draw()
    return x, h, phis


def sample_dpmpp_2m_sde(score, x, sigmas, draw, eta=1., solver_type='midpoint', corrector=None, callback=None):
    """DPM-Solver++(2M) SDE, the reverse diffusion SDE form (eta = 1; eta = 0 is the ODE): with H = (1 + eta) h_i,

        x_{i+1} = (sigma_{i+1} / sigma_i) e^{-eta h_i} x_i + phi_1 D_i + c (D_i - D_{i-1}) / r_i
                  + sigma_{i+1} sqrt(1 - e^{-2 eta h_i}) z_i,

    phi_1 = 1 - e^{-H}, (D_i - D_{i-1}) / r_i the estimate of h_i D', and c = phi_1 / 2 ('midpoint', which with
    eta = 0 is exactly 2M) or c = phi_2 = 1 - phi_1 / H ('heun': the Taylor weight of h D').  The first step has
    no D_{i-1} term; the last, to sigma_N = 0, returns D_{N-1} and draws nothing.  ``draw()``: the next full-batch
    N(0, I), one per step i < N - 1 when eta > 0.  Other arguments and the return as :func:`sample_dpmpp_2m`."""
    if solver_type not in SOLVER_TYPES:
        raise ValueError(f"DPM-Solver++(2M) SDE solver_type must be one of {SOLVER_TYPES}, got {solver_type!r}")
    nfe, d_prev, h_prev = 0, None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        d = denoise(score, x, sigma)
        nfe += 1
        if sigma_next == 0:
            x = d                                                   # h = inf: x_N = D_{N-1}
        else:
            x, h, (phi_1, phi_2, _) = _sde_step(x, d, sigma, sigma_next, eta, draw)
            if d_prev is not None:
                c = 0.5 * phi_1 if solver_type == 'midpoint' else phi_2
                x = x + c * (d - d_prev) * (h / h_prev)             # c (D_i - D_{i-1}) / r_i
            d_prev, h_prev = d, h
        x, nfe = _finish(i, x, sigma_next, corrector, callback, nfe)
    return x, nfe


def sample_dpmpp_3m_sde(score, x, sigmas, draw, eta=1., corrector=None, callback=None, d2_weight=1.):
    """DPM-Solver++(3M) SDE (eta = 1; eta = 0 is the ODE 3M): with H = (1 + eta) h_i, r_0 = h_{i-1} / h_i,
    r_1 = h_{i-2} / h_i and the divided differences d_0 = (D_i - D_{i-1}) / r_0, d_1 = (D_{i-1} - D_{i-2}) / r_1,

        x_{i+1} = (sigma_{i+1} / sigma_i) e^{-eta h_i} x_i + phi_1 D_i + phi_2 d' + w (I_2 / H^2) d''
                  + sigma_{i+1} sqrt(1 - e^{-2 eta h_i}) z_i,
        d' = d_0 + r_0 (d_0 - d_1) / (r_0 + r_1)   (estimates h D'),   d'' = (d_0 - d_1) / (r_0 + r_1)   (h^2 D'' / 2),

    the second step with phi_2 d_0 alone (2M SDE 'heun'), the first with neither.  w = ``d2_weight`` = 1 is the weight
    k-diffusion and diffusers ship (their -phi_3 = I_2 / H^2 on d''); the Taylor expansion of the integral asks for
    w = 2, since d'' estimates h^2 D'' / 2 (see the tests for the order this costs).  Noise and the rest as
    :func:`sample_dpmpp_2m_sde`."""
    nfe, ds, hs = 0, [], []                                         # D_{i-1}, D_{i-2} and h_{i-1}, h_{i-2}
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        d = denoise(score, x, sigma)
        nfe += 1
        if sigma_next == 0:
            x = d                                                   # h = inf: x_N = D_{N-1}
        else:
            x, h, (_, phi_2, c_2) = _sde_step(x, d, sigma, sigma_next, eta, draw)
            if len(ds) == 1:
                x = x + phi_2 * (d - ds[0]) * (h / hs[0])           # phi_2 (D_i - D_{i-1}) / r_0
            elif len(ds) == 2:
                r0, r1 = hs[0] / h, hs[1] / h
                d0, d1 = (d - ds[0]) / r0, (ds[0] - ds[1]) / r1
                x = x + phi_2 * (d0 + (d0 - d1) * (r0 / (r0 + r1))) + d2_weight * c_2 * (d0 - d1) / (r0 + r1)
            ds, hs = [d] + ds[:1], [h] + hs[:1]
        x, nfe = _finish(i, x, sigma_next, corrector, callback, nfe)
    return x, nfe
