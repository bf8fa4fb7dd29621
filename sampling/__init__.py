"""Samplers, picked by ``config.sampling.method``: ``pc`` (score_sde predictor-corrector, VE or VP SDE by
``training.sde``) and ``ald`` (annealed Langevin dynamics of NCSN / NCSNv2), each with or without PDS; on the VP SDE
also ``ddpm`` (Ho et al.'s ancestral sampling, with PDS), ``ddim`` (Song et al. 2021) and ``ode`` (sampling/ddpm.py,
ode.py); and the rival training-free
samplers on the same score, PDS only through a Langevin corrector after each step (supp. Theorem 1):
``edm`` (EDM Algorithm 1, Heun), ``edm_stochastic`` (EDM Algorithm 2), ``ode_euler`` (Euler / DDIM-like on the
same grid), ``ode`` (score_sde's probability-flow ODE, scipy RK45), ``adaptive_sde`` (Gotta Go Fast,
Algorithm 1) and ``dpmpp_2m``, ``dpmpp_2m_sde``, ``dpmpp_3m_sde`` (DPM-Solver++); see sampling/edm.py, ode.py,
adaptive.py, dpm_solver.py.  The fixed-step rivals (edm, edm_stochastic, ode_euler, dpmpp_*) run on VP models too,
through EDM's sigma view (:func:`sigma_range`); adaptive_sde and ald stay VE only.

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
from sampling.ddpm import chain_steps, sample_ddim, sample_ddpm
from sampling.ode import sample_ode, sample_vp_ode
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
                      noise_removal=s.noise_removal, P=P, device=device, callback=callback,
                      probability_flow=s.get('probability_flow', False), last_step=s.get('last_step', 'predictor'))


def is_vp(config):
    """True for a model of the VP SDE (``training.sde = 'vpsde'``: DDPM, DDPM++)."""
    return config.training.get('sde', 'vesde') == 'vpsde'


def vp_chain(config):
    """The discrete DDPM chain a VP model was trained on: N = model.num_scales steps of beta_min .. beta_max."""
    m = config.model
    return sde_lib.VPSDE(m.beta_min, m.beta_max, m.num_scales)


def ddpm_chain(config):
    """The chain ddpm / ddim run on: a discrete VP model's own DDPM chain (:func:`vp_chain`); a continuous one's
    marginals at t_j = (j + 1) / N (:class:`models.sde.VPTimeChain`: the discrete chain's top levels lie beyond
    sigma(1), outside what a continuous model was trained on)."""
    chain = vp_chain(config)
    return sde_lib.VPTimeChain(chain) if config.training.continuous else chain


def _chain_tau(config):
    """The chain indices ddpm / ddim visit: ``sampling.chain_steps``, else as many as the PC sampler's N
    (num_steps, or int(num_scales / speed_up)) spread evenly."""
    s = config.sampling
    return chain_steps(config.model.num_scales, tuple(s.get('chain_steps', ())), sde_lib.from_config(config).N)


def _run_ddpm(config, score, shape, randn, rand, P, device, callback):
    x = P.at_step(0, 'prior').noise(randn())                   # N(0, I) (official PDS form: M z)
    return sample_ddpm(score, x, ddpm_chain(config), _chain_tau(config), randn,
                       config.sampling.get('ddpm_variance', 'beta'), P=P, callback=callback)


def _run_ddim(config, score, shape, randn, rand, P, device, callback):
    return sample_ddim(score, randn(), ddpm_chain(config), _chain_tau(config), randn,
                       config.sampling.get('ddim_eta', 0.), callback=callback)


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


def sigma_range(config):
    """(sigma_min, sigma_max): the noise levels the fixed-step rival samplers (edm, edm_stochastic, ode_euler,
    dpmpp_*) run between, in the VE form score(y, sigma).  The one place where a VP model meets them:

    * VE: model.sigma_min .. model.sigma_max;
    * VP (EDM's view: y = x / sqrt(alpha_bar), sigma^2 = 1 / alpha_bar - 1; a VP
      :class:`models.score.ScoreModel` answers score(y, sigma) with its own labels): continuous models
      sigma(eps) .. sigma(1) of the VP SDE with eps the sampling eps (``sampling.eps`` x speed_up; 1e-3:
      0.0105 .. 152.2 for beta 0.1 .. 20), discrete (DDPM chain) models the smallest and largest level of their
      N = model.num_scales step chain, sigma_0 .. sigma_{N-1} (0.0100 .. 157.4 for N = 1000).

    On VP the samplers then start, as EDM does, from y = sigma_max z: the exact prior x_1 ~ N(0, I) is
    y ~ N(0, (1 + sigma_max^2) I), so the '1 +' is dropped, a relative 1 / sigma_max^2 = 4.3e-5 of the variance
    (2.2e-5 of the std) at sigma_max = 152; and they end at sigma = 0, where alpha_bar = 1 and y is the sample x."""
    m = config.model
    if not is_vp(config):
        return float(m.sigma_min), float(m.sigma_max)
    chain = vp_chain(config)
    if config.training.continuous:
        eps = torch.tensor(sde_lib.sampling_eps(config), dtype=torch.float64)
        return float(chain.sigma(eps)), chain.sigma_max
    levels = chain.level_sigmas()
    return float(levels[0]), float(levels[-1])


def rival_sigmas(config):
    """The N + 1 levels sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min > sigma_N = 0 of the fixed-step rival
    samplers: ``sampling.schedule`` ('karras' with ``sampling.rho``, or 'geometric') over :func:`sigma_range`."""
    s = config.sampling
    sigma_min, sigma_max = sigma_range(config)
    return sigma_schedule(s.schedule, sigma_min, sigma_max, fixed_steps(config), s.rho)


def fixed_steps(config):
    """N of the fixed-step rival samplers (edm, edm_stochastic, ode_euler, dpmpp_*): the PC sampler's N
    (``sampling.num_steps`` if set, else int(num_scales / speed_up)); the grid is t_0..t_{N-1}, t_N = 0."""
    return sde_lib.from_config(config).N


def check_pds(config, P):
    """Raise the ValueError of a sampler that cannot apply the PDS operator ``P`` as ``config`` asks; nothing when
    ``P`` is the identity.  :func:`sample` calls it, and ``runners.sample`` before its first file: the rival
    samplers take PDS only through a Langevin corrector after each step (supp. Theorem 1 covers the corrector, not a
    preconditioned ODE / SDE drift, which would change the marginals), DDPM ancestral sampling only in its steps."""
    if getattr(P, 'is_identity', False):
        return
    s = config.sampling
    method, corrector = s.method, s.get('step_corrector', 'none')
    if method == 'ddpm':
        if getattr(P.at_step(0, 'predictor'), 'is_identity', False):
            raise ValueError("sampling.method = 'ddpm' has no corrector steps, so pds.apply_to = 'corrector' would "
                             "change nothing; use pds.apply_to = 'all' (with pds.predictor_drift 'marginal' or "
                             "'official')")
        return
    hints = {'ddim': "DDIM is a discretised probability-flow ODE (eta = 0) or its SDE family, with no corrector; "
                     "use sampling.method 'ddpm' or 'pc' for PDS, or turn PDS off (--pds=false)",
             **{m: "it has no corrector; use sampling.method = 'edm' or 'ode_euler' with sampling.step_corrector = "
                   "'langevin', or turn PDS off (--pds=false)" for m in ADAPTIVE}}
    if method in hints:
        hint = hints[method]
    elif method in STEP_CORRECTED and corrector == 'none':
        hint = "set sampling.step_corrector = 'langevin' (or 'ald'), or turn PDS off (--pds=false)"
    else:
        return
    raise ValueError(f"sampling.method = {method!r} applies PDS only through a Langevin corrector after each step "
                     f"(supp. Theorem 1 covers the corrector, not a preconditioned ODE / SDE drift, which would "
                     f"change the marginals): {hint}")


def _step_corrector(config, score, randn, P):
    s = config.sampling
    name = s.get('step_corrector', 'none')
    if name == 'none':
        return None
    return level_corrector(name, score, P, s.snr, s.n_steps_each, randn)


def _run_edm(config, score, shape, randn, rand, P, device, callback, heun=True, stochastic=False):
    s = config.sampling
    sigmas = rival_sigmas(config)
    corrector = _step_corrector(config, score, randn, P)
    x = randn() * float(sigmas[0])                      # EDM Alg. 1 / 2 line 1: x_0 ~ N(0, t_0^2 I), not M z
    churn = dict(s_churn=s.s_churn, s_tmin=s.s_tmin, s_tmax=s.s_tmax, s_noise=s.s_noise) if stochastic else {}
    return sample_edm(score, x, sigmas, randn, heun=heun, corrector=corrector, callback=callback, **churn)


def _run_dpmpp(config, score, shape, randn, rand, P, device, callback, solver):
    """DPM-Solver++ ``solver`` ('2m', '2m_sde', '3m_sde') on the grid of ``edm``; PDS only as the step corrector."""
    s = config.sampling
    kwargs = {}
    if solver != '2m':
        kwargs['eta'] = s.get('dpmpp_eta', 1.)
        if kwargs['eta'] < 0:
            raise ValueError(f"sampling.dpmpp_eta must be >= 0 (0: the ODE, 1: the reverse SDE), got {kwargs['eta']}")
    if solver == '2m_sde':
        kwargs['solver_type'] = s.get('dpmpp_solver_type', 'midpoint')
        if kwargs['solver_type'] not in SOLVER_TYPES:
            raise ValueError(f"sampling.dpmpp_solver_type must be one of {SOLVER_TYPES}, got {kwargs['solver_type']!r}")
    sigmas = rival_sigmas(config)
    corrector = _step_corrector(config, score, randn, P)
    x = randn() * float(sigmas[0])                      # x_0 ~ N(0, sigma_0^2 I), not M z
    sampler = {'2m': sample_dpmpp_2m, '2m_sde': sample_dpmpp_2m_sde, '3m_sde': sample_dpmpp_3m_sde}[solver]
    return sampler(score, x, sigmas, randn, corrector=corrector, callback=callback, **kwargs)


def _run_ode(config, score, shape, randn, rand, P, device, callback):
    s, m = config.sampling, config.model
    if is_vp(config):
        sde = sde_lib.from_config(config)
        return sample_vp_ode(score, sde.prior(randn()), sde, eps=sde_lib.sampling_eps(config), rtol=s.ode_rtol,
                             atol=s.ode_atol, method=s.ode_method, denoise=s.noise_removal, callback=callback)
    return sample_ode(score, randn() * m.sigma_max, m.sigma_min, m.sigma_max, eps=s.eps, rtol=s.ode_rtol,
                      atol=s.ode_atol, method=s.ode_method, denoise=s.noise_removal, callback=callback)


def _run_adaptive_sde(config, score, shape, randn, rand, P, device, callback):
    s, m = config.sampling, config.model
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
    'ddpm': _run_ddpm,
    'ddim': _run_ddim,
}
# the samplers of the VP SDE (training.sde = 'vpsde'): its own, and the fixed-step rivals through EDM's sigma view
# (sigma_range); adaptive_sde (its VE SDE steps) and ald (the VE level grid) are VE only
VP_METHODS = ('pc', 'ddpm', 'ddim', 'ode', 'edm', 'edm_stochastic', 'ode_euler', 'dpmpp_2m', 'dpmpp_2m_sde',
              'dpmpp_3m_sde')
VP_ONLY = ('ddpm', 'ddim')
ADAPTIVE = ('ode', 'adaptive_sde')      # NFE known only after running: iterations() returns (None, None)
DPMPP = ('dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde')
STEP_CORRECTED = ('edm', 'edm_stochastic', 'ode_euler') + DPMPP   # PDS only through sampling.step_corrector


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
    :mod:`preconditioning.auto` for this sampler's schedule (VE PC: reverse diffusion + Langevin; annealed Langevin;
    VP PC: any predictor, Langevin or no corrector).  On a VP model the marginal form (``pds.predictor_drift =
    'marginal'``) starts from the exact prior N(0, I)."""
    pds, s = config.pds, config.sampling
    if pds.enabled and pds.get('predictor_drift', 'official') != 'official':
        if not ((s.method == 'pc' and s.predictor != 'none') or (s.method == 'ddpm' and is_vp(config))) \
                or pds.freq == 'auto':
            raise ValueError(f"pds.predictor_drift = {pds.predictor_drift!r} changes the PC predictor's drift under a "
                             "fixed filter: it needs sampling.method 'pc' with a predictor (or 'ddpm' on a VP model) "
                             "and pds.freq 'radial', 'stats' or 'none' (got method {!r}, predictor {!r}, freq "
                             "{!r})".format(s.method, s.predictor, pds.freq))
    if not (pds.enabled and pds.freq == 'auto'):
        # the marginal form keeps the marginals only from the true prior, which VP knows exactly: N(0, I)
        return preconditioning.from_config(pds, tuple(shape), device=device, exact_prior=is_vp(config))
    if is_vp(config) and s.method != 'pc':
        raise ValueError(f"pds.freq = 'auto' on a VP model is derived for sampling.method 'pc', not {s.method!r}")
    from preconditioning import auto
    if pds.get('apply_to', 'all') != 'all':
        raise ValueError("pds.freq = 'auto' derives its corrector filters together with the predictor's: set "
                         "pds.apply_to = 'all'")
    if pds.space or pds.omega:
        raise ValueError("pds.freq = 'auto' derives the frequency filter alone: set pds.space = False and pds.omega = 0")
    path = spectrum_path(config)
    if is_vp(config):                 # (A5): any VP predictor, corrector 'langevin' or 'none'
        spec = auto.Spectrum.load(path, tuple(shape))
        if config.data.centered:          # the statistics are of [0, 1] images; the model sees 2 x - 1
            spec = spec.affine(2., -1.)
        schedule = auto.AutoVPPC(spec, sde_lib.from_config(config), sde_lib.sampling_eps(config), s.predictor,
                                 s.corrector, s.snr, s.n_steps_each, s.noise_removal)
        return auto.ScheduledPreconditioner(schedule, device=device)
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


def check_process(config):
    """One line when the sampler does not run on the config's noise process (training.sde)."""
    method, sde = config.sampling.method, config.training.get('sde', 'vesde')
    if sde not in sde_lib.PROCESSES:
        raise ValueError(f"training.sde = {sde!r} is not supported; expected one of {sorted(sde_lib.PROCESSES)}")
    if is_vp(config) and method not in VP_METHODS:
        raise ValueError(f"sampling.method = {method!r} runs on the VE SDE (model.sigma_min .. sigma_max); a VP "
                         f"model (training.sde = 'vpsde') samples with one of {VP_METHODS}")
    if not is_vp(config) and method in VP_ONLY:
        raise ValueError(f"sampling.method = {method!r} runs on the DDPM chain of the VP SDE; this config's model is "
                         f"VE (training.sde = {sde!r}): use 'pc', 'ald' or a rival sampler")


def sample(config, score, shape, generator=None, device='cpu', P=None, callback=None, graphs=False):
    """Draw a batch of ``shape`` with the sampler of ``config`` (PDS from ``config.pds`` unless ``P`` is
    given).  Returns ``(x, nfe)``, x unclamped in the model's data space.  ``graphs``: capture each sampler step in a
    CUDA graph (``--cuda_graphs``, sampling/graphs.py; CUDA devices only), the same samples draw for draw."""
    if config.sampling.method not in SAMPLERS:
        raise ValueError(f'unknown sampling.method {config.sampling.method!r}; expected one of {sorted(SAMPLERS)}')
    check_process(config)
    if P is None:
        P = preconditioner(config, shape[1:], device)
    check_pds(config, P)
    randn, rand = noise_source(generator, shape, device)
    with torch.inference_mode():
        if graphs:
            from sampling import graphs as graphs_lib
            return graphs_lib.sample(config, score, shape, randn, rand, P, device, callback, capture=True)
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
    if s.method in STEP_CORRECTED:
        n = fixed_steps(config)
        per_level = s.n_steps_each if s.get('step_corrector', 'none') != 'none' else 0
        return n, (n if s.method in ('ode_euler',) + DPMPP else 2 * n - 1) + (n - 1) * per_level
    if s.method == 'pc':
        n = sde_lib.from_config(config).N
        per_step = (s.n_steps_each if s.corrector != 'none' else 0) + (1 if s.predictor != 'none' else 0)
        return n, n * per_step
    if s.method in VP_ONLY:
        n = len(_chain_tau(config))
        return n, n
    levels = len(level_indices(config.model.num_scales, s.num_levels))
    its = levels * s.n_steps_each
    return its, its + int(bool(s.denoise))
