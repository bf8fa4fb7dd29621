"""Evaluation records: one JSON per run (``<workdir>/eval.json``) and one CSV row per run appended to a results
file (``--results_csv``), with the columns of :data:`CSV_COLUMNS`."""
import csv
import json
import os
import tempfile

CSV_COLUMNS = (
    'time', 'config', 'dataset', 'resolution', 'model', 'checkpoint', 'checkpoint_file', 'checkpoint_sha256',
    'input_files', 'sampler', 'pds', 'pds_setting', 'pds_freq',
    'pds_alpha', 'pds_radius', 'pds_lam', 'pds_space', 'pds_omega', 'speed_up', 'num_levels', 'n_steps_each',
    'iterations', 'nfe', 'num_samples', 'batch_size', 'seed', 'fid', 'kid', 'fid_mode', 'features', 'reference',
    'sampling_seconds', 'fid_seconds', 'seconds', 'device', 'world_size', 'workdir',
)
# The columns before the provenance ones (checkpoint_file, checkpoint_sha256, input_files) were added: such a file is
# rewritten once with the new header (its old rows get blank provenance) when a row is appended.
LEGACY_COLUMNS = tuple(c for c in CSV_COLUMNS if c not in ('checkpoint_file', 'checkpoint_sha256', 'input_files'))


def describe_sampler(config):
    s = config.sampling
    if s.method == 'pc':
        return f'pc:{s.predictor}+{s.corrector}'
    return f'ald:{s.ald_variant}' + ('+denoise' if s.denoise else '')


def describe_model(config):
    d, m = config.data, config.model
    what = str(d.dataset) + (f'/{d.category}' if d.get('category') else '')
    return f'{m.family}:{m.name} {what} {d.image_size}px'


SAMPLER_FIELDS = ('sampler', 'pds', 'pds_setting', 'pds_freq', 'pds_alpha', 'pds_radius', 'pds_lam', 'pds_space',
                  'pds_omega', 'speed_up', 'num_levels', 'n_steps_each')


def config_fields(config):
    """The CSV/JSON fields that describe the config (model, sampler, PDS parameters)."""
    p, s, d = config.pds, config.sampling, config.data
    on = bool(p.enabled)
    radial, stats = on and p.freq == 'radial', on and p.freq == 'stats'
    return dict(
        dataset=str(d.dataset) + (f'/{d.category}' if d.get('category') else ''), resolution=int(d.image_size),
        model=describe_model(config), sampler=describe_sampler(config), pds=on,
        pds_setting=p.setting if on else '', pds_freq=p.freq if on else '',
        pds_alpha=p.alpha if stats else '', pds_radius=p.radius if radial else '', pds_lam=p.lam if radial else '',
        pds_space=bool(p.space) if on else '', pds_omega=p.omega if on else '',
        speed_up=s.speed_up if s.method == 'pc' else '', num_levels=s.num_levels if s.method == 'ald' else '',
        n_steps_each=s.n_steps_each)


def write_json(path, record):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix='.json')
    with os.fdopen(fd, 'w') as f:
        json.dump(record, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


def append_csv(path, record):
    """Append one row (the :data:`CSV_COLUMNS` of ``record``) to ``path``, writing the header first if the file is
    new.  A file with another header is an error (start a new file); one with :data:`LEGACY_COLUMNS` is rewritten
    with the current header first."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    if not new:
        with open(path, newline='') as f:
            header = next(csv.reader(f), [])
        if tuple(header) == LEGACY_COLUMNS:
            _upgrade(path)
        elif tuple(header) != CSV_COLUMNS:
            raise ValueError(f'results file {path!r} has other columns ({header[:4]}...); use a new --results_csv')
    with open(path, 'a', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction='ignore')
        if new:
            w.writeheader()
        w.writerow({k: ('' if record.get(k) is None else record.get(k)) for k in CSV_COLUMNS})


def _upgrade(path):
    """Rewrite a results file of :data:`LEGACY_COLUMNS` with the current header (atomically)."""
    rows = read_csv(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix='.csv')
    with os.fdopen(fd, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction='ignore')
        w.writeheader()
        w.writerows({k: row.get(k, '') for k in CSV_COLUMNS} for row in rows)
    os.replace(tmp, path)


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))
