"""One score interface for every model family: ``score(x, sigma) -> grad_x log p_sigma(x)``.

The official networks condition differently: NCSN / NCSNv2 / discrete NCSN++ take an integer
noise-level index into their geometric schedule, continuous NCSN++ takes sigma itself.  Their
outputs are all scores already (NCSN v1 is trained to output the score, NCSNv2 and NCSN++ divide
by sigma inside).  :class:`ScoreModel` hides the difference; samplers only ever see ``score``.
"""
import math

import numpy as np
import torch
from torch import nn


def geometric_sigmas(sigma_max, sigma_min, num_scales):
    """Descending geometric schedule sigma_max -> sigma_min, float64 NumPy (official ``get_sigmas``)."""
    return np.exp(np.linspace(np.log(sigma_max), np.log(sigma_min), num_scales))


def sigma_buffer(config):
    """The networks' float32 ``sigmas`` buffer (official: the float64 schedule cast to float32)."""
    m = config.model
    return torch.tensor(geometric_sigmas(m.sigma_max, m.sigma_min, m.num_scales), dtype=torch.float32)


class ScoreModel(nn.Module):
    """Wraps a raw network (see ``models.create_model``) as ``score(x, sigma, labels=None)``.

    ``sigma`` is a float, a 0-d tensor, or one value per sample ``(B,)``.  Index-conditioned
    networks get ``labels = round((log sigma_max - log sigma) / (log sigma_max - log sigma_min) * (L - 1))``,
    which is exactly the official VE sampler's ``round((1 - t) (N - 1))`` for sigma = sigma(t) and
    returns the level itself for any sigma on the training grid.  ``labels`` can be given directly.
    """

    def __init__(self, net, config):
        super().__init__()
        self.net = net
        self.family = config.model.family
        self.continuous = self.family == 'ncsnpp' and config.model.get('embedding_type', 'fourier') == 'fourier'
        self.sigma_max = float(config.model.sigma_max)
        self.sigma_min = float(config.model.sigma_min)
        self.num_scales = int(config.model.num_scales)
        self.sigmas = geometric_sigmas(self.sigma_max, self.sigma_min, self.num_scales)  # float64, descending
        # Channels-last where it measures faster: the RefineNets on the CPU (benchmarks/cpu_speed.py, ~1.1-1.2x).
        on_cpu = all(p.device.type == 'cpu' for p in net.parameters())
        self.channels_last = on_cpu and self.family in ('ncsn', 'ncsnv2')
        if self.channels_last:
            net.to(memory_format=torch.channels_last)

    def sigma_to_index(self, sigma):
        """Noise level(s) -> nearest level index on the geometric grid (0 = sigma_max)."""
        span = math.log(self.sigma_max) - math.log(self.sigma_min)
        pos = (math.log(self.sigma_max) - torch.log(sigma.double())) / span * (self.num_scales - 1)
        return torch.round(pos).long().clamp_(0, self.num_scales - 1)

    def forward(self, x, sigma=None, labels=None):
        batch, device = x.shape[0], x.device
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if labels is None and sigma is None:
            raise ValueError('score(x, sigma): give sigma (or labels)')
        if labels is not None:
            labels = _per_sample(labels, batch, device, torch.long)
            if self.continuous:
                sigma = torch.as_tensor(self.sigmas, dtype=torch.float32, device=device)[labels]
        if self.continuous:
            return self.net(x, _per_sample(sigma, batch, device, torch.float32))
        if labels is None:
            labels = self.sigma_to_index(_per_sample(sigma, batch, device, torch.float64))
        return self.net(x, labels)

    score = forward


def _per_sample(value, batch, device, dtype):
    value = torch.as_tensor(value, device=device, dtype=dtype)
    return value.expand(batch) if value.dim() == 0 else value
