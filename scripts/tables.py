"""The supplementary's Tables 1-3 with Clean-FID: for every row, sample vanilla and PDS at that row's iterations,
score both, and print the table in the paper's layout (markdown).  Run through scripts/table{1,2,3}.sh:

    bash scripts/table1.sh [--quick] [--rows KEY,...] [--out DIR] [--device auto] [--ref NAME=SPEC ...]
    NPROC=4 bash scripts/table3.sh ...            # torchrun over 4 processes (GPUs)

Vanilla at a row's iterations is the same shortened schedule without preconditioning: the row's config with
``pds.enabled = False`` (PC: the same ``speed_up``; annealed Langevin: the same ``num_levels`` / ``n_steps_each``).
Runs shared between tables (e.g. the NCSN++ rows of Tables 2 and 3) are sampled and scored once: each run lives in
``<out>/<run>/{vanilla,pds}`` (resumable ``--mode sample`` layout + ``eval.json``), every score is appended to
``<out>/results.csv`` (``python -m evaluation.plot <out>/results.csv fid.png`` draws it), the table goes to stdout
and ``<out>/<table>.md``.

Inputs (checked before anything starts; one error lists everything missing):

* official checkpoints under ``--checkpoints`` (default ``$PDS_CHECKPOINTS``, else ``checkpoints/official``), one
  folder per model (see CHECKPOINTS; a folder holds the official file, e.g. ``checkpoint_12.pth``); the rows of our
  own shipped models (``ncsn_mnist_cpu_20it``: Model A, scored against the 10,000 MNIST test images with
  SHIPPED_SAMPLES samples per side) read ``--shipped`` (default ``checkpoints/``) and run on a CPU as they are;
* PDS statistics filters for NCSN++ (``<name>_freq.npy``, FFHQ also ``ffhq_space.npy``) in ``--stats_dir``
  (default ``assets/stats``; make them with ``main.py --mode stats``);
* reference images for the datasets clean-fid has no statistics for (``$PDS_DATA/mnist``; LSUN exported from its
  LMDB to a folder or .zip of images as ``$PDS_LSUN/<category>_train[.zip]``; their statistics use a seeded
  subset of 50,000 images), or ``--ref NAME=SPEC`` for any reference (SPEC as ``--fid_ref``:
  ``cleanfid:<name>/<split>/<res>``, a stats .npz, ``data:<path>``);
* the Inception network: ``--inception_path`` / ``$PDS_INCEPTION``, else clean-fid downloads it.

``--quick``: 32 samples per run (``--num_samples`` to change) into ``runs/tables_quick``: a smoke test of the whole
pipeline, not a measurement.  ``--set section.field=value`` (repeatable) changes that field in every config that has
it (tests use it to run the tables on tiny random-weight models with ``--fid_features standin``).
"""
import argparse
import ast
import importlib
import json
import os
import sys
import traceback
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

QUICK_SAMPLES = 32


@dataclass(frozen=True)
class Run:
    """One sampling setting (scored vanilla and with PDS); shared by the tables that contain it."""
    config: str               # module under configs/
    setting: str              # its PDS_SETTINGS row
    checkpoint: str           # key of CHECKPOINTS
    ref: str                  # key of REFERENCES
    overrides: tuple = ()     # extra (section.field, value)
    shipped: bool = False     # the checkpoint ships with this repository (under --shipped), not an official one
    num_samples: int = 0      # samples per side when --num_samples is not given (0: config.eval.num_samples)


# folder under the checkpoint root: (what to put there)
CHECKPOINTS = {
    'ncsn/mnist': 'ermongroup/ncsn run.zip, the MNIST run folder run/logs/<doc>/ (checkpoint.pth)',
    'ncsnv2/church': 'ermongroup/ncsnv2 exp/logs/church/checkpoint_200000.pth (sampling.ckpt_id of the config)',
    'ncsnv2/tower': 'ermongroup/ncsnv2 exp/logs/tower/checkpoint_150000.pth (sampling.ckpt_id of the config)',
    've/cifar10_ncsnpp_deep_continuous': 'score_sde_pytorch ve/cifar10_ncsnpp_deep_continuous/checkpoint_12.pth',
    've/bedroom_ncsnpp_continuous': 'score_sde_pytorch ve/bedroom_ncsnpp_continuous/checkpoint_127.pth',
    've/church_ncsnpp_continuous': 'score_sde_pytorch ve/church_ncsnpp_continuous/checkpoint_126.pth',
    've/ffhq_1024_ncsnpp_continuous': 'score_sde_pytorch ve/ffhq_1024_ncsnpp_continuous/checkpoint_60.pth',
    'ncsn_mnist_cpu': 'shipped with this repository: checkpoints/ncsn_mnist_cpu/checkpoint.pth (Model A)',
}
# samples per side of the shipped-model row: sized for a 2-core CPU (about 30 minutes with the 10,000-image
# reference computed once; the paper scores 50,000)
SHIPPED_SAMPLES = 2000

# reference name -> (default SPEC, how to provide it); $VARS are expanded.  Custom statistics of the LSUN categories
# use a seeded subset of at most REF_NUM[name] images (clean-fid's own lsun_church/train/256 uses 50,000).
REF_NUM = {'church96': 50000, 'tower128': 50000, 'bedroom256': 50000}
REF_SPLIT = {'mnist_test': 'test'}       # dataset split of a data: reference (default 'train')
REFERENCES = {
    'mnist': ('data:$PDS_DATA/mnist', 'PDS_DATA=<folder holding mnist/ (IDX files)>'),
    'mnist_test': ('data:$PDS_DATA/mnist', 'PDS_DATA=<folder holding mnist/ (IDX files, the 10,000 t10k images)>'),
    'church96': ('data:$PDS_LSUN/church_outdoor_train', 'PDS_LSUN=<folder holding church_outdoor_train/ or .zip>'),
    'tower128': ('data:$PDS_LSUN/tower_train', 'PDS_LSUN=<folder holding tower_train/ or .zip>'),
    'bedroom256': ('data:$PDS_LSUN/bedroom_train', 'PDS_LSUN=<folder holding bedroom_train/ or .zip>'),
    'cifar10': ('cleanfid:cifar10/train/32', 'clean-fid downloads it, or --ref cifar10=<cifar10_clean_train_32.npz>'),
    'church256': ('cleanfid:lsun_church/train/256',
                  'clean-fid downloads it, or --ref church256=<lsun_church_clean_train_256.npz>'),
    'ffhq1024': ('cleanfid:ffhq/trainval70k/1024',
                 'clean-fid downloads it, or --ref ffhq1024=<ffhq_clean_trainval70k_1024.npz>'),
}

RUNS = {
    'ncsn_mnist_20it': Run('mnist_pds', 'table1_20it', 'ncsn/mnist', 'mnist'),
    'ncsn_mnist_cpu_20it': Run('mnist_cpu_pds', 'table1_20it', 'ncsn_mnist_cpu', 'mnist_test', shipped=True,
                               num_samples=SHIPPED_SAMPLES),
    'ncsnv2_church96_126it': Run('church96_pds', 'table1_126it', 'ncsnv2/church', 'church96'),
    'ncsnv2_church96_156it': Run('church96_pds', 'table1_157it', 'ncsnv2/church', 'church96',
                                 (('sampling.num_levels', 156),)),
    'ncsnv2_church96_157it': Run('church96_pds', 'table1_157it', 'ncsnv2/church', 'church96'),
    'ncsnv2_church96_210it': Run('church96_pds', 'table1_210it', 'ncsnv2/church', 'church96'),
    'ncsnv2_tower128_65it': Run('tower_pds', 'table1_65it', 'ncsnv2/tower', 'tower128'),
    'ncsnv2_tower128_81it': Run('tower_pds', 'table1_81it', 'ncsnv2/tower', 'tower128'),
    'ncsnv2_tower128_108it': Run('tower_pds', 'table1_108it', 'ncsnv2/tower', 'tower128'),
    'ncsnpp_cifar10_100it': Run('cifar10_pds', 'table2_100it', 've/cifar10_ncsnpp_deep_continuous', 'cifar10'),
    'ncsnpp_cifar10_200it': Run('cifar10_pds', 'table2_200it', 've/cifar10_ncsnpp_deep_continuous', 'cifar10'),
    'ncsnpp_bedroom256_166it': Run('bedroom_pds', 'table2_166it', 've/bedroom_ncsnpp_continuous', 'bedroom256'),
    'ncsnpp_church256_166it': Run('church_pds', 'table2_166it', 've/church_ncsnpp_continuous', 'church256'),
    'ncsnpp_ffhq1024_66it': Run('ffhq_pds', 'table2_66it', 've/ffhq_1024_ncsnpp_continuous', 'ffhq1024'),
}

# Table 1 (NCSN / NCSNv2, Eq. 20): dataset, resolution, model, run
TABLE1 = [
    ('MNIST', '28 × 28', 'NCSN', 'ncsn_mnist_20it'),
    ('MNIST (ours)', '28 × 28', 'NCSN ngf 16, CPU', 'ncsn_mnist_cpu_20it'),
    ('LSUN (church)', '96 × 96', 'NCSNv2', 'ncsnv2_church96_126it'),
    ('', '', '', 'ncsnv2_church96_157it'),
    ('', '', '', 'ncsnv2_church96_210it'),
    ('LSUN (tower)', '128 × 128', 'NCSNv2', 'ncsnv2_tower128_65it'),
    ('', '', '', 'ncsnv2_tower128_81it'),
    ('', '', '', 'ncsnv2_tower128_108it'),
]
# Table 2 (NCSN++, Eq. 22): dataset, resolution, run
TABLE2 = [
    ('CIFAR-10', '32 × 32', 'ncsnpp_cifar10_100it'),
    ('CIFAR-10', '32 × 32', 'ncsnpp_cifar10_200it'),
    ('LSUN (bedroom)', '256 × 256', 'ncsnpp_bedroom256_166it'),
    ('LSUN (church)', '256 × 256', 'ncsnpp_church256_166it'),
    ('FFHQ', '1024 × 1024', 'ncsnpp_ffhq1024_66it'),
]
# Table 3 (Clean-FID, 50k images): model, dataset, class, resolution, run, paper's (vanilla, PDS).  The paper says
# 156 iterations for church 96 (Table 1 lists 126 / 157 / 210): we run 156 levels with the 157-iteration row's filter.
TABLE3 = [
    ('NCSNv2', 'LSUN', 'Church', '96 × 96', 'ncsnv2_church96_156it', (217.9, 65.7)),
    ('NCSNv2', 'LSUN', 'Tower', '128 × 128', 'ncsnv2_tower128_108it', (67.2, 43.8)),
    ('NCSN++', 'LSUN', 'Bedroom', '256 × 256', 'ncsnpp_bedroom256_166it', (393.7, 16.9)),
    ('NCSN++', 'LSUN', 'Church', '256 × 256', 'ncsnpp_church256_166it', (393.3, 15.0)),
    ('NCSN++', 'FFHQ', 'Face', '1024 × 1024', 'ncsnpp_ffhq1024_66it', (463.2, 61.2)),
]
TABLES = {'table1': [r[-1] for r in TABLE1], 'table2': [r[-1] for r in TABLE2], 'table3': [r[4] for r in TABLE3]}


# ---------------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------------

def _parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(items):
    out = []
    for item in items or ():
        if '=' not in item or '.' not in item.split('=', 1)[0]:
            raise SystemExit(f'error: --set expects section.field=value, got {item!r}')
        key, value = item.split('=', 1)
        out.append((key.strip(), _parse_value(value.strip())))
    return tuple(out)


def _assign(config, key, value, strict=True):
    from configs.defaults import set_field
    if not set_field(config, key, value) and strict:
        raise SystemExit(f'error: the config has no field {key!r}')


def build_config(run, pds, sets=(), stats_dir=None):
    """The run's config (its PDS row applied, then ``run.overrides``, then ``sets`` where the field exists),
    with PDS on or off, and the statistics filters looked up in ``stats_dir``."""
    module = importlib.import_module(f'configs.{run.config}')
    config = module.get_config(run.setting)
    for key, value in run.overrides:
        _assign(config, key, value)
    for key, value in sets:
        _assign(config, key, value, strict=False)
    config.pds.enabled = bool(pds)
    if stats_dir:
        for fld in ('freq_path', 'space_path'):
            if config.pds[fld]:
                config.pds[fld] = os.path.join(stats_dir, os.path.basename(config.pds[fld]))
    return config


def config_name(run, pds):
    extra = ''.join(f' --config.{k}={v}' for k, v in run.overrides)
    return f'configs/{run.config}.py:{run.setting}{extra}' + ('' if pds else ' --pds=false')


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------

def reference_spec(name, refs):
    return os.path.expandvars(refs.get(name, REFERENCES[name][0]))


def check_inputs(run_keys, args, refs, sets):
    """Everything the runs need, or a list of what is missing (strings)."""
    from models.checkpoint import CheckpointError, resolve_path
    missing = []
    for ckpt in sorted({RUNS[k].checkpoint for k in run_keys}):
        run = next(RUNS[k] for k in run_keys if RUNS[k].checkpoint == ckpt)
        folder = checkpoint_folder(run, args)
        try:
            resolve_path(folder, build_config(run, True, sets, args.stats_dir).sampling.get('ckpt_id'))
        except CheckpointError as e:
            why = '' if not os.path.isdir(folder) else f' ({e})'
            missing.append(f'checkpoint {folder}{os.sep}: {CHECKPOINTS[ckpt]}{why}')
    filters = {}
    for k in run_keys:
        config = build_config(RUNS[k], True, sets, args.stats_dir)
        for fld, used in (('freq_path', config.pds.freq == 'stats'), ('space_path', config.pds.space)):
            if used and not os.path.isfile(config.pds[fld]):
                filters.setdefault(config.pds[fld], RUNS[k].config)
    for path, module in filters.items():
        name = os.path.basename(path).rsplit('_', 1)[0]
        missing.append(f'PDS filter {path} (python main.py --config configs/{module}.py --mode stats '
                       f'--data <the training images> --stats_dir {os.path.dirname(path)} --name {name})')
    for name in sorted({RUNS[k].ref for k in run_keys}):
        spec = reference_spec(name, refs)
        if spec.startswith('cleanfid:'):
            continue
        path = spec[len('data:'):] if spec.startswith('data:') else spec
        if '$' in path or not path or not (os.path.exists(path) or os.path.exists(path + '.zip')):
            missing.append(f'reference {name}: {spec!r} not found; {REFERENCES[name][1]}, or --ref {name}=<SPEC>')
    if args.fid_features == 'inception':
        from evaluation.features import INCEPTION_ENV
        path = args.inception_path or os.environ.get(INCEPTION_ENV)
        if path and not os.path.isfile(path):
            missing.append(f'Inception file {path} (--inception_path / ${INCEPTION_ENV})')
    return missing


def checkpoint_folder(run, args):
    return os.path.join(args.shipped if run.shipped else args.checkpoints, run.checkpoint)


def _data_path(spec):
    path = spec[len('data:'):] if spec.startswith('data:') else spec
    if not os.path.exists(path) and os.path.exists(path + '.zip'):
        return 'data:' + path + '.zip'
    return spec


# ---------------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------------

def _reusable(json_path, want):
    if not os.path.isfile(json_path):
        return None
    with open(json_path) as f:
        old = json.load(f)
    return old if all(old.get(k) == v for k, v in want.items()) else None


def run_one(key, pds, args, refs, sets, rank, world, barrier):
    """Score one run (sampling what is missing); returns the eval record (rank 0) or None."""
    from runners.evaluate import run_eval
    from runners.cli import resolve_device
    run = RUNS[key]
    config = build_config(run, pds, sets, args.stats_dir)
    workdir = os.path.join(args.out, key, 'pds' if pds else 'vanilla')
    num_samples = args.num_samples or (QUICK_SAMPLES if args.quick else
                                       int(run.num_samples or config.eval.num_samples))
    batch_size = args.batch_size or min(int(config.eval.batch_size), num_samples)
    ref = _data_path(reference_spec(run.ref, refs))
    checkpoint = checkpoint_folder(run, args)
    want = dict(num_samples=num_samples, batch_size=batch_size, fid_mode=args.fid_mode, features=args.fid_features,
                config=config_name(run, pds), reference_spec=ref, checkpoint=os.path.abspath(checkpoint))
    old = _reusable(os.path.join(workdir, 'eval.json'), want)
    if old is not None:
        return old if rank == 0 else None
    device = resolve_device(args.device, int(os.environ.get('LOCAL_RANK', 0)))
    return run_eval(config, workdir, checkpoint=checkpoint,
                    num_samples=num_samples, batch_size=batch_size, device=device, ref=ref,
                    ref_num=REF_NUM.get(run.ref), ref_split=REF_SPLIT.get(run.ref, 'train'), mode=args.fid_mode,
                    features=args.fid_features, inception_path=args.inception_path,
                    results_csv=os.path.join(args.out, 'results.csv'), fid_cache=args.fid_cache,
                    num_workers=args.workers, config_name=config_name(run, pds), rank=rank, world_size=world,
                    barrier=barrier, progress=not args.no_progress, label='PDS' if pds else 'vanilla')


# ---------------------------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------------------------

def _fid(scores, key, pds):
    rec = scores.get((key, pds))
    return '—' if rec is None else f"{rec['fid']:.1f}"


def _md(rows):
    head, *body = rows
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join('---' for _ in head) + '|']
    return '\n'.join(lines + ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in body])


def format_table(table, scores, sets=()):
    if table == 'table1':
        rows = [('Dataset', 'Resolution', 'Model', 'Iterations', 'r', 'λ', 'space?', 'FID vanilla', 'FID PDS')]
        for dataset, res, model, key in TABLE1:
            c = build_config(RUNS[key], True, sets)
            its = _iterations(c)
            rows.append((dataset, res, model, its, f'{c.pds.radius:g}H', f'{c.pds.lam:g}',
                         '✓' if c.pds.space else '×', _fid(scores, key, False), _fid(scores, key, True)))
        title = 'Table 1 (NCSN / NCSNv2, radial filter Eq. 20) with Clean-FID, vanilla vs PDS at the same iterations'
    elif table == 'table2':
        rows = [('Dataset', 'Resolution', 'Iterations', 'α', 'space?', 'FID vanilla', 'FID PDS')]
        for dataset, res, key in TABLE2:
            c = build_config(RUNS[key], True, sets)
            rows.append((dataset, res, _iterations(c), f'{c.pds.alpha:g}', '✓' if c.pds.space else '×',
                         _fid(scores, key, False), _fid(scores, key, True)))
        title = 'Table 2 (NCSN++, statistics filter Eq. 22) with Clean-FID, vanilla vs PDS at the same iterations'
    else:
        cols = TABLE3
        rows = [('Model',) + tuple(c[0] for c in cols),
                ('Dataset',) + tuple(c[1] for c in cols),
                ('Class',) + tuple(c[2] for c in cols),
                ('Resolution',) + tuple(c[3] for c in cols),
                ('Iterations',) + tuple(_iterations(build_config(RUNS[c[4]], True, sets)) for c in cols),
                ('Vanilla / PDS (paper)',) + tuple(f'{c[5][0]} / **{c[5][1]}**' for c in cols),
                ('Vanilla / PDS (ours)',) + tuple(f'{_fid(scores, c[4], False)} / **{_fid(scores, c[4], True)}**'
                                                  for c in cols)]
        title = 'Table 3: Clean-FID of the accelerated samplers, vanilla / PDS (paper: 50k images each)'
    return f'**{title}**\n\n{_md(rows)}\n'


def _iterations(config):
    import sampling
    return sampling.iterations(config)[0]


def footer(keys, scores):
    lines = []
    recs = [scores[(k, p)] for k in keys for p in (False, True) if (k, p) in scores]
    if recs:
        r = recs[0]
        counts = sorted({x['num_samples'] for x in recs})
        lines.append(f"Clean-FID mode {r['fid_mode']}, features {r['features']}, {'/'.join(map(str, counts))} "
                     'samples per run; references: ' + ', '.join(sorted({x['reference'] for x in recs})) + '.')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------------------

def parse_args(argv):
    rows = '\n'.join(f'  {t}: {", ".join(dict.fromkeys(k))}' for t, k in sorted(TABLES.items()))
    p = argparse.ArgumentParser(prog='scripts/tables.py', description=__doc__,
                                epilog=f'rows (--rows):\n{rows}', formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('table', choices=sorted(TABLES))
    p.add_argument('--quick', action='store_true', help=f'{QUICK_SAMPLES} samples per run (a smoke test)')
    p.add_argument('--rows', default='', help='comma-separated run keys to do (default: all rows of the table)')
    p.add_argument('--out', default=None, help='output folder (default runs/tables, runs/tables_quick with --quick)')
    p.add_argument('--checkpoints', default=os.environ.get('PDS_CHECKPOINTS') or os.path.join(ROOT, 'checkpoints',
                                                                                              'official'))
    p.add_argument('--shipped', default=os.path.join(ROOT, 'checkpoints'),
                   help='folder of the checkpoints shipped with this repository (default checkpoints/)')
    p.add_argument('--stats_dir', default=os.path.join(ROOT, 'assets', 'stats'))
    p.add_argument('--ref', action='append', default=[], metavar='NAME=SPEC',
                   help=f'reference of a dataset ({", ".join(REFERENCES)}), as --fid_ref')
    p.add_argument('--num_samples', type=int, default=None,
                   help=f'default: config.eval.num_samples (50,000); {SHIPPED_SAMPLES} for the shipped-model rows')
    p.add_argument('--batch_size', type=int, default=None, help='sampling batch size (default config.eval.batch_size)')
    p.add_argument('--device', default='auto')
    p.add_argument('--fid_mode', default='clean', choices=('clean', 'legacy_tensorflow'))
    p.add_argument('--fid_features', default='inception', choices=('inception', 'standin'))
    p.add_argument('--inception_path', default=None)
    p.add_argument('--fid_cache', default=None)
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--set', action='append', default=[], metavar='SECTION.FIELD=VALUE',
                   help='set this field in every config that has it (tests: tiny models)')
    p.add_argument('--no_progress', action='store_true')
    args = p.parse_args(argv)
    args.out = args.out or os.path.join('runs', 'tables_quick' if args.quick else 'tables')
    return args


def main(argv=None):
    args = parse_args(argv)
    from utils import distributed
    from runners.cli import resolve_device
    sets = parse_sets(args.set)
    refs = {}
    for item in args.ref:
        name, _, spec = item.partition('=')
        if name not in REFERENCES or not spec:
            raise SystemExit(f'error: --ref expects NAME=SPEC with NAME one of {sorted(REFERENCES)}, got {item!r}')
        refs[name] = spec
    keys = TABLES[args.table]
    if args.rows:
        wanted = [k.strip() for k in args.rows.split(',') if k.strip()]
        unknown = [k for k in wanted if k not in keys]
        if unknown:
            raise SystemExit(f'error: {args.table} has no rows {unknown}; its rows are {keys}')
        keys = [k for k in keys if k in wanted]
    keys = list(dict.fromkeys(keys))
    missing = check_inputs(keys, args, refs, sets)
    if missing:
        print(f'error: {args.table} cannot start, missing:\n  - ' + '\n  - '.join(missing), file=sys.stderr)
        shipped = [k for k in keys if RUNS[k].shipped]
        if shipped and not args.rows and not check_inputs(shipped, args, refs, sets):
            print(f"  (the rows of the shipped models can run now: --rows {','.join(shipped)})", file=sys.stderr)
        return 2
    device = resolve_device(args.device, distributed.env()[2])
    scores, failures = {}, []
    with distributed.session(device) as (rank, world, _):
        for key in keys:
            for pds in (False, True):
                label = f"{key} {'PDS' if pds else 'vanilla'}"
                if rank == 0:
                    print(f'== {label}', file=sys.stderr, flush=True)
                try:
                    rec = run_one(key, pds, args, refs, sets, rank, world, distributed.barrier)
                except (ValueError, FileNotFoundError, RuntimeError) as e:
                    if world > 1:
                        raise
                    failures.append(f'{label}: {type(e).__name__}: {e}')
                    traceback.print_exc()
                    continue
                if rec is not None:
                    scores[(key, pds)] = rec
    if rank != 0:
        return 0
    text = format_table(args.table, scores, sets) + '\n' + footer(keys, scores) + '\n'
    if failures:
        text += '\nFailed runs:\n' + '\n'.join(f'- {f}' for f in failures) + '\n'
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f'{args.table}.md'), 'w') as f:
        f.write(text)
    print(text)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
