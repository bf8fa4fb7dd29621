"""The noise processes of score_sde: the variance-exploding SDE (NCSN++; continuous sigma(t) and its discrete grid)
and the variance-preserving SDE (DDPM / DDPM++; continuous beta(t) and the discrete DDPM chain).

A model family is a noise process plus a network (``models/score.py``), so the processes sit here, below the samplers
that step along them (``sampling/sde.py`` picks one from a config).  Every process exposes the noise level of
time t in VE terms, ``sigma(t)``: for VP, x_t = sqrt(alpha_bar(t)) (x_0 + sigma(t) n) with
sigma(t) = sqrt(1 / alpha_bar(t) - 1) (EDM's view of VP), so a VE-form score ``score(y, sigma)`` and a VP-time score
are one seam (:meth:`VPSDE.score`)."""
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


class VPSDE:
    """dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw, t in [0, 1], beta(t) = beta_min + t (beta_max - beta_min)
    (score_sde ``VPSDE``; Ho et al.'s DDPM chain is its discretisation).

    Continuous marginal: x_t = exp(m(t)) x_0 + std(t) n, m(t) = -1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min,
    std(t) = sqrt(1 - exp(2 m(t))); alpha_bar(t) = exp(2 m(t)).  The prior is N(0, I).

    Discrete chain of ``N`` steps (official, float32): betas = linspace(beta_min / N, beta_max / N, N), alphas =
    1 - betas, alphas_cumprod = cumprod(alphas), sqrt_1m_alphas_cumprod = sqrt(1 - alphas_cumprod); time t sits at
    index j = long(t (N - 1)).  For N < beta_max the top betas exceed 1 and the official discrete updates give NaN
    (see :meth:`check_discrete`)."""
    T = 1.
    kind = 'vp'

    def __init__(self, beta_min=0.1, beta_max=20., N=1000):
        self.beta_0, self.beta_1, self.N = float(beta_min), float(beta_max), int(N)
        self.discrete_betas = torch.linspace(self.beta_0 / self.N, self.beta_1 / self.N, self.N)
        self.alphas = 1. - self.discrete_betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.sqrt_alphas_cumprod = torch.sqrt(self.alphas_cumprod)
        self.sqrt_1m_alphas_cumprod = torch.sqrt(1. - self.alphas_cumprod)

    # --- continuous time ---------------------------------------------------------------------------------------
    def beta(self, t):
        return self.beta_0 + t * (self.beta_1 - self.beta_0)

    def diffusion(self, t):
        """g(t) = sqrt(beta(t))."""
        return torch.sqrt(self.beta(t))

    def drift(self, x, t):
        """f(x, t) = -1/2 beta(t) x."""
        return -0.5 * self.beta(t)[:, None, None, None] * x

    def log_mean_coeff(self, t):
        """m(t) = log sqrt(alpha_bar(t)) (official float32 order)."""
        return -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0

    def alpha_bar(self, t):
        return torch.exp(2. * self.log_mean_coeff(t))

    def marginal_std(self, t):
        """std(t) = sqrt(1 - exp(2 m(t))), as the official ``marginal_prob`` (no expm1, float32 for float32 t).

        The one change: exp is taken in float64 and rounded to t's dtype, i.e. correctly rounded.  At small t,
        1 - exp(2 m) cancels, so one ulp of exp moves std by ~2e-4 relative, and CPU vector exps differ by an ulp
        on hard-to-round inputs (t = 0.0012: 0.99986565 here, 0.99986571 on the machine that made the official
        fixtures).  Correct rounding gives one answer on every machine, the one the fixtures hold."""
        t = torch.as_tensor(t)
        e = torch.exp(2. * self.log_mean_coeff(t).double()).to(t.dtype)
        return torch.sqrt(1. - e)

    def sigma(self, t):
        """The VE-equivalent noise level sigma(t) = sqrt(1 / alpha_bar(t) - 1) = std(t) / sqrt(alpha_bar(t))."""
        return torch.sqrt(torch.expm1(-2. * self.log_mean_coeff(t)))

    def t_of_sigma(self, sigma):
        """The inverse of :meth:`sigma`: the root of beta_min t + (beta_max - beta_min) t^2 / 2 = log(1 + sigma^2)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        d = self.beta_1 - self.beta_0
        return (torch.sqrt(self.beta_0 ** 2 + 2. * d * torch.log1p(sigma ** 2)) - self.beta_0) / d

    @property
    def sigma_max(self):
        return float(self.sigma(torch.tensor(self.T, dtype=torch.float64)))

    def prior(self, z):
        """x_T ~ N(0, I): the draw itself, unscaled."""
        return z

    # --- the discrete chain ------------------------------------------------------------------------------------
    def index(self, t):
        """j = long(t (N - 1) / T), the discrete step of time t (official truncation)."""
        return (t * (self.N - 1) / self.T).long()

    def check_discrete(self):
        """The discrete updates (Langevin alpha, reverse-diffusion and ancestral steps) need every beta < 1."""
        if float(self.discrete_betas.max()) >= 1.:
            raise ValueError(f'the VP SDE with N = {self.N} steps has discrete betas up to beta_max / N = '
                             f'{self.beta_1 / self.N:.3g} >= 1, where the official discrete VP updates take square '
                             f'roots of negative numbers (all-NaN samples); expected N > beta_max = {self.beta_1:g}')

    def level_sigmas(self):
        """The chain's levels in the VE view, sigma_j = sqrt(1 / alpha_bar_j - 1), ascending in j (float64 from the
        float32 alphas_cumprod)."""
        return torch.sqrt(1. / self.alphas_cumprod.double() - 1.)

    def discretize(self, x, t):
        """The chain's step as an SDE step (official ``VPSDE.discretize``): f = sqrt(alpha_j) x - x,
        G = sqrt(beta_j)."""
        j = self.index(t)
        beta, alpha = self.discrete_betas.to(x.device)[j], self.alphas.to(x.device)[j]
        return torch.sqrt(alpha)[:, None, None, None] * x - x, torch.sqrt(beta)

    # --- the score ---------------------------------------------------------------------------------------------
    def score(self, score, x, t):
        """grad_x log p_t(x) from ``score``: a VP model's own time conditioning (``score.vp_score``: the official
        labels and std, :class:`models.score.ScoreModel`), else any VE-form ``score(y, sigma)`` through
        x = sqrt(alpha_bar) y: grad log p_t(x) = score(x / sqrt(alpha_bar(t)), sigma(t)) / sqrt(alpha_bar(t))."""
        native = getattr(score, 'vp_score', None)
        if native is not None and getattr(score, 'process', None) == 'vpsde':
            return native(x, t, self)
        scale = torch.exp(self.log_mean_coeff(t.double())).to(x.dtype)[:, None, None, None]
        return score(x / scale, self.sigma(t.double()).to(x.dtype)) / scale


class VPTimeChain:
    """The N-step DDPM chain of a *continuous-time* VP model: the SDE's own marginals at the times t_j = (j + 1) / N,
    j = 0 .. N - 1, alpha_bar_j = alpha_bar(t_j) (float64), so its top level is t = 1 (sigma(1), the prior) and its
    lowest t = 1 / N (1e-3 at N = 1000, score_sde's VP sampling eps).

    Why not the discrete chain of :class:`VPSDE`: its alpha_bar_{N-1} = 4.04e-5 (sigma 157.4 at N = 1000) lies beyond
    the continuous alpha_bar(1) = 4.32e-5 (sigma 152.2), the top of what a continuous model was trained on, so its top
    four levels are outside the model.  (The official code has no DDPM / DDIM sampler for continuous models; its
    ancestral *predictor* mixes the discrete betas with the score at t, sampling/pc.py.)  DDPM / DDIM on this chain
    are the same updates, with beta_j = 1 - alpha_bar_j / alpha_bar_{j-1} (sampling/ddpm.py)."""
    kind = 'vp'

    def __init__(self, sde):
        self.N = sde.N
        t = torch.arange(1, self.N + 1, dtype=torch.float64) / self.N
        self.alphas_cumprod = sde.alpha_bar(t)

    def level_sigmas(self):
        """sigma_j = sqrt(1 / alpha_bar_j - 1), ascending in j: sigma(t_j) of the continuous SDE."""
        return torch.sqrt(1. / self.alphas_cumprod - 1.)


PROCESSES = {'vesde': 'VE (score_sde VESDE)', 'vpsde': 'VP (score_sde VPSDE / DDPM)'}
