"""Clean-FID's Inception trunk on the CPU: the exact path (NCHW, as clean-fid runs it) vs channels-last
(``PDS_INCEPTION_CHANNELS_LAST=1``), alternating in one run on the same inputs.

    PDS_INCEPTION=<default_1.pt> python benchmarks/inception_cpu.py [--batch 64] [--reps 3]

Prints img/s of both and the largest feature difference (features are pool3 activations, O(1)).
``--chunks 4 16 64``: then the same images through the channels-last model in chunks of each size (the feature
batch size of ``--mode eval``), alternating in rounds, with img/s and the largest difference to the first size.
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
    p.add_argument('--chunks', type=int, nargs='*', default=[],
                   help='also compare feature batch sizes (each must divide --batch)')
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
    if args.chunks:
        compare_chunks(fast, x, args.chunks, args.reps)


def compare_chunks(model, x, chunks, reps):
    """The same images in chunks of each size, alternating sizes within each round."""
    seconds = dict.fromkeys(chunks, 0.)
    with torch.inference_mode():
        feats = {c: torch.cat([model(x[i:i + c]) for i in range(0, len(x), c)]) for c in chunks}   # also warm-up
        for _ in range(reps):
            for c in chunks:
                start = time.perf_counter()
                for i in range(0, len(x), c):
                    model(x[i:i + c])
                seconds[c] += time.perf_counter() - start
    first = chunks[0]
    for c in chunks:
        print(f'  channels-last, feature batch {c:4d}: {len(x) * reps / seconds[c]:6.2f} img/s '
              f'(x{seconds[first] / seconds[c]:.2f} of batch {first}), '
              f'max |feature diff| to batch {first} {float((feats[c] - feats[first]).abs().max()):.2e}', flush=True)


if __name__ == '__main__':
    main()
