"""FID against iterations, vanilla vs PDS, from a results CSV (``--results_csv`` of ``--mode eval``).

    python -m evaluation.plot results.csv fid.png [--metric kid] [--x nfe] [--only 'LABEL;...'] [--title "..."]

One panel per model (the ``model`` column: family, network, dataset, resolution); in each, one line per series (the
``label`` column, e.g. 'vanilla', 'PDS auto', 'edm'; rows without a label are 'vanilla' or 'PDS' by their ``pds``
column), a point per number of iterations (or NFE; the latest row wins where a setting was evaluated more than
once).  KID is drawn with its standard deviation over subsets (``kid_std``) as error bars where the rows have it.
"""
import argparse
import math
import os
import sys


def series_label(row):
    if row.get('label'):
        return row['label']
    return 'PDS' if str(row.get('pds', '')).lower() in ('true', '1', 'yes') else 'vanilla'


def _series(rows, metric, x='iterations', only=()):
    """{model: {label: [(x, value, error), ...] sorted}}, the latest row per (model, label, x); error is ``kid_std``
    for KID (0 where unknown) and 0 for FID."""
    latest = {}
    for row in rows:
        value = row.get(metric, '')
        if value in ('', None) or row.get(x, '') in ('', None):
            continue
        label = series_label(row)
        if only and label not in only:
            continue
        err = float(row['kid_std']) if metric == 'kid' and row.get('kid_std') not in ('', None) else 0.
        latest[(row['model'], label, int(float(row[x])))] = (float(value), err)
    out = {}
    for (model, kind, its), (value, err) in latest.items():
        out.setdefault(model, {}).setdefault(kind, []).append((its, value, err))
    for kinds in out.values():
        for points in kinds.values():
            points.sort()
    return out


def plot_results(csv_path, out_png, metric='fid', title=None, x='iterations', only=(), logx=True):
    """Draw ``metric`` ('fid' or 'kid') against ``x`` ('iterations' or 'nfe'), one line per series, from
    ``csv_path`` into ``out_png``.  Returns the series drawn ({model: {label: [(x, value, error)]}})."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from evaluation.results import read_csv
    series = _series(read_csv(csv_path), metric, x, only)
    if not series:
        raise ValueError(f'{csv_path!r} has no rows with a {metric} value')
    n = len(series)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    fixed = {'vanilla': dict(color='tab:gray', marker='o', linestyle='--'),
             'PDS': dict(color='tab:red', marker='s', linestyle='-')}
    labels = sorted({k for kinds in series.values() for k in kinds}, key=lambda k: (k not in fixed, k))
    cycle = [c for c in plt.rcParams['axes.prop_cycle'].by_key()['color'] if c not in ('#7f7f7f', '#d62728')]
    markers = 'sv^D<>pXh*'
    style = {k: fixed.get(k) or dict(color=cycle[i % len(cycle)], marker=markers[i % len(markers)], linestyle='-')
             for i, k in enumerate(k for k in labels if k not in fixed)}
    style.update({k: v for k, v in fixed.items()})
    for ax, (model, kinds) in zip(axes.flat, sorted(series.items())):
        for kind in labels:
            if kind in kinds:
                xs, ys, es = zip(*kinds[kind])
                if any(es):
                    ax.errorbar(xs, ys, yerr=es, label=kind, capsize=2, **style[kind])
                else:
                    ax.plot(xs, ys, label=kind, **style[kind])
        if logx:
            ax.set_xscale('log')
        ax.set_title(model, fontsize=9)
        ax.set_xlabel('NFE' if x == 'nfe' else 'iterations')
        ax.set_ylabel(metric.upper())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis('off')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(out_png))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return series


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m evaluation.plot', description=__doc__.split('\n\n')[0])
    parser.add_argument('csv', help='results CSV written by --mode eval --results_csv')
    parser.add_argument('out', help='output image (.png, .pdf, ...)')
    parser.add_argument('--metric', default='fid', choices=('fid', 'kid'))
    parser.add_argument('--title', default=None)
    parser.add_argument('--x', default='iterations', choices=('iterations', 'nfe'))
    parser.add_argument('--only', default='', help="';'-separated series labels to draw (default: all)")
    parser.add_argument('--linear', action='store_true', help='linear x axis (default: log)')
    args = parser.parse_args(argv)
    only = tuple(x.strip() for x in args.only.split(';') if x.strip())
    try:
        series = plot_results(args.csv, args.out, args.metric, args.title, args.x, only, not args.linear)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {args.out} ({sum(len(p) for k in series.values() for p in k.values())} points, {len(series)} models)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
