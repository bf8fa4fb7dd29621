"""Width sweep for Model A (NCSN MNIST on the CPU): held-out loss per CPU-minute for each ngf.

    python scripts/ncsn_width_sweep.py --data <mnist IDX folder> --nf 16 32 64 --minutes 8 --out runs/sweep

For each width, trains ``configs/ncsn/mnist_cpu.py`` (with ``model.nf`` replaced) for ``--minutes`` of wall time in
``<out>/nf<k>`` (resumable: a rerun continues each run up to its time budget), then reports the anneal DSM loss on
``--eval-images`` MNIST *test* images with fixed noise and fixed levels (the same draws for every width), per level
and averaged; lower is better.  Rows go to ``<out>/sweep.csv`` as they finish.  ``--grid`` also draws 16 vanilla
annealed-Langevin samples at the official schedule (10 x 100 steps, step_lr 2e-5) per width into ``<out>/nf<k>.png``.
"""
import argparse
import csv
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs.ncsn import mnist_cpu  # noqa: E402
from data.readers import open_dataset  # noqa: E402
from models.checkpoint import load_score_model  # noqa: E402
from training.losses import anneal_dsm_loss  # noqa: E402
from training.train import LATEST, run_train  # noqa: E402


def heldout_loss(net, config, data, n, seed=0):
    """Anneal DSM loss (power 2) on the first ``n`` test images; level i gets images i::L; fixed noise."""
    test = open_dataset(data, config, split='test')
    x = torch.stack([test[i] for i in range(n)])
    g = torch.Generator().manual_seed(seed)
    x = (x * 255. + torch.rand(x.shape, generator=g)) / 256.      # the official uniform dequantisation
    levels = torch.arange(n) % config.model.num_scales
    z = torch.randn(x.shape, generator=g)
    sigmas = net.sigmas.double()
    with torch.inference_mode():
        out = anneal_dsm_loss(net, x, sigmas.float(), 2., levels, z)
    per_level = [out.losses[levels == i].mean().item() for i in range(config.model.num_scales)]
    return out.loss.item(), per_level


def train_for(config, workdir, data, minutes, chunk):
    """Train in chunks of ``chunk`` steps until ``minutes`` of (accumulated) wall time are spent."""
    clock = os.path.join(workdir, 'wall_seconds.json')
    spent = json.load(open(clock))['seconds'] if os.path.exists(clock) else 0.
    out = None
    while spent < minutes * 60:
        start = time.time()
        step = 0
        if os.path.exists(os.path.join(workdir, LATEST)):
            step = torch.load(os.path.join(workdir, LATEST), map_location='cpu', weights_only=False)['step']
        out = run_train(config, workdir, data, progress=False, max_steps=step + chunk)
        spent += time.time() - start
        os.makedirs(workdir, exist_ok=True)
        json.dump({'seconds': spent}, open(clock, 'w'))
        print(f'  nf {config.model.nf}: step {out["step"]}, {spent / 60:.1f} min, '
              f'train loss {out["history"][-1][1] if out["history"] else float("nan"):.4g}', flush=True)
    return spent


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', required=True)
    p.add_argument('--nf', type=int, nargs='+', default=[16, 32, 64])
    p.add_argument('--minutes', type=float, default=8.)
    p.add_argument('--chunk', type=int, default=50, help='steps between time checks')
    p.add_argument('--eval-images', type=int, default=1000)
    p.add_argument('--out', default='runs/sweep')
    p.add_argument('--grid', action='store_true')
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for nf in args.nf:
        config = mnist_cpu.get_config()
        config.device = 'cpu'
        config.model.nf = nf
        config.training.snapshot_freq = args.chunk
        workdir = os.path.join(args.out, f'nf{nf}')
        spent = train_for(config, workdir, args.data, args.minutes, args.chunk)
        score = load_score_model(workdir, config, device="cpu")
        loss, per_level = heldout_loss(score.net, config, args.data, args.eval_images)
        history = json.load(open(os.path.join(workdir, 'wall_seconds.json')))
        step = torch.load(os.path.join(workdir, LATEST), map_location='cpu', weights_only=False)['step']
        row = dict(nf=nf, params=sum(q.numel() for q in score.net.parameters()), steps=step,
                   minutes=round(history['seconds'] / 60, 2), heldout_loss=round(loss, 4),
                   **{f'level{i}': round(v, 4) for i, v in enumerate(per_level)})
        rows.append(row)
        print(' '.join(f'{k}={v}' for k, v in row.items()), flush=True)
        with open(os.path.join(args.out, 'sweep.csv'), 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        if args.grid:
            _grid(config, score, os.path.join(args.out, f'nf{nf}.png'))


def _grid(config, score, path):
    import sampling
    from torchvision.utils import save_image
    config.pds.enabled = False
    x, _ = sampling.sample(config, score, (16, 1, 28, 28), torch.Generator().manual_seed(0))
    save_image(x.clamp(0, 1), path, nrow=4)


if __name__ == '__main__':
    main()
