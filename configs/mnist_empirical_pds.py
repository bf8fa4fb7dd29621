"""The offline first run: PDS on the exact score of 1,000 MNIST training images (no network).

    python main.py --config configs/mnist_empirical_pds.py --mode sample --workdir runs/first --num_samples 16

The sampler and PDS settings are those of the NCSN MNIST row of the supplementary's Table 1 (annealed
Langevin, 10 levels 1 -> 0.01, 20 iterations, radial filter r = 0.2H, lambda = 1.6); only the score
is the ideal one of the image set (``models/empirical.py``) instead of a trained NCSN.
"""
from configs import mnist_pds


def get_config(setting=''):
    config = mnist_pds.get_config(setting)
    config.model.family = 'empirical'
    config.model.name = 'empirical'
    config.model.data = 'assets/mnist_train_1000.npz'
    config.sampling.batch_size = 16
    return config
