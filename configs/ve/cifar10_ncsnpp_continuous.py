"""score_sde configs/ve/cifar10_ncsnpp_continuous.py: NCSN++ (Fourier), CIFAR-10 32 px, VE sigma 0.01..50, N=1000."""
from configs import defaults

# PDS settings of the supplementary's Table 2 (NCSN++, CIFAR-10 32 x 32): iterations = int(num_scales / speed_up).
PDS_SETTINGS = {
    'table2_100it': dict(speed_up=10., alpha=5.),
    'table2_200it': dict(speed_up=5., alpha=10.),
}


def get_config():
    config = defaults.ve_ncsnpp()
    config.data.dataset = 'CIFAR10'
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/cifar10_freq.npy'
    return config
