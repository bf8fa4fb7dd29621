"""What each ``main.py --mode`` does with the parsed flags (kept out of main.py so it stays thin).

Bad input ends as one ``error: ...`` line (exit status 1), Ctrl-C or SIGTERM as one ``interrupted: ...`` line
saying how to resume (exit status 130 / 143, ``utils/signals.py``; train saves first): never a traceback.
``sample``, ``eval`` and ``train`` hold their workdir's lock (``utils/lock.py``) for the whole run; under torchrun
only rank 0 takes it.
"""
import contextlib
import os
import signal
import sys

import torch


def resolve_device(name, local_rank=0):
    """The torch device of ``--device``; a CUDA device that this machine does not have is a ConfigError naming it
    (instead of a CUDA traceback once the model is moved there)."""
    from runners.validate import ConfigError
    if name == 'auto':
        return torch.device(f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"--device {name!r}: {e}; expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'") from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'--device {name!r}: no CUDA GPU is available here (torch.cuda.is_available() is False); '
                              'use --device cpu (or auto)')
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f'--device {name!r}: this machine has {count} CUDA device(s), cuda:0 .. '
                              f'cuda:{count - 1}; use one of them (or auto)')
    return device


def run(mode, config, flags):
    if flags.seed is not None:
        config.seed = flags.seed
    if flags.speed_up is not None:
        config.sampling.speed_up = flags.speed_up
    if flags.pds is not None:
        config.pds.enabled = flags.pds
    from utils.signals import exit_status, terminate_as_interrupt
    # SIGTERM stops sample / eval / stats as Ctrl-C does (lock released, one line); train saves first (its own handler)
    stop_as_interrupt = terminate_as_interrupt() if mode != 'train' else contextlib.nullcontext()
    try:
        with stop_as_interrupt:
            {'sample': _sample, 'eval': _eval, 'stats': _stats, 'train': _train}[mode](config, flags)
    except _user_errors() as err:    # bad input: one clear message, no traceback
        text = str(err).replace('pass skip_bad=True', 'pass --skip_bad')    # the reader's hint, as a flag
        raise SystemExit(f'error: {text}') from None
    except KeyboardInterrupt as stop:    # Ctrl-C or SIGTERM: every output is written atomically, the folder is clean
        print(f'interrupted: {_how_to_resume(mode, flags)}', file=sys.stderr, flush=True)
        raise SystemExit(exit_status(stop)) from None


def _how_to_resume(mode, flags):
    workdir = getattr(flags, 'workdir', None)
    if mode == 'sample':
        return f'the finished batches in {workdir!r} are kept; rerun the same command to resume'
    if mode == 'eval':
        return (f'the finished batches and computed features in {workdir!r} are kept; rerun the same command to '
                'resume')
    if mode == 'train':
        return (f"{os.path.join(str(workdir), 'checkpoints-meta', 'latest.pth')} holds the last checkpoint (written "
                'every training.snapshot_freq steps); rerun the same command to resume from it')
    return 'nothing was written (files are written only at the end); rerun the same command to start again'


def _user_errors():
    from models.checkpoint import CheckpointError
    from preconditioning import FilterError
    from runners.sample import SamplingError
    from utils.lock import WorkdirError
    errors = [CheckpointError, FilterError, SamplingError, WorkdirError, ValueError, FileNotFoundError]
    try:
        from data.readers import DataError
        errors.append(DataError)
    except ImportError:
        pass
    return tuple(errors)


def _need(flags, *names):
    missing = [f'--{n}' for n in names if getattr(flags, n) in (None, '')]
    if missing:
        raise SystemExit(f'error: --mode {flags.mode} needs {", ".join(missing)}')


DEFAULT_NUM_SAMPLES = 64      # --mode sample without --num_samples


def _sample(config, flags):
    from models.checkpoint import load_score_model
    from utils import distributed
    from runners import validate
    if config.model.family == 'empirical' and not flags.checkpoint:
        flags.checkpoint = config.model.data          # the image set is the model
    from models import speed as speed_lib
    from utils.lock import workdir_lock
    _need(flags, 'checkpoint', 'workdir')
    auto = speed_lib.is_auto(flags.batch_size)
    validate.check_counts(flags.num_samples, None if auto else flags.batch_size)
    num_samples = DEFAULT_NUM_SAMPLES if flags.num_samples is None else flags.num_samples
    batch_size = config.sampling.batch_size if flags.batch_size is None else flags.batch_size
    validate.check_sampling(config, num_samples, None if auto else batch_size)     # before the (slow) checkpoint load
    speed = speed_lib.from_flags(flags)
    device = resolve_device(flags.device, distributed.env()[2])
    with workdir_lock(flags.workdir, enabled=distributed.env()[0] == 0), \
            distributed.session(device) as (rank, world, _):
        model = load_score_model(flags.checkpoint, config, use_ema=flags.ema, device=device)
        from runners import sample
        model, batch_size = speed_lib.prepare(model, speed, config, device, num_samples, batch_size,
                                              recorded=sample._recorded_batch(flags.workdir), say=rank == 0)
        sample.run_sample(config, model, flags.workdir, num_samples, batch_size,
                          config.seed, device=device, checkpoint=os.path.abspath(flags.checkpoint), use_ema=flags.ema,
                          rank=rank, world_size=world, noise_device='cpu' if flags.noise_device == 'cpu' else device,
                          barrier=distributed.barrier, speed=speed)
        distributed.barrier()
    if rank == 0:
        print(f'samples in {os.path.join(flags.workdir, "samples")}, grid in {os.path.join(flags.workdir, "grid.png")}')


def _config_name(flags):
    """The --config argument and its --config.* overrides, as typed (recorded with evaluation results)."""
    from ml_collections import config_flags
    overrides = config_flags.get_override_values(flags['config'])
    return ' '.join([config_flags.get_config_filename(flags['config'])] +
                    [f'--config.{k}={v}' for k, v in sorted(overrides.items())])


def _eval(config, flags):
    from utils import distributed
    from runners.evaluate import run_eval
    if config.model.family == 'empirical' and not flags.checkpoint and not flags.sample_dir:
        flags.checkpoint = config.model.data          # the image set is the model
    if flags.sample_dir:
        _need(flags, 'workdir')           # eval.json goes there, never into the evaluated folder
    else:
        _need(flags, 'checkpoint', 'workdir')
    from runners import validate
    from models import speed as speed_lib
    from utils.lock import workdir_lock
    validate.check_counts(flags.num_samples, None if speed_lib.is_auto(flags.batch_size) else flags.batch_size)
    speed = speed_lib.from_flags(flags)
    device = resolve_device(flags.device, distributed.env()[2])
    with workdir_lock(flags.workdir, enabled=distributed.env()[0] == 0), \
            distributed.session(device) as (rank, world, _):
        result = run_eval(
            config, flags.workdir, checkpoint=flags.checkpoint, sample_dir=flags.sample_dir,
            num_samples=flags.num_samples, batch_size=flags.batch_size, device=device, use_ema=flags.ema,
            noise_device='cpu' if flags.noise_device == 'cpu' else device,
            ref=flags.fid_ref or (f'data:{flags.data}' if flags.data else None), ref_split=flags.fid_split,
            allow_mismatch=flags.allow_mismatch,
            ref_num=flags.num_images, fid_cache=flags.fid_cache, mode=flags.fid_mode, features=flags.fid_features,
            inception_path=flags.inception_path, kid=flags.kid, results_csv=flags.results_csv,
            num_workers=flags.workers, config_name=_config_name(flags), rank=rank, world_size=world,
            barrier=distributed.barrier, skip_bad=flags.skip_bad, label=flags.label or '', speed=speed)
    if result is not None:
        kid = '' if result['kid'] is None else f", KID {result['kid']:.5f} ± {result['kid_std']:.5f}"
        its = 'iterations / NFE unknown' if result['iterations'] is None else \
            f"{result['iterations']} iterations, NFE {result['nfe']}"
        skipped = f", {len(result['skipped'])} unreadable skipped" if result.get('skipped') else ''
        print(f"FID {result['fid']:.4f}{kid} ({result['fid_mode']}, {result['features']}, {result['num_samples']} "
              f"samples{skipped} vs {result['reference']}; {its}); "
              f"wrote {result['json']}" + (f' and a row of {flags.results_csv}' if flags.results_csv else ''))


def _stats(config, flags):
    """Statistics go to ``--stats_dir``, else ``--workdir`` (never a default folder of shipped files), named after the
    data read (``--name`` to choose); an existing file of that name is replaced only with ``--overwrite``."""
    from data.stats import run_stats
    _need(flags, 'data')
    out = flags.stats_dir or flags.workdir
    if not out:
        raise SystemExit('error: --mode stats needs --workdir (the statistics are written there; or name the folder '
                         'with --stats_dir)')
    res = run_stats(config, flags.data, out, flags.name, num_images=flags.num_images, seed=flags.seed or 0,
                    num_workers=flags.workers, skip_bad=flags.skip_bad, overwrite=flags.overwrite, plot=flags.plot)
    print('wrote ' + ', '.join(res[k] for k in ('freq', 'space', 'spectrum', 'json', 'png') if res.get(k)))


def _train(config, flags):
    from training.train import run_train
    _need(flags, 'workdir', 'data')
    device = flags.device if flags.device != 'auto' else str(config.get('device', 'auto'))
    if device != 'auto':
        resolve_device(device)           # --device (or config.device) cuda without a GPU: one line
        config.device = device
    _training_switches(config.training, flags)
    max_minutes = getattr(flags, 'max_minutes', None)
    if max_minutes is not None and not max_minutes > 0:
        raise SystemExit(f'error: --max_minutes {max_minutes:g}: expected a number of minutes > 0')
    if getattr(flags, 'cuda_graphs', False):
        print('note: --cuda_graphs acts on sampling; --mode train ignores it', file=sys.stderr, flush=True)
    out = run_train(config, flags.workdir, flags.data, num_workers=flags.workers, skip_bad=flags.skip_bad,
                    force_resume=flags.force_resume, max_minutes=max_minutes)
    if out.get('signal'):       # stopped by SIGTERM / Ctrl-C with the state saved: not a finished run
        sys.exit(128 + int(getattr(signal, out['signal'])))


def _training_switches(tr, flags):
    """The speed flags of --mode train as config.training fields (models/speed.py); only flags given override."""
    precision = getattr(flags, 'precision', None)
    if precision is not None:
        tr.precision = precision
        tr.bf16 = precision == 'bf16'
    if getattr(flags, 'compile', False):
        tr.compile = True
    if getattr(flags, 'compile_mode', 'default') != 'default':
        tr.compile_mode = flags.compile_mode
    channels_last = getattr(flags, 'channels_last', 'auto')
    if channels_last != 'auto':
        tr.channels_last = channels_last == 'on'
