"""Measurement studies on the project's CPU-trained models: sets of evaluation points (a config, overrides, a sample
count) scored with Clean-FID / KID by ``runners.evaluate.run_eval``, one results-CSV row per point.

    python -m evaluation.study a_curves [--csv runs/study/mnist_cpu/study.csv] [--out runs/study] [--only NAME,...]
    python -m evaluation.study a_map --list --csv results/mnist_cpu/study.csv   # the points, which are done
    python -m evaluation.study a_map --csv results/mnist_cpu/study.csv --plot results/mnist_cpu/map_20it.png

Results go to ``--csv``, by default ``<out>/<model>/study.csv`` (``runs/study/mnist_cpu/study.csv``, untracked): the
committed CSVs under ``results/`` are written only when named (``results/*/run_studies.sh`` does).
Resumable: each point samples into its own workdir (``<out>/<study>/<checkpoint sha256[:8]>/<point>``, the resumable
``--mode sample`` layout, Inception features kept beside the images; locked while a run works in it) and a point that
already has a row in the CSV (same config and overrides, sample count, checkpoint hash and feature extractor) is
skipped, so killing and rerunning continues where it stopped and never duplicates a row.  Tables (``--summary``),
lists and plots use only the rows of the checkpoint and ``--fid_features`` asked for (default Inception), each point
at its own sample count, and say which rows they used.  Points run in the listed order (cheapest and most informative
first); progress and an ETA are printed after each one.

Studies (Model A = checkpoints/ncsn_mnist_cpu, annealed Langevin, 10 noise levels; reference: the 10,000 MNIST test
images, ``$PDS_DATA/mnist``):

* ``a_curves``: FID / KID against iterations 10 .. 1000 (10 levels x 1 .. 100 steps, the official step_lr 2e-5) for
  vanilla, PDS with the Table 1 filter (r = 0.2H, lambda = 1.6, 'direct') and automatic PDS (``pds.freq = 'auto'``);
  2,000 samples per point up to 100 iterations, 500 beyond.
* ``a_map``: FID at 20 iterations over the high-frequency gain g x step_lr, 1,000 samples per cell.  Eq. 20's two
  readings are one axis: 'inverse' with lambda is *exactly* 'direct' with 1 / lambda (the filter is 1 inside the
  disc and lambda or 1 / lambda outside), so g > 1 is 'direct' lambda = g, g < 1 is 'inverse' lambda = 1 / g, and
  g = 1 is vanilla.
* ``a_rivals``: the rival samplers at the same NFE (2,000 samples per point): annealed Langevin (vanilla, PDS Table
  1, PDS auto) at 10 / 20 / 50 / 100, Euler and EDM Heun on the probability-flow ODE, EDM's stochastic sampler, and
  Heun + k Langevin corrector steps per level, without and with PDS in the corrector (supp. Theorem 1), all on the
  model's own 10 geometric levels (NCSN v1 is trained only there).  The adaptive solvers (scipy RK45, Gotta Go Fast)
  need a score continuous in sigma and wait for Model B (NCSN++).
"""
import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Model A's points are overrides of the paper's Table 1 row (not of the config's default, automatic PDS)
MODEL_A = dict(config='mnist_cpu_pds:table1_20it', checkpoint=os.path.join('checkpoints', 'ncsn_mnist_cpu', 'checkpoint.pth'),
               ref='data:$PDS_DATA/mnist', ref_split='test', results=os.path.join('results', 'mnist_cpu'))
MODEL_B = dict(config='mnist_ncsnpp_cpu_pds', checkpoint=os.path.join('checkpoints', 'ncsnpp_mnist_cpu', 'checkpoint.pth'),
               ref='data:$PDS_DATA/mnist', ref_split='test', results=os.path.join('results', 'model_b'))
CURVE_ITERATIONS = (10, 20, 50, 100, 200, 500, 1000)
MAP_GAINS = (1.0, 1.6, 1 / 1.6, 2.5, 1 / 2.5)
MAP_STEPS = (2e-5, 1e-4, 5e-4, 5e-5, 2e-4, 1e-5)


@dataclass(frozen=True)
class Point:
    """One evaluation: ``overrides`` ((section.field, value), ...) applied to the study's config."""
    name: str                 # unique in its study: the workdir's name
    label: str                # the series it belongs to (plots, tables)
    overrides: tuple
    num_samples: int


@dataclass(frozen=True)
class Study:
    name: str
    model: dict               # config module, checkpoint, reference spec and split
    points: tuple
    batch_size: int = 100


def _gain_overrides(gain):
    """The radial filter of Eq. 20 with high-frequency gain ``gain`` (module docstring); gain 1 is vanilla."""
    if abs(gain - 1) < 1e-12:
        return (('pds.enabled', False),)
    if gain > 1:
        return (('pds.freq', 'radial'), ('pds.radial_direction', 'direct'), ('pds.lam', round(gain, 6)))
    return (('pds.freq', 'radial'), ('pds.radial_direction', 'inverse'), ('pds.lam', round(1 / gain, 6)))


def _gain_label(gain):
    if abs(gain - 1) < 1e-12:
        return 'vanilla'
    return f'direct λ={gain:g}' if gain > 1 else f'inverse λ={1 / gain:g}'


# annealed Langevin on Model A's 10 levels: (point name prefix, series label, overrides of configs/mnist_cpu_pds.py:table1_20it)
ALD_SERIES = (('vanilla', 'vanilla', (('pds.enabled', False),)),
              ('pds_table1', 'PDS Table 1 (r=0.2H, λ=1.6)', ()),
              ('pds_auto', 'PDS auto', (('pds.freq', 'auto'),)))


def _ald_points(iterations, samples):
    """The ALD_SERIES points at each of ``iterations`` (10 levels x its / 10 steps); ``samples(its)`` per point."""
    return [Point(f'{key}_{its}it', label, over + (('sampling.n_steps_each', its // 10),), samples(its))
            for its in iterations for key, label, over in ALD_SERIES]


def a_curves(samples=None):
    return Study('a_curves', MODEL_A, tuple(_ald_points(CURVE_ITERATIONS,
                                                        lambda its: samples or (2000 if its <= 100 else 500))))


def a_map(samples=None):
    # coarse first: three step sizes x (vanilla, lambda 1.6 both ways), then lambda 2.5 both ways, then the finer steps
    coarse, fine = MAP_STEPS[:3], MAP_STEPS[3:]
    order = [(s, g) for s in coarse for g in MAP_GAINS[:3]] + [(s, g) for s in coarse for g in MAP_GAINS[3:]] + \
        [(s, g) for s in fine for g in MAP_GAINS]
    points = [Point(f'g{gain:.3f}_lr{step:g}', f'{_gain_label(gain)}, step_lr {step:g}',
                    _gain_overrides(gain) + (('sampling.step_lr', step),), samples or 1000) for step, gain in order]
    return Study('a_map', MODEL_A, tuple(points))


def a_rivals(samples=None):
    """The rival samplers on Model A at the budgets of the curves, on the model's own 10 noise levels (geometric
    1 -> 0.01: NCSN v1 is trained only there, between them its score is the nearest level's)."""
    n = samples or 2000
    off = (('pds.enabled', False),)
    edm = (('sampling.schedule', 'geometric'),)
    points = _ald_points((10, 20, 50, 100), lambda its: n)     # shared with a_curves (the same rows)
    for method, label, ns in (('ode_euler', 'Euler (PF-ODE)', (10,)), ('edm', 'EDM Heun', (4, 10)),
                              ('edm_stochastic', 'EDM stochastic', (4, 10))):
        for steps in ns:
            points.append(Point(f'{method}_{steps}', label, off + edm + (('sampling.method', method),
                                                                         ('sampling.num_steps', steps)), n))
    for k in (1, 3, 9):                             # Heun on the 10 levels + k corrector steps after each
        corr = edm + (('sampling.method', 'edm'), ('sampling.num_steps', 10), ('sampling.step_corrector', 'langevin'),
                      ('sampling.n_steps_each', k))
        points += [Point(f'heun_langevin{k}', 'Heun + Langevin corrector', off + corr, n),
                   Point(f'heun_pds{k}', 'Heun + PDS corrector (r=0.2H, λ=1.6)', corr, n)]
    return Study('a_rivals', MODEL_A, tuple(points))


# PC on Model B's VE SDE: N predictor steps = 1000 / speed_up (the PDS command line's convention, which also sets
# the smallest time eps = 1e-5 speed_up); NFE = 2N (one reverse-diffusion step + one Langevin step each)
PC_SERIES = (('vanilla', 'vanilla', (('pds.enabled', False),)),
             ('pds_a5', 'PDS stats α=5 (Table 2, 100 it)', (('pds.alpha', 5.),)),
             ('pds_a10', 'PDS stats α=10 (Table 2, 200 it)', (('pds.alpha', 10.),)),
             ('pds_auto', 'PDS auto', (('pds.freq', 'auto'),)))


def _pc_points(iterations, samples):
    return [Point(f'{key}_{its}it', label, over + (('sampling.speed_up', 1000 / its),), samples(its))
            for its in iterations for key, label, over in PC_SERIES]


def b_curves(samples=None):
    """FID / KID against PC iterations 10 .. 1000 on Model B: vanilla, the statistics filter at Table 2's two
    alphas, automatic PDS; 2,000 samples per point up to 100 iterations, 500 beyond.  Then alpha 5 in the Langevin
    corrector only (``pds.apply_to = 'corrector'``, what supp. Theorem 1 covers) at 50, 100 and 500 iterations:
    whether PDS's effect comes from the corrector or from preconditioning the predictor.  Last, alpha 5 (50 to 1000
    iterations) and alpha 10 (100 to 1000) with the predictor drift that keeps the reverse SDE's marginals
    (``pds.predictor_drift = 'marginal'``, (I + M M^T) / 2): whether the official predictor's loss at 100-200 is its
    drift leaving the reverse SDE."""
    count = lambda its: samples or (2000 if its <= 100 else 500)  # noqa: E731
    corrector_only = [Point(f'pds_a5_corr_{its}it', 'PDS stats α=5, corrector only',
                            (('pds.alpha', 5.), ('pds.apply_to', 'corrector'), ('sampling.speed_up', 1000 / its)),
                            count(its)) for its in (50, 100, 500)]
    marginal = [Point(f'pds_a5_marg_{its}it', 'PDS stats α=5, marginal predictor',
                      (('pds.alpha', 5.), ('pds.predictor_drift', 'marginal'), ('sampling.speed_up', 1000 / its)),
                      count(its)) for its in (100, 200, 50, 500, 1000)]
    marginal += [Point(f'pds_a10_marg_{its}it', 'PDS stats α=10, marginal predictor',
                       (('pds.alpha', 10.), ('pds.predictor_drift', 'marginal'), ('sampling.speed_up', 1000 / its)),
                       count(its)) for its in (100, 200, 500, 1000)]
    return Study('b_curves', MODEL_B, tuple(_pc_points(CURVE_ITERATIONS, count) + corrector_only + marginal),
                 batch_size=50)


def b_rivals(samples=None):
    """The rival samplers on Model B at NFE about 10 .. 100 (2,000 samples per point): PC (shared with b_curves),
    EDM Heun and EDM stochastic (the latter also at NFE 199, beside PC's best at NFE 200) on the Karras grid
    (rho 7, sigma 17 -> 0.01), Euler on the same grid, score_sde's RK45 probability-flow ODE and Gotta Go Fast at
    three tolerances each (their NFE is what they used), and Heun + k Langevin corrector steps per level without
    and with PDS in the corrector (statistics filter, alpha 5)."""
    n = samples or 2000
    off = (('pds.enabled', False),)
    points = _pc_points((10, 20, 50), lambda its: n)
    for steps in (5, 10, 25, 50):
        points.append(Point(f'edm_{steps}', 'EDM Heun', off + (('sampling.method', 'edm'),
                                                               ('sampling.num_steps', steps)), n))
    for steps in (5, 10, 25, 50, 100):             # 100 steps = NFE 199: beside PC at 100 iterations (NFE 200)
        points.append(Point(f'edm_stochastic_{steps}', 'EDM stochastic',
                            off + (('sampling.method', 'edm_stochastic'), ('sampling.num_steps', steps)), n))
    for steps in (10, 20, 50, 100):
        points.append(Point(f'ode_euler_{steps}', 'Euler (PF-ODE)', off + (('sampling.method', 'ode_euler'),
                                                                           ('sampling.num_steps', steps)), n))
    for tol in (1e-2, 1e-3, 1e-5):
        points.append(Point(f'rk45_{tol:g}', 'PF-ODE RK45', off + (('sampling.method', 'ode'), ('sampling.ode_rtol', tol),
                                                                   ('sampling.ode_atol', tol)), n))
    for rel in (0.1, 0.05, 0.02):
        points.append(Point(f'ggf_{rel:g}', 'Gotta Go Fast', off + (('sampling.method', 'adaptive_sde'),
                                                                    ('sampling.adaptive_reltol', rel)), n))
    for k in (1, 3):                                # Heun on 10 Karras levels + k corrector steps after each
        corr = (('sampling.method', 'edm'), ('sampling.num_steps', 10), ('sampling.step_corrector', 'langevin'),
                ('sampling.n_steps_each', k))
        points += [Point(f'heun_langevin{k}', 'Heun + Langevin corrector', off + corr, n),
                   Point(f'heun_pds{k}', 'Heun + PDS corrector (stats, α=5)', corr, n)]
    return Study('b_rivals', MODEL_B, tuple(points), batch_size=50)


STUDIES = {'a_curves': a_curves, 'a_map': a_map, 'a_rivals': a_rivals, 'b_curves': b_curves, 'b_rivals': b_rivals}


# ---------------------------------------------------------------------------------------------------------------

def _kid_text(kid, std):
    """'0.673 ± 0.003', '0.0042 ± 0.0007': KID and its standard deviation to the standard deviation's first
    significant digit (at least 3 decimals), so small KIDs keep their precision."""
    kid, std = float(kid), float(std or 0)
    places = max(3, -math.floor(math.log10(std))) if std > 0 else 3
    return f'{kid:.{places}f} ± {std:.{places}f}'


def point_config(study, point):
    import importlib
    from configs.defaults import set_field
    module, _, setting = study.model['config'].partition(':')
    get_config = importlib.import_module(f'configs.{module}').get_config
    config = get_config(setting) if setting else get_config()
    for key, value in point.overrides:
        if not set_field(config, key, value):
            raise ValueError(f'study {study.name}: the config has no field {key!r}')
    return config


def config_name(study, point):
    """How the point's config is named on the command line (the CSV's ``config`` column, the resume key)."""
    def flag(key, value):
        if key == 'pds.enabled':
            return f'--pds={str(value).lower()}'
        return f'--config.{key}={value}'
    module, colon, setting = study.model['config'].partition(':')
    return f'configs/{module}.py{colon}{setting} ' + ' '.join(flag(k, v) for k, v in point.overrides)


def done_rows(csv_path, sha256, features='inception'):
    """{(config, num_samples): row} of the CSV rows made with the checkpoint of hash ``sha256`` and the ``features``
    extractor: a stand-in row never counts as (or replaces) an Inception one, nor a row of another checkpoint."""
    from evaluation.results import read_csv
    if not os.path.isfile(csv_path):
        return {}
    return _by_point(r for r in read_csv(csv_path)
                     if r.get('checkpoint_sha256') == sha256 and r.get('fid') not in ('', None)
                     and r.get('features') == features)


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


def _workdir(out, study, sha, point):
    """Where a point's samples are drawn (and found by a later run): <out>/<study>/<checkpoint sha[:8]>/<point>."""
    return os.path.join(out, study.name, sha[:8], point.name)


def default_csv(study, out):
    """Where a study's rows go without ``--csv``: ``<out>/<model's results folder name>/study.csv`` (e.g.
    ``runs/study/mnist_cpu/study.csv``), untracked; one file per model, as the studies of a model share points."""
    return os.path.join(out, os.path.basename(study.model['results']), 'study.csv')


def sample_study(study, out, checkpoint=None, device='cpu', only=(), progress=True, log=print, compile=False):
    """Draw the samples of every point of ``study`` (or of ``only``) into the workdirs that :func:`run_study` scores,
    and score nothing (``--sample_only``): sample on a GPU machine, then run the study where the Inception network
    and the reference are, which finds the batches done and computes only the features.  The same seeds, batch
    size and noise (drawn on the CPU) as a study run that samples itself; finished batches are kept (resumable)."""
    from models.checkpoint import load_score_model
    from runners import validate
    from runners.sample import SamplingError, run_sample
    checkpoint, record = _checkpoint(study, checkpoint)
    points = [p for p in study.points if not only or p.name in only]
    for i, point in enumerate(points):
        start = time.time()
        config, batch = point_config(study, point), min(study.batch_size, point.num_samples)
        validate.check_sampling(config, point.num_samples, batch)
        score = load_score_model(checkpoint, config, use_ema=True, device=device, compile=compile)
        try:
            run_sample(config, score, _workdir(out, study, record['sha256'], point), point.num_samples, batch,
                       config.seed, device=device, checkpoint=os.path.abspath(checkpoint), progress=progress)
        except SamplingError as e:
            if 'diverged' not in str(e):
                raise
            log(f'[{i + 1}/{len(points)}] {point.name}: diverged ({e})')
            continue
        log(f'[{i + 1}/{len(points)}] {point.name}: {point.num_samples} samples drawn on {device}, '
            f'{time.time() - start:.0f} s')


def run_study(study, csv_path, out, checkpoint=None, device='cpu', inception_path=None, fid_cache=None,
              features='inception', only=(), progress=True, log=print, grids=None, compile=False):
    """Score every point of ``study`` not yet in ``csv_path``; returns the rows of the study's points.  With
    ``grids`` (a folder), each point's grid of its first 64 samples (the same seeds for every point) is copied
    there as ``<point>.png``.  ``compile``: torch.compile the network (``--compile``; faster for Model A on the
    CPU, outputs within about 1e-6 of the eager network's)."""
    from evaluation.features import EvalError
    from runners.evaluate import run_eval
    from runners.sample import SamplingError, SettingsMismatch
    checkpoint, record = _checkpoint(study, checkpoint)
    ref = os.path.expandvars(study.model['ref'])
    if '$' in ref:
        raise EvalError(f'study {study.name}: the reference {study.model["ref"]!r} needs PDS_DATA=<folder holding '
                        'mnist/ (IDX files)>')
    sha = record['sha256']
    points = [p for p in study.points if not only or p.name in only]
    done = done_rows(csv_path, sha, features)
    todo = [p for p in points if (config_name(study, p), p.num_samples) not in done]
    total = sum(_cost(study, p) for p in todo)
    log(f'{study.name}: {len(points) - len(todo)} of {len(points)} points done; {len(todo)} to run '
        f'(checkpoint sha256 {sha[:12]}, results {csv_path})')
    spent, cost_done = 0., 0.
    for i, point in enumerate(todo):
        start = time.time()
        workdir = _workdir(out, study, sha, point)

        def evaluate():
            return run_eval(point_config(study, point), workdir, checkpoint=checkpoint, num_samples=point.num_samples,
                            batch_size=min(study.batch_size, point.num_samples), device=device, ref=ref,
                            ref_split=study.model['ref_split'], features=features, inception_path=inception_path,
                            results_csv=csv_path, fid_cache=fid_cache, config_name=config_name(study, point),
                            progress=progress, label=point.label, compile=compile)
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
            shutil.copyfile(os.path.join(workdir, 'grid.png'), os.path.join(grids, f'{point.name}.png'))
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
        kid = '' if row.get('kid') in ('', None) else f"<br>{_kid_text(row['kid'], row.get('kid_std'))}"
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


RIVAL_BUDGETS = (10, 20, 50, 100)


def rivals_summary(study, rows):
    """Markdown for a rivals study: one line per point done (sampler, setting, NFE, FID, KID +- std, samples),
    ordered by sampler then NFE, and for each NFE budget the sampler with the lowest FID among the points that
    used at most that many evaluations (same sample count only: FID is biased by the count).  An adaptive
    solver's NFE is what its batches used (mean per sample)."""
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
        kid_txt = '' if kid is None else _kid_text(kid, kid_std)
        lines.append(f'| {p.label} | {p.name} | {nfe_txt} | {fid_txt} | {kid_txt} | {n} |')
    lines.append('')
    for budget in RIVAL_BUDGETS:
        within = [d for d in done if d[1] <= budget and math.isfinite(d[2])]
        for n in sorted({d[5] for d in within}):
            best = min((d for d in within if d[5] == n), key=lambda d: d[2])
            lines.append(f'- at most {budget} NFE ({n} samples): best {best[0].label} ({best[0].name}, NFE '
                         f'{best[1]:g}): FID {best[2]:.1f}')
    lines += ['', _rows_line(used)]
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------------------------

def _map_cells(study, rows):
    """{(gain, step_lr): row} of an ``a_map``-like study's points that have a row."""
    by_point = _by_point(rows)
    cells = {}
    for p in study.points:
        row = by_point.get((config_name(study, p), p.num_samples))
        if row is not None:
            gain = next(g for g in MAP_GAINS if p.name.startswith(f'g{g:.3f}_'))
            cells[(gain, dict(p.overrides)['sampling.step_lr'])] = row
    return cells


def _cell_counts(cells):
    """'1000' (or '1000/2000' where cells differ): the sample counts of the map's own cells."""
    return '/'.join(map(str, sorted({int(r['num_samples']) for r in cells.values()})))


def map_summary(study, rows):
    """Markdown: an ``a_map``-like study's rows as gain (rows) x step_lr (columns): FID / KID +- std; the best
    cell of each row in bold."""
    gains = sorted(set(MAP_GAINS), key=lambda g: (g != 1, g < 1, abs(math.log(g))))
    steps = sorted(set(MAP_STEPS))
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
                f"{done[s]:.1f} / {_kid_text(r['kid'], r.get('kid_std'))}"
                if r.get('kid') not in ('', None) else f'{done[s]:.1f}')
            out.append(f'**{txt}**' if done[s] == best and math.isfinite(best) else txt)
        lines.append(f'| {_gain_label(g)} | ' + ' | '.join(out) + ' |')
    lines += ['', f'FID / KID ± its standard deviation over 100 subsets at 20 iterations; '
                  f'{_cell_counts(cells)} samples per cell; bold: the best step size of each row.',
              '', _rows_line(list(cells.values()))]
    return '\n'.join(lines) + '\n'


def plot_map(study, rows, out_png, metric='fid'):
    """Heat map of ``metric`` over gain (rows) x step_lr (columns) of an ``a_map``-like study's rows."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    gains = sorted(set(MAP_GAINS))
    steps = sorted(set(MAP_STEPS))
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
    ax.set_yticks(range(len(gains)), [_gain_label(g) for g in gains])
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


SUMMARIES = {'a_map': map_summary, 'a_rivals': rivals_summary, 'b_rivals': rivals_summary}


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m evaluation.study', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('study', choices=sorted(STUDIES))
    p.add_argument('--csv', default=None, help="default: <out>/<model>/study.csv (Model A: "
                   "runs/study/mnist_cpu/study.csv, Model B: runs/study/model_b/study.csv), untracked; the committed "
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
    p.add_argument('--inception_path', default=None)
    p.add_argument('--fid_cache', default=None)
    p.add_argument('--fid_features', default='inception', choices=('inception', 'standin'),
                   help='the feature extractor of the run; --summary, --list and --plot use only rows of it')
    p.add_argument('--no_progress', action='store_true')
    p.add_argument('--sample_only', action='store_true', help='draw the samples of the points (all, or --only) into '
                   '--out and score nothing: e.g. on a GPU machine, then run the study without it where the Inception '
                   'network is (it finds the batches done)')
    args = p.parse_args(argv)
    study = STUDIES[args.study](args.samples)
    only = tuple(x.strip() for x in args.only.split(',') if x.strip())
    unknown = [x for x in only if x not in {pt.name for pt in study.points}]
    if unknown:
        print(f'error: {study.name} has no points {unknown}; see --list', file=sys.stderr)
        return 2
    from evaluation.features import EvalError
    from runners.sample import SamplingError
    args.csv = args.csv or default_csv(study, args.out)
    from utils.lock import WorkdirError
    try:
        if args.summary or args.list or args.plot:
            from utils.provenance import file_record
            ckpt = args.checkpoint or os.path.join(ROOT, study.model['checkpoint'])
            if os.path.isfile(ckpt):
                sha = file_record(ckpt)['sha256']
                rows = done_rows(args.csv, sha, args.fid_features)
                if args.list:
                    print(f'(rows of {args.csv}: {args.fid_features} features, checkpoint sha256 {sha[:12]})',
                          file=sys.stderr)
            elif args.list:
                print(f'(checkpoint {ckpt} not found: nothing is done yet)')
                rows = {}
            else:
                raise EvalError(f'study {study.name}: checkpoint {ckpt!r} not found')
            if args.summary:
                text = SUMMARIES.get(study.name, summary)(study, list(rows.values()))
                print(text, end='')
                return 0
            for pt in study.points:
                row = rows.get((config_name(study, pt), pt.num_samples))
                state = f"FID {float(row['fid']):.2f}" if row else 'to do'
                print(f'{pt.name:24s} {pt.label:32s} {pt.num_samples:5d} samples  {state}')
            if args.plot:
                plot_map(study, list(rows.values()), args.plot)
                print(f'wrote {args.plot}')
            return 0
        from runners.cli import resolve_device
        resolve_device(args.device)          # a CUDA device this machine lacks: one line, before any work
        if args.sample_only:
            sample_study(study, args.out, args.checkpoint, args.device, only, progress=not args.no_progress,
                         compile=args.compile)
            return 0
        grids = args.grids if args.grids is not None else os.path.join(os.path.dirname(args.csv), 'grids', study.name)
        run_study(study, args.csv, args.out, args.checkpoint, args.device, args.inception_path, args.fid_cache,
                  args.fid_features, only, progress=not args.no_progress, grids=grids or None,
                  compile=args.compile)
    except (EvalError, ValueError, FileNotFoundError, SamplingError, WorkdirError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:            # every output is written atomically: the rows and batches done are kept
        print(f'interrupted: the rows in {args.csv!r} and the finished batches under {args.out!r} are kept; rerun '
              'the same command to continue', file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
