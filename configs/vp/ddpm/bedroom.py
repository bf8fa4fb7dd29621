"""score_sde configs/ddpm/bedroom.py (DDPM's LSUN bedroom model): the DDPM network at 256 px, the discrete DDPM
chain."""
from configs.vp.ddpm.celebahq import _lsun_ddpm


def get_config():
    config = _lsun_ddpm()
    config.data.dataset = 'LSUN'
    config.data.category = 'bedroom'
    return config
