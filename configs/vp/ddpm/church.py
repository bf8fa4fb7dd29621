"""score_sde configs/vp/ddpm/church.py: the DDPM network at 256 px, LSUN church_outdoor, the discrete DDPM chain."""
from configs.vp.ddpm.celebahq import _lsun_ddpm


def get_config():
    config = _lsun_ddpm()
    config.data.dataset = 'LSUN'
    config.data.category = 'church_outdoor'
    return config
