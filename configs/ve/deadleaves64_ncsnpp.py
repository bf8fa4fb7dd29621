r"""Model C64: the dead-leaves NCSN++ recipe of Model C32 (configs/ve/deadleaves32_ncsnpp_cpu.py) at 64 x 64 RGB.

* levels 64 -> 32 -> 16 -> 8 (ch_mult (1, 1, 2, 2)), attention at 8 x 8, nf 28 as C32: 0.93 M parameters, an exact
  resume file of ~14.8 MB (ch_mult (1, 2, 2, 2) would be 1.16 M, 18.5 MB, over the 16 MB per-file limit);
* ``sigma_max`` by score_sde's rule: the largest distance between two of the first 10,000 training images in [0, 1]
  is 70.99 (4,000 images: 65.4), rounded up to 72.
Meant for a GPU (scripts/gpu_session.sh: one session trains it for a fixed wall time and ships the resume file);
``:cpu`` is the CPU fallback at nf 16 (0.38 M parameters).

    python main.py --config configs/ve/deadleaves64_ncsnpp.py --mode train --data deadleaves \
        --workdir runs/model_c64_gpu
    python main.py --config configs/ve/deadleaves64_ncsnpp.py:cpu --mode train --data deadleaves \
        --workdir runs/model_c64
"""
from configs.ve.deadleaves32_ncsnpp_cpu import PDS_SETTINGS, deadleaves_ncsnpp  # noqa: F401


def get_config(setting=''):
    if setting not in ('', 'cpu'):
        raise ValueError(f"configs/ve/deadleaves64_ncsnpp.py has settings '' (GPU) and 'cpu'; got {setting!r}")
    if setting == 'cpu':
        return deadleaves_ncsnpp(64, sigma_max=72., nf=16, ch_mult=(1, 2, 2, 2), n_iters=20001)
    return deadleaves_ncsnpp(64, sigma_max=72., nf=28, ch_mult=(1, 1, 2, 2), n_iters=200001)
