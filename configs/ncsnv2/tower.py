"""ermongroup/ncsnv2 configs/tower.yml: NCSNv2Deeper, LSUN tower 128 px, 1086 levels."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSNv2): radial frequency filter (Eq. 20), r = 0.2H.
# Iterations = num_levels x n_steps_each (+ 1 final denoising step, not counted by the paper).
PDS_SETTINGS = {
    'table1_65it': dict(num_levels=65, n_steps_each=1, radius=0.2, lam=1.1),
    'table1_81it': dict(num_levels=81, n_steps_each=1, radius=0.2, lam=1.1),
    'table1_108it': dict(num_levels=108, n_steps_each=1, radius=0.2, lam=1.1),
}


def get_config():
    config = defaults.ncsnv2('ncsnv2_128')
    config.data.dataset = 'LSUN'
    config.data.category = 'tower'
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
