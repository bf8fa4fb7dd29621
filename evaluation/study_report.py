"""The tables and plots of the measurement studies (``studies/``): their rows in a results CSV as markdown tables
(``--summary`` of ``python -m evaluation.study``) and the heat map of a map study (``--plot``).

Each table uses only the rows of one checkpoint and one feature extractor (:func:`done_rows`), each point at its own
sample count (a point is its config *and* its count), and says which rows it used (its last line, ``Rows: ...``).
The table of a study is its ``Study.table``: ``'curves'`` (:func:`summary`: series x iterations, and how many
iterations vanilla needs to match each PDS series at 20), ``'map'`` (:func:`map_summary`: high-frequency gain x
step_lr) or ``'rivals'`` (:func:`rivals_summary`: one line per point, the best sampler per NFE budget).
"""
import math
import os

from evaluation.results import read_csv
from studies.spec import Study, config_name, gain_label


def kid_text(kid, std):
    """'0.673 ± 0.003', '0.0042 ± 0.0007': KID and its standard deviation to the standard deviation's first
    significant digit (at least 3 decimals), so small KIDs keep their precision."""
    kid, std = float(kid), float(std or 0)
    places = max(3, -math.floor(math.log10(std))) if std > 0 else 3
    return f'{kid:.{places}f} ± {std:.{places}f}'


def done_rows(csv_path, sha256, features='inception'):
    """{(config, num_samples): row} of the CSV rows made with the checkpoint of hash ``sha256`` and the ``features``
    extractor: a stand-in row never counts as (or replaces) an Inception one, nor a row of another checkpoint.  A
    point of a study is done when ``(config_name(study, point), point.num_samples)`` is one of its keys."""
    if not os.path.isfile(csv_path):
        return {}
    return _by_point(r for r in read_csv(csv_path)
                     if r.get('checkpoint_sha256') == sha256 and r.get('fid') not in ('', None)
                     and r.get('features') == features)


def iterations_to_match(curve, target):
    """The iterations at which a decreasing FID ``curve`` [(iterations, fid), ...] first reaches ``target``,
    interpolating linearly in (log iterations, FID) between the two points around it; None if it never does,
    the first iteration count if it starts below."""
    pts = sorted((its, fid) for its, fid in curve if math.isfinite(fid))
    for k, (its, fid) in enumerate(pts):
        if fid <= target:
            if k == 0:
                return float(its)
            (i0, f0), (i1, f1) = pts[k - 1], (its, fid)
            w = (f0 - target) / (f0 - f1)
            return float(math.exp(math.log(i0) + w * (math.log(i1) - math.log(i0))))
    return None


def _by_point(rows):
    """{(config, num_samples): row}: a point is its config *and* its sample count (a 1,000-sample row of the same
    config is another point and never stands in for a 2,000-sample one)."""
    return {(r['config'], int(r['num_samples'])): r for r in rows}


def _rows_line(rows, more=''):
    """'Rows: inception features (clean), checkpoint sha256 <12 hex>, reference <spec>[; more].': which rows a table
    was made of (they are filtered by :func:`done_rows`; this says so in the table itself)."""
    if not rows:
        return 'Rows: none done yet.'

    def values(key, width=None):
        return ', '.join(sorted({(r.get(key) or '?')[:width] for r in rows}))
    feats = ', '.join(sorted({f"{r.get('features') or '?'} features ({r.get('fid_mode') or '?'})" for r in rows}))
    return (f"Rows: {feats}, checkpoint sha256 {values('checkpoint_sha256', 12)}, reference {values('reference')}"
            + (f'; {more}' if more else '') + '.')


def _counts_by_column(cells):
    """'2000 samples per point at 10-100 iterations, 500 at 200-1000' where the columns of a table differ in their
    sample count ('' when every point has one count): each column is one count, which this names."""
    by_its = {}
    for (_, its), cell in cells.items():
        by_its.setdefault(its, set()).add(cell[2])
    if len({c for counts in by_its.values() for c in counts}) < 2:
        return ''
    groups = []
    for its in sorted(by_its):
        key = '/'.join(map(str, sorted(by_its[its])))
        if groups and groups[-1][0] == key:
            groups[-1][2] = its
        else:
            groups.append([key, its, its])
    spans = [(key, f'{lo}-{hi}' if hi != lo else f'{lo}') for key, lo, hi in groups]
    return f'{spans[0][0]} samples per point at {spans[0][1]} iterations' + ''.join(
        f', {key} at {span}' for key, span in spans[1:])


def summary(study, rows):
    """Markdown: the study's rows as a table (series x iterations: FID, KID +- std), and for ``a_curves`` the
    iterations vanilla needs to reach each PDS series' FID at 20 iterations; last, which rows it used."""
    by_point = _by_point(rows)
    cells, series, its_all, used = {}, [], [], []
    for p in study.points:
        row = by_point.get((config_name(study, p), p.num_samples))
        if row is None:
            continue
        its = int(row['iterations'])
        if p.label not in series:
            series.append(p.label)
        if its not in its_all:
            its_all.append(its)
        kid = '' if row.get('kid') in ('', None) else f"<br>{kid_text(row['kid'], row.get('kid_std'))}"
        cells[(p.label, its)] = (float(row['fid']), f"{float(row['fid']):.1f}{kid}", int(row['num_samples']))
        used.append(row)
    its_all.sort()
    head = '| series | ' + ' | '.join(f'{i} it' for i in its_all) + ' |'
    lines = [head, '|' + '---|' * (len(its_all) + 1)]
    for label in series:
        lines.append(f'| {label} | ' + ' | '.join(cells.get((label, i), (0, '—', 0))[1] for i in its_all) + ' |')
    counts = sorted({c[2] for c in cells.values()})
    lines.append('')
    lines.append(f'FID, and KID ± its standard deviation over 100 subsets; {"/".join(map(str, counts))} samples '
                 'per point.')
    vanilla = [(i, cells[('vanilla', i)][0]) for i in its_all if ('vanilla', i) in cells]
    for label in series:
        if label == 'vanilla' or (label, 20) not in cells or not vanilla:
            continue
        target = cells[(label, 20)][0]
        need = iterations_to_match(vanilla, target)
        if need is not None and need <= 20:
            lines.append(f'- vanilla reaches the FID of {label} at 20 iterations ({target:.1f}) in 20 iterations or '
                         'fewer: no speed-up.')
            continue
        said = f'about {need:.0f} iterations ({need / 20:.1f}x)' if need else \
            f'more than the {max(i for i, _ in vanilla)} measured'
        lines.append(f'- vanilla needs {said} to reach the FID of {label} at 20 iterations ({target:.1f}).')
    lines += ['', _rows_line(used, _counts_by_column(cells))]
    return '\n'.join(lines) + '\n'


RIVAL_BUDGETS = Study.budgets          # the default NFE budgets of a rivals table (a study may name others)


def rivals_summary(study, rows):
    """Markdown for a rivals study: one line per point done (sampler, setting, NFE, FID, KID +- std, samples),
    ordered by sampler then NFE, and for each NFE budget the sampler with the lowest FID among the points that
    used at most that many evaluations (same sample count only: FID is biased by the count), for the study's
    budgets (``Study.budgets``; :data:`RIVAL_BUDGETS` by default).  An adaptive solver's NFE is what its batches used
    (mean per sample)."""
    by_point = _by_point(rows)
    done, used = [], []
    for p in study.points:
        row = by_point.get((config_name(study, p), p.num_samples))
        if row is None:
            continue
        used.append(row)
        nfe = float(row['nfe']) if row.get('nfe') not in ('', None) else math.nan
        kid = float(row['kid']) if row.get('kid') not in ('', None) else None
        done.append((p, nfe, float(row['fid']), kid, float(row.get('kid_std') or 0), int(row['num_samples'])))
    labels = list(dict.fromkeys(p.label for p, *_ in done))
    done.sort(key=lambda d: (labels.index(d[0].label), d[1]))
    lines = ['| sampler | point | NFE | FID | KID | samples |', '|---|---|---|---|---|---|']
    for p, nfe, fid, kid, kid_std, n in done:
        nfe_txt = '?' if math.isnan(nfe) else f'{nfe:g}'
        fid_txt = 'diverged' if math.isinf(fid) else f'{fid:.1f}'
        kid_txt = '' if kid is None else kid_text(kid, kid_std)
        lines.append(f'| {p.label} | {p.name} | {nfe_txt} | {fid_txt} | {kid_txt} | {n} |')
    lines.append('')
    for budget in study.budgets:
        within = [d for d in done if d[1] <= budget and math.isfinite(d[2])]
        for n in sorted({d[5] for d in within}):
            best = min((d for d in within if d[5] == n), key=lambda d: d[2])
            lines.append(f'- at most {budget} NFE ({n} samples): best {best[0].label} ({best[0].name}, NFE '
                         f'{best[1]:g}): FID {best[2]:.1f}')
    lines += ['', _rows_line(used)]
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------------------------

def _map_cells(study, rows):
    """{(gain, step_lr): row} of a map study's points (their ``Point.cell``) that have a row."""
    by_point = _by_point(rows)
    cells = {}
    for p in study.points:
        row = by_point.get((config_name(study, p), p.num_samples))
        if row is not None:
            cells[p.cell] = row
    return cells


def _map_axes(study):
    """(gains, step sizes) of a map study: every value its points' cells take, ascending."""
    return sorted({p.cell[0] for p in study.points}), sorted({p.cell[1] for p in study.points})


def _cell_counts(cells):
    """'1000' (or '1000/2000' where cells differ): the sample counts of the map's own cells."""
    return '/'.join(map(str, sorted({int(r['num_samples']) for r in cells.values()})))


def map_summary(study, rows):
    """Markdown: a map study's rows as gain (rows) x step_lr (columns): FID / KID +- std; the best
    cell of each row in bold."""
    gains, steps = _map_axes(study)
    gains = sorted(gains, key=lambda g: (g != 1, g < 1, abs(math.log(g))))
    cells = _map_cells(study, rows)
    lines = ['| high-frequency gain | ' + ' | '.join(f'step_lr {s:g}' for s in steps) + ' |',
             '|' + '---|' * (len(steps) + 1)]
    for g in gains:
        done = {s: float(cells[(g, s)]['fid']) for s in steps if (g, s) in cells}
        best = min(done.values()) if done else None
        out = []
        for s in steps:
            if s not in done:
                out.append('—')
                continue
            r = cells[(g, s)]
            txt = 'diverged' if math.isinf(done[s]) else (
                f"{done[s]:.1f} / {kid_text(r['kid'], r.get('kid_std'))}"
                if r.get('kid') not in ('', None) else f'{done[s]:.1f}')
            out.append(f'**{txt}**' if done[s] == best and math.isfinite(best) else txt)
        lines.append(f'| {gain_label(g)} | ' + ' | '.join(out) + ' |')
    lines += ['', f'FID / KID ± its standard deviation over 100 subsets at 20 iterations; '
                  f'{_cell_counts(cells)} samples per cell; bold: the best step size of each row.',
              '', _rows_line(list(cells.values()))]
    return '\n'.join(lines) + '\n'


def plot_map(study, rows, out_png, metric='fid'):
    """Heat map of ``metric`` over gain (rows) x step_lr (columns) of a map study's rows."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    gains, steps = _map_axes(study)
    grid = np.full((len(gains), len(steps)), np.nan)
    cells = _map_cells(study, rows)
    for (gain, step), row in cells.items():
        grid[gains.index(gain), steps.index(step)] = float(row[metric]) if row[metric] not in ('', None) else \
            (math.inf if math.isinf(float(row['fid'])) else math.nan)
    fig, ax = plt.subplots(figsize=(1.2 * len(steps) + 2, 0.7 * len(gains) + 1.6))
    finite = grid[np.isfinite(grid)]
    shown = np.where(np.isfinite(grid), grid, np.nan)
    im = ax.imshow(shown, cmap='viridis_r', aspect='auto')
    for (i, j), v in np.ndenumerate(grid):
        if math.isinf(v):
            ax.text(j, i, 'diverged', ha='center', va='center', fontsize=7, color='tab:red')
        elif not math.isnan(v):
            ax.text(j, i, f'{v:.0f}' if metric == 'fid' else f'{v:.3f}', ha='center', va='center', fontsize=8,
                    color='white' if finite.size and v > np.mean(finite) else 'black')
    ax.set_xticks(range(len(steps)), [f'{s:g}' for s in steps])
    ax.set_yticks(range(len(gains)), [gain_label(g) for g in gains])
    ax.set_xlabel('step_lr')
    ax.set_ylabel('high-frequency gain')
    feats = '/'.join(sorted({str(r.get('features') or '?') for r in cells.values()}))
    ax.set_title(f'{metric.upper()} at 20 iterations, Model A ({_cell_counts(cells)} samples per cell, {feats} '
                 'features)', fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


TABLES = {'curves': summary, 'map': map_summary, 'rivals': rivals_summary}


def report(study, rows):
    """The markdown table of ``study`` (its ``Study.table``) made of ``rows`` (:func:`done_rows`' values); with no
    rows, only the line saying so (not an empty table)."""
    points = {(config_name(study, pt), pt.num_samples) for pt in study.points}
    if not any(key in points for key in _by_point(rows)):
        return _rows_line([]) + '\n'
    return TABLES[study.table](study, rows)


def row_at_any_count(rows, config, num_samples):
    """The row of ``config`` at ``num_samples`` in ``rows`` ({(config, num_samples): row}), else its row at the
    largest other sample count (None if it has none).  The best-sampler cells rank by KID, which is unbiased in the
    sample count, so a rivals point measured at another count (e.g. the curves study's 2,000-sample run of the same
    PC setting, where the rivals study plans 500) is measured, not missing."""
    if (config, num_samples) in rows:
        return rows[(config, num_samples)]
    counts = [n for c, n in rows if c == config]
    return rows[(config, max(counts))] if counts else None
