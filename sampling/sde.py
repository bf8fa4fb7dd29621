"""The noise process of a config, as the samplers step along it: :func:`from_config` (``training.sde``: VE or VP, with
the sampler's number of steps) and :func:`sampling_eps`.  The processes themselves (:class:`VESDE`, :class:`VPSDE`)
are ``models/sde.py``: a model family is a noise process plus a network."""
from models.sde import PROCESSES, VESDE, VPSDE, VPTimeChain  # noqa: F401  (sampling.sde.VESDE / VPSDE, as before)


def from_config(config):
    """The SDE of a config (``training.sde``: 'vesde' or 'vpsde'): N = sampling.num_steps if set, else the PDS
    command line's N = int(num_scales / speed_up)."""
    name = config.training.get('sde', 'vesde')
    if name not in PROCESSES:
        raise ValueError(f"training.sde = {name!r} is not supported; expected one of {sorted(PROCESSES)}")
    speed_up = float(config.sampling.get('speed_up', 1.))
    n = int(config.sampling.get('num_steps', 0)) or int(config.model.num_scales / speed_up)
    if n < 1:
        raise ValueError(f'speed_up {speed_up} leaves no step of the {config.model.num_scales} scales')
    if name == 'vpsde':
        return VPSDE(config.model.beta_min, config.model.beta_max, n)
    return VESDE(config.model.sigma_min, config.model.sigma_max, n)


def sampling_eps(config):
    """Smallest sampling time: sampling.eps * speed_up (official PDS: 1e-5 * speed_up for VE; score_sde: 1e-3 for
    VP)."""
    return config.sampling.eps * float(config.sampling.get('speed_up', 1.))
