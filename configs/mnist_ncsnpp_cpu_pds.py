"""PDS on Model B, the CPU-trained small NCSN++ (configs/ve/mnist_ncsnpp_cpu.py, score_sde VE, continuous), MNIST
28 x 28, with supp. Table 2's CIFAR-10 settings (PC sampler, statistics filter of Eq. 22 from
assets/stats/mnist_freq.npy): 100 iterations alpha 5 (default) or 200 iterations alpha 10.

    python main.py --config configs/mnist_ncsnpp_cpu_pds.py --mode sample --checkpoint checkpoints/ncsnpp_mnist_cpu/checkpoint.pth --workdir runs/b
    python main.py --config configs/mnist_ncsnpp_cpu_pds.py:table2_200it --mode sample ...
Rows: see PDS_SETTINGS in configs/ve/mnist_ncsnpp_cpu.py.
"""
from configs import defaults
import configs.ve.mnist_ncsnpp_cpu as _model


def get_config(setting=''):
    config = defaults.pds_config_from(_model, 'table2_100it', setting)
    config.sampling.batch_size = 50
    return config
