"""FID against iterations, vanilla vs PDS, from a results CSV (``--results_csv`` of ``--mode eval``).

    python -m evaluation.plot results.csv fid.png [--metric kid] [--x nfe] [--only 'LABEL;...'] [--title "..."]
        [--features inception] [--checkpoint <sha256 prefix>] [--num_samples N]

One panel per model (the ``model`` column: family, network, dataset, resolution); in each, one line per series (the
``label`` column, e.g. 'vanilla', 'PDS auto', 'edm'; rows without a label are 'vanilla' or 'PDS' by their ``pds``
column), a point per number of iterations (or NFE; the latest row wins where a setting was evaluated more than
once).  KID is drawn with its standard deviation over subsets (``kid_std``) as error bars where the rows have it.

A series never mixes rows of different sample counts, feature extractors (and Clean-FID modes) or checkpoints
(sha256): FID is biased by the sample count and stand-in features are not Inception's, so such rows are separate
series, whose labels name what differs ('vanilla, 2000 samples', 'vanilla, 500 samples'); what the panel's rows
share is in its title.  ``--features`` / ``--checkpoint`` / ``--num_samples`` keep only the rows of one.
"""
import argparse
import math
import os
import sys


def series_label(row):
    if row.get('label'):
        return row['label']
    return 'PDS' if str(row.get('pds', '')).lower() in ('true', '1', 'yes') else 'vanilla'


def row_group(row):
    """(sample count, feature extractor [+ non-clean mode], checkpoint sha256[:8]) of a row: rows of one series
    share all three."""
    feats = str(row.get('features') or '?')
    if row.get('fid_mode') not in ('', None, 'clean'):
        feats += f" {row['fid_mode']}"
    return str(row.get('num_samples') or '?'), feats, (row.get('checkpoint_sha256') or '')[:8] or '?'


def _part(i, value):
    return (f'{value} samples', value, f'checkpoint {value}')[i]


def _series_info(rows, metric, x='iterations', only=(), features=None, checkpoint=None, num_samples=None):
    """({model: {series name: (label, group, [(x, value, error), ...] sorted)}}, {model: what its rows share}): the
    latest row per (model, label, group, x) (:func:`row_group`); a series name is the label plus the parts of the
    group that differ within the model's panel.  error is ``kid_std`` for KID (0 where unknown) and 0 for FID."""
    latest = {}
    for row in rows:
        value = row.get(metric, '')
        if value in ('', None) or row.get(x, '') in ('', None):
            continue
        if features and row.get('features') != features:
            continue
        if checkpoint and not (row.get('checkpoint_sha256') or '').startswith(checkpoint):
            continue
        if num_samples and str(row.get('num_samples')) != str(num_samples):
            continue
        label = series_label(row)
        if only and label not in only:
            continue
        err = float(row['kid_std']) if metric == 'kid' and row.get('kid_std') not in ('', None) else 0.
        latest[(row['model'], label, row_group(row), int(float(row[x])))] = (float(value), err)
    groups = {}
    for model, _, group, _ in latest:
        groups.setdefault(model, set()).add(group)
    varying = {m: [i for i in range(3) if len({g[i] for g in gs}) > 1] for m, gs in groups.items()}
    shared = {m: ', '.join(_part(i, next(iter(gs))[i]) for i in range(3) if i not in varying[m])
              for m, gs in groups.items()}
    out = {}
    for (model, label, group, its), (value, err) in latest.items():
        name = label + ''.join(f', {_part(i, group[i])}' for i in varying[model])
        out.setdefault(model, {}).setdefault(name, (label, group, []))[2].append((its, value, err))
    for kinds in out.values():
        for _, _, points in kinds.values():
            points.sort()
    return out, shared


def _series(rows, metric, x='iterations', only=(), **filters):
    """{model: {series name: [(x, value, error), ...] sorted}} (:func:`_series_info`)."""
    info, _ = _series_info(rows, metric, x, only, **filters)
    return {m: {name: pts for name, (_, _, pts) in kinds.items()} for m, kinds in info.items()}


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


def plot_results(csv_path, out_png, metric='fid', title=None, x='iterations', only=(), logx=True, logy=False,
                 features=None, checkpoint=None, num_samples=None):
    """Draw ``metric`` ('fid' or 'kid') against ``x`` ('iterations' or 'nfe'), one line per series, from
    ``csv_path`` into ``out_png``; ``features`` / ``checkpoint`` (a sha256 prefix) / ``num_samples`` keep only those
    rows.  Returns the series drawn ({model: {series name: [(x, value, error)]}}; module docstring: a series never
    mixes sample counts, feature extractors or checkpoints).  Up to four series the legend sits inside the axes;
    more go beside them, each label in its own colour (its variants of another count / extractor / checkpoint in
    other line styles)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from evaluation.results import read_csv
    info, shared = _series_info(read_csv(csv_path), metric, x, only, features=features, checkpoint=checkpoint,
                                num_samples=num_samples)
    series = {m: {name: pts for name, (_, _, pts) in kinds.items()} for m, kinds in info.items()}
    if not series:
        rows = read_csv(csv_path)
        present = sorted({series_label(r) for r in rows})
        if only and rows and not set(only) & set(present):
            shown = '; '.join(present[:8]) + (f'; ... ({len(present)} in all)' if len(present) > 8 else '')
            raise ValueError(f'{csv_path!r} has no rows labelled {"; ".join(only)!r} (--only takes \';\'-separated '
                             f'labels); its labels: {shown or "none"}')
        raise ValueError(f'{csv_path!r} has no rows with a {metric} value' +
                         (' among those asked for' if only or features or checkpoint or num_samples else ''))
    n = len(series)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    labels = sorted({label for kinds in info.values() for label, _, _ in kinds.values()},
                    key=lambda k: (k not in _FIXED, k))
    style = _styles(labels)
    names = sorted({name for kinds in info.values() for name in kinds})
    outside = len(names) > 4
    dashes = ('-', '--', ':', '-.')
    fig, axes = plt.subplots(rows, cols, figsize=((4.5 + 3.2 * outside) * cols, 3.6 * rows), squeeze=False)
    for ax, (model, kinds) in zip(axes.flat, sorted(info.items())):
        order = sorted(kinds, key=lambda k: (labels.index(kinds[k][0]), kinds[k][1]))
        variants = {}
        for name in order:
            label, group, points = kinds[name]
            k = variants.setdefault(label, [])
            k.append(name)
            line = dict(style[label])
            if len(k) > 1:                   # another count / extractor / checkpoint of the same label
                line['linestyle'] = dashes[(len(k) - 1) % len(dashes)]
                line['markerfacecolor'] = 'none'
            xs, ys, es = zip(*points)
            if any(es):
                ax.errorbar(xs, ys, yerr=es, label=name, capsize=2, **line)
            else:
                ax.plot(xs, ys, label=name, **line)
        if logx:
            ax.set_xscale('log')
        if logy:
            ax.set_yscale('log')
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(model + (f'\n{shared[model]}' if shared.get(model) else ''), fontsize=9)
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
    parser.add_argument('--features', default=None, help='only rows of this feature extractor (inception, standin)')
    parser.add_argument('--checkpoint', default=None, help='only rows of the checkpoint whose sha256 starts so')
    parser.add_argument('--num_samples', type=int, default=None, help='only rows of this sample count')
    args = parser.parse_args(argv)
    only = tuple(x.strip() for x in args.only.split(';') if x.strip())
    try:
        series = plot_results(args.csv, args.out, args.metric, args.title, args.x, only, not args.linear, args.logy,
                              args.features, args.checkpoint, args.num_samples)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {args.out} ({sum(len(p) for k in series.values() for p in k.values())} points in '
          f'{sum(len(k) for k in series.values())} series, {len(series)} models; a series is one label at one sample '
          'count, feature extractor and checkpoint)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
