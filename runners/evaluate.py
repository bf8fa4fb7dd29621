"""``--mode eval``: sample (resumably, as ``--mode sample``) or take an existing folder, then Clean-FID (and KID).

    python main.py --config configs/cifar10_pds.py --mode eval --checkpoint <ckpt> --workdir runs/cifar10_pds
    python main.py --config configs/ncsn/mnist.py --mode eval --sample_dir runs/mnist --fid_ref data:$PDS_DATA/mnist
    torchrun --nproc_per_node=4 main.py --config ... --mode eval ...     # ranks split the batches; rank 0 scores

Writes ``<workdir>/eval.json`` (or ``eval.json`` beside the evaluated samples) and, with ``results_csv``, appends
one row to that CSV (columns: ``evaluation.results.CSV_COLUMNS``).  ``python -m evaluation.plot <csv> <png>`` draws
FID against iterations, vanilla vs PDS.
"""
import datetime
import json
import os
import time

import ml_collections
import numpy as np
import torch

import sampling
from evaluation import features as features_lib
from evaluation import metrics, reference, results
from evaluation.features import EvalError


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


def _batch_seconds(workdir, num_samples, batch_size):
    """Sum of the per-batch sampling seconds recorded in ``batches/*.npz`` for the evaluated samples."""
    total = 0.
    if not batch_size:
        return None
    for b in range(-(-num_samples // batch_size)):
        path = os.path.join(workdir, 'batches', f'batch_{b:06d}.npz')
        if not os.path.isfile(path):
            return None
        total += float(np.load(path)['seconds'])
    return round(total, 3)


def _device_label(device):
    device = torch.device(device)
    if device.type == 'cuda' and torch.cuda.is_available():
        return f'{device} ({torch.cuda.get_device_name(device)})'
    return str(device)


def run_eval(config, workdir=None, checkpoint=None, sample_dir=None, num_samples=None, batch_size=None, seed=None,
             device='cpu', ref=None, mode='clean', features='inception', inception_path=None, results_csv=None,
             fid_cache=None, ref_split='train', ref_num=None, kid=True, use_ema=True, noise_device='cpu',
             num_workers=0, fid_batch_size=64, config_name='', score=None, rank=0, world_size=1, barrier=None,
             progress=True):
    """Sample and score with Clean-FID.  Returns the result record (a dict) on rank 0, None on other ranks.

    Args:
      config: the sampling config (model, sampler, PDS).
      workdir: where samples are drawn (``runners.sample.run_sample`` layout: resumable, seeded, atomic) and
        ``eval.json`` is written.  Required unless ``sample_dir`` is given.
      checkpoint / score: the model to sample with (``score`` an already built score function; else
        ``models.checkpoint.load_score_model(checkpoint, config, use_ema)``).  Not needed with ``sample_dir``.
      sample_dir: evaluate this folder (or .zip) of images instead of sampling.  A PDS workdir (``settings.json`` +
        ``samples/``) is read by index and its settings describe the run; any other folder is taken in natural
        file-name order.
      num_samples: number of images; default ``config.eval.num_samples`` (50,000, as the paper) when sampling, all
        of them for ``sample_dir``.
      batch_size: sampling batch size; default ``config.eval.batch_size``.  The images depend on (config,
        checkpoint, seed, batch size) only, not on ``world_size``.
      seed: default ``config.seed``.
      device: torch device for sampling and features; ``noise_device`` as in ``run_sample``.
      ref: the reference statistics (``evaluation.reference``): ``cleanfid:<name>/<split>/<res>``, a stats .npz,
        ``data:<path>`` / a dataset path (custom statistics, cached in ``fid_cache``), or None for clean-fid's
        precomputed statistics of the config's dataset; ``ref_split`` / ``ref_num`` (seeded subset) for datasets.
      mode: clean-fid mode, 'clean' (default) or 'legacy_tensorflow'.
      features: 'inception' (Clean-FID) or 'standin' (tests only); ``inception_path``: a local TorchScript Inception
        file (clean-fid's inception-2015-12-05.pt or fid-helper's default_1.pt), default ``$PDS_INCEPTION``, else
        clean-fid's download.
      kid: also compute KID when the reference has features.
      results_csv: append one row to this CSV.
      num_workers / fid_batch_size: data loader workers and batch size of the feature extraction.
      config_name: how the config was named on the command line (recorded).
      rank / world_size / barrier: torchrun rank, number of ranks, and a callable that waits for all ranks
        (``utils.distributed.barrier``); rank 0 scores after every rank has sampled its batches.

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
    if sample_dir is None and not workdir:
        raise EvalError('run_eval needs a workdir to sample into, or a sample_dir to evaluate')
    if sample_dir is not None and not os.path.exists(sample_dir):
        raise EvalError(f'sample folder {sample_dir!r} does not exist')

    # 1. rank 0: the feature model and the reference first, so that a missing file fails before hours of sampling
    model = ref_stats = features_info = referenced = None
    if rank == 0:
        model, features_info = features_lib.build_extractor(features, mode, device, inception_path)
        ref_stats = reference.resolve_reference(ref, config, model, features_info, mode, fid_cache, ref_split,
                                                num_images=ref_num, seed=0, batch_size=fid_batch_size,
                                                num_workers=num_workers, device=device, progress=progress)
    referenced = time.time()

    # 2. the samples
    settings = None
    if sample_dir is None:
        from models.checkpoint import load_score_model
        from runners.sample import run_sample
        num_samples = int(num_samples or config.eval.num_samples)
        batch_size = int(batch_size or config.eval.batch_size)
        if score is None:
            if not checkpoint:
                raise EvalError('sampling for evaluation needs a checkpoint (or give --sample_dir)')
            score = load_score_model(checkpoint, config, use_ema=use_ema, device=device)
        done = run_sample(config, score, workdir, num_samples, batch_size, seed, device=device,
                          checkpoint=os.path.abspath(checkpoint) if checkpoint else '', use_ema=use_ema, rank=rank,
                          world_size=world_size, progress=progress, noise_device=noise_device)
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
        num_samples = int(num_samples or settings['num_samples'])
        files, fdir = _workdir_files(source, num_samples), None
        run_config = ml_collections.ConfigDict(settings['config'])
        batch_size, seed = settings['batch_size'], settings['seed']
        checkpoint = settings.get('checkpoint') or checkpoint
    else:
        files, fdir = metrics.list_images(source)
        if num_samples:
            if len(files) < num_samples:
                raise EvalError(f'{source!r} holds {len(files)} images, fewer than the {num_samples} asked for')
            files = files[:num_samples]
        num_samples = len(files)
        run_config = config
    its, nfe = sampling.iterations(run_config)
    feats = metrics.files_features(files, model, mode, batch_size=fid_batch_size, num_workers=num_workers,
                                   device=device, fdir=fdir, progress=progress, description='sample features')
    mu, sigma = metrics.statistics(feats)
    fid = metrics.fid_from_stats(mu, sigma, ref_stats.mu, ref_stats.sigma)
    kid_value, kid_note = None, ''
    if kid and ref_stats.feats is None:
        kid_note = 'no reference features for KID (clean-fid publishes them only for AFHQ, BreCaHAD, MetFaces)'
    elif kid and min(len(feats), len(ref_stats.feats)) < 2:
        kid_note = 'KID needs at least 2 images on each side'
    elif kid:
        kid_value = metrics.kid_from_feats(feats, ref_stats.feats, seed=0)
    scored = time.time()

    json_path = os.path.join(workdir, 'eval.json') if workdir else (
        os.path.join(source, 'eval.json') if os.path.isdir(source) else os.path.splitext(source)[0] + '_eval.json')
    record = dict(results.config_fields(run_config))
    record.update(
        time=datetime.datetime.now().isoformat(timespec='seconds'), config=config_name,
        checkpoint=checkpoint or '', iterations=its, nfe=nfe, num_samples=num_samples, batch_size=batch_size or '',
        seed=seed if settings or sample_dir is None else '', fid=fid, kid=kid_value, kid_note=kid_note,
        fid_mode=mode, features=features, reference=ref_stats.label, reference_spec=ref,
        sampling_seconds=_batch_seconds(source, num_samples, batch_size) if _is_workdir(source) else None,
        reference_seconds=round(referenced - start, 3) if referenced else None,
        wall_sampling_seconds=round(sampled - (referenced or start), 3), fid_seconds=round(scored - sampled, 3),
        seconds=round(scored - start, 3), device=_device_label(device), world_size=world_size,
        workdir=os.path.abspath(source), json=os.path.abspath(json_path),
        reference_info={k: v for k, v in ref_stats.info.items() if k != 'provenance'},
        features_info=features_info, clean_fid=features_lib.cleanfid_version(), torch=torch.__version__,
        feature_dims=int(feats.shape[1]))
    results.write_json(json_path, record)
    if results_csv:
        results.append_csv(results_csv, record)
    return record
