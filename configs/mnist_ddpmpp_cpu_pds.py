"""PDS on Model D, the CPU-trained small DDPM++ (configs/vp/mnist_ddpmpp_cpu.py, score_sde VP, continuous), MNIST
28 x 28, with Model B's rows (supp. Table 2's CIFAR-10 settings, statistics filter of Eq. 22 from
assets/stats/mnist_freq.npy) on the VP PC sampler (Euler-Maruyama, no corrector): 100 iterations alpha 5 (default) or
200 iterations alpha 10, in the official form carried over (table2_*) or the marginal-preserving one (marginal_*), and
automatic PDS for VP (auto_100it).  The checkpoint path below is where Model D is to be shipped once trained.

    python main.py --config configs/mnist_ddpmpp_cpu_pds.py --mode sample --checkpoint checkpoints/ddpmpp_mnist_cpu/checkpoint.pth --workdir runs/d
    python main.py --config configs/mnist_ddpmpp_cpu_pds.py:marginal_100it --mode sample ...
Rows: see PDS_SETTINGS in configs/vp/mnist_ddpmpp_cpu.py.
"""
from configs import defaults
import configs.vp.mnist_ddpmpp_cpu as _model


def get_config(setting=''):
    config = defaults.pds_config_from(_model, 'table2_100it', setting)
    config.sampling.batch_size = 50
    return config
