"""score_sde configs/ve/celebahq_ncsnpp_continuous.py: the FFHQ 1024 px model's settings on CelebA-HQ 1024."""
from configs.ve import ffhq_ncsnpp_continuous

PDS_SETTINGS = {}


def get_config():
    config = ffhq_ncsnpp_continuous.get_config()
    config.data.dataset = 'CelebAHQ'
    config.pds.freq_path = 'assets/stats/celebahq_freq.npy'
    config.pds.space_path = 'assets/stats/celebahq_space.npy'
    return config
