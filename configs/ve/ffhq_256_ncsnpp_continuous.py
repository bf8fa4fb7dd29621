"""score_sde configs/ve/ffhq_256_ncsnpp_continuous.py: NCSN++ 256 px (output_skip / input_skip), VE sigma 0.01..348, N=2000, snr 0.075."""
from configs import defaults

# PDS rows of the supplementary's Table 2 (iterations = int(2000 / speed_up) = 166 for speed_up 12).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ve_ncsnpp_lsun(256)
    config.data.dataset = 'FFHQ'
    config.data.category = ''
    config.model.sigma_max = 348.
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/ffhq_256_freq.npy'
    return config
