"""Samplers, picked by ``config.sampling.method``: ``pc`` (score_sde predictor-corrector, VE SDE) and
``ald`` (annealed Langevin dynamics of NCSN / NCSNv2), each with or without PDS.

Python API::

    x, nfe = sampling.sample(config, score, (B, C, H, W), generator=torch.Generator().manual_seed(0))

``score(x, sigma)`` is any score function (a :class:`models.score.ScoreModel`, another codebase's
network wrapped in a lambda, or an analytic score).  All randomness comes from ``generator``, drawn
as full-batch float32 tensors on the generator's device in the official order (prior first, then per
step the corrector's draws, then the predictor's draw), so a CPU generator reproduces the official
samplers given the same noise.
"""
import numpy as np
import torch

import preconditioning
from models.score import geometric_sigmas
from sampling import sde as sde_lib
from sampling.langevin import annealed_langevin, level_indices
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


SAMPLERS = {'pc': _run_pc, 'ald': _run_ald}


def sample(config, score, shape, generator=None, device='cpu', P=None, callback=None):
    """Draw a batch of ``shape`` with the sampler of ``config`` (PDS from ``config.pds`` unless ``P`` is
    given).  Returns ``(x, nfe)``, x unclamped in the model's data space."""
    if config.sampling.method not in SAMPLERS:
        raise ValueError(f'unknown sampling.method {config.sampling.method!r}; expected one of {sorted(SAMPLERS)}')
    if P is None:
        P = preconditioning.from_config(config.pds, tuple(shape[1:]), device=device)
    randn, rand = noise_source(generator, shape, device)
    with torch.inference_mode():
        return SAMPLERS[config.sampling.method](config, score, shape, randn, rand, P, device, callback)


def iterations(config):
    """(iterations as the paper counts them, NFE): PC -> (N, N (n_steps_each + 1));
    ALD -> (levels x n_steps_each, that + 1 if denoising)."""
    s = config.sampling
    if s.method == 'pc':
        n = sde_lib.from_config(config).N
        per_step = (s.n_steps_each if s.corrector != 'none' else 0) + (1 if s.predictor != 'none' else 0)
        return n, n * per_step
    levels = len(level_indices(config.model.num_scales, s.num_levels))
    its = levels * s.n_steps_each
    return its, its + int(bool(s.denoise))
