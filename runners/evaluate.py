"""``--mode eval``: sample (resumably, as ``--mode sample``) or take an existing folder, then Clean-FID (and KID).

    python main.py --config configs/cifar10_pds.py --mode eval --checkpoint <ckpt> --workdir runs/cifar10_pds
    python main.py --config configs/ncsn/mnist.py --mode eval --sample_dir runs/mnist --fid_ref data:$PDS_DATA/mnist \
        --workdir runs/mnist_eval
    torchrun --nproc_per_node=4 main.py --config ... --mode eval ...     # ranks split the batches; rank 0 scores

Writes ``<workdir>/eval.json`` (``--workdir`` is required, also with ``--sample_dir``: nothing is written into the
evaluated folder) and, with ``results_csv``, appends one row to that CSV (columns: ``evaluation.results.CSV_COLUMNS``,
among them the checkpoint file that made the samples and the sha256 of it and of the PDS files).  ``python -m evaluation.plot <csv> <png>`` draws
FID against iterations, vanilla vs PDS.
"""
import datetime
import json
import os
import sys
import time

import ml_collections
import numpy as np
import torch

from evaluation import features as features_lib
from evaluation import metrics, reference, results
from evaluation.features import EvalError
from runners import validate
from utils import provenance
from utils.lock import check_free, workdir_lock


def _is_workdir(path):
    return os.path.isdir(os.path.join(path, 'samples')) and os.path.isfile(os.path.join(path, 'settings.json'))


def _workdir_files(workdir, num_samples):
    """``samples/<i>.png`` for i < num_samples; an EvalError naming the missing indices."""
    files = [os.path.join(workdir, 'samples', f'{i}.png') for i in range(num_samples)]
    missing = [i for i, f in enumerate(files) if not os.path.isfile(f)]
    if missing:
        raise EvalError(f'{workdir!r} lacks {len(missing)} of the {num_samples} samples (first missing: '
                        f'{missing[:5]}); run --mode sample (or eval with --checkpoint) there to finish them')
    return files


def _batch_files(workdir, num_samples, batch_size):
    """[(path, images evaluated from it)] of the ``batches/*.npz`` holding the first ``num_samples`` samples, or
    None when the batch size is unknown or a file is missing."""
    if not batch_size:
        return None
    from runners.sample import batch_path        # lazily, as run_sample: scoring a folder needs no sampler
    out = []
    for b in range(-(-num_samples // batch_size)):
        path = batch_path(workdir, b)
        if not os.path.isfile(path):
            return None
        out.append((path, min(batch_size, num_samples - b * batch_size)))
    return out


def _batch_values(files, key):
    """``[(value of key, images evaluated)]`` of the batch files, or None when one lacks it or cannot be read (named
    on stderr: the value is then unknown; the images are scored from samples/)."""
    from runners.sample import DamagedBatch, read_batch
    out = []
    for path, k in files:
        try:
            out.append((float(read_batch(path, (key,))[key]), k))
        except DamagedBatch as e:
            if 'lacks' not in str(e):
                print(f'note: {e}; its {key} is left out of eval.json', file=sys.stderr, flush=True)
            return None
    return out


def _batch_seconds(workdir, num_samples, batch_size):
    """Sum of the per-batch sampling seconds recorded in ``batches/*.npz`` for the evaluated samples."""
    files = _batch_files(workdir, num_samples, batch_size)
    values = None if files is None else _batch_values(files, 'seconds')
    if values is None:
        return None
    return round(sum(v for v, _ in values), 3)


def _batch_nfe(workdir, num_samples, batch_size):
    """Mean NFE per sample over the evaluated batches of an adaptive solver's run (``batches/*.npz`` record the
    score calls each batch used; an adaptive step size is shared by the batch, so every image of a batch costs
    that many evaluations), rounded to 0.1; None when a batch file or its count is missing."""
    files = _batch_files(workdir, num_samples, batch_size)
    counts = None if files is None else _batch_values(files, 'nfe')
    if counts is None:
        return None
    return round(sum(n * k for n, k in counts) / sum(k for _, k in counts), 1)


def _device_label(device):
    device = torch.device(device)
    if device.type == 'cuda' and torch.cuda.is_available():
        return f'{device} ({torch.cuda.get_device_name(device)})'
    return str(device)


def _devices(device, settings):
    """The device of this call; with ``sampled-device (sampling), this (features)`` when a workdir's samples were drawn
    on another device type (e.g. ``evaluation.study --sample_only`` on a GPU machine, scored on the CPU)."""
    label, sampled = _device_label(device), (settings or {}).get('device')
    if sampled and torch.device(sampled).type != torch.device(device).type:
        return f'{sampled} (sampling), {label} (features)'
    return label


def run_eval(config, workdir=None, checkpoint=None, sample_dir=None, num_samples=None, batch_size=None, seed=None,
             device='cpu', ref=None, mode='clean', features='inception', inception_path=None, results_csv=None,
             fid_cache=None, ref_split=None, ref_num=None, kid=True, use_ema=True, noise_device='cpu',
             num_workers=0, fid_batch_size=64, config_name='', score=None, rank=0, world_size=1, barrier=None,
             progress=True, skip_bad=False, label='', compile=False, allow_mismatch=False, speed=None):
    """Sample and score with Clean-FID.  Returns the result record (a dict) on rank 0, None on other ranks.

    Args:
      config: the sampling config (model, sampler, PDS).
      workdir: where samples are drawn (``runners.sample.run_sample`` layout: resumable, seeded, atomic) and
        ``eval.json`` is written.  Required, also with ``sample_dir`` (it may be that folder only when it is a
        sampling workdir, never a folder inside a plain folder of images).
      checkpoint / score: the model to sample with (``score`` an already built score function; else
        ``models.checkpoint.load_score_model(checkpoint, config, use_ema)``).  Not needed with ``sample_dir``.
      sample_dir: evaluate this folder (or .zip) of images instead of sampling.  A PDS workdir (``settings.json`` +
        ``samples/``) is read by index and its settings describe the run (sampler, iterations, NFE, input files);
        any other folder is taken in natural file-name order and those fields are left blank (unknown).  The images
        must have one size; an unreadable one is an error naming it, or left out with ``skip_bad``.
      num_samples: number of images; default ``config.eval.num_samples`` (50,000, as the paper) when sampling, all
        of them for ``sample_dir``.
      batch_size: sampling batch size; default ``config.eval.batch_size``.  The images depend on (config,
        checkpoint, seed, batch size) only, not on ``world_size``.
      seed: default ``config.seed``.
      device: torch device for sampling and features; ``noise_device`` as in ``run_sample``.
      ref: the reference statistics (``evaluation.reference``): ``cleanfid:<name>/<split>/<res>``, a stats .npz,
        ``data:<path>`` / a dataset path (custom statistics, cached in ``fid_cache``), or None for clean-fid's
        precomputed statistics of the config's dataset; ``ref_split`` / ``ref_num`` (seeded subset) for datasets
        (``ref_split`` None: 'test' where the dataset has one -- MNIST-style IDX, dead leaves: the 10,000 test
        images --, else 'train'; ``evaluation.reference.default_split``).  Announced before it is computed.
      mode: clean-fid mode, 'clean' (default) or 'legacy_tensorflow'.
      features: 'inception' (Clean-FID) or 'standin' (tests only); ``inception_path``: a local TorchScript Inception
        file (clean-fid's inception-2015-12-05.pt or fid-helper's default_1.pt), default ``$PDS_INCEPTION``, else
        clean-fid's download.
      kid: also compute KID when the reference has features.
      results_csv: append one row to this CSV.
      num_workers / fid_batch_size: data loader workers and batch size of the feature extraction.
      config_name: how the config was named on the command line (recorded).
      skip_bad: leave unreadable images out (of the samples and of a ``data:`` reference) with a warning, instead of
        stopping; the record lists them (``skipped``) and counts only the images scored.
      label: a name for the run's series in plots and tables (the ``label`` column), e.g. 'vanilla', 'PDS r=0.2H'.
      rank / world_size / barrier: torchrun rank, number of ranks, and a callable that waits for all ranks
        (``utils.distributed.barrier``); rank 0 scores after every rank has sampled its batches.
      allow_mismatch: score samples whose dataset, resolution or channel count (a sampling workdir's settings.json,
        or the config when sampling) differ from the reference's; refused (EvalError) without it, before any work.
      speed: the sampling's speed switches (``models.speed.Speed``: precision, channels-last, compile and its mode,
        CUDA graphs), applied to the loaded model and recorded in the workdir's settings.json; ``batch_size`` may
        then be 'auto' (``--batch_size auto``: a probe on CUDA).  None: the plain path (``compile`` alone).

    Rank 0 holds ``workdir``'s lock (``utils/lock.py``) for the whole call, taken before any work (a workdir that is a
    file or cannot be written is refused there); a ``sample_dir`` that another run is still writing is refused.

    The Inception features of a sampling workdir's images are kept in ``<workdir>/features/`` (keyed by the extractor,
    the mode and the images' sampling settings): a rerun, or another reference, scores them without the extractor.
    KID is clean-fid's (mean over 100 subsets) with ``kid_std``, the standard deviation over those subsets.

    The record holds the CSV columns (``evaluation.results.CSV_COLUMNS``: config, model, sampler, PDS parameters,
    iterations, NFE, number of samples, FID, KID, seconds, device, ...) plus details (reference and feature
    extractor, versions).  Timings: ``sampling_seconds`` = the sum of the recorded per-batch sampling times of the
    evaluated samples (all ranks, however many runs made them); ``reference_seconds`` (extractor + reference),
    ``wall_sampling_seconds``, ``fid_seconds`` and ``seconds`` = wall-clock times of this call on rank 0.
    """
    start = time.time()
    seed = config.seed if seed is None else int(seed)
    if mode not in features_lib.MODES:
        raise EvalError(f'unknown Clean-FID mode {mode!r}; expected one of {features_lib.MODES}')
    if not workdir:
        raise EvalError('run_eval needs a workdir: the folder it samples into, and where eval.json is written '
                        '(also with a sample_dir, so that nothing is written into the evaluated images)')
    if sample_dir is not None and not os.path.exists(sample_dir):
        raise EvalError(f'sample folder {sample_dir!r} does not exist')
    if sample_dir is not None and not _is_workdir(sample_dir) and _inside(workdir, sample_dir):
        raise EvalError(f'--workdir {workdir!r} lies in the --sample_dir {sample_dir!r} of images to score: eval.json '
                        'would be written among them; expected a --workdir outside that folder')
    validate.check_counts(num_samples, None if batch_size == 'auto' else batch_size)
    if results_csv and rank == 0:
        try:
            results.check_csv(results_csv)
        except ValueError as e:
            raise EvalError(str(e)) from None
    args = dict(locals())
    del args['start']
    with workdir_lock(workdir, enabled=rank == 0):
        if rank == 0 and sample_dir is not None and _is_workdir(sample_dir) and \
                os.path.realpath(sample_dir) != os.path.realpath(workdir):
            check_free(sample_dir)
        return _run_eval(start=start, **args)


def _run_eval(config, workdir, checkpoint, sample_dir, num_samples, batch_size, seed, device, ref, mode, features,
              inception_path, results_csv, fid_cache, ref_split, ref_num, kid, use_ema, noise_device, num_workers,
              fid_batch_size, config_name, score, rank, world_size, barrier, progress, skip_bad, label, compile,
              allow_mismatch, speed, start):
    """:func:`run_eval` once the arguments are checked and the workdir is locked."""
    mismatch = _check_datasets(config, sample_dir, ref, allow_mismatch)
    if progress and rank == 0:
        what = f'the images of {sample_dir!r}' if sample_dir else f'samples drawn into {workdir!r}'
        against = ref or "the config's default reference"
        print(f'eval: scoring {what} ({num_samples or "all"}) against {against} with {features} features (FID, '
              f'KID); eval.json into {workdir!r}', flush=True)

    # 1. sampling: the sampler settings and the checkpoint are checked first (cheap), then, on rank 0, the feature
    #    model and the reference, so that a missing file fails before hours of sampling
    if sample_dir is None:
        from models.checkpoint import load_score_model
        num_samples = int(num_samples or config.eval.num_samples)
        auto = batch_size == 'auto'
        batch_size = batch_size if auto else int(batch_size or config.eval.batch_size)
        validate.check_sampling(config, num_samples, None if auto else batch_size)
        if score is None:
            if not checkpoint:
                raise EvalError('sampling for evaluation needs a checkpoint (or give --sample_dir)')
            score = load_score_model(checkpoint, config, use_ema=use_ema, device=device,
                                     compile=compile and speed is None)
        if speed is not None:
            from models import speed as speed_lib
            if compile and not speed.compile:
                speed = speed_lib.dataclasses.replace(speed, compile=True)
            from runners.sample import _recorded_batch
            score, batch_size = speed_lib.prepare(score, speed, config, device, num_samples, batch_size,
                                                  recorded=_recorded_batch(workdir), say=rank == 0)
        elif auto:
            raise EvalError("batch_size 'auto' needs the speed switches (speed=models.speed.Speed(...)); expected a "
                            'number')
    model = ref_stats = features_info = referenced = None
    if rank == 0:
        model, features_info = features_lib.build_extractor(features, mode, device, inception_path)
        ref_stats = reference.resolve_reference(ref, config, model, features_info, mode, fid_cache, ref_split,
                                                num_images=ref_num, seed=0, batch_size=fid_batch_size,
                                                num_workers=num_workers, device=device, progress=progress,
                                                skip_bad=skip_bad)
    referenced = time.time()

    # 2. the samples
    settings = None
    if sample_dir is None:
        from runners.sample import run_sample
        done = run_sample(config, score, workdir, num_samples, batch_size, seed, device=device,
                          checkpoint=os.path.abspath(checkpoint) if checkpoint else '', use_ema=use_ema, rank=rank,
                          world_size=world_size, progress=progress, noise_device=noise_device, barrier=barrier,
                          speed=speed)
        if world_size > 1:
            shown = done if len(done) <= 20 else f'{done[:3]} ... {done[-3:]}'
            print(f'rank {rank}/{world_size}: sampled {len(done)} batches {shown}', flush=True)
        source = workdir
    else:
        source = sample_dir
    if world_size > 1 and barrier is not None:
        barrier()
    if rank != 0:
        return None
    sampled = time.time()

    # 3. rank 0: features, FID, KID
    if _is_workdir(source):
        with open(os.path.join(source, 'settings.json')) as f:
            settings = json.load(f)
        if sample_dir is not None and num_samples and int(num_samples) < int(settings['num_samples']):
            print(f'note: {source!r} holds {settings["num_samples"]} samples; scoring the first {num_samples}',
                  file=sys.stderr, flush=True)
        num_samples = int(num_samples or settings['num_samples'])
        files, fdir = _workdir_files(source, num_samples), None
        run_config = ml_collections.ConfigDict(settings['config'])
        batch_size, seed = settings['batch_size'], settings['seed']
        given_checkpoint = settings.get('checkpoint') or checkpoint
        its, nfe, inputs = settings.get('iterations'), settings.get('nfe'), settings.get('inputs')
        if nfe is None:                     # an adaptive solver: its NFE is known only from the batches it ran
            nfe = _batch_nfe(source, num_samples, batch_size)
    else:
        files, fdir = metrics.list_images(source)
        if num_samples:
            if len(files) < num_samples:
                raise EvalError(f'{source!r} holds {len(files)} images, fewer than the {num_samples} asked for')
            files = files[:num_samples]
        run_config, given_checkpoint = config, ''
        its = nfe = inputs = None           # not our sampling run: how the images were made is unknown
    files, skipped = metrics.check_image_files(files, fdir, skip_bad)
    cache = _feature_cache(workdir, settings, files, mode, features_info) if settings and not skipped else None
    feats = _cached_features(cache)
    if feats is None and cache:             # in parts kept on disk: a killed run loses one part at most
        feats = _features_in_parts(cache, files, model, mode, fid_batch_size, num_workers, device, fdir, progress)
        if feats is not None:
            _save_features(cache, feats)
            metrics.remove_parts(cache['path'])
    if feats is None:
        feats, more = _features(files, model, mode, fid_batch_size, num_workers, device, fdir, progress, skip_bad)
        skipped += more
        if cache and not more:
            _save_features(cache, feats)
    num_samples = len(feats)
    mu, sigma = metrics.statistics(feats)
    fid = metrics.fid_from_stats(mu, sigma, ref_stats.mu, ref_stats.sigma)
    kid_value, kid_std, kid_note = None, None, ''
    if kid and ref_stats.feats is None:
        kid_note = 'no reference features for KID (clean-fid publishes them only for AFHQ, BreCaHAD, MetFaces)'
    elif kid and min(len(feats), len(ref_stats.feats)) < 2:
        kid_note = 'KID needs at least 2 images on each side'
    elif kid:
        kid_value = metrics.kid_from_feats(feats, ref_stats.feats, seed=0)
        kid_std = metrics.kid_subsets(feats, ref_stats.feats, seed=0)[1]
    scored = time.time()

    json_path = os.path.join(workdir, 'eval.json')
    record = dict(results.config_fields(run_config))
    if settings is None:                    # the config does not describe images it did not sample
        record.update({k: '' for k in results.SAMPLER_FIELDS})
    record.update(provenance.csv_fields(inputs))
    record.update(
        time=datetime.datetime.now().isoformat(timespec='seconds'), config=config_name,
        checkpoint=given_checkpoint or '', inputs=inputs, iterations=its, nfe=nfe, num_samples=num_samples,
        batch_size=(batch_size or '') if settings or sample_dir is None else '',
        seed=seed if settings or sample_dir is None else '', fid=fid, kid=kid_value, kid_std=kid_std,
        kid_note=kid_note, label=label, features_file=cache['path'] if cache else None,
        skipped=skipped, fid_mode=mode, features=features, reference=ref_stats.label, reference_spec=ref,
        sampling_seconds=_batch_seconds(source, num_samples, batch_size) if settings and not skipped else None,
        reference_seconds=round(referenced - start, 3) if referenced else None,
        wall_sampling_seconds=round(sampled - (referenced or start), 3), fid_seconds=round(scored - sampled, 3),
        seconds=round(scored - start, 3), device=_devices(device, settings), world_size=world_size,
        workdir=os.path.abspath(source), json=os.path.abspath(json_path),
        reference_info={k: v for k, v in ref_stats.info.items() if k != 'provenance'},
        features_info=features_info, clean_fid=features_lib.cleanfid_version(), torch=torch.__version__,
        feature_dims=int(feats.shape[1]), mismatch=mismatch)
    results.write_json(json_path, record)
    if results_csv:
        results.append_csv(results_csv, record)
    return record


def _data_text(key, channels):
    dataset, category, size = key
    return f'{dataset}{"/" + category if category else ""} {size}x{size}x{channels}'


def _check_datasets(config, sample_dir, ref, allow):
    """'' when the samples and the reference are of one dataset, resolution and channel count (or either is unknown);
    else the mismatch in words, which is an EvalError unless ``allow``.  The samples' side is a sampling workdir's
    settings.json (or ``config`` when this call samples); a plain folder of images is not checked."""
    if sample_dir is not None:
        if not _is_workdir(sample_dir):
            return ''
        try:
            with open(os.path.join(sample_dir, 'settings.json')) as f:
                data = json.load(f)['config']['data']
        except (OSError, ValueError, KeyError, TypeError):
            return ''
        where = f'the samples in {sample_dir!r}'
        samples = (str(data.get('dataset', '')).lower(), str(data.get('category', '') or '').lower(),
                   int(data.get('image_size', 0))), int(data.get('num_channels', 0)), data
        said = '(its settings.json)'
    else:
        d = config.data
        samples = reference.data_key(config), int(d.num_channels), d
        where, said = 'the samples of this config', '(config.data)'
    theirs = reference.reference_data(ref, config)
    if theirs is None:
        return ''
    (key, channels, names), (ref_key, ref_channels, ref_names) = samples, theirs
    if _norm(key) == _norm(ref_key) and channels == ref_channels:
        return ''
    label = ref or reference.default_reference(config)
    if not label.startswith(('data:', 'cleanfid:')) and not reference.is_stats_file(label):
        label = f'data:{label}'                  # a dataset path, named as the record names it
    ours_text = _data_text((names.get('dataset', key[0]), key[1], key[2]), channels)
    ref_text = _data_text((ref_names.get('dataset', ref_key[0]), ref_key[1], ref_key[2]), ref_channels)
    text = f'{where} are {ours_text} {said}, the reference {label} is {ref_text}'
    if not allow:
        raise EvalError(f'{text}: an FID between them compares two different datasets; give the reference of the '
                        "samples' dataset (--data / --fid_ref, and its config), or pass --allow_mismatch to score them "
                        'anyway')
    print(f'warning: {text}; scoring them anyway (--allow_mismatch)', file=sys.stderr, flush=True)
    return text


def _norm(key):
    return tuple(''.join(c for c in str(v).lower() if c.isalnum()) if isinstance(v, str) else v for v in key)


def _feature_cache(workdir, settings, files, mode, features_info):
    """Where the features of a sampling workdir's ``files`` are kept, and the key they must match: the extractor
    (its description, with the weights' hash), the Clean-FID mode, the sampling run (settings.json's config, seed,
    batch size, inputs) and the number of images."""
    import hashlib
    key = dict(features=features_info, mode=mode, count=len(files),
               run={k: settings.get(k) for k in ('config', 'seed', 'batch_size', 'inputs', 'checkpoint')})
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = os.path.join(workdir, 'features')
    return dict(path=os.path.join(folder, f'{mode}_{len(files)}_{digest}.npz'), key=key, digest=digest)


def _cached_features(cache):
    return metrics.load_features(cache['path'], cache['digest']) if cache else None


def _save_features(cache, feats):
    metrics.save_features(cache['path'], feats, cache['digest'])


# features of a sampling workdir are computed in parts of this many feature batches, each kept on disk until the whole
# set is saved: a run killed during the features (an Inception pass is ~45 NFE an image on the CPU) resumes at the
# part it was in.  Parts are whole feature batches, so the batches -- and the features, bit for bit -- are a single
# pass's.
PART_BATCHES = 8


def _features_in_parts(cache, files, model, mode, batch_size, num_workers, device, fdir, progress):
    """The features of ``files`` part by part (:data:`PART_BATCHES` feature batches each), reusing the parts a
    killed earlier run saved (same digest).  None when a part holds an unreadable image (the caller's whole-set path
    names or skips it)."""
    class BadImage(Exception):
        pass

    def compute(first, last):
        try:
            return metrics.files_features(files[first:last], model, mode, batch_size=batch_size,
                                          num_workers=num_workers, device=device, fdir=fdir, progress=progress,
                                          description=f'sample features {first + 1}-{last} of {len(files)}')
        except Exception as e:  # noqa: BLE001 -- a bad image: the whole-set path finds and names it
            raise BadImage from e

    try:
        parts = metrics.features_in_parts(len(files), batch_size * PART_BATCHES, compute,
                                          cache['path'], cache['digest'])
    except BadImage:
        return None
    return np.concatenate(parts) if parts else None


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _features(files, model, mode, batch_size, num_workers, device, fdir, progress, skip_bad):
    """clean-fid features of ``files``; a file that fails to decode (clean-fid's loader would show a worker traceback
    without the file name) is one EvalError naming it, or with ``skip_bad`` left out.  Returns (features, skipped)."""
    try:
        return metrics.files_features(files, model, mode, batch_size=batch_size, num_workers=num_workers,
                                      device=device, fdir=fdir, progress=progress,
                                      description='sample features'), []
    except Exception:  # noqa: BLE001 -- find the file (decoding every one) before giving up
        good, bad = metrics.check_image_files(files, fdir, skip_bad, full=True)
        if not bad:
            raise
    return metrics.files_features(good, model, mode, batch_size=batch_size, num_workers=num_workers, device=device,
                                  fdir=fdir, progress=progress, description='sample features'), bad
