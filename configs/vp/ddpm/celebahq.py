"""score_sde configs/vp/ddpm/celebahq.py: the DDPM network at 256 px (ch_mult 1,1,2,2,4,4), CelebA-HQ, the discrete
DDPM chain, on score_sde's LSUN defaults (batch 64, snr 0.075, no dropout), lr 2e-5."""
from configs import defaults


def get_config():
    config = _lsun_ddpm()
    config.data.dataset = 'CelebAHQ'
    config.data.category = ''
    return config


def _lsun_ddpm():
    config = defaults.vp('ddpm', continuous=False)
    config.training.batch_size = 64
    config.training.n_iters = 2400001
    config.sampling.snr = 0.075
    config.data.image_size = 256
    config.data.crop = 'lsun'
    config.model.sigma_max = 378.       # score_sde's LSUN defaults (unused by the VP model)
    config.model.dropout = 0.
    config.model.ch_mult = (1, 1, 2, 2, 4, 4)
    config.optim.lr = 2e-5
    return config
