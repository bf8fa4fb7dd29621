"""Tiny versions of the official architectures, with random weights, for the ``--tiny`` modes of
benchmarks/gpu_speed.py and benchmarks/precision_neutrality.py and for the tests of the speed switches: the same
network code paths (NCSN++ BigGAN / DDPM blocks, FIR, progressive skips, attention; the NCSN / NCSNv2 RefineNets) on
shapes that run in seconds on a CPU.
"""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from configs import defaults  # noqa: E402


def shrink_ncsnpp(config, size=16, nf=8, channels=None, levels=3):
    """An official NCSN++ config at ``size`` px with ``nf`` channels, its first ``levels`` resolutions, one residual
    block each and attention at size / 4; every other architectural choice (blocks, FIR, progressive paths,
    embedding) kept."""
    m = config.model
    m.nf = nf
    m.ch_mult = tuple(m.ch_mult)[:levels]
    m.num_res_blocks = 1
    m.attn_resolutions = (size // 4,)
    config.data.image_size = size
    if channels is not None:
        config.data.num_channels = channels
    return config


def shrink_refinenet(config, size=16, nf=4, num_scales=10, channels=None):
    """An official NCSN / NCSNv2 config at ``size`` px, ``nf`` channels and ``num_scales`` noise levels."""
    config.model.nf = nf
    config.model.num_scales = num_scales
    config.data.image_size = size
    if channels is not None:
        config.data.num_channels = channels
    return config


def tiny_ncsnpp(size=8, channels=1, nf=8, init_scale=1.):
    """score_sde's VE NCSN++ (continuous, Fourier embedding) with two resolutions of one block; ``init_scale`` 1 so
    that the random network's score is far from zero (score_sde's 0 makes the last layers ~1e-10)."""
    c = defaults.ve_ncsnpp()
    m = c.model
    m.nf, m.ch_mult, m.num_res_blocks, m.attn_resolutions = nf, (1, 2), 1, (size // 2,)
    m.sigma_max, m.num_scales, m.init_scale = 5., 20, init_scale
    c.data.image_size, c.data.num_channels, c.data.dataset = size, channels, 'test'
    c.sampling.num_steps, c.sampling.batch_size = 4, 4
    c.device = 'cpu'
    return c


def tiny_ncsnv2(size=8, channels=1, nf=4, name='ncsnv2_64'):
    """NCSNv2 (annealed Langevin) with 10 levels 1 .. 0.01, 3 of them visited, 2 steps each."""
    c = defaults.ncsnv2(name)
    c.model.nf, c.model.sigma_max, c.model.num_scales = nf, 1., 10
    c.data.image_size, c.data.num_channels, c.data.dataset = size, channels, 'test'
    c.sampling.num_levels, c.sampling.n_steps_each, c.sampling.batch_size = 3, 2, 4
    c.device = 'cpu'
    return c


def tiny_ncsn(size=8, channels=1, nf=4):
    """NCSN v1 (annealed Langevin, 'ncsn' variant: noise before the score, float64 levels), 3 levels x 2 steps."""
    c = defaults.ncsn()
    c.model.nf = nf
    c.data.image_size, c.data.num_channels, c.data.dataset = size, channels, 'test'
    c.sampling.num_levels, c.sampling.n_steps_each, c.sampling.batch_size = 3, 2, 4
    c.device = 'cpu'
    return c


def random_score(config, seed=0, device='cpu'):
    """A ScoreModel of ``config``'s network with seeded random weights, in eval mode on ``device``."""
    import models
    from models.score import ScoreModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = models.create_model(config)
    return ScoreModel(net.to(device).eval(), config)
