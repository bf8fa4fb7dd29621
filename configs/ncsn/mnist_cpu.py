"""Model A: the NCSN MNIST recipe of configs/ncsn/mnist.py (the paper's Table 1 model family) sized for a 2-core CPU.

Same as the official anneal.yml MNIST block (CondRefineNetDilated, conditional InstanceNorm++, 10 levels 1 -> 0.01,
anneal DSM loss with power 2, Adam 1e-3, batch 128, uniform dequantisation, no EMA) except:

* ``model.nf`` (ngf) 16 instead of 64, chosen by ``scripts/ncsn_width_sweep.py`` (lowest held-out loss after the
  same CPU time; see checkpoints/ncsn_mnist_cpu/MODEL_CARD.md);
* ``training.n_iters``: as many steps as fit in about 6 CPU-hours (the official run is 200k steps);
* snapshots every 250 steps (a stop loses little), log every 50.

    python main.py --config configs/ncsn/mnist_cpu.py --mode train --data <mnist IDX folder> --workdir runs/model_a

See checkpoints/ncsn_mnist_cpu/MODEL_CARD.md.
"""
import configs.ncsn.mnist as _mnist

# The paper's Table 1 row, and automatic PDS at the same 20 iterations (pds.freq = 'auto': filter and step per level
# from the spectrum; on this model the choice that reproduces Fig. 4, vanilla noisy and PDS clean at the official
# step: docs/results-model-a.md).
PDS_SETTINGS = dict(_mnist.PDS_SETTINGS, auto_20it=dict(num_levels=10, n_steps_each=2, freq='auto'))


def get_config():
    config = _mnist.get_config()
    config.model.nf = 16
    config.training.n_iters = 30001
    config.training.snapshot_freq = 250
    config.training.log_freq = 50
    return config
