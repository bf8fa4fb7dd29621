"""ermongroup/ncsnv2 configs/church.yml: NCSNv2Deeper, LSUN church_outdoor.
The official YAML says 64 px; the NCSNv2 README samples and the PDS paper's Table 1 use 96 px, which we follow
(the network has no resolution-dependent weights, so the same checkpoint samples at either size)."""
from configs import defaults

# PDS rows of the supplementary's Table 1 (NCSNv2): radial frequency filter (Eq. 20), r = 0.2H.
# Iterations = num_levels x n_steps_each (+ 1 final denoising step, not counted by the paper).
PDS_SETTINGS = {
    'table1_126it': dict(num_levels=126, n_steps_each=1, radius=0.2, lam=1.6),
    'table1_157it': dict(num_levels=157, n_steps_each=1, radius=0.2, lam=1.6),
    'table1_210it': dict(num_levels=210, n_steps_each=1, radius=0.2, lam=1.6),
}


def get_config():
    config = defaults.ncsnv2('ncsnv2_128')
    config.data.dataset = 'LSUN'
    config.data.category = 'church_outdoor'
    config.data.image_size = 96
    config.data.crop = 'lsun'
    config.model.sigma_max = 140.
    config.model.num_scales = 788
    config.sampling.step_lr = 4.9e-6
    config.sampling.n_steps_each = 4
    config.sampling.ckpt_id = 200000
    config.sampling.batch_size = 96
    config.pds.freq = 'radial'
    return config
