"""Clean-FID's Inception trunk on the CPU: the exact path (NCHW, as clean-fid runs it) vs channels-last
(``PDS_INCEPTION_CHANNELS_LAST=1``), alternating in one run on the same inputs.

    PDS_INCEPTION=<default_1.pt> python benchmarks/inception_cpu.py [--batch 64] [--reps 3]

Prints img/s of both and the largest feature difference (features are pool3 activations, O(1)).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from evaluation import features  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--reps', type=int, default=3)
    args = p.parse_args()
    path = os.environ.get(features.INCEPTION_ENV)
    if not path:
        raise SystemExit(f'error: set {features.INCEPTION_ENV} to a TorchScript Inception file')
    os.environ.pop(features.CHANNELS_LAST_ENV, None)
    exact, _ = features.load_inception(path, 'clean')
    os.environ[features.CHANNELS_LAST_ENV] = '1'
    fast, info = features.load_inception(path, 'clean')
    if info.get('memory_format') != 'channels_last':
        raise SystemExit(f'{info["format"]} files run as clean-fid loads them (TorchScript forward): nothing to compare')
    x = torch.rand(args.batch, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255
    times = {'exact': 0., 'channels_last': 0.}
    with torch.inference_mode():
        ref, out = exact(x), fast(x)                          # warm-up, and the comparison
        for _ in range(args.reps):
            for name, model in (('exact', exact), ('channels_last', fast)):
                start = time.perf_counter()
                model(x)
                times[name] += time.perf_counter() - start
    rate = {k: args.batch * args.reps / v for k, v in times.items()}
    print(f'Inception pool3, CPU {torch.get_num_threads()} threads, batch {args.batch}: exact {rate["exact"]:.1f} img/s, '
          f'channels-last {rate["channels_last"]:.1f} img/s, x{rate["channels_last"] / rate["exact"]:.2f}; '
          f'max |feature diff| {float((out - ref).abs().max()):.2e} (features up to {float(ref.abs().max()):.2f})')


if __name__ == '__main__':
    main()
