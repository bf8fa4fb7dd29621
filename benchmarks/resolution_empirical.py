"""Does PDS pay more as images grow, on non-Gaussian data with an exact score?  (issue 27, part 2)

    python benchmarks/resolution_empirical.py --out results/resolution            # 32, 64, 128 px (resumable)
    python benchmarks/resolution_empirical.py --sizes 32 --iterations 10 50 --out /tmp/emp

The score is the exact one of ``--train`` dead-leaves training images (``models/empirical.py``: the Gaussian-smoothed
empirical distribution; an ideal sampler returns training images), driven through the real samplers of
``sampling.sample``: the PC sampler (reverse diffusion + one Langevin step, snr rule) vanilla, with the official
statistics filter (Eq. 22 from these images' spectrum, every update) at alpha 5 and 10, and automatic PDS; and EDM's
stochastic sampler (Alg. 2, Table 5's VE settings) with N steps (NFE 2N - 1, the PC sampler's 2N).  The schedule
of each size is that of ``benchmarks/resolution_gaussian.py`` (the official config nearest that size), eps =
1e-5 num_scales / N.

Metrics, over ``--num`` samples of one seed (clamped to [0, 1]): the RMS distance per pixel to the nearest training
image (0 = a training image), and the radial power spectrum's mean relative error against the training images'
(``data.deadleaves.radial_power``; its floor, the error of ``--num`` training images themselves, is printed).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sampling  # noqa: E402
from configs import load_file  # noqa: E402
from data import deadleaves as dl  # noqa: E402
from data.stats import compute_stats  # noqa: E402
from models.empirical import EmpiricalScore  # noqa: E402
from resolution_gaussian import SCHEDULES  # noqa: E402

SAMPLERS = ('vanilla', 'PDS alpha 5', 'PDS alpha 10', 'PDS auto', 'EDM stochastic')
ITERATIONS = {32: (10, 20, 50, 100, 200, 500, 1000), 64: (10, 20, 50, 100, 200, 500), 128: (10, 20, 50, 100, 200)}
NUM = {32: 64, 64: 32, 128: 16}


def nearest_rms(x, points):
    """Per sample: RMS distance per pixel to the nearest of ``points`` (N, D)."""
    flat = x.flatten(1)
    d2 = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ points.T + (points ** 2).sum(1)[None]
    return (d2.clamp(min=0).min(1).values / flat.shape[1]).sqrt()


def spectrum_error(x, ref_power):
    """Mean over rings of |P_samples / P_train - 1| (x: (B, C, S, S) in [0, 1])."""
    _, P = dl.radial_power(x.permute(0, 2, 3, 1).double().numpy())
    return float(np.mean(np.abs(P / ref_power - 1)))


def config_for(S, sampler, n, workdir):
    config = load_file('configs/ve/deadleaves32_ncsnpp_cpu.py')
    name, sigma_max, num_scales, snr = SCHEDULES[S]
    config.data.image_size = S
    config.model.sigma_max, config.model.num_scales = sigma_max, num_scales
    config.model.family = config.model.name = 'empirical'
    s = config.sampling
    s.snr, s.num_steps, s.eps = snr, n, 1e-5 * num_scales / n
    s.speed_up = num_scales / n
    pds = config.pds
    pds.enabled = sampler.startswith('PDS')
    pds.freq_path = os.path.join(workdir, 'train_freq.npy')
    pds.spectrum_path = os.path.join(workdir, 'train_spectrum.npy')
    if sampler == 'PDS auto':
        pds.freq = 'auto'
    elif pds.enabled:
        pds.freq, pds.alpha = 'stats', float(sampler.split()[-1])
    if sampler == 'EDM stochastic':
        s.method = 'edm_stochastic'
    return config


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[32, 64, 128])
    ap.add_argument('--iterations', type=int, nargs='+', default=None, help='default: ITERATIONS per size')
    ap.add_argument('--train', type=int, default=1000, help='training images behind the exact score')
    ap.add_argument('--num', type=int, default=None, help='samples per point (default: NUM per size)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', required=True, help='folder for empirical.json / empirical.md (resumable)')
    ap.add_argument('--workdir', default='runs/resolution_empirical', help="the training images' PDS statistics")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, 'empirical.json')
    results = json.load(open(path)) if os.path.exists(path) else {}
    for S in a.sizes:
        work = os.path.join(a.workdir, f'{S}px')
        os.makedirs(work, exist_ok=True)
        images = dl.generate(dl.DeadLeaves(size=S), a.train, seed=dl.DEFAULT_TRAIN_SEED)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.
        st = compute_stats([xi for xi in x], progress=False)
        np.save(os.path.join(work, 'train_freq.npy'), st['freq'])
        np.save(os.path.join(work, 'train_spectrum.npy'), np.stack([st['power'], st['mean']]))
        score = EmpiricalScore(x)
        _, ref = dl.radial_power(images)
        num = a.num or NUM[S]
        floor = spectrum_error(x[torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:num]], ref)
        for n in a.iterations or ITERATIONS[S]:
            for sampler in SAMPLERS:
                key = f'{S} {sampler} {n}'
                if key in results:
                    continue
                config = config_for(S, sampler, n, work)
                t = time.perf_counter()
                out, nfe = sampling.sample(config, score, (num, 3, S, S), torch.Generator().manual_seed(a.seed))
                out = out.clamp(0, 1)
                results[key] = dict(size=S, sampler=sampler, iterations=n, nfe=int(nfe), num=num, train=a.train,
                                    nearest_rms=float(nearest_rms(out, score.points).mean()),
                                    spectrum_error=spectrum_error(out, ref), spectrum_floor=floor,
                                    seconds=round(time.perf_counter() - t, 1), threads=torch.get_num_threads())
                r = results[key]
                print(f'{S:4d} px {sampler:15s} N {n:5d} (NFE {nfe:5d}): nearest RMS {r["nearest_rms"]:.4f}, '
                      f'spectrum error {r["spectrum_error"]:.3f} (floor {floor:.3f}) [{r["seconds"]} s]', flush=True)
                with open(path + '.tmp', 'w') as fh:
                    json.dump(results, fh, indent=1)
                os.replace(path + '.tmp', path)
    write_table(results, os.path.join(a.out, 'empirical.md'))
    return 0


def write_table(results, md):
    lines = ['# Exact empirical score of dead leaves: samplers against resolution', '',
             '`python benchmarks/resolution_empirical.py --out results/resolution`; CPU, '
             f'{next(iter(results.values()))["threads"]} threads. Cell: nearest-training RMS per pixel / radial-'
             'spectrum mean relative error (lower is better for both).', '']
    for S in sorted({r['size'] for r in results.values()}):
        rows = [r for r in results.values() if r['size'] == S]
        ns = sorted({r['iterations'] for r in rows})
        r0 = rows[0]
        lines += [f'## {S} px: {r0["train"]} training images, {r0["num"]} samples, spectrum floor '
                  f'{r0["spectrum_floor"]:.3f} ({SCHEDULES[S][0]})', '',
                  '| sampler | ' + ' | '.join(f'N={n}' for n in ns) + ' |', '|---|' + '---|' * len(ns)]
        for sampler in SAMPLERS:
            cells = []
            for n in ns:
                r = results.get(f'{S} {sampler} {n}')
                cells.append('-' if r is None else f'{r["nearest_rms"]:.4f} / {r["spectrum_error"]:.2f}')
            lines.append(f'| {sampler} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    with open(md, 'w') as fh:
        fh.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    sys.exit(main())
