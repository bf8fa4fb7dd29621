"""ermongroup/ncsn configs/anneal.yml (CIFAR10 block): NCSN, CIFAR-10 32 px, ngf 128, 10 levels 1..0.01."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSN): radial frequency filter (Eq. 20), r = 0.2H, lambda = 1.6.
# Iterations = num_levels x n_steps_each (official: 10 levels x 100 steps = 1000).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ncsn()
    config.data.dataset = 'CIFAR10'
    config.data.image_size = 32
    config.data.num_channels = 3
    config.data.crop = 'none'
    config.data.random_flip = True
    config.model.nf = 128
    config.pds.freq = 'radial'
    return config
