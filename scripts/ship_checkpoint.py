"""Copy a training run's latest state into a shipped checkpoint folder (what the repository commits).

    python scripts/ship_checkpoint.py --workdir runs/model_a --out checkpoints/ncsn_mnist_cpu --config configs/ncsn/mnist_cpu.py
    python scripts/ship_checkpoint.py --workdir runs/model_c64_gpu --out $OUT/c64      # the config the run recorded

Writes ``<out>/checkpoint.pth`` (the official checkpoint object of the family with the network weights only: what
``--checkpoint`` samples from), ``<out>/checkpoints-meta/latest.pth`` (the trainer's resume file: weights, Adam,
step, generator, data position, log history; copied byte for byte), ``<out>/train_log.csv`` and
``<out>/loss.png`` (loss curve).  To continue training: copy ``<out>`` to a run folder and rerun the same train
command there (see the model card).

Without ``--config`` the network is built from the config the run recorded in ``latest.pth`` (with every
``--config.*`` override it trained with).  ``--half`` stores the network's parameters in float16 (buffers such as
noise levels stay as they are; loading casts back to float32): half the size, for a network whose float32 weights
exceed the limit (the paper's NCSN, ngf 64: 30 MB), at a cost measured on Model A (annealed Langevin, 16 samples,
the same noise): samples within 0.011 of the float32 weights' (values in [0, 1]), 6e-4 on average
(tests/scripts/test_ship_checkpoint.py, which allows 1.5x that for other CPUs).  ``--no_resume`` leaves ``latest.pth`` out (the resume file of a large
network cannot leave a GPU machine whose replies carry 16 MiB a file; resume it there, on the same machine).  Every file written must be at most 16 MiB (the repository's and the GPU
machine's per-file limit): a larger one is named in one error line (exit status 1; the files stay for a look).
"""
import argparse
import csv
import json
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

MAX_FILE_BYTES = 16 * 2 ** 20


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


def half_parameters(net):
    """Cast ``net``'s floating-point parameters to float16 in place (buffers, e.g. noise levels, are left alone)."""
    with torch.no_grad():
        for p in net.parameters():
            if p.is_floating_point():
                p.data = p.data.half()
    return net


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workdir', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--config', default=None, help='the config file (default: the one recorded in latest.pth)')
    p.add_argument('--half', action='store_true', help='checkpoint.pth with the parameters in float16')
    p.add_argument('--no_resume', action='store_true', help=f'do not ship {LATEST}')
    args = p.parse_args()
    latest = os.path.join(args.workdir, LATEST)
    if not os.path.isfile(latest):
        raise SystemExit(f'error: {latest} does not exist; expected a training workdir (main.py --mode train)')
    state = torch.load(latest, map_location='cpu', weights_only=True)
    if args.config:
        try:
            config = load_file(args.config)
        except ValueError as err:
            raise SystemExit(f'error: {err}') from None
    elif state.get('config'):
        import ml_collections
        config = ml_collections.ConfigDict(json.loads(state['config']))
    else:
        raise SystemExit(f'error: {latest} records no config; expected --config <the config file it trained>')
    net = models.create_model(config)
    load_into(net, state['official'], config, use_ema=True, source=LATEST)
    os.makedirs(args.out, exist_ok=True)
    if args.half:
        half_parameters(net)
    save_checkpoint(os.path.join(args.out, 'checkpoint.pth'), net, config)
    names = ['checkpoint.pth', LOG_NAME, 'loss.png']
    if not args.no_resume:
        os.makedirs(os.path.join(args.out, 'checkpoints-meta'), exist_ok=True)
        shutil.copyfile(os.path.join(args.workdir, LATEST), os.path.join(args.out, LATEST))
        names.insert(1, LATEST)
    shutil.copyfile(os.path.join(args.workdir, LOG_NAME), os.path.join(args.out, LOG_NAME))
    plot_loss(os.path.join(args.out, LOG_NAME), os.path.join(args.out, 'loss.png'))
    written = [os.path.join(args.out, name) for name in names]
    sizes = {path: os.path.getsize(path) for path in written}
    print(f'shipped step {state["step"]} of {args.workdir} to {args.out}: ' +
          ', '.join(f'{os.path.relpath(p, args.out)} {n / 2 ** 20:.1f} MiB' for p, n in sizes.items()))
    big = [f'{p} ({n / 2 ** 20:.1f} MiB)' for p, n in sizes.items() if n > MAX_FILE_BYTES]
    if big:
        raise SystemExit(f'error: {", ".join(big)} over the 16 MiB per-file limit; expected a smaller network (the '
                         'exact resume file holds 16 bytes per parameter: weights, EMA and both Adam moments), or '
                         '--half (float16 weights) and --no_resume')


if __name__ == '__main__':
    main()
