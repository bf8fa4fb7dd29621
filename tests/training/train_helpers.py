"""Tiny configs and structured in-memory datasets for the training tests."""
import importlib.util

import torch
from torch.utils.data import TensorDataset

from configs import defaults
from configs.ncsn import mnist

HAS_NCSNPP = importlib.util.find_spec('models.ncsnpp') is not None


def _training(config, batch, steps, log_freq=1, snapshot_freq=None):
    t = config.training
    t.batch_size, t.n_iters, t.log_freq = batch, steps, log_freq
    t.snapshot_freq = snapshot_freq or steps
    config.device = 'cpu'
    return config


def tiny_ncsn(size=8, nf=4, batch=4, steps=4, **kw):
    """configs/ncsn/mnist.py (NCSN v1, 10 levels 1..0.01, uniform dequantisation) shrunk."""
    c = mnist.get_config()
    c.model.nf, c.data.image_size = nf, size
    return _training(c, batch, steps, **kw)


def tiny_ncsnv2(size=8, nf=4, batch=4, steps=4, **kw):
    """NCSNv2 (EMA 0.999, random flips) on 1-channel images, 10 levels 1..0.01."""
    c = defaults.ncsnv2('ncsnv2_64')
    c.model.nf, c.model.sigma_max, c.model.num_scales = nf, 1., 10
    c.data.image_size, c.data.num_channels, c.data.dataset = size, 1, 'test'
    return _training(c, batch, steps, **kw)


def tiny_ncsnpp(size=8, nf=8, batch=4, steps=4, continuous=True, **kw):
    """score_sde VE NCSN++ (Fourier / positional) with two resolutions and one block each."""
    c = defaults.ve_ncsnpp()
    m = c.model
    m.nf, m.ch_mult, m.num_res_blocks, m.attn_resolutions = nf, (1, 2), 1, (size // 2,)
    m.sigma_max, m.num_scales = 5., 20
    if not continuous:
        m.embedding_type = 'positional'
        c.training.continuous = False
    c.data.image_size, c.data.num_channels, c.data.dataset = size, 1, 'test'
    c.optim.warmup = 2
    return _training(c, batch, steps, **kw)


def blobs(n=64, size=8, channels=1, seed=0):
    """n images in [0, 1]: one of 4 Gaussian blobs, each with a random brightness (structured, learnable)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing='ij')
    centres = torch.rand(4, 2, generator=g) * size
    templates = torch.stack([torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 6) ** 2))
                             for cx, cy in centres])
    which = torch.randint(0, 4, (n,), generator=g)
    x = templates[which] * (0.8 + 0.2 * torch.rand(n, 1, 1, generator=g))
    return TensorDataset(x.unsqueeze(1).expand(n, channels, size, size).clamp(0, 1).contiguous())


def trainable(net):
    return [p.detach().clone() for p in net.parameters() if p.requires_grad]


def tiny_vp(name='ncsnpp', size=8, batch=4, steps=4, continuous=True, **kw):
    """score_sde's VP recipe (configs/defaults.vp: beta 0.1 .. 20, N = 1000, centred data, reduce_mean, positional
    embedding) on DDPM++ ('ncsnpp', nf 8) or DDPM ('ddpm', nf 32: its GroupNorm has 32 groups), two resolutions, one
    block each, 1-channel images."""
    c = defaults.vp(name, continuous)
    m = c.model
    m.nf, m.ch_mult, m.num_res_blocks, m.attn_resolutions = (8 if name == 'ncsnpp' else 32), (1, 2), 1, (size // 2,)
    c.data.image_size, c.data.num_channels, c.data.dataset, c.data.random_flip = size, 1, 'test', False
    c.optim.warmup = 2
    return _training(c, batch, steps, **kw)
