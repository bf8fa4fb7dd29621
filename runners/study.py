"""The engine of the measurement studies (``studies/``: one file per model, each study a list of points, a config's
overrides and a sample count): it samples each point with ``runners.sample`` and scores it with Clean-FID / KID by
``runners.evaluate.run_eval``, one results-CSV row per point.  Its command (``python -m runners.study`` is the same)::

    python -m evaluation.study a_curves [--csv runs/study/model_a/study.csv] [--out runs/study] [--only NAME,...]
    python -m evaluation.study a_map --list --csv results/model_a/study.csv   # the points, which are done
    python -m evaluation.study a_map --csv results/model_a/study.csv --plot results/model_a/map_20it.png

Results go to ``--csv``, by default ``<out>/<model>/study.csv`` (``runs/study/model_a/study.csv``, untracked): the
committed CSVs under ``results/`` are written only when named (``results/*/run_studies.sh`` does).
Resumable: each point samples into its own workdir (``<out>/<study>/<checkpoint sha256[:8]>/<point>``, the resumable
``--mode sample`` layout, Inception features kept beside the images; locked while a run works in it) and a point that
already has a row in the CSV (same config and overrides, sample count, checkpoint hash and feature extractor) is
skipped, so killing and rerunning continues where it stopped and never duplicates a row.  A point whose images
another point of the same checkpoint has drawn already (same config, seed and batch size, at least as many samples,
in any study under ``--out``) starts from that folder's first samples, hard-linked, and is only scored.  Tables (``--summary``),
lists and plots (``evaluation/study_report.py``) use only the rows of the checkpoint and ``--fid_features`` asked for
(default Inception), each point at its own sample count, and say which rows they used.  Points run in the listed
order (cheapest and most informative first); progress and an ETA are printed after each one.

The results folders are named by model (``results/model_a``, ``results/model_b``, ``results/gpu``, ...); a path under
a former name (``results/mnist_cpu``, ``results/h200``) is read from the new folder, with a note, and an untracked
default CSV under a former name (``runs/study/mnist_cpu/study.csv``) is still found.

The studies are listed at the end of ``--help`` (one paragraph per file of ``studies/``).
"""
import argparse
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from evaluation.study_report import done_rows, plot_map, report, row_at_any_count  # noqa: E402
from studies import STUDIES, describe as describe_studies  # noqa: E402
from studies.spec import at_precision, config_name, point_config, precision_tag  # noqa: E402

# results/<former name> -> results/<name>: the results folders were renamed by model (issue 32)
RENAMED_RESULTS = {'mnist_cpu': 'model_a', 'h200': 'gpu'}


def _note(text):
    print(f'note: {text}', file=sys.stderr, flush=True)


def current_path(path):
    """``path``, or where it is now if it lies in a results folder under a former name (``results/mnist_cpu/...``):
    when the former folder is gone and the new one is there, the same path in the new folder, with a note."""
    if not path:
        return path
    parts = os.path.normpath(path).split(os.sep)
    for k in range(len(parts) - 1):
        if parts[k] == 'results' and parts[k + 1] in RENAMED_RESULTS:
            old = os.sep.join(parts[:k + 2])
            new = os.sep.join(parts[:k + 1] + [RENAMED_RESULTS[parts[k + 1]]])
            if not os.path.exists(old) and os.path.isdir(new):
                moved = os.sep.join([new] + parts[k + 2:])
                _note(f'{old} is now {new} (the results folders are named by model); using {moved}')
                return moved
    return path


def pending(study, csv_path, sha256, features='inception', only=()):
    """The points of ``study`` (or of ``only``) that have no row yet in ``csv_path`` for the checkpoint of hash
    ``sha256`` and the ``features`` extractor: what a run of the study would compute (the done-check)."""
    done = done_rows(csv_path, sha256, features)
    return [p for p in study.points
            if (not only or p.name in only) and (config_name(study, p), p.num_samples) not in done]


def _cost(study, point):
    """Relative cost of a point: images x (NFE + what the features of one image cost in NFE)."""
    import sampling
    nfe = sampling.iterations(point_config(study, point))[1] or 100
    return point.num_samples * (nfe + FEATURE_NFE)


# one image's Inception features cost about 45 NFE of the ngf 16 NCSN on these CPUs: 5.5-6.6 img/s
# (benchmarks/inception_cpu.py) against about 275 img-NFE/s (benchmarks/cpu_speed.py); only the ETA uses it
FEATURE_NFE = 45


def _checkpoint(study, checkpoint):
    """(path, provenance record) of the checkpoint a study runs: ``checkpoint`` or the study's shipped one."""
    from evaluation.features import EvalError
    from utils.provenance import file_record
    checkpoint = checkpoint or os.path.join(ROOT, study.model['checkpoint'])
    if not os.path.isfile(checkpoint):
        raise EvalError(f'study {study.name}: checkpoint {checkpoint!r} not found')
    return checkpoint, file_record(checkpoint)


def _progress(workdir, point):
    """' (k of n batches sampled)' for a point part way in ``workdir`` (a resumed run samples only the rest), else ''."""
    from runners.sample import _finished_batches
    done = len(_finished_batches(workdir))
    if not done:
        return ''
    try:
        with open(os.path.join(workdir, 'settings.json')) as f:
            size = int(json.load(f)['batch_size'])
    except (OSError, ValueError, KeyError, TypeError):
        return f' ({done} batches sampled)'
    total = -(-point.num_samples // size)
    return f' ({min(done, total)} of {total} batches sampled)' if done < total else ' (sampled; features to do)'


def _elsewhere(rows, study, point):
    """' (measured at n samples: FID f)' for a point with no row at its own sample count but one at another (e.g. a
    rivals point that a curves study ran at 2,000 samples; the resolution table counts it, ``--list`` says so), else
    ''.  ``rows``: {(config, num_samples): row}; the largest other count is named."""
    row = row_at_any_count(rows, config_name(study, point), point.num_samples)
    return f" (measured at {row['num_samples']} samples: FID {float(row['fid']):.2f})" if row else ''


def _workdir(out, study, sha, point):
    """Where a point's samples are drawn (and found by a later run): <out>/<study>/<checkpoint sha[:8]>/<point>, or
    <point>.bf16 (.tf32, .bf16-min0.1) for a study sampled at another precision (``studies.spec.at_precision``)."""
    tag = precision_tag(study)
    return os.path.join(out, study.name, sha[:8], point.name + (f'.{tag}' if tag else ''))


def _reuse_samples(out, study, sha, point, config, batch, log, number=''):
    """Before a point samples into its new workdir: seed it with the first samples of another point's folder of the
    same checkpoint (any study under ``out``) that drew exactly these images (same config, seed and batch size, at
    least as many samples; ``runners.sample.seed_workdir``), e.g. a rivals study's 500-sample PC point from the
    curves' 2,000-sample run of the same config.  Then only the features are computed.  Returns the source or None."""
    import glob
    from runners.sample import seed_workdir
    workdir = _workdir(out, study, sha, point)
    if os.path.exists(workdir):
        return None
    for source in sorted(glob.glob(os.path.join(glob.escape(out), '*', sha[:8], '*'))):
        if os.path.basename(source).split('.')[-1].startswith(('stale', 'seeding')) or \
                os.path.abspath(source) == os.path.abspath(workdir):
            continue
        if seed_workdir(workdir, source, config, config.seed, batch, point.num_samples, precision=study.precision,
                        bf16_min_sigma=study.bf16_min_sigma):
            log(f'{number}{point.name}: the first {point.num_samples} samples of {source} are the same draws '
                '(same config, seed and batch size): reused, not sampled again')
            return source
    return None


def default_csv(study, out):
    """Where a study's rows go without ``--csv``: ``<out>/<model's results folder name>/study.csv`` (e.g.
    ``runs/study/model_a/study.csv``), untracked; one file per model, as the studies of a model share points.  A
    CSV there under the folder's former name (``runs/study/mnist_cpu/study.csv``) is used while the new one does not
    exist, with a note."""
    name = os.path.basename(study.model['results'])
    path = os.path.join(out, name, 'study.csv')
    for old, new in RENAMED_RESULTS.items():
        former = os.path.join(out, old, 'study.csv')
        if new == name and not os.path.exists(path) and os.path.isfile(former):
            _note(f'using {former}, the rows of a run made before the results folders were named by model '
                  f'(new runs write {path}; move the file there to switch)')
            return former
    return path


def _speed(study, speed, compile):
    """The run's ``models.speed.Speed`` (``--compile`` folded in); its precision must be the study's
    (``studies.spec.at_precision``), which names the points' rows and workdirs."""
    from models import speed as speed_lib
    speed = speed or speed_lib.Speed(precision=study.precision, bf16_min_sigma=study.bf16_min_sigma)
    if compile and not speed.compile:
        speed = speed_lib.dataclasses.replace(speed, compile=True)
    if (speed.precision, speed.bf16_min_sigma) != (study.precision, study.bf16_min_sigma):
        raise ValueError(f'study {study.name} is at {study.precision} but the speed switches ask for '
                         f'{speed.precision}; expected the study made by studies.spec.at_precision(study, '
                         f'{speed.precision!r})')
    return speed


def sample_study(study, out, checkpoint=None, device='cpu', only=(), progress=True, log=print, compile=False,
                 speed=None):
    """Draw the samples of every point of ``study`` (or of ``only``) into the workdirs that :func:`run_study` scores,
    and score nothing (``--sample_only``): sample on a GPU machine, then run the study where the Inception network
    and the reference are, which finds the batches done and computes only the features.  The same seeds, batch
    size and noise (drawn on the CPU) as a study run that samples itself; finished batches are kept (resumable).
    ``speed``: the speed switches (``models.speed.Speed``; the study's precision, see :func:`run_study`)."""
    from models import speed as speed_lib
    from models.checkpoint import load_score_model
    from runners import validate
    from runners.sample import SamplingError, run_sample
    speed = _speed(study, speed, compile)
    checkpoint, record = _checkpoint(study, checkpoint)
    points = [p for p in study.points if not only or p.name in only]
    for i, point in enumerate(points):
        start = time.time()
        config, batch = point_config(study, point), min(study.batch_size, point.num_samples)
        validate.check_sampling(config, point.num_samples, batch)
        _reuse_samples(out, study, record['sha256'], point, config, batch, log, f'[{i + 1}/{len(points)}] ')
        score = load_score_model(checkpoint, config, use_ema=True, device=device, compile=False)
        score, _ = speed_lib.prepare(score, speed, config, device, point.num_samples, batch, say=False)
        try:
            run_sample(config, score, _workdir(out, study, record['sha256'], point), point.num_samples, batch,
                       config.seed, device=device, checkpoint=os.path.abspath(checkpoint), progress=progress,
                       speed=speed)
        except SamplingError as e:
            if 'diverged' not in str(e):
                raise
            log(f'[{i + 1}/{len(points)}] {point.name}: diverged ({e})')
            continue
        log(f'[{i + 1}/{len(points)}] {point.name}: {point.num_samples} samples drawn on {device}, '
            f'{time.time() - start:.0f} s')


def _reference(study):
    """The study's reference (``study.model['ref']``) with its environment variables expanded; one line if one is
    unset."""
    from evaluation.features import EvalError
    ref = os.path.expandvars(study.model['ref'])
    if '$' in ref:
        unset = sorted(set(re.findall(r'\$\{?(\w+)', ref)))
        raise EvalError(f'study {study.name}: the reference {study.model["ref"]!r} needs the environment variable '
                        f'{", ".join(unset)} (e.g. PDS_DATA=<folder holding the dataset folder it names>)')
    return ref


def reference_study(study, device='cpu', inception_path=None, fid_cache=None, features='inception', progress=True,
                    log=print):
    """Compute (or find in the cache) the reference features of ``study`` and score nothing (``--reference_only``):
    the same file, found by the same key, as :func:`run_study` would make before its first point, so that it can be
    made beside a ``--sample_only`` run (on another machine or core) instead of after it.  It resumes part way, as
    there (``evaluation.metrics.features_in_parts``).  Returns the seconds it took."""
    from evaluation import features as features_lib, reference
    start = time.time()
    ref = _reference(study)
    config = point_config(study, study.points[0])        # the dataset, resolution and channels of every point
    model, info = features_lib.build_extractor(features, 'clean', device, inception_path)
    reference.resolve_reference(ref, config, model, info, 'clean', fid_cache, study.model['ref_split'], seed=0,
                                device=device, progress=progress)
    log(f'{study.name}: the reference features of {study.model["ref"]} ({study.model["ref_split"] or "default"} '
        f'split, {features}) are in the cache ({time.time() - start:.0f} s)')
    return time.time() - start


def run_study(study, csv_path, out, checkpoint=None, device='cpu', inception_path=None, fid_cache=None,
              features='inception', only=(), progress=True, log=print, grids=None, compile=False, speed=None):
    """Score every point of ``study`` not yet in ``csv_path``; returns the rows of the study's points.  With
    ``grids`` (a folder), each point's grid of its first 64 samples (the same seeds for every point) is copied
    there as ``<point>.png``.  ``compile``: torch.compile the network (``--compile``; faster for Model A on the
    CPU, outputs within about 1e-6 of the eager network's).  ``speed``: the speed switches of ``--mode sample``
    (``models.speed.Speed``: precision, channels-last, compile and its mode, CUDA graphs; default: fp32, as the
    official code).  Its precision must be the study's (``studies.spec.at_precision``): tf32 and bf16 change the
    images, so their points have rows and workdirs of their own; the other switches change them only by float
    rounding and share the fp32 points'."""
    from runners.evaluate import run_eval
    from runners.sample import SamplingError, SettingsMismatch
    speed = _speed(study, speed, compile)
    checkpoint, record = _checkpoint(study, checkpoint)
    ref = _reference(study)
    sha = record['sha256']
    points = [p for p in study.points if not only or p.name in only]
    todo = pending(study, csv_path, sha, features, only)
    total = sum(_cost(study, p) for p in todo)
    log(f'{study.name}: {len(points) - len(todo)} of {len(points)} points done; {len(todo)} to run '
        f'(checkpoint sha256 {sha[:12]}, results {csv_path})')
    spent, cost_done = 0., 0.
    for i, point in enumerate(todo):
        start = time.time()
        workdir = _workdir(out, study, sha, point)
        config, batch = point_config(study, point), min(study.batch_size, point.num_samples)
        _reuse_samples(out, study, sha, point, config, batch, log, f'[{i + 1}/{len(todo)}] ')

        def evaluate():
            return run_eval(config, workdir, checkpoint=checkpoint, num_samples=point.num_samples,
                            batch_size=batch, device=device, ref=ref,
                            ref_split=study.model['ref_split'], features=features, inception_path=inception_path,
                            results_csv=csv_path, fid_cache=fid_cache, config_name=config_name(study, point),
                            progress=progress, label=point.label, speed=speed)
        try:
            try:
                rec = evaluate()
            except SettingsMismatch as e:
                # samples of an earlier run of this point (another sample count, or code whose config defaults
                # have changed since): they cannot be checked against this run's, so they are set aside, not mixed
                stale = _set_aside(workdir)
                log(f'[{i + 1}/{len(todo)}] {point.name}: {e}; moved to {stale}, sampling afresh')
                rec = evaluate()
        except SamplingError as e:
            if 'diverged' not in str(e):
                raise
            rec = diverged_row(study, point, checkpoint, record, csv_path, features)
            log(f'[{i + 1}/{len(todo)}] {point.name} ({point.label}): diverged, recorded as FID inf ({e})')
            cost_done += _cost(study, point)
            continue
        if grids and os.path.isfile(os.path.join(workdir, 'grid.png')):
            import shutil
            os.makedirs(grids, exist_ok=True)
            shutil.copyfile(os.path.join(workdir, 'grid.png'),
                            os.path.join(grids, f'{os.path.basename(workdir)}.png'))    # <point>[.bf16].png
        spent += time.time() - start - float(rec.get('reference_seconds') or 0)   # the reference is once
        cost_done += _cost(study, point)
        eta = spent / cost_done * (total - cost_done)
        kid = '' if rec['kid'] is None else f", KID {rec['kid']:.4f} ± {rec['kid_std']:.4f}"
        log(f"[{i + 1}/{len(todo)}] {point.name} ({point.label}): FID {rec['fid']:.2f}{kid}, "
            f"{rec['num_samples']} samples, NFE {rec['nfe']}, {time.time() - start:.0f} s; "
            f"ETA {eta / 60:.0f} min")
    rows = done_rows(csv_path, sha, features)
    return [rows[(config_name(study, p), p.num_samples)] for p in points
            if (config_name(study, p), p.num_samples) in rows]


def _set_aside(workdir):
    """Rename ``workdir`` to the first free ``<workdir>.stale<k>`` (holding its lock: no run is in it); returns the new
    name."""
    from utils.lock import LOCK_NAME, workdir_lock
    k = 1
    while os.path.exists(f'{workdir}.stale{k}'):
        k += 1
    with workdir_lock(workdir):
        os.replace(workdir, f'{workdir}.stale{k}')
    if os.path.isfile(os.path.join(f'{workdir}.stale{k}', LOCK_NAME)):     # moved along with the folder
        os.remove(os.path.join(f'{workdir}.stale{k}', LOCK_NAME))
    return f'{workdir}.stale{k}'


def diverged_row(study, point, checkpoint, rec, csv_path, features='inception'):
    """The CSV row of a point whose sampler diverged (left the divergence bound of ``runners.sample``): FID and KID
    are infinite (the sampler has no output), so that the map shows it and a rerun does not try again.  ``rec`` is
    the checkpoint's ``utils.provenance.file_record``; ``features`` the extractor of the run (the row is found as
    done by runs with that extractor only)."""
    import datetime
    import sampling
    from evaluation import results
    config = point_config(study, point)
    its, nfe = sampling.iterations(config)
    row = dict(results.config_fields(config))
    row.update(time=datetime.datetime.now().isoformat(timespec='seconds'), config=config_name(study, point),
               checkpoint=checkpoint, checkpoint_file=rec['path'], checkpoint_sha256=rec['sha256'], iterations=its,
               nfe=nfe, num_samples=point.num_samples, seed=config.seed, fid=float('inf'), label=point.label,
               features=features, fid_mode='clean', reference=study.model['ref'])
    results.append_csv(csv_path, row)
    return row


def main(argv=None, prog='python -m evaluation.study'):
    p = argparse.ArgumentParser(prog=prog, description=__doc__, epilog='studies:\n' + describe_studies(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('study', choices=sorted(STUDIES))
    p.add_argument('--csv', default=None, help="default: <out>/<model>/study.csv (Model A: "
                   "runs/study/model_a/study.csv, Model B: runs/study/model_b/study.csv), untracked; the committed "
                   "results/<model>/study.csv only when named here")
    p.add_argument('--out', default=os.path.join('runs', 'study'))
    p.add_argument('--checkpoint', default=None, help="default: the study's shipped checkpoint")
    p.add_argument('--samples', type=int, default=None, help='samples per point (default: the study\'s counts)')
    p.add_argument('--only', default='', help='comma-separated point names')
    p.add_argument('--list', action='store_true', help='list the points and whether each is done; run nothing')
    p.add_argument('--plot', default=None, help='a_map: draw the heat map of the rows done into this image')
    p.add_argument('--summary', action='store_true', help='print the rows done as a markdown table (and, for '
                   'a_curves, the iterations vanilla needs to match PDS at 20); run nothing')
    p.add_argument('--grids', default=None, help='copy each point\'s sample grid here as <point>.png (default: '
                   '<the --csv folder>/grids/<study>; "" for none)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--compile', action='store_true', help='torch.compile the network (Model A: about 1.4x on the CPU '
                   'after a compile of about a minute; Model B: no faster)')
    p.add_argument('--precision', default='fp32', help="fp32 (default, as the official code) | tf32 | bf16 "
                   "(models/speed.py): tf32 and bf16 change the images, so their points get rows (config ending in "
                   "--precision=...) and workdirs (<point>.bf16) of their own; --summary / --list / --plot with it "
                   "show those rows")
    p.add_argument('--bf16_min_sigma', type=float, default=0., help='with --precision bf16: network calls below this '
                   'noise level in float32 (its own rows and workdirs too)')
    p.add_argument('--channels_last', default='auto', help='auto | on | off (models/speed.py)')
    p.add_argument('--compile_mode', default='default', help='default | max-autotune (with --compile)')
    p.add_argument('--cuda_graphs', action='store_true', help='capture each fixed-shape sampler step in a CUDA graph '
                   '(the same draws as eager; on the CPU: one line, eager)')
    p.add_argument('--inception_path', default=None)
    p.add_argument('--fid_cache', default=None)
    p.add_argument('--fid_features', default='inception', choices=('inception', 'standin'),
                   help='the feature extractor of the run; --summary, --list and --plot use only rows of it')
    p.add_argument('--no_progress', action='store_true')
    p.add_argument('--reference_only', action='store_true', help='compute (or find in --fid_cache) the reference '
                   'features the study scores against, and nothing else: e.g. beside a --sample_only run, so that the '
                   'study run after it computes only its samples\' features')
    p.add_argument('--sample_only', action='store_true', help='draw the samples of the points (all, or --only) into '
                   '--out and score nothing: e.g. on a GPU machine, then run the study without it where the Inception '
                   'network is (it finds the batches done)')
    args = p.parse_args(argv)
    if args.samples is not None and args.samples < 1:
        print(f"error: --samples {args.samples}: expected an integer >= 1 (samples per point; leave it out for the "
              "study's own counts)", file=sys.stderr)
        return 2
    from models import speed as speed_lib
    try:
        speed = speed_lib.from_flags(args)
    except speed_lib.SpeedError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    study = at_precision(STUDIES[args.study](args.samples), speed.precision, speed.bf16_min_sigma)
    args.csv, args.plot, args.grids = current_path(args.csv), current_path(args.plot), current_path(args.grids)
    only = tuple(x.strip() for x in args.only.split(',') if x.strip())
    unknown = [x for x in only if x not in {pt.name for pt in study.points}]
    if unknown:
        print(f'error: {study.name} has no points {unknown}; see --list', file=sys.stderr)
        return 2
    from evaluation.features import EvalError
    from runners.sample import SamplingError
    args.csv = args.csv or default_csv(study, args.out)
    from utils.lock import WorkdirError
    from utils.signals import exit_status, terminate_as_interrupt
    try:
        if args.summary or args.list or args.plot:
            from utils.provenance import file_record
            ckpt = args.checkpoint or os.path.join(ROOT, study.model['checkpoint'])
            if os.path.isfile(ckpt):
                sha = file_record(ckpt)['sha256']
                rows = done_rows(args.csv, sha, args.fid_features)
                if args.list:
                    at = f', sampled at {precision_tag(study)}' if precision_tag(study) else ''
                    print(f'(rows of {args.csv}: {args.fid_features} features, checkpoint sha256 {sha[:12]}{at})',
                          file=sys.stderr)
            elif args.list:
                print(f'(checkpoint {ckpt} not found: nothing is done yet)')
                rows = {}
            else:
                raise EvalError(f'study {study.name}: checkpoint {ckpt!r} not found')
            if args.summary:
                print(report(study, list(rows.values())), end='')
                return 0
            for pt in study.points:
                row = rows.get((config_name(study, pt), pt.num_samples))
                state = f"FID {float(row['fid']):.2f}" if row else 'to do' + _elsewhere(rows, study, pt) + (
                    _progress(_workdir(args.out, study, sha, pt), pt) if os.path.isfile(ckpt) else '')
                print(f'{pt.name:24s} {pt.label:32s} {pt.num_samples:5d} samples  {state}')
            if args.plot:
                plot_map(study, list(rows.values()), args.plot)
                print(f'wrote {args.plot}')
            return 0
        from runners.cli import resolve_device
        resolve_device(args.device)          # a CUDA device this machine lacks: one line, before any work
        if args.reference_only and args.sample_only:
            raise ValueError('--reference_only and --sample_only together would do nothing; expected one of them')
        if not args.sample_only and not args.reference_only:
            from evaluation.results import check_csv
            check_csv(args.csv, '--csv')     # a folder or an unwritable path: one line, before any sampling
        # SIGTERM (kill, a scheduler) stops the points as Ctrl-C does: lock files removed, one line, exit 143
        with terminate_as_interrupt():
            if args.reference_only:
                reference_study(study, args.device, args.inception_path, args.fid_cache, args.fid_features,
                                progress=not args.no_progress)
                return 0
            if args.sample_only:
                sample_study(study, args.out, args.checkpoint, args.device, only, progress=not args.no_progress,
                             speed=speed)
                return 0
            grids = (args.grids if args.grids is not None
                     else os.path.join(os.path.dirname(args.csv), 'grids', study.name))
            run_study(study, args.csv, args.out, args.checkpoint, args.device, args.inception_path, args.fid_cache,
                      args.fid_features, only, progress=not args.no_progress, grids=grids or None,
                      speed=speed)
    except (EvalError, ValueError, FileNotFoundError, SamplingError, WorkdirError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:    # every output is written atomically: the rows and batches done are kept
        print(f'interrupted: the rows in {args.csv!r} and the finished batches under {args.out!r} are kept; rerun '
              'the same command to continue', file=sys.stderr, flush=True)
        return exit_status(stop)
    return 0


if __name__ == '__main__':
    sys.exit(main())
