"""The variance-exploding SDE of score_sde (NCSN++), continuous sigma(t) and its discrete grid."""
import numpy as np
import torch


class VESDE:
    """dx = sigma(t) sqrt(2 log(sigma_max / sigma_min)) dw, t in [0, 1], sigma(t) = sigma_min (sigma_max / sigma_min)^t.

    ``N`` discretisation steps; ``discrete_sigmas`` is the ascending float32 grid the reverse-diffusion
    and ancestral predictors step along (official ``VESDE.discrete_sigmas``)."""
    T = 1.

    def __init__(self, sigma_min=0.01, sigma_max=50., N=1000):
        self.sigma_min, self.sigma_max, self.N = float(sigma_min), float(sigma_max), int(N)
        self.discrete_sigmas = torch.exp(torch.linspace(np.log(self.sigma_min), np.log(self.sigma_max), self.N))

    def sigma(self, t):
        """Marginal std sigma(t) (the noise level the score model is evaluated at)."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def diffusion(self, t):
        """g(t) = sigma(t) sqrt(2 (log sigma_max - log sigma_min))."""
        return self.sigma(t) * torch.sqrt(torch.tensor(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)),
                                                       device=t.device))

    def grid(self, t):
        """(sigma_j, sigma_{j-1}) of the discrete grid at time t, j = floor(t (N - 1)), sigma_{-1} = 0."""
        j = (t * (self.N - 1) / self.T).long()
        sigmas = self.discrete_sigmas.to(t.device)
        return sigmas[j], torch.where(j == 0, torch.zeros_like(t), sigmas[(j - 1).clamp(min=0)])


def from_config(config):
    """The VE SDE of a config: N = sampling.num_steps if set, else the PDS command line's
    N = int(num_scales / speed_up)."""
    if config.training.sde != 'vesde':
        raise ValueError(f"only the VE SDE is supported (training.sde = 'vesde'), got {config.training.sde!r}")
    speed_up = float(config.sampling.get('speed_up', 1.))
    n = int(config.sampling.get('num_steps', 0)) or int(config.model.num_scales / speed_up)
    if n < 1:
        raise ValueError(f'speed_up {speed_up} leaves no step of the {config.model.num_scales} scales')
    return VESDE(config.model.sigma_min, config.model.sigma_max, n)


def sampling_eps(config):
    """Smallest sampling time: sampling.eps * speed_up (official PDS: 1e-5 * speed_up for VE)."""
    return config.sampling.eps * float(config.sampling.get('speed_up', 1.))
