"""Model D: a small DDPM++ (score_sde VP SDE, continuous training) for MNIST 28 x 28, sized for a 2-core CPU: Model B's
network (configs/ve/mnist_ncsnpp_cpu.py) on score_sde's VP recipe.

score_sde's VP DDPM++ continuous recipe (configs/vp/cifar10_ddpmpp_continuous.py): the continuous VP SDE loss with
beta_min 0.1, beta_max 20 (t ~ U(1e-5, 1), the network predicts the noise, score = -output / std(t), labels 999 t),
reduce_mean, the positional (sinusoidal) time embedding, no FIR, no scale_by_sigma, data centred to [-1, 1], N = 1000,
PC sampler = Euler-Maruyama without corrector, sampling eps 1e-3.

Model B's network, optimiser and schedule, so that the two models differ in the noise process only:

* the NCSN++ class at Model B's size: nf 28, ch_mult (1, 2, 2) (28 -> 14 -> 7), 1 residual block per level, attention
  at 7 x 7, dropout 0.1, **DDPM residual blocks** (Model B's choice, measured faster on the CPU than BigGAN blocks:
  results/model_b/ncsnpp_cpu_configs.txt).  score_sde's DDPM++ uses BigGAN blocks; at this width they would make
  965,217 parameters (+14.5 % on Model B's 843,137) and train slower.  With DDPM blocks and the positional embedding
  (Linear nf -> 4 nf instead of Fourier 2 nf -> 4 nf) the network has 839,973 parameters (-0.4 %), and its exact resume
  file (16 bytes per parameter) stays under the repository's 16 MB per-file limit;
* batch 64, 15,001 steps, Adam 2e-4 with 1,000 warm-up steps and gradient clipping 1, snapshots every 500 steps;
* EMA 0.999 (Model B's), not score_sde's VP 0.9999: over 15,000 steps an EMA of 0.9999 (a ~10,000-step window)
  would still carry the first, untrained third of the run;
* no random flips (digits are not mirror-symmetric).

    python main.py --config configs/vp/mnist_ddpmpp_cpu.py --mode train --data <mnist IDX folder> --workdir runs/model_d
"""
from configs import defaults

PDS_SETTINGS = {
    # Model B's rows (supp. Table 2's CIFAR-10 settings: statistics filter, Eq. 22; iterations = 1000 / speed_up) in
    # the official PDS form carried over to the VP PC sampler, (a): M M^T on the drift, M on the noise
    'table2_100it': dict(speed_up=10., alpha=5.),
    'table2_200it': dict(speed_up=5., alpha=10.),
    # the same filters in the marginal-preserving form, (b): drift (I + M M^T) / 2, noise M, prior N(0, I)
    'marginal_100it': dict(speed_up=10., alpha=5., predictor_drift='marginal'),
    'marginal_200it': dict(speed_up=5., alpha=10., predictor_drift='marginal'),
    # automatic PDS for VP, (d): per-step filters from the MNIST spectrum through the moment recursion
    'auto_100it': dict(speed_up=10., freq='auto', spectrum_path='assets/stats/mnist_spectrum.npy'),
}


# Model B's network, data and schedule (configs/ve/mnist_ncsnpp_cpu.py): the two models differ in the noise process only
NETWORK = ('nf', 'ch_mult', 'num_res_blocks', 'attn_resolutions', 'resblock_type', 'dropout')
SCHEDULE = ('batch_size', 'n_iters', 'snapshot_freq', 'log_freq')


def get_config():
    from configs.ve import mnist_ncsnpp_cpu
    model_b = mnist_ncsnpp_cpu.get_config()
    config = defaults.vp('ncsnpp', continuous=True)
    for key in ('dataset', 'image_size', 'num_channels', 'random_flip'):
        config.data[key] = model_b.data[key]
    for key in NETWORK:
        config.model[key] = model_b.model[key]
    for key in SCHEDULE:
        config.training[key] = model_b.training[key]
    config.model.ema_rate = 0.999          # Model B's EMA (the module docstring says why not score_sde's VP 0.9999)
    config.optim.warmup = model_b.optim.warmup
    config.eval.batch_size = model_b.eval.batch_size
    config.pds.freq = 'stats'
    config.pds.freq_path = model_b.pds.freq_path
    return config
