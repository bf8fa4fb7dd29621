"""Does PDS pay more as images grow?  The exact answer for Gaussian data, from 32 to 1024 px (issue 27, part 2).

    python benchmarks/resolution_gaussian.py --out results/resolution          # all sizes (1024 px: ~1 h on 2 threads)
    python benchmarks/resolution_gaussian.py --sizes 32 64 --out /tmp/res      # a quick look

For data that is Gaussian and diagonal in the DFT, the PC sampler's final per-frequency mean error and variance are
exact under the moment recursion of ``preconditioning/auto.py`` (``pc_moments``; tested against the real sampler in
tests/preconditioning/test_auto.py), so no sampling is needed: the error of each sampler at each budget N is computed.
Two data models per size, one channel (RGB channels of dead leaves are independent and alike):

* ``power law``: per-frequency variance A / |k|^2 (k in cycles per image, |k| >= 1; DC as |k| = 1), mean image 1/2,
  A set so that the pixel variance is 1/12 (that of dead leaves with uniform colours);
* ``dead leaves``: the measured spectrum of ``data/deadleaves.py`` at that size (defaults: r_min one pixel, r_max half
  the side), ring-averaged over integer |k| and mapped back onto the grid; DC from the variance of the image mean.

The schedule of each size is score_sde's VE PC sampler (reverse diffusion + one Langevin step, snr rule) with
sigma_max, num_scales and snr of the official config nearest that size (``SCHEDULES``), N = 10 .. 2000 iterations and
eps = 1e-5 num_scales / N (the PDS command line's speed_up convention).  Samplers: vanilla, the official statistics
filter (Eq. 22 on log(1 + mean |fft2 x|^2), every update, alpha 2 / 5 / 10) and automatic PDS (``pds.freq = 'auto'``).
Error: the mean over frequencies of KL(N(m_k, V_k) || N(0, P_k)) (0 = the data law).  Speed-up of a setting at N:
the N' at which vanilla reaches the same KL (log-log interpolation of vanilla's curve, which is also run at 5000),
divided by N.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import deadleaves as dl  # noqa: E402
# shared with the table (evaluation/resolution.py)
from evaluation.resolution import iterations_to_reach, power_law, vanilla_equivalent  # noqa: E402,F401
from preconditioning import auto, normalised_inverse  # noqa: E402
from sampling.sde import VESDE  # noqa: E402
from utils.atomic import atomic_write  # noqa: E402

# size: (official config it comes from, sigma_max, num_scales, snr)
SCHEDULES = {
    32: ('score_sde cifar10_ncsnpp_continuous', 50., 1000, 0.16),
    64: ('score_sde default_celeba_configs (CelebA 64)', 90., 1000, 0.17),
    128: ('NCSNv2 LSUN tower 128 (sigma_max, num_scales); snr of score_sde LSUN', 190., 1086, 0.075),
    256: ('score_sde church_ncsnpp_continuous', 380., 2000, 0.075),
    1024: ('score_sde ffhq_ncsnpp_continuous', 1348., 2000, 0.15),
}
PAPER_BUDGET = {32: 100, 256: 166, 1024: 66}          # supp. Table 3's PDS iterations at those sizes
ITERATIONS = (10, 20, 50, 66, 100, 166, 200, 500, 1000, 2000)
VANILLA_EXTRA = (5000,)
ALPHAS = (2., 5., 10.)
DEADLEAVES_IMAGES = {32: 2000, 64: 1000, 128: 400, 256: 100, 1024: 24}


def _radius(S):
    fy, fx = np.meshgrid(np.fft.fftfreq(S) * S, np.fft.fftfreq(S) * S, indexing='ij')
    return np.hypot(fx, fy)


def deadleaves_power(S, count, log=print):
    """The measured orthonormal power of dead leaves at S px (grey), ring-averaged over integer |k|."""
    spec = dl.DeadLeaves(size=S, channels=1)
    P = np.zeros((S, S))
    means, done, t = [], 0, time.perf_counter()
    while done < count:
        n = min(count - done, max(1, 4096 // S))
        x = dl.generate(spec, n, seed=dl.DEFAULT_TRAIN_SEED, start=done)[..., 0] / 255.
        means.append(x.mean((1, 2)))
        P += (np.abs(np.fft.fft2(x - 0.5, norm='ortho')) ** 2).sum(0)
        done += n
    P /= count
    k = np.rint(_radius(S)).astype(int)
    ring = np.bincount(k.ravel(), P.ravel()) / np.bincount(k.ravel())
    out = ring[k]
    out[0, 0] = S * S * np.var(np.concatenate(means))           # DC: the variance of the image mean
    log(f'  dead leaves {S} px: {count} images in {time.perf_counter() - t:.0f} s, pixel variance '
        f'{out.sum() / S ** 2:.4f}')
    return out


def spectrum(P, S, stride=1):
    """The Gaussian of variance ``P`` (S, S) and mean image 1/2 as an ``auto.Spectrum``, on every ``stride``-th
    frequency of each axis (DC included): every quantity of the recursion is a mean or a ratio of sums over
    frequencies, so a strided subset estimates it (the DC term weighs stride^2 times more; checked against the full
    grid at 128 px in docs/resolution.md)."""
    sub = P[::stride, ::stride][None]
    spec = auto.Spectrum.gaussian(sub)
    spec.mu[0, 0, 0] = 0.5 * S                                       # orthonormal DFT of the constant 1/2 image
    return spec


def errors(P, S, iterations, alphas=ALPHAS, stride=1, log=print):
    """{setting: {N: KL}} for vanilla, the statistics filter at each alpha and automatic PDS."""
    name, sigma_max, num_scales, snr = SCHEDULES[S]
    spec = spectrum(P, S, stride)
    freq = spec.freq_statistic(S * S)          # Eq. 22's input, log(1 + mean |fft2 x|^2) of S x S images, as --mode stats
    tables = {f'PDS alpha {a:g}': normalised_inverse(freq, a).double().numpy() for a in alphas}
    out = {'vanilla': {}, **{k: {} for k in tables}, 'PDS auto': {}}
    for n in sorted(set(iterations) | set(VANILLA_EXTRA)):
        t = time.perf_counter()
        sde, eps = VESDE(0.01, sigma_max, n), 1e-5 * num_scales / n
        out['vanilla'][n] = auto.kl(*auto.pc_moments(spec, sde, eps, snr, 1), spec.P)
        if n in VANILLA_EXTRA:
            continue
        for key, table in tables.items():
            out[key][n] = auto.kl(*auto.pc_moments(spec, sde, eps, snr, 1, lambda i, role, t=table: t), spec.P)
        schedule = auto.AutoPC(spec, sde, eps, snr, 1)
        out['PDS auto'][n] = auto.kl(*auto.pc_moments(spec, sde, eps, snr, 1, schedule.filter), spec.P)
        log(f'  {S} px N = {n}: ' + ', '.join(f'{k} {v[n]:.3g}' for k, v in out.items() if n in v)
            + f' ({time.perf_counter() - t:.0f} s)')
    return out


def save_entry(results, path, key, kl, started, **fields):
    """Record one finished (size, data model, ...) entry: ``fields``, its ``kl`` {setting: {N: KL}}, the seconds
    since ``started``, threads and torch; the whole JSON is rewritten atomically (a killed run resumes from it)."""
    results[key] = dict(fields, kl={k: {int(n): v for n, v in row.items()} for k, row in kl.items()},
                        seconds=round(time.perf_counter() - started), threads=torch.get_num_threads(),
                        torch=torch.__version__)
    atomic_write(path, lambda tmp: json.dump(results, open(tmp, 'w'), indent=1))


def int_keys(results):
    """The KL tables of JSON-loaded ``results`` keyed by int N again (JSON keys are strings)."""
    for res in results.values():
        res['kl'] = {k: {int(n): v for n, v in row.items()} for k, row in res['kl'].items()}


def speedup_cell(vanilla, kl, n):
    nv, side = vanilla_equivalent(vanilla, kl)
    if side == '<':
        return f'< {min(vanilla) / n:.2g}'
    if side == '>':
        return f'> {max(vanilla) / n:.3g}'
    return f'{nv / n:.2f}'


def tables(results):
    """Markdown: KL against N, and the speed-up at every N, per size and data model."""
    lines = []
    for key, res in results.items():
        S, model = res['size'], res['model']
        lines.append(f'\n### {S} px, {model} ({SCHEDULES[S][0]}: sigma_max {SCHEDULES[S][1]:g}, '
                     f'num_scales {SCHEDULES[S][2]}, snr {SCHEDULES[S][3]:g})\n')
        ns = [n for n in ITERATIONS if n in res['kl']['PDS auto']]
        lines.append('| sampler | ' + ' | '.join(f'N={n}' for n in ns) + ' |')
        lines.append('|---|' + '---|' * len(ns))
        for setting, row in res['kl'].items():
            lines.append(f'| KL {setting} | ' + ' | '.join(f'{row[n]:.3g}' for n in ns) + ' |')
        for setting, row in res['kl'].items():
            if setting == 'vanilla':
                continue
            lines.append(f'| speed-up {setting} | ' + ' | '.join(speedup_cell(res['kl']['vanilla'], row[n], n)
                                                               for n in ns) + ' |')
    return '\n'.join(lines)


def summary(results):
    """One row per size and data model: the speed-up at the paper's budget (or 100) and the best over N."""
    lines = ['| size | data | budget N | alpha 2 | alpha 5 | alpha 10 | auto | best speed-up (setting, N) |',
             '|---|---|---|---|---|---|---|---|']
    for res in results.values():
        S, van = res['size'], res['kl']['vanilla']
        n = PAPER_BUDGET.get(S, 100)
        cells = [speedup_cell(van, res['kl'][k][n], n) for k in res['kl'] if k != 'vanilla']
        best = (0., '', 0)
        for k, row in res['kl'].items():
            if k == 'vanilla':
                continue
            for nn, v in row.items():
                nv, side = vanilla_equivalent(van, v)
                if not side and nv / nn > best[0]:
                    best = (nv / nn, k, nn)
        lines.append(f'| {S} | {res["model"]} | {n} | ' + ' | '.join(cells)
                     + f' | {best[0]:.2f} ({best[1]}, N={best[2]}) |')
    return '\n'.join(lines)


def threshold_summary(results, targets=(1e-2, 1e-3)):
    """Speed-up at equal quality: vanilla's iterations to reach KL <= target over each setting's."""
    head = ' | '.join(f'{k} @ KL {t:g}' for t in targets for k in ('alpha 5', 'alpha 10', 'auto'))
    lines = [f'| size | data | vanilla N @ KL {targets[0]:g} / {targets[1]:g} | {head} |',
             '|---|---|---|' + '---|' * (3 * len(targets))]
    for res in results.values():
        van = {n: v for n, v in res['kl']['vanilla'].items()}
        nv = [iterations_to_reach(van, t) for t in targets]
        cells = []
        for t, v in zip(targets, nv):
            for k in ('PDS alpha 5', 'PDS alpha 10', 'PDS auto'):
                ns = iterations_to_reach(res['kl'][k], t)
                cells.append('never' if ns is None else ('-' if v is None else f'{v / ns:.2f}'))
        fmt = ' / '.join('never' if v is None else f'{v:.0f}' for v in nv)
        lines.append(f'| {res["size"]} | {res["model"]} | {fmt} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=sorted(SCHEDULES))
    ap.add_argument('--models', nargs='+', default=['power law', 'dead leaves'])
    ap.add_argument('--iterations', type=int, nargs='+', default=list(ITERATIONS))
    ap.add_argument('--out', required=True, help='folder for gaussian.json and gaussian.md (resumable per size)')
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, 'gaussian.json')
    results = json.load(open(path)) if os.path.exists(path) else {}
    for S in a.sizes:
        if S not in SCHEDULES:
            print(f'error: size {S} has no official schedule here; expected one of {sorted(SCHEDULES)}', file=sys.stderr)
            return 2
        for model in a.models:
            key = f'{S} {model}'
            if key in results:
                continue
            t = time.perf_counter()
            P = power_law(S) if model == 'power law' else deadleaves_power(S, DEADLEAVES_IMAGES[S])
            stride = max(1, S // 128)
            kl = errors(P, S, a.iterations, stride=stride)
            save_entry(results, path, key, kl, t, size=S, model=model, stride=stride)
    int_keys(results)
    order = sorted(results.values(), key=lambda r: (r['size'], r['model']))
    results = {f'{r["size"]} {r["model"]}': r for r in order}
    text = ('# Exact-score (Gaussian) PC errors and PDS speed-ups against resolution\n\n'
            f'`python benchmarks/resolution_gaussian.py --out {a.out}`; CPU, {torch.get_num_threads()} threads, '
            f'torch {torch.__version__}. Speed-up = vanilla iterations needed for the same KL / PDS iterations '
            '(> x: PDS beats vanilla at 5000 iterations; < x: PDS is worse than vanilla at 10).\n\n'
            '## Summary: speed-up at the paper\'s budget (100 at 32 px, 166 at 256 px, 66 at 1024 px; 100 elsewhere)'
            '\n\n' + summary(results) + '\n\n## Speed-up at equal quality: vanilla iterations to reach a KL over '
            'PDS iterations to reach it (log-log interpolated; never: not reached by N = 2000 (5000 for vanilla))\n\n'
            + threshold_summary(results) + '\n\n## Per size\n' + tables(results) + '\n')
    with open(os.path.join(a.out, 'gaussian.md'), 'w') as fh:
        fh.write(text)
    print(summary(results))
    print(threshold_summary(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
