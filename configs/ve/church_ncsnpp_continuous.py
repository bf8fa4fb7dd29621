"""score_sde configs/ve/church_ncsnpp_continuous.py: NCSN++ 256 px (output_skip / input_skip), VE sigma 0.01..380, N=2000, snr 0.075."""
from configs import defaults

# PDS rows of the supplementary's Table 2 (iterations = int(2000 / speed_up) = 166 for speed_up 12).
PDS_SETTINGS = {
    'table2_166it': dict(speed_up=12., alpha=5.),
}


def get_config():
    config = defaults.ve_ncsnpp_lsun(256)
    config.data.dataset = 'LSUN'
    config.data.category = 'church_outdoor'
    config.model.sigma_max = 380.
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/church_freq.npy'
    return config
