"""score_sde configs/ve/cifar10_ncsnpp_deep_continuous.py: NCSN++ deep (8 blocks/level), CIFAR-10 32 px.
PDS's own CIFAR-10 config builds on this model."""
from configs import defaults
from configs.ve.cifar10_ncsnpp_continuous import PDS_SETTINGS  # noqa: F401  (same Table 2 rows)


def get_config():
    config = defaults.ve_ncsnpp()
    config.data.dataset = 'CIFAR10'
    config.model.num_res_blocks = 8
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/cifar10_freq.npy'
    return config
