"""score_sde configs/vp/ddpm/cifar10_continuous.py: the DDPM network trained on the continuous VP SDE (labels 999 t),
CIFAR-10 32 px, Euler-Maruyama sampling."""
from configs import defaults


def get_config():
    config = defaults.vp('ddpm', continuous=True)
    config.data.dataset = 'CIFAR10'
    return config
