"""Your own network as the one score interface ``score(y, sigma)`` that every sampler and PDS take (docs/usage.md,
"PDS on your own model").  Two adapters cover the usual parametrisations:

* :class:`EpsScore`: a DDPM-style noise predictor ``net(x_t, t) -> eps`` on a discrete chain of ``alphas_cumprod``
  (Ho et al.; the score_sde ``ddpm`` models, DDPM++, diffusers' ``UNet2DModel`` with its scheduler's
  ``alphas_cumprod``).  It is seen in EDM's VE way: y = x / sqrt(alpha_bar), sigma^2 = 1 / alpha_bar - 1, so

      score(y, sigma) = sqrt(alpha_bar) grad_x log p_t(x) = -eps(y / sqrt(1 + sigma^2), t(sigma)) / sigma,

  with t(sigma) the chain index whose level is sigma (fractional between the trained levels, log-linear in sigma, as
  EDM's iDDPM wrapper; ``round_labels=True`` for a network that takes integers only).  The VP samplers (DDPM
  ancestral, DDIM, VP PC, PF-ODE) call it at the chain's own levels, where t(sigma) is the integer index.
* :class:`DenoiserScore`: an EDM-style denoiser ``D(y, sigma) -> E[y_0 | y]`` (EDM's preconditioned networks,
  k-diffusion's denoisers), score = (D(y, sigma) - y) / sigma^2 (Tweedie).

A VE network that already returns the score (``net(y, sigma)``) needs no adapter.  The config names the noise
process (``model.sigma_min`` / ``sigma_max`` for VE, ``training.sde = 'vpsde'`` with ``model.beta_min`` / ``beta_max``
/ ``num_scales`` for the VP samplers) and the sampler and PDS settings, as for the shipped models.
"""
import torch

from models.score import _per_sample, chain_label


class EpsScore:
    """A noise-prediction network on a discrete chain as ``score(y, sigma)`` (module docstring).

    ``net(x, t)``: x (B, C, H, W) the noisy image x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t (B,) the
    chain index (float32; int64 with ``round_labels``); returns eps.  ``alphas_cumprod``: alpha_bar_0 .. alpha_bar_{N-1},
    decreasing (e.g. ``torch.cumprod(1 - betas, 0)``).  Levels beyond the chain's ends are refused (the network was
    not trained there)."""

    def __init__(self, net, alphas_cumprod, round_labels=False):
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten().cpu()
        if abar.numel() < 2 or not bool(((abar > 0) & (abar < 1)).all()) or not bool((abar[1:] < abar[:-1]).all()):
            raise ValueError('alphas_cumprod: expected a strictly decreasing sequence in (0, 1) of at least 2 levels '
                             '(alpha_bar_0 .. alpha_bar_{N-1}, e.g. torch.cumprod(1 - betas, 0))')
        self.net, self.round_labels = net, bool(round_labels)
        self.level_sigmas = torch.sqrt(1. / abar - 1.).numpy()            # ascending in t
        self.sigma_min, self.sigma_max = float(self.level_sigmas[0]), float(self.level_sigmas[-1])

    def __call__(self, y, sigma):
        sigma = _per_sample(sigma, y.shape[0], y.device, torch.float64)
        lo, hi = float(sigma.min()), float(sigma.max())
        if lo < self.sigma_min * (1 - 1e-5) or hi > self.sigma_max * (1 + 1e-5):
            raise ValueError(f'sigma in [{lo:.4g}, {hi:.4g}]: this chain covers [{self.sigma_min:.4g}, '
                             f'{self.sigma_max:.4g}] (its first and last levels); expected model.sigma_min / '
                             'sigma_max (or the VP chain of the config) within them')
        t = chain_label(sigma, self.level_sigmas)
        t = t.round().long() if self.round_labels else t.float()
        x = (y.double() / torch.sqrt(1. + sigma ** 2).view(-1, *[1] * (y.dim() - 1))).to(y.dtype)
        eps = self.net(x, t)
        return -eps / sigma.to(eps.dtype).view(-1, *[1] * (y.dim() - 1))


class DenoiserScore:
    """An EDM-style denoiser ``D(y, sigma) -> E[y_0 | y]`` (sigma (B,) float32) as ``score(y, sigma)`` =
    (D(y, sigma) - y) / sigma^2."""

    def __init__(self, denoiser):
        self.denoiser = denoiser

    def __call__(self, y, sigma):
        sigma = _per_sample(sigma, y.shape[0], y.device, y.dtype)
        s = sigma.view(-1, *[1] * (y.dim() - 1))
        return (self.denoiser(y, sigma) - y) / s ** 2
