"""Does PDS pay on VP / DDPM models as images grow?  The exact answer for Gaussian data, from 32 to 1024 px.

    python benchmarks/resolution_vp.py --out results/resolution             # all sizes, both eps rules (~15 min)
    python benchmarks/resolution_vp.py --sizes 32 --out /tmp/res            # a quick look

The VP twin of benchmarks/resolution_gaussian.py (same data models: a pure 1/f^2 law and the measured dead-leaves
spectrum, per size, one channel), for the question the supplementary's §7 leaves open and Model D answers at 28 px
(docs/vp.md): is any preconditioned VP sampler faster than the vanilla ones, and does that change with resolution?
The data are centred (2 x - 1, as VP configs read them); the process is score_sde's VP SDE (beta 0.1 .. 20, 1,000
levels: its CIFAR-10 DDPM++ and its 256 px DDPM configs alike), so the schedule is the same at every size.  For data
that is Gaussian and diagonal in the DFT every VP update is affine, and the moment recursion (A5) of
``preconditioning/auto.py`` gives each sampler's exact output law (``vp_pc_moments``, ``ddpm_moments``,
``ddim_moments``; each tested against the real sampler in tests/sampling/test_vp_gaussian.py).  Error: the mean
over frequencies of KL(output || data law), as the VE benchmark.

Samplers at N steps (one score evaluation per step: NFE = N for all of them):

* ``PC``: score_sde's VP PC sampler as cifar10_ddpmpp_continuous runs it (Euler-Maruyama, no corrector, the last
  step's mean): vanilla; PDS with the statistics filter (Eq. 21-22 on log(1 + mean |fft2 x|^2) of the [0, 1] data,
  as ``--mode stats`` writes it) at alpha 5 in the official form carried over ((a): drift M M^T, prior and noise M)
  and in the marginal form ((b): drift (I + M M^T) / 2, noise M, prior N(0, I)); and automatic PDS (``AutoVPPC``).
* ``DDPM``: ancestral sampling on N steps of the SDE's own 1,000-level chain (``models.sde.VPTimeChain``): vanilla,
  (a) and (b) with the same filter.
* ``DDIM``: eta 0 on the same N steps (a probability-flow discretisation; it takes no PDS).

Smallest time (``--eps_rule``): ``fixed`` is score_sde's VP sampling eps = 1e-3 at every N (what a VP user runs);
``speed_up`` is the PDS command line's eps = 1e-3 x 1000 / N, which Model D's PC studies use.  DDPM / DDIM always end
on the chain's lowest level t = 1e-3.  Above 128 px every ``S // 128``-th frequency of each axis is used, as in the
VE benchmark.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.resolution_gaussian import deadleaves_power, int_keys, save_entry, spectrum  # noqa: E402
from evaluation.resolution import iterations_to_reach, power_law  # noqa: E402
from preconditioning import auto, normalised_inverse  # noqa: E402
from sampling.ddpm import chain_steps  # noqa: E402
from sampling.sde import VPSDE, VPTimeChain  # noqa: E402

SIZES = (32, 64, 128, 256, 1024)
BETA_MIN, BETA_MAX, NUM_SCALES, EPS = 0.1, 20., 1000, 1e-3
ITERATIONS = (10, 20, 50, 100, 200, 500, 1000)
PC_EXTRA = (2000, 5000)                   # vanilla PC beyond the chain's length, to place the others against it
ALPHA = 5.
DEADLEAVES_IMAGES = {32: 2000, 64: 1000, 128: 400, 256: 100, 1024: 24}
KL_TARGETS = (1e-2, 1e-3)
SAMPLERS = ('PC vanilla', 'PC (a) official alpha 5', 'PC (b) marginal alpha 5', 'PC auto',
            'DDPM vanilla', 'DDPM (a) official alpha 5', 'DDPM (b) marginal alpha 5', 'DDIM eta 0')
PDS_SAMPLERS = tuple(s for s in SAMPLERS if '(' in s or 'auto' in s)


def errors(P, S, iterations, eps_rule, stride=1, log=print):
    """{sampler: {N: KL}} for every sampler of the module docstring at each N."""
    stats = spectrum(P, S, stride)                                   # the [0, 1] data: what --mode stats reads
    r = normalised_inverse(stats.freq_statistic(S * S), ALPHA).double().numpy()
    table = lambda i, role: r                                        # noqa: E731
    spec = auto.Spectrum.gaussian(4. * P[::stride, ::stride][None])  # the centred data 2 x - 1: mean 0, variance 4 P
    chain = VPTimeChain(VPSDE(BETA_MIN, BETA_MAX, NUM_SCALES))
    out = {s: {} for s in SAMPLERS}
    for n in sorted(set(iterations) | set(PC_EXTRA)):
        t = time.perf_counter()
        sde = VPSDE(BETA_MIN, BETA_MAX, n)
        eps = EPS if eps_rule == 'fixed' else EPS * NUM_SCALES / n
        pc = lambda **kw: auto.kl(*auto.vp_pc_moments(spec, sde, eps, 'euler_maruyama', 'none', **kw), spec.P)  # noqa
        out['PC vanilla'][n] = pc()
        if n in PC_EXTRA:
            continue
        out['PC (a) official alpha 5'][n] = pc(filters=table)
        out['PC (b) marginal alpha 5'][n] = pc(filters=table, predictor_drift='marginal', exact_prior=True)
        schedule = auto.AutoVPPC(spec, sde, eps, 'euler_maruyama', 'none', 0.16, 1)
        out['PC auto'][n] = pc(filters=schedule.filter)
        if n <= NUM_SCALES:
            tau = chain_steps(NUM_SCALES, (), n)
            ddpm = lambda **kw: auto.kl(*auto.ddpm_moments(spec, chain, tau, 'beta', **kw), spec.P)  # noqa: E731
            out['DDPM vanilla'][n] = ddpm()
            out['DDPM (a) official alpha 5'][n] = ddpm(filters=table)
            out['DDPM (b) marginal alpha 5'][n] = ddpm(filters=table, predictor_drift='marginal', exact_prior=True)
            out['DDIM eta 0'][n] = auto.kl(*auto.ddim_moments(spec, chain, tau, 0.), spec.P)
        log(f'  {S} px, eps {eps_rule}, N = {n}: ' + ', '.join(f'{k} {v[n]:.3g}' for k, v in out.items() if n in v)
            + f' ({time.perf_counter() - t:.0f} s)')
    return out


def _at_first(kl, target):
    """Whether ``kl`` is already at ``target`` at its smallest N (then its iterations are an upper bound)."""
    return kl[min(kl)] <= target


def summary(results):
    """Per size, data model and eps rule: each sampler's iterations (= NFE) to reach each KL target, and the best
    PDS sampler's speed-up over vanilla PC and over the best vanilla sampler (PC, DDPM or DDIM)."""
    head = ' | '.join(SAMPLERS)
    lines = [f'| size | data | eps | KL target | {head} | best PDS vs vanilla PC | best PDS vs best vanilla |',
             '|---|---|---|---|' + '---|' * len(SAMPLERS) + '---|---|']
    for res in results.values():
        for target in KL_TARGETS:
            need = {s: iterations_to_reach(res['kl'][s], target) for s in SAMPLERS}
            bound = {s: _at_first(res['kl'][s], target) for s in SAMPLERS}
            cells = ['never' if v is None else ('<= ' if bound[s] else '') + f'{v:.0f}' for s, v in need.items()]
            pds = {s: v for s, v in need.items() if s in PDS_SAMPLERS and v is not None}
            vanilla = {s: v for s, v in need.items() if s not in PDS_SAMPLERS and v is not None}
            if pds:
                best = min(pds, key=pds.get)
                ge = '>= ' if bound[best] else ''            # the PDS count is an upper bound: the ratio a lower one
                vs_pc = (f'{ge}{need["PC vanilla"] / pds[best]:.2g}x' if need['PC vanilla']
                         else '> vanilla\'s range')
                vs_all = f'{ge}{min(vanilla.values()) / pds[best]:.2g}x ({min(vanilla, key=vanilla.get)})' if vanilla \
                    else 'no vanilla sampler reaches it'
                tail = [f'{vs_pc} ({best})', vs_all]
            else:
                tail = ['no PDS sampler reaches it', '—']
            lines.append(f'| {res["size"]} | {res["model"]} | {res["eps_rule"]} | {target:g} | '
                         + ' | '.join(cells) + ' | ' + ' | '.join(tail) + ' |')
    return '\n'.join(lines)


def tables(results):
    lines = []
    for res in results.values():
        lines.append(f'\n### {res["size"]} px, {res["model"]}, eps {res["eps_rule"]}\n')
        ns = [n for n in ITERATIONS if n in res['kl']['PC auto']]
        lines.append('| sampler | ' + ' | '.join(f'N={n}' for n in ns) + ' |')
        lines.append('|---|' + '---|' * len(ns))
        for s in SAMPLERS:
            lines.append(f'| {s} | ' + ' | '.join(f'{res["kl"][s][n]:.3g}' if n in res['kl'][s] else '—'
                                                   for n in ns) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=list(SIZES))
    ap.add_argument('--models', nargs='+', default=['power law', 'dead leaves'], choices=['power law', 'dead leaves'])
    ap.add_argument('--eps_rules', nargs='+', default=['fixed', 'speed_up'], choices=['fixed', 'speed_up'])
    ap.add_argument('--iterations', type=int, nargs='+', default=list(ITERATIONS))
    ap.add_argument('--out', required=True, help='folder for vp.json and vp.md (resumable per size, model and rule)')
    a = ap.parse_args(argv)
    bad = [s for s in a.sizes if s < 8]
    if bad:
        print(f'error: --sizes {bad[0]} is too small; expected image sides >= 8', file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, 'vp.json')
    results = json.load(open(path)) if os.path.exists(path) else {}
    for S in a.sizes:
        for model in a.models:
            P = None
            for rule in a.eps_rules:
                key = f'{S} {model} {rule}'
                if key in results:
                    continue
                t = time.perf_counter()
                if P is None:
                    P = power_law(S) if model == 'power law' else deadleaves_power(S, DEADLEAVES_IMAGES.get(S, 24))
                stride = max(1, S // 128)
                kl = errors(P, S, a.iterations, rule, stride=stride)
                save_entry(results, path, key, kl, t, size=S, model=model, eps_rule=rule, stride=stride)
    int_keys(results)
    order = sorted(results.values(), key=lambda r: (r['size'], r['model'], r['eps_rule']))
    results = {f'{r["size"]} {r["model"]} {r["eps_rule"]}': r for r in order}
    text = ('# Exact-score (Gaussian) VP samplers, vanilla and preconditioned, against resolution\n\n'
            f'`python benchmarks/resolution_vp.py --out {a.out}`; CPU, torch {torch.__version__}; see the script\'s '
            'docstring for the samplers. KL = mean over frequencies of KL(output || data law), exact (moment '
            'recursion). NFE = N for every sampler.\n\n'
            '## Iterations (= NFE) to reach a KL (log-log interpolated; never: not within N = 1000 (5000 for '
            'vanilla PC); <= 10: already there at the smallest N measured)\n\n' + summary(results)
            + '\n\n## KL against N\n' + tables(results) + '\n')
    with open(os.path.join(a.out, 'vp.md'), 'w') as fh:
        fh.write(text)
    print(summary(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
