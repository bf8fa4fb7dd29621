"""ermongroup/ncsn configs/anneal.yml (CELEBA block): NCSN, CelebA 32 px (CenterCrop 140, resize 32), ngf 128."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSN): radial frequency filter (Eq. 20), r = 0.2H, lambda = 1.6.
# Iterations = num_levels x n_steps_each (official: 10 levels x 100 steps = 1000).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ncsn()
    config.data.dataset = 'CELEBA'
    config.data.image_size = 32
    config.data.num_channels = 3
    config.data.crop = 'celeba'
    config.data.random_flip = True
    config.model.nf = 128
    config.pds.freq = 'radial'
    return config
