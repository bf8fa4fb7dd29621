"""Per-step time of the samplers with and without PDS, on the official architectures (random weights).

    python benchmarks/sampler_bench.py --device cpu --sizes 32 256 --batch 1 --steps 3
    python benchmarks/sampler_bench.py --device cuda --sizes 32 256 1024 --batch 8 --steps 20

For each size it times (a) the PDS operator alone (one M M^T and one M per score call, as a PC step
does), (b) one PC step (Langevin corrector + reverse-diffusion predictor = 2 NFE) and one annealed
Langevin step (1 NFE) with the identity and with PDS, and prints the overhead ratio.
"""
import argparse
import importlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import models  # noqa: E402
import preconditioning  # noqa: E402
import sampling  # noqa: E402
from models.score import ScoreModel  # noqa: E402

ARCH = {32: 'configs.ve.cifar10_ncsnpp_continuous', 256: 'configs.ve.bedroom_ncsnpp_continuous',
        1024: 'configs.ve.ffhq_ncsnpp_continuous'}


def timed(fn, steps, device):
    fn()                                   # warm-up (cuFFT plans, allocator)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def bench(size, batch, steps, device, space):
    config = importlib.import_module(ARCH[size]).get_config()
    with torch.device(device):
        net = models.create_model(config)
    with torch.no_grad():                  # random O(1) weights (the official init makes denormals on CPU)
        for p in net.parameters():
            p.normal_(0, 0.02)
    model = ScoreModel(net.eval(), config)
    shape = (batch, config.data.num_channels, size, size)
    g = torch.Generator().manual_seed(0)
    stat = torch.rand(shape[1:], generator=g).numpy() + 0.1
    pds = preconditioning.Preconditioner(preconditioning.normalised_inverse(stat, 5.),
                                         preconditioning.normalised_inverse(stat, 5.) if space else None, device=device)
    x = torch.randn(shape, device=device)
    randn, _ = sampling.noise_source(torch.Generator(device=device).manual_seed(0), shape, device)
    sde = sampling.sde_lib.VESDE(0.01, config.model.sigma_max, 1000)
    t = torch.full((batch,), 0.5, device=device)

    def pc_step(P):
        def run():
            y, _, _ = sampling.CORRECTORS['langevin'](model, sde, x, t, randn, P, snr=0.16, n_steps=1)
            sampling.PREDICTORS['reverse_diffusion'](model, sde, y, t, randn, P)
        return run

    def ald_step(P):
        return lambda: x + 1e-6 * P.drift(model(x, 0.5)) + P.noise(randn()) * 1e-3

    with torch.no_grad():
        op = timed(lambda: (pds.drift(x), pds.noise(x), pds.drift(x), pds.noise(x)), steps * 5, device)
        rows = []
        for name, step in (('pc', pc_step), ('ald', ald_step)):
            vanilla = timed(step(preconditioning.Identity()), steps, device)
            pre = timed(step(pds), steps, device)
            rows.append((name, vanilla, pre))
    return op, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--sizes', type=int, nargs='+', default=[32, 256])
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--space', action='store_true', help='also use the space filter (two FFT round trips)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'
    print(f'device: {name}, torch {torch.__version__}, batch {args.batch}, space filter: {args.space}')
    print(f"{'size':>5} {'sampler':>7} {'vanilla ms/step':>16} {'PDS ms/step':>12} {'overhead':>9} {'PDS op ms/step':>15}")
    for size in args.sizes:
        op, rows = bench(size, args.batch, args.steps, device, args.space)
        for sampler, vanilla, pre in rows:
            per_step_op = op * (1 if sampler == 'pc' else 0.5)
            print(f'{size:>5} {sampler:>7} {vanilla * 1e3:>16.2f} {pre * 1e3:>12.2f} {100 * (pre / vanilla - 1):>8.1f}% '
                  f'{per_step_op * 1e3:>15.3f}')


if __name__ == '__main__':
    main()
