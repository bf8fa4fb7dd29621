"""ermongroup/ncsn configs/anneal.yml (MNIST block): NCSN (CondRefineNetDilated), MNIST 28 px, ngf 64, 10 levels 1..0.01."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSN): radial frequency filter (Eq. 20), r = 0.2H, lambda = 1.6.
# Iterations = num_levels x n_steps_each (official: 10 levels x 100 steps = 1000).
PDS_SETTINGS = {
    'table1_20it': dict(num_levels=10, n_steps_each=2, radius=0.2, lam=1.6),
}


def get_config():
    config = defaults.ncsn()
    config.data.dataset = 'MNIST'
    config.data.image_size = 28
    config.data.num_channels = 1
    config.data.crop = 'none'
    config.data.random_flip = False
    config.model.nf = 64
    config.pds.freq = 'radial'
    config.pds.freq_path = 'assets/stats/mnist_freq.npy'        # for pds.freq = 'stats' / 'auto'
    return config
