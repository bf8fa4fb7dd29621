"""``--precision bf16`` on the CPU: img-NFE/s of the shipped models' networks in fp32 and under bf16 autocast, side
by side in one run (alternating repetitions, so the ratio holds on a shared machine), with the relative error of the
bf16 score.  On CPUs with AMX-BF16 / AVX512-BF16 (Sapphire Rapids and later) the bf16 matmuls and convolutions run
on those units; elsewhere autocast can be slower than fp32.  Whether bf16 changes sample quality is
``benchmarks/precision_neutrality.py`` (neutral at every point measured: docs/speed.md).

    python benchmarks/cpu_bf16.py                       # Models A, B, C32, D at batch 100, 5 repetitions
    python benchmarks/cpu_bf16.py --models b --batch 50 --reps 3

Prints one row per model (its checkpoint sha256, batch, device, torch, the CPU's bf16 flags) and writes them to
``--json`` when given.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# model key -> (config module[:setting], checkpoint folder, a noise level in the model's range)
MODELS = {
    'a': ('mnist_cpu_pds', 'checkpoints/ncsn_mnist_cpu', 1.0),
    'b': ('mnist_ncsnpp_cpu_pds', 'checkpoints/ncsnpp_mnist_cpu', 1.0),
    'c32': ('ve.deadleaves32_ncsnpp_cpu', 'checkpoints/ncsnpp_deadleaves32_cpu', 1.0),
    'd': ('mnist_ddpmpp_cpu_pds', 'checkpoints/ddpmpp_mnist_cpu', 1.0),
}


def cpu_flags():
    """The CPU's bf16-related flags (Linux /proc/cpuinfo), e.g. 'amx_bf16 avx512_bf16'; '' if unknown."""
    try:
        flags = next(line for line in open('/proc/cpuinfo') if line.startswith('flags')).split()
    except (OSError, StopIteration):
        return ''
    return ' '.join(sorted(f for f in flags if 'bf16' in f))


def measure(key, batch, reps):
    import importlib
    import torch
    from models import speed as speed_lib
    from models.checkpoint import load_score_model
    from utils.provenance import file_record
    module, folder, sigma = MODELS[key]
    mod, _, setting = module.partition(':')
    get_config = importlib.import_module('configs.' + mod).get_config
    config = get_config(setting) if setting else get_config()
    path = os.path.join(ROOT, folder, 'checkpoint.pth')
    models = {}
    for precision in ('fp32', 'bf16'):
        score = load_score_model(path, config, use_ema=True)
        models[precision] = speed_lib.apply(score, speed_lib.Speed(precision=precision))
    d = config.data
    x = torch.randn(batch, d.num_channels, d.image_size, d.image_size, generator=torch.Generator().manual_seed(0))
    s = torch.full((batch,), float(sigma))
    times = {p: [] for p in models}
    with torch.inference_mode():
        outs = {p: m(x, s) for p, m in models.items()}             # warm-up, and the outputs compared
        for _ in range(reps):
            for p, m in models.items():
                tick = time.perf_counter()
                m(x, s)
                times[p].append(time.perf_counter() - tick)
    err = float((outs['bf16'] - outs['fp32']).norm() / outs['fp32'].norm())
    rate = {p: batch / sorted(t)[len(t) // 2] for p, t in times.items()}      # median
    return dict(model=key, checkpoint_sha256=file_record(path)['sha256'][:12], batch=batch, reps=reps,
                fp32=rate['fp32'], bf16=rate['bf16'], ratio=rate['bf16'] / rate['fp32'], rel_err=err, sigma=sigma)


def main(argv=None):
    import torch
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    p.add_argument('--batch', type=int, default=100)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', default='')
    args = p.parse_args(argv)
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(before)       # a caller's process (the tests) keeps its own


def _run(args):
    import torch
    head = (f'cpu, torch {torch.__version__}, {args.threads} thread(s), CPU bf16 flags: {cpu_flags() or "none"}; '
            f'{time.strftime("%Y-%m-%d %H:%M")}')
    print(head)
    print('| model (sha256) | batch | fp32 img-NFE/s | bf16 img-NFE/s | bf16 / fp32 | bf16 score rel. L2 error (sigma) |')
    print('|---|---|---|---|---|---|')
    rows = []
    for key in args.models:
        r = measure(key, args.batch, args.reps)
        rows.append(r)
        print(f"| {key} ({r['checkpoint_sha256'][:8]}) | {r['batch']} | {r['fp32']:.1f} | {r['bf16']:.1f} | "
              f"{r['ratio']:.2f}x | {r['rel_err']:.1e} ({r['sigma']:g}) |", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'setup': head, 'rows': rows}, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
