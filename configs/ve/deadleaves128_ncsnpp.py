"""Model C128: the dead-leaves NCSN++ recipe of Model C32 (configs/ve/deadleaves32_ncsnpp_cpu.py) at 128 x 128 RGB,
for a GPU (scripts/gpu_session.sh with CONFIG=configs/ve/deadleaves128_ncsnpp.py WORKDIR=runs/model_c128 SHIP=c128).

* levels 128 -> 64 -> 32 -> 16 -> 8 (ch_mult (1, 1, 2, 2, 2)), attention at 8 x 8, nf 24: 0.91 M parameters, an
  exact resume file of ~14.6 MB (nf 28 would be 1.24 M, 19.9 MB);
* ``sigma_max``: the largest distance between two of 3,000 training images in [0, 1] is 130.5; at 64 px the maximum
  grew by 8.6 % from 4,000 to 10,000 images, so 140 (score_sde's rule asks for the whole set's maximum).

    python main.py --config configs/ve/deadleaves128_ncsnpp.py --mode train --data deadleaves --workdir runs/model_c128
"""
from configs.ve.deadleaves32_ncsnpp_cpu import PDS_SETTINGS, deadleaves_ncsnpp  # noqa: F401


def get_config():
    c = deadleaves_ncsnpp(128, sigma_max=140., nf=24, ch_mult=(1, 1, 2, 2, 2), n_iters=200001)
    c.model.num_scales = 2000          # score_sde's N at >= 128 px (LSUN / FFHQ configs) for the vanilla PC default
    return c
