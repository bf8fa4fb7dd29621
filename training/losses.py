"""The official training objectives (denoising score matching), one short function each.

Every function takes the network, a clean batch ``x`` (already dequantised / flipped / centred) and the
random draws it needs (noise levels and the Gaussian ``z``).  Each draw is optional: when it is None it is
drawn from ``generator`` (so a test can pass exact values and the training loop can draw the randomness of
a whole global batch once and hand every process its slice).  Each returns :class:`LossOut`:

* ``loss``: the scalar that is minimised (the mean of ``losses`` over the batch, as officially);
* ``losses``: the per-sample losses ``(B,)``;
* ``sigma``: each sample's noise level ``(B,)``, used by the training loop to log the loss per noise-level
  bucket.  VP objectives report the VE-equivalent level sigma = sqrt(1 / alpha_bar - 1) (EDM's view of VP, the
  one the samplers use), so every family logs in one sigma view (:func:`noise_range`).

Sources (behaviour, not code): ermongroup/ncsnv2 ``losses/dsm.py::anneal_dsm_score_estimation`` (identical
maths in ermongroup/ncsn); yang-song/score_sde_pytorch ``losses.py::get_sde_loss_fn`` (VE and VP SDE),
``get_smld_loss_fn`` and ``get_ddpm_loss_fn``.
"""
import math
from typing import NamedTuple

import torch

from models.score import sigma_buffer, vp_time_score
from models.sde import VPSDE

SDE_EPS = 1e-5     # score_sde get_sde_loss_fn: t ~ U(eps, 1)


class LossOut(NamedTuple):
    loss: torch.Tensor      # scalar, mean of ``losses``
    losses: torch.Tensor    # (B,) per-sample
    sigma: torch.Tensor     # (B,) noise level of each sample


def _bcast(v, x):
    """(B,) -> (B, 1, 1, 1) for broadcasting against an image batch."""
    return v.view(-1, *([1] * (x.dim() - 1)))


def _reduce(sq, reduce_mean):
    """score_sde ``reduce_op`` over the pixels of each sample: mean, or 0.5 * sum."""
    sq = sq.reshape(sq.shape[0], -1)
    return sq.mean(dim=1) if reduce_mean else 0.5 * sq.sum(dim=1)


def _randn_like(x, generator):
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def anneal_dsm_loss(net, x, sigmas, anneal_power=2., labels=None, z=None, generator=None):
    """NCSN / NCSNv2 annealed DSM (ncsnv2 ``anneal_dsm_score_estimation``).

    labels ~ U{0..L-1}; sigma = sigmas[labels] (descending); x~ = x + sigma z; target = -(x~ - x) / sigma^2;
    per-sample loss = 0.5 * sum_pixels (net(x~, labels) - target)^2 * sigma^anneal_power.
    The network output is the score (v1 raw output; v2 divides by sigma inside).
    """
    num_levels = sigmas.shape[0]
    if labels is None:
        labels = torch.randint(0, num_levels, (x.shape[0],), generator=generator, device=x.device)
    z = _randn_like(x, generator) if z is None else z
    sigma = _bcast(sigmas[labels].to(x.dtype), x)
    noise = sigma * z
    score = net(x + noise, labels).float()
    target = -noise / sigma ** 2
    losses = 0.5 * (score - target).square().reshape(x.shape[0], -1).sum(dim=1) * sigma.flatten() ** anneal_power
    return LossOut(losses.mean(), losses, sigma.flatten())


def ve_sde_loss(net, x, sigma_min, sigma_max, reduce_mean=False, likelihood_weighting=False, eps=SDE_EPS,
                t=None, z=None, generator=None):
    """score_sde continuous VE SDE loss (``get_sde_loss_fn``, VESDE, continuous=True).

    t ~ U(eps, 1); sigma = sigma_min (sigma_max / sigma_min)^t; x~ = x + sigma z; score = net(x~, sigma).
    Unweighted: losses = reduce((score sigma + z)^2).
    likelihood_weighting: losses = reduce((score + z / sigma)^2) * g(t)^2, g^2 = sigma^2 * 2 log(sigma_max / sigma_min).
    reduce = mean over pixels if reduce_mean, else 0.5 * sum (the official ``reduce_op``).
    """
    if t is None:
        t = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) * (1. - eps) + eps
    z = _randn_like(x, generator) if z is None else z
    sigma = sigma_min * (sigma_max / sigma_min) ** t                 # VESDE.marginal_prob std
    s = _bcast(sigma, x)
    score = net(x + s * z, sigma).float()
    if likelihood_weighting:
        g2 = sigma ** 2 * (2. * math.log(sigma_max / sigma_min))      # VESDE.sde diffusion^2
        losses = _reduce((score + z / s).square(), reduce_mean) * g2
    else:
        losses = _reduce((score * s + z).square(), reduce_mean)
    return LossOut(losses.mean(), losses, sigma)


def smld_sigmas(sigma_min, sigma_max, num_scales, device=None):
    """score_sde ``get_smld_loss_fn`` schedule: ``flip(VESDE.discrete_sigmas)``, float32, descending."""
    ascending = torch.exp(torch.linspace(math.log(sigma_min), math.log(sigma_max), num_scales, device=device))
    return torch.flip(ascending, dims=(0,))


def smld_loss(net, x, sigmas, reduce_mean=False, labels=None, z=None, generator=None):
    """score_sde discrete SMLD loss (``get_smld_loss_fn``), for positional NCSN++.

    labels ~ U{0..N-1}; sigma = sigmas[labels] (descending); x~ = x + sigma z; target = -(x~ - x) / sigma^2;
    losses = reduce((net(x~, labels) - target)^2) * sigma^2, reduce = mean or 0.5 * sum over pixels.
    """
    num_levels = sigmas.shape[0]
    if labels is None:
        labels = torch.randint(0, num_levels, (x.shape[0],), generator=generator, device=x.device)
    z = _randn_like(x, generator) if z is None else z
    sigma = sigmas[labels].to(x.dtype)
    s = _bcast(sigma, x)
    noise = s * z
    score = net(x + noise, labels).float()
    target = -noise / s ** 2
    losses = _reduce((score - target).square(), reduce_mean) * sigma ** 2
    return LossOut(losses.mean(), losses, sigma)


def vp_sde_loss(net, x, sde, reduce_mean=True, likelihood_weighting=False, eps=SDE_EPS, t=None, z=None,
                generator=None):
    """score_sde continuous VP SDE loss (``get_sde_loss_fn``, VPSDE, continuous=True).

    t ~ U(eps, 1); x_t = sqrt(alpha_bar(t)) x + std(t) z with sqrt(alpha_bar) = exp(m(t)), std = sqrt(1 - exp(2 m));
    score = -net(x_t, 999 t) / std(t) (the official VP convention, :func:`models.score.vp_time_score`).
    Unweighted: losses = reduce((score std + z)^2) (= reduce((z - net)^2): noise prediction).
    likelihood_weighting: losses = reduce((score + z / std)^2) * g(t)^2, g^2 = beta(t).
    ``sigma`` in the result: the VE-equivalent level sqrt(1 / alpha_bar(t) - 1).
    """
    if t is None:
        t = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) * (1. - eps) + eps
    z = _randn_like(x, generator) if z is None else z
    std = _bcast(sde.marginal_std(t), x)                              # VPSDE.marginal_prob
    x_t = _bcast(torch.exp(sde.log_mean_coeff(t)), x) * x + std * z
    score = vp_time_score(net, x_t, t, sde, continuous=True).float()
    if likelihood_weighting:
        losses = _reduce((score + z / std).square(), reduce_mean) * sde.diffusion(t) ** 2
    else:
        losses = _reduce((score * std + z).square(), reduce_mean)
    return LossOut(losses.mean(), losses, sde.sigma(t))


def ddpm_loss(net, x, sde, reduce_mean=True, labels=None, z=None, generator=None):
    """score_sde discrete DDPM loss (``get_ddpm_loss_fn``; Ho et al.'s L_simple with reduce_mean).

    labels ~ U{0..N-1} of the N-step chain ``sde``; x_j = sqrt(alpha_bar_j) x + sqrt(1 - alpha_bar_j) z;
    losses = reduce((net(x_j, j) - z)^2): the network predicts the noise (its score is -net / sqrt(1 - alpha_bar_j),
    the discrete VP convention).  ``sigma`` in the result: the level sigma_j = sqrt(1 / alpha_bar_j - 1).
    """
    if labels is None:
        labels = torch.randint(0, sde.N, (x.shape[0],), generator=generator, device=x.device)
    z = _randn_like(x, generator) if z is None else z
    mean = sde.sqrt_alphas_cumprod.to(x.device)[labels]
    std = sde.sqrt_1m_alphas_cumprod.to(x.device)[labels]
    out = net(_bcast(mean, x) * x + _bcast(std, x) * z, labels).float()
    losses = _reduce((out - z).square(), reduce_mean)
    return LossOut(losses.mean(), losses, sde.level_sigmas().to(x.device)[labels].to(x.dtype))


def _training_process(config):
    """(training.sde, whether the draws are continuous times t): one ValueError line for a family or a combination
    that does not train.  VE: NCSN / NCSNv2 discrete only; NCSN++ continuous with the Fourier (sigma) embedding,
    discrete (SMLD) with the positional one.  VP: DDPM and NCSN++ (DDPM++), continuous (labels 999 t) or discrete
    (the DDPM chain, integer labels; not with the Fourier embedding, which takes log(label) and label 0 exists)."""
    m, tr = config.model, config.training
    family, continuous, sde = m.family, bool(tr.continuous), tr.get('sde', 'vesde')
    embedding = m.get('embedding_type', 'fourier')
    if sde not in ('vesde', 'vpsde'):
        raise ValueError(f"training.sde = {sde!r} is not supported; expected 'vesde' or 'vpsde'")
    if family not in ('ncsn', 'ncsnv2', 'ncsnpp', 'ddpm'):
        raise ValueError(f'unknown model.family {family!r}; expected ncsn, ncsnv2, ncsnpp or ddpm')
    if sde == 'vesde':
        if family == 'ddpm':
            raise ValueError("model.family='ddpm' (the DDPM network, a noise predictor) trains on the VP SDE here; "
                             "set training.sde='vpsde'")
        if family in ('ncsn', 'ncsnv2'):
            if continuous:
                raise ValueError(f'model.family={family!r} trains with the discrete annealed DSM loss; '
                                 'set training.continuous=False')
        elif continuous != (embedding == 'fourier'):
            raise ValueError(f'training.continuous={continuous} does not fit model.embedding_type={embedding!r}: '
                             'continuous training needs the Fourier embedding (sigma input), discrete SMLD training '
                             'the positional one (level input)')
        return sde, continuous
    if family in ('ncsn', 'ncsnv2'):
        raise ValueError(f"model.family={family!r} is a VE network (it outputs the score at a sigma level); "
                         "training.sde='vpsde' trains 'ddpm' or 'ncsnpp' (DDPM++) noise predictors")
    if continuous and family == 'ncsnpp' and embedding == 'positional' and int(m.num_scales) < 1000:
        raise ValueError(f'training.continuous=True on the VP SDE feeds labels 999 t up to 999, which index the '
                         f'positional NCSN++\'s model.num_scales = {m.num_scales} entry sigmas buffer (score_sde\'s '
                         'layout); expected model.num_scales >= 1000')
    if not continuous:
        if tr.likelihood_weighting:
            raise ValueError('training.likelihood_weighting=True needs the continuous VP SDE loss; the discrete DDPM '
                             'loss has no likelihood weighting (set training.continuous=True or turn it off)')
        if family == 'ncsnpp' and embedding == 'fourier':
            raise ValueError("training.continuous=False on the VP SDE feeds the integer chain index 0..N-1, which "
                             "model.embedding_type='fourier' cannot take (it embeds log(label)); use the "
                             "'positional' embedding (DDPM++) or training.continuous=True")
        VPSDE(m.beta_min, m.beta_max, m.num_scales).check_discrete()
    return sde, continuous


def noise_range(config):
    """(smallest, largest) noise level the training draws reach, in the VE sigma view that :class:`LossOut`
    reports: VE model.sigma_min .. sigma_max; VP continuous sigma(eps = SDE_EPS) .. sigma(1), sigma(t) =
    sqrt(1 / alpha_bar(t) - 1); VP discrete the chain's levels sigma_0 .. sigma_{N-1}."""
    m = config.model
    if config.training.get('sde', 'vesde') != 'vpsde':
        return float(m.sigma_min), float(m.sigma_max)
    sde = VPSDE(m.beta_min, m.beta_max, m.num_scales)
    if bool(config.training.continuous):
        return float(sde.sigma(torch.tensor(SDE_EPS, dtype=torch.float64))), sde.sigma_max
    levels = sde.level_sigmas()
    return float(levels[0]), float(levels[-1])


def get_loss_fn(config, device=None):
    """``loss_fn(net, x, draws) -> LossOut``: the official objective of ``config``'s family.  ``draws`` is a
    (sliced) :func:`draw_levels` result: ``labels`` or ``t``, and ``z``."""
    m, tr = config.model, config.training
    sde, continuous = _training_process(config)
    reduce_mean = bool(tr.reduce_mean)
    if sde == 'vpsde':
        vp = VPSDE(m.beta_min, m.beta_max, m.num_scales)
        if continuous:
            lw = bool(tr.likelihood_weighting)
            return lambda net, x, d: vp_sde_loss(net, x, vp, reduce_mean, lw, t=d['t'], z=d['z'])
        return lambda net, x, d: ddpm_loss(net, x, vp, reduce_mean, d['labels'], d['z'])
    if m.family in ('ncsn', 'ncsnv2'):
        sigmas = sigma_buffer(config).to(device)       # ncsnv2 get_sigmas: float32, descending
        power = float(tr.anneal_power)
        return lambda net, x, d: anneal_dsm_loss(net, x, sigmas, power, d['labels'], d['z'])
    if continuous:
        smin, smax, lw = float(m.sigma_min), float(m.sigma_max), bool(tr.likelihood_weighting)
        return lambda net, x, d: ve_sde_loss(net, x, smin, smax, reduce_mean, lw, t=d['t'], z=d['z'])
    sigmas = smld_sigmas(float(m.sigma_min), float(m.sigma_max), int(m.num_scales), device=device)
    return lambda net, x, d: smld_loss(net, x, sigmas, reduce_mean, d['labels'], d['z'])


def draw_levels(config, batch, shape, generator, device, eps=SDE_EPS):
    """The random draws of one (global) batch for :func:`get_loss_fn`, in a fixed order: the noise levels
    (``labels`` in 0..model.num_scales - 1, or continuous ``t`` ~ U(eps, 1)), then ``z``.  Slicing the result gives
    each process its share."""
    continuous = config.model.family in ('ncsnpp', 'ddpm') and bool(config.training.continuous)
    draws = {'labels': None, 't': None}
    if continuous:
        draws['t'] = torch.rand(batch, generator=generator, device=device) * (1. - eps) + eps
    else:
        draws['labels'] = torch.randint(0, int(config.model.num_scales), (batch,), generator=generator, device=device)
    draws['z'] = torch.randn((batch, *shape), generator=generator, device=device)
    return draws
