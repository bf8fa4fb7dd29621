"""ermongroup/ncsnv2 configs/bedroom.yml: NCSNv2Deeper, LSUN bedroom 128 px, 1086 levels."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSNv2): radial frequency filter (Eq. 20), r = 0.2H.
# Iterations = num_levels x n_steps_each (+ 1 final denoising step, not counted by the paper).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ncsnv2('ncsnv2_128')
    config.data.dataset = 'LSUN'
    config.data.category = 'bedroom'
    config.data.image_size = 128
    config.data.crop = 'lsun'
    config.model.sigma_max = 190.
    config.model.num_scales = 1086
    config.sampling.step_lr = 1.8e-6
    config.sampling.n_steps_each = 3
    config.sampling.ckpt_id = 150000
    config.sampling.batch_size = 36
    config.pds.freq = 'radial'
    return config
