"""ermongroup/ncsnv2 configs/celeba.yml: NCSNv2, CelebA 64 px (CenterCrop 140, resize 64), 500 levels."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSNv2): radial frequency filter (Eq. 20), r = 0.2H.
# Iterations = num_levels x n_steps_each (+ 1 final denoising step, not counted by the paper).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ncsnv2('ncsnv2_64')
    config.data.dataset = 'CELEBA'
    config.data.category = ''
    config.data.image_size = 64
    config.data.crop = 'celeba'
    config.model.sigma_max = 90.
    config.model.num_scales = 500
    config.sampling.step_lr = 3.3e-6
    config.sampling.n_steps_each = 5
    config.sampling.ckpt_id = 210000
    config.sampling.batch_size = 64
    config.pds.freq = 'radial'
    return config
