"""Are bf16 and torch.compile sample-quality-neutral? (issue 33 part 2)  The same seeds, 500 samples per point, each
variant scored with the project's eval (Clean-FID FID and KID with its standard deviation over 100 subsets) against
the 10,000 MNIST test images; resumable.

    python benchmarks/precision_neutrality.py                          # Models A and B on the CPU (hours: see below)
    python benchmarks/precision_neutrality.py --models b --variants fp32 bf16
    python benchmarks/precision_neutrality.py --models b --points pc_100it         # one point of a model
    python benchmarks/precision_neutrality.py --models c32                          # C32 (the shipped checkpoint)
    python benchmarks/precision_neutrality.py --summary                # the verdict table from what is done
    python benchmarks/precision_neutrality.py --models a b c32 --summary --out results/neutrality   # the committed
    python benchmarks/precision_neutrality.py --per_sigma              # where bf16 departs: score error per level
    python benchmarks/precision_neutrality.py --tiny --out /tmp/n      # every path on tiny random models (tests)

Points (the studies' vanilla points, studies/model_a.py and studies/model_b.py):

* Model A (checkpoints/ncsn_mnist_cpu, ``configs/mnist_cpu_pds.py:table1_20it`` with PDS off): annealed Langevin on
  its 10 levels at 20 and 100 iterations (2 and 10 steps per level);
* Model B (checkpoints/ncsnpp_mnist_cpu, ``configs/mnist_ncsnpp_cpu_pds.py`` with PDS off): PC at 100 and 1000
  iterations (``sampling.speed_up`` 10 and 1);
* C32 (checkpoints/ncsnpp_deadleaves32_cpu, or another with ``--c32 <checkpoint or run folder>``;
  ``configs/ve/deadleaves32_ncsnpp_cpu.py`` with PDS off): PC at 100 and 1000 iterations, against the 10,000
  held-out dead leaves.

Variants: ``fp32`` (the reference), ``bf16`` (``--precision bf16``), ``compile`` (``--compile``) and ``bf16_min0.1``
(``--precision bf16 --bf16_min_sigma 0.1``: fp32 below sigma 0.1, the fallback if bf16 fails), each sampled with
the same seed and batch size (so the same noise, batch for batch) into ``<out>/<model>/<point>/<variant>/``
(``--mode sample``'s resumable layout; its eval.json).  A point's variant is **neutral** when
|KID - KID_fp32| <= sqrt(kid_std^2 + kid_std_fp32^2) (one combined standard deviation); FID is reported beside it.
Rows are appended to ``<out>/neutrality.csv`` (one per finished run) and the verdicts written to
``<out>/neutrality.md``.  A finished run (its eval.json with the sample count asked) is read back, never redone, and
so is a run whose folder is gone but whose row is in ``<out>/neutrality.csv`` with the same checkpoint sha256 (copy
``results/neutrality/neutrality.csv`` into ``--out`` to add a variant beside the committed fp32 runs without
redoing them); killing and rerunning continues the unfinished batches.

``--per_sigma``: the relative L2 error of the bf16 score against fp32 at each of 10 noise levels on noised test
images (cheap), to find where bf16 is not neutral if a point fails (e.g. the smallest sigmas), and keep that part in
fp32 (issue 33: do not widen the check).

Cost on this 2-core CPU (batch 100, 500 samples per run): Model B at 1000 PC iterations is 2,000 NFE per sample,
about 1.5-2 CPU-hours per run (3 runs); at 100 iterations a tenth of that; Model A's ALD runs take minutes.  Run it
when no training holds the CPU (``nice -n 19``).

The study engine takes the same switches (``python -m evaluation.study <study> --precision bf16``: rows and folders
of its own, models/speed.py); this script calls ``runners.evaluate.run_eval(speed=...)`` directly, with the fp32
reference beside each variant in one folder per point.
"""
import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

from models.speed import Speed  # noqa: E402

VARIANTS = {'fp32': dict(), 'bf16': dict(precision='bf16'), 'compile': dict(compile=True),
            # bf16 with the network in fp32 below sigma 0.1, where the bf16 score's error passes ~1 % (--per_sigma)
            'bf16_min0.1': dict(precision='bf16', bf16_min_sigma=0.1)}
MNIST_REF = 'data:$PDS_DATA/mnist'


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    overrides: tuple          # ((section.field, value), ...)


@dataclasses.dataclass(frozen=True)
class Model:
    key: str
    config: str               # 'module[:setting]' under configs/
    checkpoint: str
    ref: str
    points: tuple


def _ald(its):
    return Point(f'ald_{its}it', (('pds.enabled', False), ('sampling.n_steps_each', its // 10)))


def _pc(its):
    return Point(f'pc_{its}it', (('pds.enabled', False), ('sampling.speed_up', 1000 / its)))


C32_CHECKPOINT = os.path.join('checkpoints', 'ncsnpp_deadleaves32_cpu', 'checkpoint.pth')


def models(c32=C32_CHECKPOINT):
    out = {
        'a': Model('a', 'mnist_cpu_pds:table1_20it', os.path.join('checkpoints', 'ncsn_mnist_cpu', 'checkpoint.pth'),
                   MNIST_REF, (_ald(20), _ald(100))),
        'b': Model('b', 'mnist_ncsnpp_cpu_pds', os.path.join('checkpoints', 'ncsnpp_mnist_cpu', 'checkpoint.pth'),
                   MNIST_REF, (_pc(100), _pc(1000))),
    }
    if c32:
        out['c32'] = Model('c32', 've.deadleaves32_ncsnpp_cpu', c32, 'data:deadleaves', (_pc(100), _pc(1000)))
    return out


def load_config(spec):
    module, _, setting = spec.partition(':')
    mod = importlib.import_module(f'configs.{module}')
    return mod.get_config(setting) if setting else mod.get_config()


def point_config(model, point):
    config = load_config(model.config)
    for key, value in point.overrides:
        section, field = key.split('.', 1)
        config[section][field] = value
    return config


# -- tiny models (--tiny): random weights, 8 x 8, stand-in features --------------------------------------------------

def tiny_setup(out):
    """Two tiny random checkpoints (an NCSN++ for PC, an NCSN for annealed Langevin) and 64 random reference images,
    written under ``<out>/tiny/``; returns the models (their configs are patched in :func:`tiny_config`)."""
    import numpy as np
    from benchmarks.tiny_models import random_score, tiny_ncsn, tiny_ncsnpp
    from models.checkpoint import save_checkpoint
    folder = os.path.join(out, 'tiny')
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for key, config in (('pc', tiny_ncsnpp()), ('ald', tiny_ncsn())):
        paths[key] = os.path.join(folder, f'{key}.pth')
        if not os.path.isfile(paths[key]):
            save_checkpoint(paths[key], random_score(config).net, config)
    ref = os.path.join(folder, 'ref.npy')
    if not os.path.isfile(ref):
        np.save(ref, np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8))
    return {'tiny_ald': Model('tiny_ald', 'tiny:ald', paths['ald'], ref,
                              (Point('ald_3it', (('sampling.n_steps_each', 1),)),
                               Point('ald_6it', (('sampling.n_steps_each', 2),)))),
            'tiny_pc': Model('tiny_pc', 'tiny:pc', paths['pc'], ref,
                             (Point('pc_4it', (('sampling.num_steps', 4),)),
                              Point('pc_8it', (('sampling.num_steps', 8),))))}


def tiny_config(spec):
    from benchmarks.tiny_models import tiny_ncsn, tiny_ncsnpp
    return tiny_ncsnpp() if spec == 'tiny:pc' else tiny_ncsn()


# -- the runs ---------------------------------------------------------------------------------------------------------

def finished(workdir, n):
    """The eval.json record of ``workdir`` if it scored ``n`` samples, else None."""
    path = os.path.join(workdir, 'eval.json')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        rec = json.load(f)
    return rec if int(rec.get('num_samples') or 0) == n else None


def _csv_records(out):
    """{(model, point, variant, num_samples): record} of the latest rows of ``<out>/neutrality.csv`` (each row's
    workdir ends in ``<model>/<point>/<variant>``): the committed results, whose sample folders are not kept."""
    import csv
    path = os.path.join(out, 'neutrality.csv')
    records = {}
    if os.path.isfile(path):
        for row in csv.DictReader(open(path)):
            parts = row['workdir'].replace('\\', '/').rstrip('/').split('/')
            if len(parts) >= 3 and row.get('kid') and row.get('kid_std'):
                records[(*parts[-3:], int(row['num_samples']))] = {
                    'fid': float(row['fid']), 'kid': float(row['kid']), 'kid_std': float(row['kid_std']),
                    'checkpoint_sha256': row.get('checkpoint_sha256') or ''}
    return records


def _checkpoint_sha(model):
    """sha256 of the checkpoint file the model's path (a file or a run folder) resolves to, None if there is none
    (the run then says why; no row stands in)."""
    from models.checkpoint import CheckpointError, resolve_path
    from utils.provenance import file_record
    try:
        return file_record(resolve_path(model.checkpoint))['sha256']
    except CheckpointError:
        return None


def logged_row(logged, model, point, variant, num_samples, sha):
    """The row of ``<out>/neutrality.csv`` (``logged``) for this run if it was made from the checkpoint whose
    sha256 is ``sha``, else None: a row of another checkpoint file never stands in for this one."""
    row = (logged or {}).get((model.key, point.name, variant, num_samples))
    return row if row is not None and row['checkpoint_sha256'] == sha else None


def run_point(model, point, variant, args, ref, say, logged=None, sha=None):
    """Sample and score one variant of a point; a finished run is read back instead, and so is a row of
    ``<out>/neutrality.csv`` (``logged``) made from the same checkpoint file (same sha256, ``sha``: hashed here
    when not given) whose folder is gone, e.g. the committed fp32 reference on a fresh clone: the same seeds give
    the same run."""
    from runners.evaluate import run_eval
    workdir = os.path.join(args.out, model.key, point.name, variant)
    rec = finished(workdir, args.num_samples)
    if rec is not None:
        return rec, True
    if logged and not os.path.isdir(os.path.join(workdir, 'batches')):
        row = logged_row(logged, model, point, variant, args.num_samples,
                         sha or _checkpoint_sha(model))
        if row is not None:
            return row, True
    config = tiny_config(model.config) if args.tiny else load_config(model.config)
    for key, value in point.overrides:
        section, field = key.split('.', 1)
        config[section][field] = value
    speed = Speed(compile_backend=args.compile_backend, **VARIANTS[variant])
    start = time.time()
    rec = run_eval(config, workdir, checkpoint=model.checkpoint, num_samples=args.num_samples,
                   batch_size=min(args.batch_size, args.num_samples), device=args.device, ref=ref,
                   ref_split=None if args.tiny else 'test', features=args.features, inception_path=args.inception_path,
                   fid_cache=args.fid_cache, results_csv=os.path.join(args.out, 'neutrality.csv'),
                   config_name=f'{model.config} {" ".join(f"--config.{k}={v}" for k, v in point.overrides)}',
                   label=variant, progress=args.progress, allow_mismatch=args.tiny, speed=speed)
    say(f'{model.key} {point.name} {variant}: FID {rec["fid"]:.3f}, KID {rec["kid"]:.5f} ± {rec["kid_std"]:.5f} '
        f'({time.time() - start:.0f} s)')
    return rec, False


def verdict(rec, ref):
    """(delta KID, combined std, neutral?) of a variant's record against the fp32 record."""
    delta = rec['kid'] - ref['kid']
    combined = math.sqrt(rec['kid_std'] ** 2 + ref['kid_std'] ** 2)
    return delta, combined, abs(delta) <= combined


def table(results, num_samples):
    """The verdict table (markdown) of ``results``: {(model, point): {variant: record}}."""
    lines = ['| model | point | variant | FID | KID ± std | ΔKID vs fp32 | combined std | neutral |',
             '|---|---|---|---|---|---|---|---|']
    for (model, point), recs in results.items():
        ref = recs.get('fp32')
        for variant, rec in recs.items():
            if ref is None or variant == 'fp32':
                cells = ['', '', 'reference' if variant == 'fp32' else 'no fp32 run']
            else:
                delta, combined, ok = verdict(rec, ref)
                cells = [f'{delta:+.5f}', f'{combined:.5f}', 'yes' if ok else '**no**']
            lines.append(f'| {model} | {point} | {variant} | {rec["fid"]:.3f} | {rec["kid"]:.5f} ± '
                         f'{rec["kid_std"]:.5f} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + f'\n\n{num_samples} samples per run; neutral: |ΔKID| <= sqrt(std² + std_fp32²).\n'


def per_sigma(model, args, say, levels=10):
    """Relative L2 error of the bf16 score against fp32 at ``levels`` noise levels (geometric sigma_max ..
    sigma_min) on noised reference images (random images with --tiny)."""
    import numpy as np
    from models import speed as speed_lib
    from models.checkpoint import load_score_model
    config = tiny_config(model.config) if args.tiny else load_config(model.config)
    score = load_score_model(model.checkpoint, config, device=args.device)
    c, size = config.data.num_channels, config.data.image_size
    x0 = _reference_images(model, config, args)
    g = torch.Generator().manual_seed(0)
    sigmas = np.exp(np.linspace(np.log(config.model.sigma_max), np.log(config.model.sigma_min), levels))
    rows = []
    for sigma in sigmas:
        x = (x0 + float(sigma) * torch.randn(x0.shape, generator=g)).to(args.device)
        with torch.inference_mode():
            score.autocast_dtype = None
            ref = score(x, float(sigma))
            speed_lib.apply(score, Speed(precision='bf16'))
            out = score(x, float(sigma))
        rows.append((float(sigma), float((out - ref).norm() / ref.norm())))
    say(f'{model.key}: relative L2 error of the bf16 score against fp32 ({len(x0)} noised images, {c}x{size}x{size})')
    for sigma, err in rows:
        say(f'  sigma {sigma:10.4g}: {err:.2e}')
    return rows


def _reference_images(model, config, args, n=64):
    if args.tiny:
        import numpy as np
        images = np.load(model.ref)[:n]
        return torch.as_tensor(images, dtype=torch.float32)[:, None] / 255.
    from data.readers import open_dataset
    path = os.path.expandvars(model.ref[len('data:'):])
    ds = open_dataset(path, config, split='test', centered=bool(config.data.centered), augment=False)
    return torch.stack([torch.as_tensor(ds[i][0] if isinstance(ds[i], (tuple, list)) else ds[i]) for i in range(n)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=os.path.join('runs', 'neutrality'))
    p.add_argument('--models', nargs='+', default=['a', 'b'], help="'a', 'b', 'c32'")
    p.add_argument('--c32', default=C32_CHECKPOINT, help='Model C32 checkpoint file or run folder (default: '
                   'the shipped one)')
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument('--points', nargs='+', default=None, help="only these points of the models (e.g. pc_100it; "
                   "default: every point)")
    p.add_argument('--num_samples', type=int, default=500)
    p.add_argument('--batch_size', type=int, default=100)
    p.add_argument('--device', default='cpu')
    p.add_argument('--features', default='inception', choices=('inception', 'standin'))
    p.add_argument('--inception_path', default=None)
    p.add_argument('--fid_cache', default=None)
    p.add_argument('--compile_backend', default='inductor', choices=('inductor', 'aot_eager', 'eager'))
    p.add_argument('--summary', action='store_true', help='only the verdict table of the finished runs')
    p.add_argument('--per_sigma', action='store_true', help='only the bf16 score error per noise level')
    p.add_argument('--tiny', action='store_true', help='tiny random models, 8 x 8, stand-in features (tests)')
    p.add_argument('--quiet', dest='progress', action='store_false')
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    # FIR taps made from NumPy inside a traced network (models/fir.py) warn once per layer under torch.compile
    warnings.filterwarnings('ignore', message='To copy construct from a tensor')
    warnings.filterwarnings('ignore', message='Dynamo detected a call to a `functools.lru_cache`')
    if args.tiny:
        available = tiny_setup(args.out)
        wanted = [m for m in args.models if m in available] or list(available)
        args.features = 'standin'
        args.fid_cache = args.fid_cache or os.path.join(args.out, 'tiny', 'fid_cache')
    else:
        available = models(args.c32)
        unknown = [m for m in args.models if m not in available]
        if unknown:
            raise SystemExit(f'error: --models {" ".join(unknown)}: expected a, b, c32')
        wanted = args.models
        if not args.summary and any(available[m].ref == MNIST_REF for m in wanted) and not os.environ.get('PDS_DATA'):
            raise SystemExit('error: the MNIST reference needs PDS_DATA=<folder holding mnist/ (IDX files)>')
    log = open(os.path.join(args.out, 'neutrality.log'), 'a')

    def say(text):
        print(text, flush=True)
        log.write(text + '\n')
        log.flush()
    say(f'benchmarks/precision_neutrality.py {" ".join(argv if argv is not None else sys.argv[1:])} '
        f'(torch {torch.__version__}, {args.device}, {time.strftime("%Y-%m-%d %H:%M")})')
    if args.per_sigma:
        for key in wanted:
            per_sigma(available[key], args, say)
        return None
    names = {pt.name for key in wanted for pt in available[key].points}
    unknown = sorted(set(args.points or ()) - names)
    if unknown:
        raise SystemExit(f'error: --points {" ".join(unknown)}: the models {" ".join(wanted)} have the points '
                         f'{", ".join(sorted(names))}')
    results = {}
    logged = _csv_records(args.out)
    for key in wanted:
        model = available[key]
        sha = _checkpoint_sha(model)
        ref = model.ref if args.tiny else os.path.expandvars(model.ref)
        for point in model.points:
            if args.points and point.name not in args.points:
                continue
            for variant in ['fp32'] + [v for v in args.variants if v != 'fp32']:      # the reference first
                if args.summary:        # the run's eval.json, else its row (folders are not committed)
                    rec = finished(os.path.join(args.out, key, point.name, variant), args.num_samples) or \
                        logged_row(logged, model, point, variant, args.num_samples, sha)
                    if rec is None:
                        other = logged.get((key, point.name, variant, args.num_samples))
                        if other is not None:
                            say(f'note: {key} {point.name} {variant}: the row of neutrality.csv was made from '
                                f'checkpoint sha256 {other["checkpoint_sha256"][:12]}, not {model.checkpoint} '
                                f'(sha256 {(sha or "missing")[:12]}); left out of the table')
                        continue
                else:
                    rec, _ = run_point(model, point, variant, args, ref, say, logged, sha)
                results.setdefault((key, point.name), {})[variant] = rec
    text = table(results, args.num_samples)
    say('\n' + text)
    with open(os.path.join(args.out, 'neutrality.md'), 'w') as f:
        f.write(text)
    return results


if __name__ == '__main__':
    main()
