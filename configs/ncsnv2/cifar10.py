"""ermongroup/ncsnv2 configs/cifar10.yml: NCSNv2, CIFAR-10 32 px, 232 levels sigma 50..0.01."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSNv2): radial frequency filter (Eq. 20), r = 0.2H.
# Iterations = num_levels x n_steps_each (+ 1 final denoising step, not counted by the paper).
PDS_SETTINGS = {}


def get_config():
    config = defaults.ncsnv2('ncsnv2_64')
    config.data.dataset = 'CIFAR10'
    config.data.category = ''
    config.data.image_size = 32
    config.data.crop = 'none'
    config.model.sigma_max = 50.
    config.model.num_scales = 232
    config.sampling.step_lr = 6.2e-6
    config.sampling.n_steps_each = 5
    config.sampling.ckpt_id = 300000
    config.sampling.batch_size = 100
    config.pds.freq = 'radial'
    return config
