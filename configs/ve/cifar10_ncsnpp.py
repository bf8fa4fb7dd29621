"""score_sde configs/ve/cifar10_ncsnpp.py: discrete NCSN++ (positional embedding), CIFAR-10 32 px."""
from configs import defaults
from configs.ve.cifar10_ncsnpp_continuous import PDS_SETTINGS  # noqa: F401


def get_config():
    config = defaults.ve_ncsnpp()
    config.data.dataset = 'CIFAR10'
    config.training.continuous = False
    config.model.embedding_type = 'positional'
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/cifar10_freq.npy'
    return config
