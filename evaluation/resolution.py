"""Does PDS pay more as images grow?  The speed-up-against-resolution table and plot (issue 28), from the committed
results: the learned models' study rows (``results/model_*/study.csv``), their curvature measurements
(``results/model_*/curvature.npz``, ``python -m evaluation.curvature --save``) and the exact-score benchmarks
(``results/resolution/gaussian.json``, ``empirical.json``).

    python -m evaluation.resolution --md results/resolution/speedup.md --png results/resolution/speedup.png

One row per model and size.  Columns:

* **speed-up of PDS at 50 / 100 iterations**: the iterations vanilla PC (ALD for Model A) needs to reach the quality
  of PDS at N = 50 / 100, over N.  Quality: KID for the learned models (interpolated linearly in KID against log
  iterations).  Not FID: FID's bias grows as the sample count falls, and vanilla's curve mixes 2,000-sample points
  (up to 100 iterations) with 500-sample ones (beyond), so a 2,000-sample PDS FID set against a 500-sample vanilla
  FID flatters PDS (Model A's automatic PDS at 100 iterations read 3.8x in FID, 1.7x in KID).  KID is unbiased at
  any count.  The exact KL for the Gaussian and the RMS distance to the nearest training
  image for the exact empirical score (both interpolated log-log).  "< 1x" is a slow-down: vanilla at fewer
  iterations is already as good; "> Kx": vanilla never gets there within its measured range (its best value is worse:
  for the exact Gaussian, a floor set by its smallest time, not a meaningful gap at KL ~1e-4).  Official PDS: the
  statistics filter at alpha 5 (Model A, NCSN: Table 1's radial filter); automatic PDS: ``pds.freq = 'auto'``.
* **best sampler within NFE 50 / 100 / 200** among the points measured (the rivals studies; the exact empirical
  score: PC variants and EDM stochastic): the lowest KID across sample counts (the exact rows: RMS), then the other
  samplers within one combined standard deviation of it (``≈``): a near-tie is named, not decided by noise.
* **curvature spread**: at the smallest noise level measured, the largest over the smallest radial-band median of the
  score's curvature c sigma^2 (``evaluation.curvature``: 1 is pure noise); the learned score's and, after the slash,
  the Gaussian model's (1 / (P + sigma^2) from the data's spectrum).  A frequency filter has something to correct
  only where this is well above 1.

Rows whose checkpoint or study rows are not there yet are listed as pending, with what they wait for.  Every learned
row names its checkpoint's sha256, its sample counts and the device of its rows.
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the learned rows: (row name, image side, curves study, rivals study, official PDS series label, curvature file)
LEARNED = (
    ('MNIST, Model A (NCSN, ALD)', 28, 'a_curves', 'a_rivals', 'PDS Table 1 (r=0.2H, λ=1.6)',
     'results/model_a/curvature.npz'),
    ('MNIST, Model B (NCSN++ VE, PC)', 28, 'b_curves', 'b_rivals', 'PDS stats α=5 (Table 2, 100 it)',
     'results/model_b/curvature.npz'),
    ('dead leaves, Model C32 (NCSN++ VE, PC)', 32, 'c32_curves', 'c32_rivals', 'PDS stats α=5 (Table 2, 100 it)',
     'results/model_c32/curvature.npz'),
    ('dead leaves, Model C64 (NCSN++ VE, PC)', 64, 'c64_curves', 'c64_rivals', 'PDS stats α=5 (Table 2, 100 it)',
     'results/model_c64/curvature.npz'),
    ('dead leaves, Model C128 (NCSN++ VE, PC)', 128, 'c128_curves', 'c128_rivals', 'PDS stats α=5 (Table 2, 100 it)',
     'results/model_c128/curvature.npz'),
)
AUTO_LABEL = 'PDS auto'
AT = (50, 100)                   # the PDS budgets of the speed-up columns
BUDGETS = (50, 100, 200)         # the NFE budgets of the best-sampler columns
# the exact Gaussian's columns: speed-up at equal KL (vanilla's N over PDS's N), not at PDS's quality at 50 / 100 it:
# from N = 50 both sit near KL floors (1e-4 .. 1e-9) whose differences are invisible and would read as > 100x
KL_TARGETS = (1e-2, 1e-3)
SIGMA_MIN = 0.01                 # score_sde's sigma_min: the level of the exact rows' curvature spread
# the paper's claims, as its PDS configs state them: num_scales / PDS iterations (configs/cifar10_pds.py,
# church_pds.py / bedroom_pds.py, ffhq_pds.py; supp. Table 3 reports 12x at 256 px and 29x at 1024 px in time)
PAPER = ((32, 1000 / 100), (256, 2000 / 166), (1024, 2000 / 66))


# ------------------------------------------------------------------------------------------------ interpolation
def vanilla_equivalent(curve, value, log_metric=True):
    """(N', side): the iterations at which vanilla's ``curve`` {N: metric} first reaches ``value`` (its running best,
    so a noisy rise does not count), interpolated between the two measured N around it in log N (and log metric if
    ``log_metric``, else the metric itself).  side '<': vanilla's first point is already better (N' is at most its
    first N); '>': vanilla never gets there (N' is beyond its last N); '' otherwise."""
    ns = sorted(n for n in curve if math.isfinite(curve[n]))
    if not ns:
        return None, '>'
    best = np.minimum.accumulate([curve[n] for n in ns])
    if value >= best[0]:
        return float(ns[0]), '<' if value > best[0] else ''
    if value < best[-1]:
        return float(ns[-1]), '>'
    j = int(np.argmax(best <= value))
    f = (lambda v: math.log(v)) if log_metric else (lambda v: v)
    y0, y1 = f(best[j - 1]), f(best[j])
    w = (y0 - f(value)) / (y0 - y1) if y1 != y0 else 1.
    return float(math.exp(math.log(ns[j - 1]) + w * (math.log(ns[j]) - math.log(ns[j - 1])))), ''


def iterations_to_reach(curve, target):
    """The smallest N (log-log interpolated between the measured N) at which ``curve`` {N: value} is <= ``target``;
    None if it never is."""
    ns = sorted(curve)
    for j, n in enumerate(ns):
        if curve[n] <= target:
            if j == 0:
                return float(n)
            n0, k0, k1 = ns[j - 1], curve[ns[j - 1]], curve[n]
            return float(math.exp(math.log(n0) + (math.log(target) - math.log(k0)) * (math.log(n) - math.log(n0))
                                  / (math.log(k1) - math.log(k0))))
    return None


def speedup(curve, value, n, log_metric=True):
    """(ratio or None, cell text) of PDS's ``value`` at ``n`` iterations against vanilla's ``curve``."""
    nv, side = vanilla_equivalent(curve, value, log_metric)
    if side == '<':
        return nv / n, f'< {nv / n:.2g}x'
    if side == '>':
        return nv / n, f'> {nv / n:.3g}x †'
    return nv / n, f'{nv / n:.2g}x ({nv:.0f} it)'


# ------------------------------------------------------------------------------------------------ curvature
def band_spread(c_sigma2, edges=None):
    """The largest over the smallest radial-band median of ``c_sigma2`` (C, H, W) (``evaluation.curvature``'s bands)."""
    from evaluation.curvature import BANDS, band_medians, radial_bands
    med = [m for m in band_medians(c_sigma2, 1., radial_bands(c_sigma2.shape, edges or BANDS)) if not math.isnan(m)]
    return max(med) / max(min(med), 1e-12)


def curvature_spread(path):
    """(learned spread, Gaussian-model spread, sigma, meta) at the smallest level of a ``curvature --save`` file."""
    with np.load(path) as z:
        sig, learned, gauss = z['sigmas'], z['learned'], z['gaussian']
        meta = json.loads(str(z['meta'])) if 'meta' in z.files else {}
    i = int(np.argmin(sig))
    s2 = float(sig[i]) ** 2
    return band_spread(learned[i] * s2), band_spread(gauss[i] * s2), float(sig[i]), meta


def power_law(S, var=1 / 12.):
    """Orthonormal per-frequency variance A / max(|k|, 1)^2 of an S x S image with pixel variance ``var``."""
    fy, fx = np.meshgrid(np.fft.fftfreq(S) * S, np.fft.fftfreq(S) * S, indexing='ij')
    k2 = np.maximum(np.hypot(fx, fy), 1.) ** 2
    return (var * S * S / np.sum(1. / k2)) / k2


def spread_text(learned, gauss):
    def fmt(v):
        return f'{v:.2g}x' if v < 100 else f'{v:.0f}x' if v < 1e4 else '> 10^4x'
    return ('—' if learned is None else fmt(learned)) + f' / {fmt(gauss)}'


# ------------------------------------------------------------------------------------------------ rows
def _best_cells(done, budgets=BUDGETS):
    """{budget: text}: the point with the lowest metric among ``done`` [(label, nfe, value, std)] within each NFE
    budget, across sample counts (the learned rows rank by KID, which is unbiased in the sample count: FID would set
    a 500-sample point against 2,000-sample ones), then ' ≈ ' the other samplers within one combined standard
    deviation of it (std 0: none), the closest first, at most two."""
    out = {}
    for b in budgets:
        within = [d for d in done if d[1] <= b and math.isfinite(d[2])]
        if not within:
            out[b] = '—'
            continue
        best, *rest = sorted(within, key=lambda d: (d[2], d[1]))
        ties, named = [], {best[0]}
        for d in rest:
            if d[0] not in named and d[3] and best[3] and d[2] - best[2] <= math.hypot(d[3], best[3]):
                ties.append(d)
                named.add(d[0])
        out[b] = ' ≈ '.join(f'{d[0]} ({d[1]:g})' for d in [best] + ties[:2])
    return out


def _sampler_name(label, sampler, its):
    """A rival table's point as the best-sampler cells name it: its label without the paper row it borrows the
    filter from ('PDS stats α=5 (Table 2, 100 it)' -> 'PDS stats α=5'), and the iterations of the iterative samplers
    (PC, annealed Langevin, DDPM), whose NFE alone does not say them: 'PDS stats α=5, 50 it'."""
    name = re.sub(r' \(Table \d+[^)]*\)', '', label)
    if str(sampler).split(':')[0] in ('pc', 'ald', 'ddpm') and str(its).isdigit():
        name += f', {its} it'
    return name


def _open_bracket(vanilla, nv, n, planned):
    """'' if vanilla's measured points around ``nv`` iterations are neighbours in its ``planned`` iterations; else the
    bounds they give, naming the vanilla points between them that are not run yet (the interpolation across such a
    gap is a guess: vanilla's quality can jump within it, as it does from 50 to 100 iterations on Model C32)."""
    below = [m for m in vanilla if m <= nv]
    above = [m for m in vanilla if m >= nv]
    if not below or not above:
        return ''
    lo, hi = max(below), min(above)
    missing = [m for m in planned if lo < m < hi]
    if not missing:
        return ''
    return f' [{lo / n:.2g}-{hi / n:.2g}x until vanilla {"/".join(map(str, missing))} it is run]'


def learned_row(name, side, curves_name, rivals_name, pds_label, curvature_path, root=ROOT):
    """One learned model's row (dict): its cells, the ratios for the plot, and where its numbers come from."""
    from evaluation.study_report import done_rows, row_at_any_count
    from studies import STUDIES
    from studies.spec import config_name
    curves, rivals = STUDIES[curves_name](), STUDIES[rivals_name]()
    ckpt = os.path.join(root, curves.model['checkpoint'])
    csv_path = os.path.join(root, curves.model['results'], 'study.csv')
    row = dict(name=name, side=side, kind='learned', ratios={}, cells={})
    if not os.path.isfile(ckpt):
        row['pending'] = f'not trained yet ({curves.model["checkpoint"]})'
        return row
    from utils.provenance import file_record
    sha = file_record(ckpt)['sha256']
    rows = done_rows(csv_path, sha)
    series = {}
    for p in curves.points:
        r = rows.get((config_name(curves, p), p.num_samples))
        if r is not None:
            series.setdefault(p.label, {})[int(r['iterations'])] = (float(r['kid']), int(r['num_samples']), r)
    vanilla = {n: v[0] for n, v in series.get('vanilla', {}).items()}
    from sampling import iterations
    from studies.spec import point_config
    planned = sorted(iterations(point_config(curves, p))[0] for p in curves.points if p.label == 'vanilla')
    for key, label in (('pds', pds_label), ('auto', AUTO_LABEL)):
        for n in AT:
            got = series.get(label, {}).get(n)
            if got is None or not vanilla:
                row['cells'][(key, n)] = 'pending'
                continue
            ratio, text = speedup(vanilla, got[0], n, log_metric=False)
            row['cells'][(key, n)] = text + _open_bracket(vanilla, ratio * n, n, planned)
            row['ratios'][(key, n)] = ratio
    done = []
    for p in rivals.points:
        r = row_at_any_count(rows, config_name(rivals, p), p.num_samples)
        if r is not None and r.get('nfe') not in ('', None):
            done.append((_sampler_name(p.label, r.get('sampler'), r.get('iterations')), float(r['nfe']),
                         float(r.get('kid') or 'nan'), float(r.get('kid_std') or 0)))
    # a rivals study not run to its end names the best of what is measured, and says so
    partial = f' ({len(done)} of {len(rivals.points)} points so far)' if len(done) < len(rivals.points) else ''
    for b, text in _best_cells(done).items():
        row['cells'][('best', b)] = (text + (partial if text != '—' else '')) if done else 'pending'
    if os.path.isfile(os.path.join(root, curvature_path)):
        lo, g, sig, meta = curvature_spread(os.path.join(root, curvature_path))
        stale = meta.get('checkpoint_sha256') not in (None, sha)
        row['cells']['curvature'] = spread_text(lo, g) + (f' (σ {sig:.2g})' + (', older checkpoint' if stale else ''))
    else:
        row['cells']['curvature'] = 'pending'
    used = [v[2] for s in series.values() for v in s.values()]
    counts = sorted({int(r['num_samples']) for r in used})
    devices = sorted({r.get('device') or '?' for r in used})
    row['source'] = (f'KID vs {rivals.model["ref"]}, '
                     f'{"/".join(map(str, counts)) or "no"} samples, '
                     f'{", ".join(devices) or "—"}, sha256 {sha[:12]}')
    if not used:
        row['pending'] = f'no study rows yet for checkpoint {sha[:12]} in {curves.model["results"]}/study.csv'
    return row


def gaussian_rows(path):
    """The exact Gaussian rows (the measured dead-leaves spectrum; a pure 1/f^2 law gives the same to two digits)."""
    with open(path) as f:
        data = json.load(f)
    out = []
    for key, res in data.items():
        if not key.endswith('dead leaves'):
            continue
        S = int(res['size'])
        kl = {k: {int(n): float(v) for n, v in d.items()} for k, d in res['kl'].items()}
        row = dict(name='exact score, Gaussian with the dead-leaves spectrum (at KL 0.01 / 0.001 ‡)', side=S,
                   kind='gaussian', ratios={}, cells={},
                   source=f'exact KL (moment recursion), {res.get("threads", "?")} CPU threads')
        for key2, label in (('pds', 'PDS alpha 5'), ('auto', 'PDS auto')):
            for n, target in zip(AT, KL_TARGETS):
                n_pds = iterations_to_reach(kl[label], target)
                nv, side = vanilla_equivalent(kl['vanilla'], target)
                if n_pds is None or side:
                    row['cells'][(key2, n)] = '—'
                    continue
                row['cells'][(key2, n)] = f'{nv / n_pds:.2g}x ({nv:.0f} / {n_pds:.0f} it)'
                row['ratios'][(key2, n)] = nv / n_pds
        for b in BUDGETS:            # PC variants only (NFE 2N): no rival samplers in the recursion
            within = {lab: min(v for n, v in d.items() if 2 * n <= b) for lab, d in kl.items()
                      if lab in ('vanilla', 'PDS alpha 5', 'PDS alpha 10', 'PDS auto') and any(2 * n <= b for n in d)}
            row['cells'][('best', b)] = f'{min(within, key=within.get)} (PC only)' if within else '—'
        P = power_law(S)
        row['cells']['curvature'] = spread_text(None, band_spread(SIGMA_MIN ** 2 / (P[None] + SIGMA_MIN ** 2))) + \
            f' (σ {SIGMA_MIN:g})'
        out.append(row)
    return sorted(out, key=lambda r: r['side'])


def empirical_rows(path):
    """The exact empirical-score rows (RMS distance to the nearest training image)."""
    with open(path) as f:
        data = json.load(f)
    by_size = {}
    for r in data.values():
        by_size.setdefault(int(r['size']), {}).setdefault(r['sampler'], {})[int(r['iterations'])] = r
    out = []
    for S, samplers in sorted(by_size.items()):
        val = {s: {n: float(r['nearest_rms']) for n, r in d.items()} for s, d in samplers.items()}
        nums = sorted({int(r['num']) for d in samplers.values() for r in d.values()})
        row = dict(name='exact score of 1,000 dead leaves (RMS to nearest)', side=S, kind='empirical', ratios={},
                   cells={}, source=f'{"/".join(map(str, nums))} samples, CPU, one seed')
        for key, label in (('pds', 'PDS alpha 5'), ('auto', 'PDS auto')):
            for n in AT:
                if n not in val.get(label, {}):
                    row['cells'][(key, n)] = '—'
                    continue
                ratio, text = speedup(val['vanilla'], val[label][n], n)
                row['cells'][(key, n)], row['ratios'][(key, n)] = text, ratio
        done = [(s, float(r['nfe']), float(r['nearest_rms']), 0.) for s, d in samplers.items()
                for r in d.values()]
        row['cells'].update({('best', b): t for b, t in _best_cells(done).items()})
        row['cells']['curvature'] = '—'
        out.append(row)
    return out


def all_rows(root=ROOT):
    rows = [learned_row(*spec, root=root) for spec in LEARNED]
    res = os.path.join(root, 'results', 'resolution')
    if os.path.isfile(os.path.join(res, 'gaussian.json')):
        rows += gaussian_rows(os.path.join(res, 'gaussian.json'))
    if os.path.isfile(os.path.join(res, 'empirical.json')):
        rows += empirical_rows(os.path.join(res, 'empirical.json'))
    return rows


# ------------------------------------------------------------------------------------------------ outputs
def table(rows):
    head = ('| model | side | official PDS @ 50 it | @ 100 it | automatic PDS @ 50 it | @ 100 it | best within NFE 50 | '
            'NFE 100 | NFE 200 | curvature spread (learned / Gaussian model) | numbers from |')
    lines = [head, '|' + '---|' * 11]
    for r in rows:
        if r.get('pending') and not r['cells']:
            lines.append(f'| {r["name"]} | {r["side"]} | ' + ' | '.join(['pending'] * 8) + f' | {r["pending"]} |')
            continue
        c = r['cells']
        cells = [c.get(('pds', 50)), c.get(('pds', 100)), c.get(('auto', 50)), c.get(('auto', 100)),
                 c.get(('best', 50)), c.get(('best', 100)), c.get(('best', 200)), c.get('curvature')]
        lines.append(f'| {r["name"]} | {r["side"]} | ' + ' | '.join(x or '—' for x in cells) +
                     f' | {r.get("pending") or r.get("source", "")} |')
    lines += ['', NOTES]
    return '\n'.join(lines) + '\n'


NOTES = ('Speed-up at N: the iterations vanilla needs to reach the quality of PDS at N, over N (in brackets: those '
         'iterations), at equal KID for the learned rows (unbiased in the sample count, so the 500-sample vanilla points '
         'beyond 100 iterations compare with 2,000-sample ones; FID would not); < 1x: PDS is worse than vanilla at the '
         'same N; [a-bx until vanilla N it is run]: vanilla\'s measured points around the reading are not neighbours in '
         'its study, so the interpolation is a guess and a-b are the bounds they give. † vanilla never reaches it '
         'within its measured '
         'range (its best is worse): for the exact Gaussian this is its KL floor (~1e-4, from sigma_min), a bound and '
         'not a visible difference. ‡ the exact Gaussian rows give the speed-up at equal KL 0.01 / 0.001 instead (vanilla '
         'iterations / PDS iterations to reach it): from 50 iterations both samplers sit at KL floors of 1e-4 to 1e-9 '
         '(docs/resolution.md, 2a). Best sampler: the lowest KID (exact rows: KL or RMS) within the NFE budget, '
         'across sample counts, in brackets its NFE, then (≈) the other samplers within one combined standard '
         'deviation of its KID; (k of M points so far): the model\'s rivals study is part way, so it is the best of those '
         'measured (a point counts as measured at any sample count, e.g. the curves study\'s 2,000-sample run of a '
         'PC setting the rivals study plans on 500). Curvature spread: largest / smallest radial-band median of c sigma^2 at the smallest '
         'sigma (learned / Gaussian model); ~1x: isotropic, nothing for a frequency filter to correct. '
         '`python -m evaluation.resolution` (evaluation/resolution.py says where each number comes from).')


def plot(rows, png):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 4.5))
    # (kind, the budget column, marker, line, legend): the learned models at 50 and at 100 PDS iterations, the exact
    # Gaussian at equal KL 0.001 (its 100 column, KL_TARGETS), the exact empirical score at 50
    series = (('learned', 50, 'o', '-', '@ 50 it, learned'), ('learned', 100, 'D', '-.', '@ 100 it, learned'),
              ('gaussian', 100, 's', '--', 'at equal KL 0.001, exact Gaussian'),
              ('empirical', 50, '^', ':', '@ 50 it, exact empirical'))
    for kind, at, marker, ls, name in series:
        for key, colour, what in (('pds', 'C0', 'official PDS'), ('auto', 'C1', 'automatic PDS')):
            labelled = False
            for family in dict.fromkeys(r['name'].split(',')[0] for r in rows if r['kind'] == kind):
                pts = sorted((r['side'], r['ratios'][(key, at)], '†' in r['cells'][(key, at)]) for r in rows
                             if r['kind'] == kind and r['name'].split(',')[0] == family and (key, at) in r['ratios'])
                if not pts:
                    continue
                xs, ys, bound = zip(*pts)
                one_model = len(set(xs)) == len(xs)      # the same data at several sizes: a line; else points
                ax.plot(xs, ys, ls=ls if one_model else 'none', marker=marker, color=colour,
                        label=None if labelled else f'{what} {name}')
                labelled = True
                for x, y, b in pts:       # a bound (vanilla never got there): open marker
                    if b:
                        ax.plot([x], [y], marker=marker, color=colour, mfc='white', ls='none')
    ax.plot(*zip(*PAPER), marker='*', ms=12, ls='none', color='C3', label="paper's claim (its configs)")
    ax.axhline(1, color='grey', lw=0.8)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('image side (px)')
    ax.set_ylabel('speed-up at equal quality (vanilla it / PDS it)')
    ax.set_title('PDS speed-up against resolution (open: a bound)')
    ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))   # outside: no point hidden
    fig.tight_layout()
    from utils.atomic import atomic_write
    atomic_write(png, lambda tmp: fig.savefig(tmp, dpi=120, format='png'))
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--md', default='', help='write the table here (default: print it)')
    p.add_argument('--png', default='', help='draw the plot of speed-up against image side here')
    args = p.parse_args(argv)
    try:
        rows = all_rows()
    except (OSError, ValueError, KeyError) as e:
        print(f'error: cannot read the results: {e}', file=sys.stderr)
        return 2
    text = table(rows)
    if args.md:
        from utils.atomic import atomic_write_text
        atomic_write_text(args.md, text)
        print(f'wrote {args.md}')
    else:
        print(text, end='')
    if args.png:
        plot(rows, args.png)
        print(f'wrote {args.png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
