"""score_sde configs/ve/celebahq_ncsnpp_continuous.py: NCSN++ 1024 px (nf 16), VE sigma 0.01..1348, N=2000, snr 0.15, EMA 0.9999.
The official checkpoint folder for FFHQ is named `ffhq_1024_ncsnpp_continuous`."""
from configs import defaults

# PDS rows of the supplementary's Table 2 (iterations = int(2000 / 30) = 66; FFHQ uses the space filter).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ve_ncsnpp_lsun(1024)
    config.data.dataset = 'CelebAHQ'
    config.data.crop = 'none'
    config.training.batch_size = 8
    config.sampling.snr = 0.15
    config.model.sigma_max = 1348.
    config.model.ema_rate = 0.9999
    config.model.nf = 16
    config.model.ch_mult = (1, 2, 4, 8, 16, 32, 32, 32)
    config.model.num_res_blocks = 1
    config.eval.batch_size = 1
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/celebahq_freq.npy'
    config.pds.space_path = 'assets/stats/celebahq_space.npy'
    return config
