"""Copy a training run's latest state into a shipped checkpoint folder (what the repository commits).

    python scripts/ship_checkpoint.py --workdir runs/model_a --out checkpoints/ncsn_mnist_cpu --config configs/ncsn/mnist_cpu.py

Writes ``<out>/checkpoint.pth`` (the official checkpoint object of the family with the network weights only: what
``--checkpoint`` samples from), ``<out>/checkpoints-meta/latest.pth`` (the trainer's resume file: weights, Adam,
step, generator, data position, log history; copied byte for byte), ``<out>/train_log.csv`` and
``<out>/loss.png`` (loss curve).  To continue training: copy ``<out>`` to a run folder and rerun the same train
command there (see the model card).
"""
import argparse
import csv
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch  # noqa: E402
from ml_collections import config_flags  # noqa: E402,F401

import models  # noqa: E402
from configs import load_file  # noqa: E402
from models.checkpoint import load_into, save_checkpoint  # noqa: E402
from training.train import LATEST, LOG_NAME  # noqa: E402


def plot_loss(log_path, png):
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(log_path)))
    steps = [int(r['step']) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [float(r['loss']) for r in rows], lw=1)
    ax.set_xlabel('training step')
    ax.set_ylabel(f'loss (mean over {LOG_NAME} window)')
    ax.set_yscale('log')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workdir', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--config', required=True)
    args = p.parse_args()
    config = load_file(args.config)
    state = torch.load(os.path.join(args.workdir, LATEST), map_location='cpu', weights_only=True)
    net = models.create_model(config)
    load_into(net, state['official'], config, use_ema=True, source=LATEST)
    os.makedirs(os.path.join(args.out, 'checkpoints-meta'), exist_ok=True)
    save_checkpoint(os.path.join(args.out, 'checkpoint.pth'), net, config)
    shutil.copyfile(os.path.join(args.workdir, LATEST), os.path.join(args.out, LATEST))
    shutil.copyfile(os.path.join(args.workdir, LOG_NAME), os.path.join(args.out, LOG_NAME))
    plot_loss(os.path.join(args.out, LOG_NAME), os.path.join(args.out, 'loss.png'))
    print(f'shipped step {state["step"]} of {args.workdir} to {args.out}')


if __name__ == '__main__':
    main()
