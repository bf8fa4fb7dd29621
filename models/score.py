"""One score interface for every model family: ``score(x, sigma) -> grad_x log p_sigma(x)``.

A model family is a noise process plus a network.  VE models (``training.sde = 'vesde'``): the official networks
condition differently -- NCSN / NCSNv2 / discrete NCSN++ take an integer noise-level index into their geometric
schedule, continuous NCSN++ takes sigma itself -- and their outputs are all scores already (NCSN v1 is trained to
output the score, NCSNv2 and NCSN++ divide by sigma inside).  VP models (``training.sde = 'vpsde'``: DDPM, DDPM++)
output the noise prediction; their score is -output / std(t) (:meth:`ScoreModel.vp_score`, the official VP score
functions), and ``score(y, sigma)`` is the same model seen in EDM's way, y = x / sqrt(alpha_bar).
:class:`ScoreModel` hides the difference; samplers only ever see ``score`` (VP samplers through
``models.sde.VPSDE.score``, which uses the model's own time labels when it has them).
"""
import math

import numpy as np
import torch
from torch import nn


def geometric_sigmas(sigma_max, sigma_min, num_scales):
    """Descending geometric schedule sigma_max -> sigma_min, float64 NumPy (official ``get_sigmas``)."""
    return np.exp(np.linspace(np.log(sigma_max), np.log(sigma_min), num_scales))


def denoise(score, x, sigma):
    """The denoiser view of a score: D(x; sigma) = x + sigma^2 score(x, sigma), Tweedie's E[x_0 | x] for VE noise
    (EDM Eq. 3); the final noise-removal step of the VE samplers and the data prediction of DPM-Solver++."""
    return x + sigma ** 2 * score(x, sigma)


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

    VP models (``process = 'vpsde'``): ``score(y, sigma)`` is EDM's view (:meth:`_vp_as_ve`), and
    :meth:`vp_score` ``(x, t, sde)`` the official VP score at time t, which the VP samplers use.
    """

    def __init__(self, net, config):
        super().__init__()
        self.net = net
        self.family = config.model.family
        self.process = config.training.get('sde', 'vesde') if 'training' in config else 'vesde'
        if self.process == 'vpsde':
            from models.sde import VPSDE
            m = config.model
            self.vp = VPSDE(m.beta_min, m.beta_max, m.num_scales)        # the training chain (N = num_scales)
            self.vp_continuous = bool(config.training.continuous)
            # the discrete chain's levels sigma_j = sqrt(1 / alpha_bar_j - 1), ascending in j (float64)
            self.vp_sigmas = self.vp.level_sigmas().numpy()
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
        # --precision bf16 (models/speed.py): the network runs under autocast in this dtype, its output cast back to
        # float32; None (the default) calls the network exactly as before.  --bf16_min_sigma: calls whose smallest
        # noise level is below autocast_min_sigma run in float32 (0: autocast at every level)
        self.autocast_dtype = None
        self.autocast_min_sigma = 0.

    def sigma_to_index(self, sigma):
        """Noise level(s) -> nearest level index on the geometric grid (0 = sigma_max)."""
        span = math.log(self.sigma_max) - math.log(self.sigma_min)
        pos = (math.log(self.sigma_max) - torch.log(sigma.double())) / span * (self.num_scales - 1)
        return torch.round(pos).long().clamp_(0, self.num_scales - 1)

    def forward(self, x, sigma=None, labels=None):
        if self.process == 'vpsde':
            return self._vp_as_ve(x, sigma, labels)
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
            sigma = _per_sample(sigma, batch, device, torch.float32)
            return self._net(x, sigma, lambda: float(sigma.min()))
        if labels is None:
            labels = self.sigma_to_index(_per_sample(sigma, batch, device, torch.float64))
        return self._net(x, labels, lambda: float(self.sigmas[int(labels.max())]))

    score = forward

    def _net(self, x, labels, level=None):
        """The network's output (float32 under ``autocast_dtype``; the plain call without it).  ``level()``: the
        call's smallest noise level, asked only when ``autocast_min_sigma`` is set (it reads a device value)."""
        if self.autocast_dtype is None or (self.autocast_min_sigma > 0 and level is not None and
                                           level() < self.autocast_min_sigma):
            return self.net(x, labels)
        # no cast cache: the same numbers, and nothing kept between calls that a captured CUDA graph could hold on to
        with torch.autocast(x.device.type, dtype=self.autocast_dtype, cache_enabled=False):
            out = self.net(x, labels)
        return out.float()

    def vp_score(self, x, t, sde):
        """The official VP score at times ``t`` (B,) of the sampler's VP SDE ``sde`` (score_sde ``get_score_fn``):
        continuous models get labels 999 t and std(t) = sqrt(1 - exp(2 m(t))); discrete models get labels t (N - 1)
        with the **sampler's** N, unrounded, and std = sqrt(1 - alphas_cumprod)[long(label)] of the sampler's N-step
        table.  Score = -net(x, labels) / std."""
        if self.process != 'vpsde':
            raise ValueError(f'vp_score: this is a {self.process} model; VE models are called as score(x, sigma)')
        return vp_time_score(lambda y, labels: self._net(y, labels, lambda: float(sde.sigma(t).min())), x, t, sde,
                             self.vp_continuous)

    def vp_label(self, sigma):
        """The network label of the VE-equivalent level sigma (B,) float64: continuous models 999 t(sigma) (EDM's
        c_noise = (M - 1) t); discrete models the fractional chain index j where sigma_j = sigma (log-linear between
        the trained integer levels, exactly j on them, as EDM's iDDPM wrapper)."""
        top = self.vp.sigma_max if self.vp_continuous else float(self.vp_sigmas[-1])
        if float(sigma.max()) > top * (1 + 1e-6) or float(sigma.min()) <= 0:
            raise ValueError(f'sigma = {float(sigma.max()):.4g}: this VP model covers 0 < sigma <= {top:.4g} (its '
                             f'largest level; beta_min {self.vp.beta_0:g}, beta_max {self.vp.beta_1:g})')
        if self.vp_continuous:
            return 999. * self.vp.t_of_sigma(sigma).clamp(max=1.)
        return chain_label(sigma, self.vp_sigmas)

    def _vp_as_ve(self, y, sigma, labels):
        """A VP model as a VE-form score (EDM's VP): y = x / sqrt(alpha_bar), sigma^2 = 1 / alpha_bar - 1, so
        score(y, sigma) = sqrt(alpha_bar) grad log p_t(x) = -net(y / sqrt(1 + sigma^2), label(sigma)) / sigma."""
        if labels is not None or sigma is None:
            raise ValueError('a VP model is called as score(x, sigma) (EDM\'s sigma = sqrt(1 / alpha_bar - 1)) or '
                             'through its time labels (vp_score); integer noise-level labels are a VE convention')
        sigma = _per_sample(sigma, y.shape[0], y.device, torch.float64)
        labels = self.vp_label(sigma).to(torch.float32)
        x = (y.double() / torch.sqrt(1 + sigma ** 2)[:, None, None, None]).to(y.dtype)
        out = self._net(x, labels, lambda: float(sigma.min()))
        return -out / sigma.to(out.dtype)[:, None, None, None]


def vp_time_score(net, x, t, sde, continuous):
    """The official VP score convention (score_sde ``get_score_fn`` for a VPSDE), one place for sampling
    (:meth:`ScoreModel.vp_score`) and training (``training/losses.py``): the network ``net(x, labels)`` predicts the
    noise, and score = -net(x, labels) / std with, at times ``t`` (B,) of the VP SDE ``sde``,

    * continuous models: labels 999 t (float, whatever N), std(t) = sqrt(1 - exp(2 m(t)));
    * discrete models: labels t (N - 1) with ``sde``'s N, unrounded, std = sqrt(1 - alphas_cumprod)[long(label)] of
      ``sde``'s N-step table."""
    if continuous:
        labels, std = t * 999, sde.marginal_std(t)
    else:
        labels = t * (sde.N - 1)
        std = sde.sqrt_1m_alphas_cumprod.to(t.device)[labels.long()]
    return -net(x, labels) / std[:, None, None, None]


def chain_label(sigma, level_sigmas):
    """The fractional index j of the level ``sigma`` (B,) on a chain whose levels ``level_sigmas`` (ascending in j,
    float64 NumPy) are sqrt(1 / alpha_bar_j - 1): log-linear between the integer levels and exactly j on them."""
    index = np.interp(np.log(sigma.detach().double().cpu().numpy()), np.log(level_sigmas),
                      np.arange(len(level_sigmas)))
    return torch.as_tensor(index, device=sigma.device)


def _per_sample(value, batch, device, dtype):
    value = torch.as_tensor(value, device=device, dtype=dtype)
    return value.expand(batch) if value.dim() == 0 else value
