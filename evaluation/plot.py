"""FID against iterations, vanilla vs PDS, from a results CSV (``--results_csv`` of ``--mode eval``).

    python -m evaluation.plot results.csv fid.png [--metric kid] [--title "..."]

One panel per model (the ``model`` column: family, network, dataset, resolution); in each, one line for vanilla
sampling and one for PDS, a point per number of iterations (the latest row wins where a setting was evaluated
more than once).
"""
import argparse
import math
import os
import sys


def _series(rows, metric):
    """{model: {'vanilla'|'PDS': [(iterations, value), ...] sorted}}, the latest row per (model, pds, iterations)."""
    latest = {}
    for row in rows:
        value = row.get(metric, '')
        if value in ('', None) or row.get('iterations', '') in ('', None):
            continue
        pds = str(row.get('pds', '')).lower() in ('true', '1', 'yes')
        latest[(row['model'], 'PDS' if pds else 'vanilla', int(float(row['iterations'])))] = float(value)
    out = {}
    for (model, kind, its), value in latest.items():
        out.setdefault(model, {}).setdefault(kind, []).append((its, value))
    for kinds in out.values():
        for points in kinds.values():
            points.sort()
    return out


def plot_results(csv_path, out_png, metric='fid', title=None):
    """Draw ``metric`` ('fid' or 'kid') against iterations, vanilla vs PDS, from ``csv_path`` into ``out_png``.
    Returns the series drawn ({model: {'vanilla'|'PDS': [(iterations, value)]}})."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from evaluation.results import read_csv
    series = _series(read_csv(csv_path), metric)
    if not series:
        raise ValueError(f'{csv_path!r} has no rows with a {metric} value')
    n = len(series)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    style = {'vanilla': dict(color='tab:gray', marker='o', linestyle='--'),
             'PDS': dict(color='tab:red', marker='s', linestyle='-')}
    for ax, (model, kinds) in zip(axes.flat, sorted(series.items())):
        for kind in ('vanilla', 'PDS'):
            if kind in kinds:
                xs, ys = zip(*kinds[kind])
                ax.plot(xs, ys, label=kind, **style[kind])
        ax.set_title(model, fontsize=9)
        ax.set_xlabel('iterations')
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
    args = parser.parse_args(argv)
    try:
        series = plot_results(args.csv, args.out, args.metric, args.title)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {args.out} ({sum(len(p) for k in series.values() for p in k.values())} points, {len(series)} models)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
