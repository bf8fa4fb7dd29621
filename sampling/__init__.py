"""Samplers, picked by ``config.sampling.method``: ``pc`` (score_sde predictor-corrector, VE SDE) and
``ald`` (annealed Langevin dynamics of NCSN / NCSNv2), each with or without PDS; and the rival training-free
samplers on the same score, PDS only through a Langevin corrector after each step (supp. Theorem 1):
``edm`` (EDM Algorithm 1, Heun), ``edm_stochastic`` (EDM Algorithm 2), ``ode_euler`` (Euler / DDIM-like on the
same grid), ``ode`` (score_sde's probability-flow ODE, scipy RK45), ``adaptive_sde`` (Gotta Go Fast,
Algorithm 1) and ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde`` (DPM-Solver++); see sampling/edm.py, ode.py,
adaptive.py, dpm_solver.py.

Python API::

    x, nfe = sampling.sample(config, score, (B, C, H, W), generator=torch.Generator().manual_seed(0))

``score(x, sigma)`` is any score function (a :class:`models.score.ScoreModel`, another codebase's
network wrapped in a lambda, or an analytic score).  All randomness comes from ``generator``, drawn
as full-batch float32 tensors on the generator's device in the official order (prior first, then per
step the corrector's draws, then the predictor's draw), so a CPU generator reproduces the official
samplers given the same noise.
"""
import functools

import numpy as np
import torch

import preconditioning
from models.score import geometric_sigmas
from sampling import sde as sde_lib
from sampling.adaptive import sample_adaptive_sde
from sampling.dpm_solver import SOLVER_TYPES, sample_dpmpp_2m, sample_dpmpp_2m_sde, sample_dpmpp_3m_sde
from sampling.edm import level_corrector, sample_edm, sigma_schedule
from sampling.langevin import annealed_langevin, level_indices
from sampling.ode import sample_ode
from sampling.pc import CORRECTORS, PREDICTORS, pc_sampler  # noqa: F401


def noise_source(generator, shape, device):
    """(randn, rand): full-batch float32 draws from ``generator`` (on its device), moved to ``device``."""
    gen_device = generator.device if generator is not None else 'cpu'

    def randn():
        return torch.randn(shape, generator=generator, device=gen_device).to(device)

    def rand():
        return torch.rand(shape, generator=generator, device=gen_device).to(device)
    return randn, rand


def _run_pc(config, score, shape, randn, rand, P, device, callback):
    s = config.sampling
    return pc_sampler(score, shape, sde_lib.from_config(config), randn, predictor=s.predictor, corrector=s.corrector,
                      snr=s.snr, n_steps=s.n_steps_each, eps=sde_lib.sampling_eps(config),
                      noise_removal=s.noise_removal, P=P, device=device, callback=callback)


def ald_sigmas(config):
    """The levels annealed Langevin visits: the model's geometric grid (float64 for NCSN v1, float32
    for NCSNv2, as the official samplers compute), thinned to ``sampling.num_levels``."""
    m, s = config.model, config.sampling
    dtype = np.float64 if s.ald_variant == 'ncsn' else np.float32
    sigmas = geometric_sigmas(m.sigma_max, m.sigma_min, m.num_scales).astype(dtype)
    return sigmas[level_indices(m.num_scales, s.num_levels)]


def _run_ald(config, score, shape, randn, rand, P, device, callback):
    s = config.sampling
    return annealed_langevin(score, shape, ald_sigmas(config), randn, s.step_lr, s.n_steps_each, s.ald_variant,
                             s.denoise, P=P, device=device, uniform=rand, callback=callback)


def fixed_steps(config):
    """N of the fixed-step rival samplers (edm, edm_stochastic, ode_euler, dpmpp_*): the PC sampler's N
    (``sampling.num_steps`` if set, else int(num_scales / speed_up)); the grid is t_0..t_{N-1}, t_N = 0."""
    return sde_lib.from_config(config).N


def _no_pds(P, method, hint):
    if not getattr(P, 'is_identity', False):
        raise ValueError(f"sampling.method = {method!r} applies PDS only through a Langevin corrector after each "
                         f"step (supp. Theorem 1 covers the corrector, not a preconditioned ODE / SDE drift, which "
                         f"would change the marginals): {hint}")


def _step_corrector(config, score, randn, P):
    s = config.sampling
    name = s.get('step_corrector', 'none')
    if name == 'none':
        _no_pds(P, s.method, "set sampling.step_corrector = 'langevin' (or 'ald'), or turn PDS off (--pds=false)")
        return None
    return level_corrector(name, score, P, s.snr, s.n_steps_each, randn)


def _run_edm(config, score, shape, randn, rand, P, device, callback, heun=True, stochastic=False):
    s, m = config.sampling, config.model
    sigmas = sigma_schedule(s.schedule, m.sigma_min, m.sigma_max, fixed_steps(config), s.rho)
    corrector = _step_corrector(config, score, randn, P)
    x = randn() * float(sigmas[0])                      # EDM Alg. 1 / 2 line 1: x_0 ~ N(0, t_0^2 I), not M z
    churn = dict(s_churn=s.s_churn, s_tmin=s.s_tmin, s_tmax=s.s_tmax, s_noise=s.s_noise) if stochastic else {}
    return sample_edm(score, x, sigmas, randn, heun=heun, corrector=corrector, callback=callback, **churn)


def _run_dpmpp(config, score, shape, randn, rand, P, device, callback, solver):
    """DPM-Solver++ ``solver`` ('2m', '2m_sde', '3m_sde') on the grid of ``edm``; PDS only as the step corrector."""
    s, m = config.sampling, config.model
    kwargs = {}
    if solver != '2m':
        kwargs['eta'] = s.get('dpmpp_eta', 1.)
        if kwargs['eta'] < 0:
            raise ValueError(f"sampling.dpmpp_eta must be >= 0 (0: the ODE, 1: the reverse SDE), got {kwargs['eta']}")
    if solver == '2m_sde':
        kwargs['solver_type'] = s.get('dpmpp_solver_type', 'midpoint')
        if kwargs['solver_type'] not in SOLVER_TYPES:
            raise ValueError(f"sampling.dpmpp_solver_type must be one of {SOLVER_TYPES}, got {kwargs['solver_type']!r}")
    sigmas = sigma_schedule(s.schedule, m.sigma_min, m.sigma_max, fixed_steps(config), s.rho)
    corrector = _step_corrector(config, score, randn, P)
    x = randn() * float(sigmas[0])                      # x_0 ~ N(0, sigma_0^2 I), not M z
    sampler = {'2m': sample_dpmpp_2m, '2m_sde': sample_dpmpp_2m_sde, '3m_sde': sample_dpmpp_3m_sde}[solver]
    return sampler(score, x, sigmas, randn, corrector=corrector, callback=callback, **kwargs)


def _run_ode(config, score, shape, randn, rand, P, device, callback):
    s, m = config.sampling, config.model
    _no_pds(P, s.method, "it has no corrector; use sampling.method = 'edm' or 'ode_euler' with "
                         "sampling.step_corrector = 'langevin', or turn PDS off (--pds=false)")
    return sample_ode(score, randn() * m.sigma_max, m.sigma_min, m.sigma_max, eps=s.eps, rtol=s.ode_rtol,
                      atol=s.ode_atol, method=s.ode_method, denoise=s.noise_removal, callback=callback)


def _run_adaptive_sde(config, score, shape, randn, rand, P, device, callback):
    s, m = config.sampling, config.model
    _no_pds(P, s.method, "it has no corrector; use sampling.method = 'edm' or 'ode_euler' with "
                         "sampling.step_corrector = 'langevin', or turn PDS off (--pds=false)")
    return sample_adaptive_sde(score, randn() * m.sigma_max, m.sigma_min, m.sigma_max, randn, eps=s.eps,
                               abstol=s.adaptive_abstol, reltol=s.adaptive_reltol, h_init=s.adaptive_h_init,
                               safety=s.adaptive_safety, exponent=s.adaptive_exp, denoise=s.noise_removal,
                               callback=callback)


SAMPLERS = {
    'pc': _run_pc,
    'ald': _run_ald,
    'edm': _run_edm,
    'edm_stochastic': functools.partial(_run_edm, stochastic=True),
    'ode_euler': functools.partial(_run_edm, heun=False),
    'ode': _run_ode,
    'adaptive_sde': _run_adaptive_sde,
    'dpmpp_2m': functools.partial(_run_dpmpp, solver='2m'),
    'dpmpp_2m_sde': functools.partial(_run_dpmpp, solver='2m_sde'),
    'dpmpp_3m_sde': functools.partial(_run_dpmpp, solver='3m_sde'),
}
ADAPTIVE = ('ode', 'adaptive_sde')      # NFE known only after running: iterations() returns (None, None)
DPMPP = ('dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde')


def spectrum_path(config):
    """The data's ``*_spectrum.npy`` (``--mode stats``) of ``config``: ``pds.spectrum_path``, else the one beside
    ``pds.freq_path`` (``<name>_freq.npy`` -> ``<name>_spectrum.npy``); a FilterError when neither names one."""
    pds = config.pds
    path = pds.spectrum_path or (pds.freq_path[:-len('_freq.npy')] + '_spectrum.npy'
                                 if pds.freq_path.endswith('_freq.npy') else '')
    if not path:
        raise preconditioning.FilterError("no data spectrum: set pds.spectrum_path (a *_spectrum.npy of --mode stats)")
    return path


def preconditioner(config, shape, device='cpu'):
    """The PDS operator of ``config`` for samples of ``shape`` (C, H, W): ``config.pds`` as
    :func:`preconditioning.from_config` builds it, or, for ``pds.freq = 'auto'``, the per-step filters of
    :mod:`preconditioning.auto` for this sampler's schedule (PC: reverse diffusion + Langevin; annealed Langevin)."""
    pds, s = config.pds, config.sampling
    if pds.enabled and pds.get('predictor_drift', 'official') != 'official':
        if s.method != 'pc' or s.predictor == 'none' or pds.freq == 'auto':
            raise ValueError(f"pds.predictor_drift = {pds.predictor_drift!r} changes the PC predictor's drift under a "
                             "fixed filter: it needs sampling.method 'pc' with a predictor and pds.freq 'radial', "
                             "'stats' or 'none' (got method {!r}, predictor {!r}, freq {!r})".format(
                                 s.method, s.predictor, pds.freq))
    if not (pds.enabled and pds.freq == 'auto'):
        return preconditioning.from_config(pds, tuple(shape), device=device)
    from preconditioning import auto
    if pds.get('apply_to', 'all') != 'all':
        raise ValueError("pds.freq = 'auto' derives its corrector filters together with the predictor's: set "
                         "pds.apply_to = 'all'")
    if pds.space or pds.omega:
        raise ValueError("pds.freq = 'auto' derives the frequency filter alone: set pds.space = False and pds.omega = 0")
    path = spectrum_path(config)
    if s.method == 'pc' and (s.predictor != 'reverse_diffusion' or s.corrector != 'langevin'):
        raise ValueError("pds.freq = 'auto' is derived for the PC sampler with predictor 'reverse_diffusion' and "
                         f"corrector 'langevin'; got {s.predictor!r} / {s.corrector!r}")
    if s.method not in ('pc', 'ald'):
        raise ValueError(f"pds.freq = 'auto' is derived for sampling.method 'pc' and 'ald', not {s.method!r}")
    spec = auto.Spectrum.load(path, tuple(shape))
    if s.method == 'pc':
        schedule = auto.AutoPC(spec, sde_lib.from_config(config), sde_lib.sampling_eps(config), s.snr, s.n_steps_each,
                               s.noise_removal)
    else:
        schedule = auto.AutoALD(spec, ald_sigmas(config), s.step_lr, s.n_steps_each, s.denoise)
    return auto.ScheduledPreconditioner(schedule, device=device)


def sample(config, score, shape, generator=None, device='cpu', P=None, callback=None):
    """Draw a batch of ``shape`` with the sampler of ``config`` (PDS from ``config.pds`` unless ``P`` is
    given).  Returns ``(x, nfe)``, x unclamped in the model's data space."""
    if config.sampling.method not in SAMPLERS:
        raise ValueError(f'unknown sampling.method {config.sampling.method!r}; expected one of {sorted(SAMPLERS)}')
    if P is None:
        P = preconditioner(config, shape[1:], device)
    randn, rand = noise_source(generator, shape, device)
    with torch.inference_mode():
        return SAMPLERS[config.sampling.method](config, score, shape, randn, rand, P, device, callback)


def iterations(config):
    """(iterations as the paper counts them, NFE): PC -> (N, N (n_steps_each + 1));
    ALD -> (levels x n_steps_each, that + 1 if denoising); edm / edm_stochastic -> (N, 2N - 1), ode_euler and
    dpmpp_2m / dpmpp_2m_sde / dpmpp_3m_sde -> (N, N) (one call per step, the last to sigma = 0 included), plus
    (N - 1) n_steps_each with a step corrector; ode / adaptive_sde -> (None, None): adaptive
    solvers know their NFE only after running (``sample`` returns it)."""
    s = config.sampling
    if s.method in ADAPTIVE:
        return None, None
    if s.method in ('edm', 'edm_stochastic', 'ode_euler') + DPMPP:
        n = fixed_steps(config)
        per_level = s.n_steps_each if s.get('step_corrector', 'none') != 'none' else 0
        return n, (n if s.method in ('ode_euler',) + DPMPP else 2 * n - 1) + (n - 1) * per_level
    if s.method == 'pc':
        n = sde_lib.from_config(config).N
        per_step = (s.n_steps_each if s.corrector != 'none' else 0) + (1 if s.predictor != 'none' else 0)
        return n, n * per_step
    levels = len(level_indices(config.model.num_scales, s.num_levels))
    its = levels * s.n_steps_each
    return its, its + int(bool(s.denoise))
