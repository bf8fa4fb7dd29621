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
    'label', 'step_lr', 'kid_std',
)
# The columns before the provenance ones (checkpoint_file, checkpoint_sha256, input_files) and the study ones (label,
# step_lr, kid_std) were added.  A file whose header is an older column list (the current one with columns left out,
# in order) is rewritten once with the current header (its old rows get those columns blank) when a row is appended.
LEGACY_COLUMNS = tuple(c for c in CSV_COLUMNS if c not in ('checkpoint_file', 'checkpoint_sha256', 'input_files',
                                                           'label', 'step_lr', 'kid_std'))


def _is_older_header(header):
    """Whether ``header`` is :data:`CSV_COLUMNS` with some columns left out (same order): an older results file."""
    it = iter(CSV_COLUMNS)
    return bool(header) and 'fid' in header and all(any(c == h for c in it) for h in header)


def portable(value):
    """``value`` with this machine's paths made shareable, for results files that are committed and compared: the
    working directory becomes relative, ``$PDS_DATA`` / ``$PDS_CHECKPOINTS`` / ``$PDS_INCEPTION`` are named, the home
    folder is ``~``."""
    if not isinstance(value, str) or os.sep not in value:
        return value
    subs = [(os.getcwd().rstrip(os.sep) + os.sep, '')]
    for env in ('PDS_DATA', 'PDS_CHECKPOINTS', 'PDS_INCEPTION', 'PDS_LSUN'):
        path = os.environ.get(env)
        if path and os.path.isabs(path):
            subs.append((os.path.realpath(path), f'${env}'))
            subs.append((os.path.abspath(path), f'${env}'))
    home = os.path.expanduser('~')
    if home and home != os.sep:
        subs.append((home.rstrip(os.sep) + os.sep, '~' + os.sep))
    for old, new in sorted(subs, key=lambda t: -len(t[0])):
        value = value.replace(old, new)
    return value


def describe_sampler(config):
    s = config.sampling
    if s.method == 'pc':
        return f'pc:{s.predictor}+{s.corrector}'
    if s.method == 'ald':
        return f'ald:{s.ald_variant}' + ('+denoise' if s.denoise else '')
    if s.method in ('edm', 'edm_stochastic', 'ode_euler'):
        corrector = s.get('step_corrector', 'none')
        return f'{s.method}:{s.get("schedule", "karras")}' + ('' if corrector == 'none' else f'+{corrector}')
    if s.method == 'ode':
        return f'ode:{s.ode_method} rtol={s.ode_rtol:g} atol={s.ode_atol:g}'
    if s.method == 'adaptive_sde':
        return f'adaptive_sde: reltol={s.adaptive_reltol:g} abstol={s.adaptive_abstol:g}'
    return str(s.method)


def describe_model(config):
    d, m = config.data, config.model
    what = str(d.dataset) + (f'/{d.category}' if d.get('category') else '')
    return f'{m.family}:{m.name} {what} {d.image_size}px'


SAMPLER_FIELDS = ('sampler', 'pds', 'pds_setting', 'pds_freq', 'pds_alpha', 'pds_radius', 'pds_lam', 'pds_space',
                  'pds_omega', 'speed_up', 'num_levels', 'n_steps_each', 'step_lr')


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
        n_steps_each=s.n_steps_each, step_lr=s.step_lr if s.method == 'ald' else '')


def write_json(path, record):
    """Write ``record`` as JSON, atomically and with mode 0644 like every other output (``utils/atomic.py``)."""
    from utils.atomic import atomic_write_text
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=str))


def check_csv(path, flag='--results_csv'):
    """Raise ValueError (one line) unless a row can be appended to ``path``: not a folder, its folder creatable, and
    an existing file holding this module's columns (or an older list of them).  Called before any work, so that a
    bad path fails in a second, not after hours of sampling at the first append."""
    if os.path.isdir(path):
        raise ValueError(f'{flag} {path!r} is a folder; expected a CSV file (e.g. {os.path.join(path, "results.csv")!r})')
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        why = 'a part of it is a file' if isinstance(e, (FileExistsError, NotADirectoryError)) else e.strerror
        raise ValueError(f'{flag} {path!r}: cannot create its folder ({why}); expected a writable path') from None
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f'{flag} {path!r} cannot be written; expected a writable path')
    if os.path.isfile(path) and os.path.getsize(path):
        try:
            header = _header(path)
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise ValueError(f'{flag} {path!r} cannot be read as a CSV ({e}); expected a results file or a new '
                             'path') from None
        if tuple(header) != CSV_COLUMNS and not _is_older_header(header):
            raise ValueError(f'{flag} {path!r} has other columns ({header[:4]}...); expected a results file of '
                             'this project or a new path')


def _header(path):
    """The first row of the CSV at ``path`` (``[]`` for an empty file)."""
    with open(path, newline='') as f:
        return next(csv.reader(f), [])


def append_csv(path, record):
    """Append one row (the :data:`CSV_COLUMNS` of ``record``, paths made :func:`portable`) to ``path``, writing the
    header first if the file is new.  A file with another header is an error (start a new file); one with an older
    header (e.g. :data:`LEGACY_COLUMNS`) is rewritten with the current header first."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    if not new:
        header = _header(path)
        if tuple(header) != CSV_COLUMNS and _is_older_header(header):
            _upgrade(path)
        elif tuple(header) != CSV_COLUMNS:
            raise ValueError(f'results file {path!r} has other columns ({header[:4]}...); use a new --results_csv')
    with open(path, 'a', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction='ignore')
        if new:
            w.writeheader()
        w.writerow({k: ('' if record.get(k) is None else portable(record.get(k))) for k in CSV_COLUMNS})


def _upgrade(path):
    """Rewrite a results file of :data:`LEGACY_COLUMNS` with the current header (atomically)."""
    rows = read_csv(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix='.csv')
    with os.fdopen(fd, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction='ignore')
        w.writeheader()
        w.writerows({k: row.get(k, '') for k in CSV_COLUMNS} for row in rows)
    os.chmod(tmp, 0o644)                 # mkstemp makes 0600; the file it replaces was an ordinary 0644 one
    os.replace(tmp, path)


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))
