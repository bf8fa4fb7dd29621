"""Model B: a small NCSN++ (score_sde VE SDE, continuous training) for MNIST 28 x 28, sized for a 2-core CPU.

score_sde's recipe (configs/ve/cifar10_ncsnpp_continuous.py: the continuous VE DSM loss, Fourier noise embedding,
Adam 2e-4 with warm-up and gradient clipping, EMA 0.999, PC sampler = reverse diffusion + Langevin, snr 0.16,
N = 1000) with a CPU-sized network:

* 28 px as MNIST is (no padding): three levels 28 -> 14 -> 7 (ch_mult (1, 2, 2)); attention only at 7 x 7, none at
  full resolution;
* nf / num_res_blocks / resblock_type / fir: the candidates were measured side by side by
  ``benchmarks/ncsnpp_cpu_configs.py`` (results/model_b/ncsnpp_cpu_configs.txt; 2 threads, batch 64 training,
  batch 100 sampling): DDPM blocks train faster than BigGAN blocks (51-60 vs 42 img/s) and FIR buys nothing
  measurable, so 'ddpm' without FIR; one residual block per level instead of two trains x1.5-1.7 faster (89 vs
  51-60 img/s) and samples faster, and at a budget of a few CPU-hours more steps beat more depth, so 1 block;
  nf 28: the widest that keeps the exact resume file (fp32 weights, EMA and both Adam moments: 16 bytes per
  parameter) under the repository's 16 MB per-file limit (0.84 M parameters, 13.5 MB; nf 32 is 1.10 M, 17.6 MB;
  nf 16 is 0.4 M, nf 64 trains at 18 img/s); attention at 7 x 7 kept (score_sde's design);
* ``sigma_max`` by score_sde's rule (Song & Ermon 2020, Technique 1: the largest Euclidean distance between two
  training images): 16.19 over a seeded 10,000-image subset of the MNIST training images in [0, 1] (the whole set's
  maximum is at least that), rounded up to 17; ``sigma_min`` 0.01 as score_sde;
* no random flips (digits are not mirror-symmetric; score_sde flips CIFAR-10).

    python main.py --config configs/ve/mnist_ncsnpp_cpu.py --mode train --data <mnist IDX folder> --workdir runs/model_b
"""
from configs import defaults

PDS_SETTINGS = {
    # Table 2's two CIFAR-10 rows (statistics filter, Eq. 22), transferred to MNIST: iterations = 1000 / speed_up
    'table2_100it': dict(speed_up=10., alpha=5.),
    'table2_200it': dict(speed_up=5., alpha=10.),
}


def get_config():
    config = defaults.ve_ncsnpp()
    data = config.data
    data.dataset = 'MNIST'
    data.image_size = 28
    data.num_channels = 1
    data.random_flip = False
    model = config.model
    model.sigma_max = 17.
    model.sigma_min = 0.01
    model.num_scales = 1000
    model.nf = 28
    model.ch_mult = (1, 2, 2)
    model.num_res_blocks = 1
    model.attn_resolutions = (7,)
    model.resblock_type = 'ddpm'
    model.fir = False
    model.progressive_input = 'none'
    model.dropout = 0.1
    config.training.batch_size = 64
    config.training.n_iters = 15001     # ~3.5 CPU-hours at ~0.7 s per step of 64
    config.training.snapshot_freq = 500
    config.training.log_freq = 50
    config.optim.warmup = 1000
    config.eval.batch_size = 100
    config.pds.freq = 'stats'
    config.pds.freq_path = 'assets/stats/mnist_freq.npy'
    return config
