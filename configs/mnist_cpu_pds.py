"""PDS on Model A, the shipped CPU-trained NCSN (configs/ncsn/mnist_cpu.py), MNIST 28 x 28, annealed Langevin at
10 levels x 2 steps = 20 iterations.

    python main.py --config configs/mnist_cpu_pds.py --mode sample --checkpoint checkpoints/ncsn_mnist_cpu/checkpoint.pth --workdir runs/a

Rows (PDS_SETTINGS in configs/ncsn/mnist_cpu.py):
  auto_20it    the default: automatic PDS (pds.freq = 'auto', filter and step per level from the data spectrum, no
               lambda or step size). On this model the setting that reproduces the paper's Fig. 4 (vanilla at 20
               iterations noisy, PDS clean: FID 123.2 against 441.6 at the official step); docs/results-model-a.md,
               "the map".
  table1_20it  the supplementary's Table 1 row (radial filter r = 0.2H, lambda = 1.6, official step_lr 2e-5): what
               scripts/table1.sh runs; on this model as noisy as vanilla at 20 iterations (481.4).
"""
from configs import defaults
import configs.ncsn.mnist_cpu as _model


def get_config(setting=''):
    config = defaults.pds_config_from(_model, 'auto_20it', setting)
    config.sampling.batch_size = 16
    return config
