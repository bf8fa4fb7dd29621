"""Model C32: a small NCSN++ (score_sde VE SDE, continuous training) for 32 x 32 RGB dead leaves, sized for a
2-core CPU.  The same recipe as Model B (configs/ve/mnist_ncsnpp_cpu.py: continuous VE DSM loss, Fourier noise
embedding, Adam 2e-4 with warm-up and gradient clipping, EMA 0.999, PC = reverse diffusion + Langevin, snr 0.16,
N = 1000, DDPM blocks without FIR, one residual block per level) on data with natural-image statistics:

* data: ``data/deadleaves.py`` with its defaults (disks r^-3 from one pixel to half the side, uniform RGB
  colours, flat leaves), 50,000 training images of seed 0 generated in memory (``--data deadleaves``); the test
  split is seed 1.  Spectrum slope -1.76 at 32 px (results/deadleaves/spectra.json).
* levels 32 -> 16 -> 8 (ch_mult (1, 2, 2)), attention at 8 x 8; nf by the measured sweep in
  results/model_c32/ncsnpp_cpu_configs.txt (benchmarks/ncsnpp_cpu_configs.py --config this file);
* ``sigma_max`` by score_sde's rule (the largest Euclidean distance between two training images in [0, 1]):
  35.09 over the first 10,000 training images, rounded up to 36; ``sigma_min`` 0.01 as score_sde;
* random flips on (the dead-leaves law is mirror-symmetric, as CIFAR-10 is taken to be by score_sde).

    python main.py --config configs/ve/deadleaves32_ncsnpp_cpu.py --mode train --data deadleaves --workdir runs/model_c32
"""
from configs import defaults

PDS_SETTINGS = {
    # Table 2's two CIFAR-10 rows (statistics filter, Eq. 22): iterations = 1000 / speed_up
    'table2_100it': dict(speed_up=10., alpha=5.),
    'table2_200it': dict(speed_up=5., alpha=10.),
}


def deadleaves_ncsnpp(size, sigma_max, nf, ch_mult, n_iters):
    """The dead-leaves NCSN++ recipe at ``size`` px (Models C32 / C64 / C128): levels down to 8 x 8 with attention
    there, ``nf`` and ``ch_mult`` sized so that the exact resume file (16 bytes per parameter) stays under 16 MB."""
    config = defaults.ve_ncsnpp()
    data = config.data
    data.dataset = 'DeadLeaves'
    data.image_size = size
    data.num_channels = 3
    data.random_flip = True
    data.deadleaves = dict(train_seed=0, test_seed=1, train_count=50000, test_count=10000)
    model = config.model
    model.sigma_max = sigma_max
    model.sigma_min = 0.01
    model.num_scales = 1000
    model.nf = nf
    model.ch_mult = ch_mult
    model.num_res_blocks = 1
    model.attn_resolutions = (8,)
    model.resblock_type = 'ddpm'
    model.fir = False
    model.progressive_input = 'none'
    model.dropout = 0.1
    config.training.batch_size = 64
    config.training.n_iters = n_iters
    config.training.snapshot_freq = 500
    config.training.log_freq = 50
    config.optim.warmup = 1000
    config.eval.batch_size = 100
    config.pds.freq = 'stats'
    config.pds.freq_path = f'assets/stats/deadleaves{size}_freq.npy'
    return config


def get_config():
    return deadleaves_ncsnpp(32, sigma_max=36., nf=28, ch_mult=(1, 2, 2), n_iters=20001)
