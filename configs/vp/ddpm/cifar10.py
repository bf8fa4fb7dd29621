"""score_sde configs/vp/ddpm/cifar10.py: the DDPM network (Ho et al.), CIFAR-10 32 px, the discrete DDPM chain
(N = 1000, labels t (N - 1)), ancestral sampling, centred data, EMA 0.9999."""
from configs import defaults


def get_config():
    config = defaults.vp('ddpm', continuous=False)
    config.data.dataset = 'CIFAR10'
    return config
