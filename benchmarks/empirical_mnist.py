"""PDS on a perfect score: annealed Langevin (NCSN MNIST settings) driven by the exact score of 1,000
MNIST training images (models/empirical.py), vanilla vs PDS with the radial filter in both directions.

    python benchmarks/empirical_mnist.py --num 64

With a perfect score an ideal sampler returns training images, so the figure of merit is the RMS
distance of each sample to its nearest training image (0 = perfect), averaged over the samples.
Iterations = 10 levels x n_steps_each (the NCSN MNIST row of supp. Table 1 is 20).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sampling  # noqa: E402
from configs import mnist_empirical_pds  # noqa: E402
from models.empirical import EmpiricalScore  # noqa: E402


def nearest_rms(x, points):
    flat = x.flatten(1)
    d2 = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ points.T + (points ** 2).sum(1)[None]
    return (d2.clamp(min=0).min(1).values / flat.shape[1]).sqrt()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--num', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--steps', type=int, nargs='+', default=[2, 5, 10], help='n_steps_each values')
    parser.add_argument('--lams', type=float, nargs='+', default=[1.6])
    args = parser.parse_args()
    base = mnist_empirical_pds.get_config()
    score = EmpiricalScore.from_file(base.model.data, base)
    rows = [('vanilla', None, None)] + [(f'PDS {d}', d, lam) for lam in args.lams for d in ('inverse', 'direct')]
    print(f'{args.num} samples, seed {args.seed}; mean RMS distance to the nearest training image (lower is better)')
    print('| sampler | lambda | ' + ' | '.join(f'{10 * s} it' for s in args.steps) + ' |')
    print('|---|---|' + '---|' * len(args.steps))
    for name, direction, lam in rows:
        cells = []
        for steps in args.steps:
            config = mnist_empirical_pds.get_config()
            config.sampling.n_steps_each = steps
            config.pds.enabled = direction is not None
            if direction:
                config.pds.radial_direction, config.pds.lam = direction, lam
            x, _ = sampling.sample(config, score, (args.num, 1, 28, 28), torch.Generator().manual_seed(args.seed))
            cells.append(f'{float(nearest_rms(x.clamp(0, 1), score.points).mean()):.4f}')
        print(f'| {name} | {lam or "-"} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
