"""score_sde configs/vp/cifar10_ddpmpp_continuous.py: DDPM++ (NCSN++ class, positional embedding, no FIR, no
scale_by_sigma), CIFAR-10 32 px, VP SDE beta 0.1..20, continuous (labels 999 t), centred data, EMA 0.9999."""
from configs import defaults


def get_config():
    config = defaults.vp('ncsnpp', continuous=True)
    config.data.dataset = 'CIFAR10'
    return config
