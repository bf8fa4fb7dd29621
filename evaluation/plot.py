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


_FIXED = {'vanilla': dict(color='tab:gray', marker='o', linestyle='--'),
          'PDS': dict(color='tab:red', marker='s', linestyle='-')}


def _styles(labels):
    """A line style per series label: vanilla grey dashed, PDS red, every other label its own colour (tab10,
    or tab20's dark then light shades beyond eight) and a marker."""
    import matplotlib
    free = [k for k in labels if k not in _FIXED]
    palette = matplotlib.colormaps['tab10'].colors
    if len(free) > 8:
        palette = matplotlib.colormaps['tab20'].colors[0::2] + matplotlib.colormaps['tab20'].colors[1::2]
    taken = {matplotlib.colors.to_hex(v['color']) for v in _FIXED.values()}
    cycle = [c for c in palette if matplotlib.colors.to_hex(c) not in taken]
    markers = 'sv^D<>pXh*'
    style = {k: dict(color=cycle[i % len(cycle)], marker=markers[i % len(markers)], linestyle='-')
             for i, k in enumerate(free)}
    style.update({k: v for k, v in _FIXED.items() if k in labels})
    return style


def plot_results(csv_path, out_png, metric='fid', title=None, x='iterations', only=(), logx=True, logy=False):
    """Draw ``metric`` ('fid' or 'kid') against ``x`` ('iterations' or 'nfe'), one line per series, from
    ``csv_path`` into ``out_png``.  Returns the series drawn ({model: {label: [(x, value, error)]}}).
    Up to four series the legend sits inside the axes; more go beside them, each series in its own colour."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from evaluation.results import read_csv
    series = _series(read_csv(csv_path), metric, x, only)
    if not series:
        raise ValueError(f'{csv_path!r} has no rows with a {metric} value')
    n = len(series)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    labels = sorted({k for kinds in series.values() for k in kinds}, key=lambda k: (k not in _FIXED, k))
    style = _styles(labels)
    outside = len(labels) > 4
    fig, axes = plt.subplots(rows, cols, figsize=((4.5 + 3.2 * outside) * cols, 3.6 * rows), squeeze=False)
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
        if logy:
            ax.set_yscale('log')
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(model, fontsize=9)
        ax.set_xlabel('NFE' if x == 'nfe' else 'iterations')
        ax.set_ylabel(metric.upper())
        ax.grid(alpha=0.3)
        if outside:
            ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        else:
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
    parser.add_argument('--logy', action='store_true', help='log y axis (for FIDs spanning decades)')
    args = parser.parse_args(argv)
    only = tuple(x.strip() for x in args.only.split(';') if x.strip())
    try:
        series = plot_results(args.csv, args.out, args.metric, args.title, args.x, only, not args.linear, args.logy)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {args.out} ({sum(len(p) for k in series.values() for p in k.values())} points, {len(series)} models)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
