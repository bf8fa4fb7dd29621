"""ermongroup/ncsnv2 configs/ffhq.yml: NCSNv2Deepest, FFHQ 256 px, 2311 levels."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSNv2): radial frequency filter (Eq. 20), r = 0.2H.
# Iterations = num_levels x n_steps_each (+ 1 final denoising step, not counted by the paper).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ncsnv2('ncsnv2_256')
    config.data.dataset = 'FFHQ'
    config.data.category = ''
    config.data.image_size = 256
    config.data.crop = 'none'
    config.model.sigma_max = 348.
    config.model.num_scales = 2311
    config.sampling.step_lr = 9e-7
    config.sampling.n_steps_each = 3
    config.sampling.ckpt_id = 80000
    config.sampling.batch_size = 36
    config.pds.freq = 'radial'
    return config
