"""PDS on Model A, the shipped CPU-trained NCSN (configs/ncsn/mnist_cpu.py), MNIST 28 x 28, with the supplementary's
Table 1 settings (annealed Langevin, 10 levels x 2 steps = 20 iterations, radial filter r = 0.2H, lambda = 1.6).

    python main.py --config configs/mnist_cpu_pds.py --mode sample --checkpoint checkpoints/ncsn_mnist_cpu/checkpoint.pth --workdir runs/a
Rows: see PDS_SETTINGS in configs/ncsn/mnist_cpu.py (table1_20it, the default; auto_20it).
"""
from configs import defaults
import configs.ncsn.mnist_cpu as _model


def get_config(setting=''):
    config = defaults.pds_config_from(_model, 'table1_20it', setting)
    config.sampling.batch_size = 16
    return config
