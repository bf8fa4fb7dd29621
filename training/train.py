"""Training loop for the model families (NCSN, NCSNv2, NCSN++ on the VE SDE; DDPM and DDPM++ on the VP SDE, with
data centred to [-1, 1] as ``data.centered`` says), resumable and bit-reproducible on the CPU.

One step (score_sde ``losses.get_step_fn`` + ``optimization_manager``; the NCSN/NCSNv2 runners do the same
without warm-up or clipping): draw the randomness of the global batch, augment, compute the family's loss
(:mod:`training.losses`), backprop, linear lr warm-up, gradient-norm clipping, Adam, EMA update.

Randomness:

* data order: epoch ``e`` visits the dataset in ``randperm(N)`` of a generator seeded with ``(seed, e)``;
  batches run on across epoch ends (like score_sde's ``repeat().shuffle().batch()``), so the position in the
  stream is just the number of samples consumed;
* noise levels, Gaussian noise, dequantisation noise and flips come from one ``torch.Generator`` on the
  training device, seeded with ``seed`` and checkpointed; it draws for the *global* batch and every process
  takes its slice, so all processes hold the same generator and a run gives the same draws for any number
  of processes;
* dropout (NCSN++ only) uses torch's global RNG, which is reseeded every step from ``(seed, step, rank)``.

Files under ``workdir``:

* ``checkpoints/checkpoint_<step>.pth``: the official object of the family (NCSN ``[state_dict, optimizer]``,
  NCSNv2 ``[state_dict, optimizer, epoch, step, ema]``, score_sde ``dict(model, ema, optimizer, step)``); an
  NCSN trained with ``model.ema`` is saved in the NCSNv2 layout, which is the official one with an EMA slot;
* ``checkpoints-meta/latest.pth``: the same object plus the generator state, EMA counter, data position, the
  unlogged loss window and the logged history (our resume file);
* ``train_log.csv``: step, mean loss over the last ``log_freq`` steps, lr, it/s and the loss per noise-level
  bucket (columns named by their sigma range, largest sigma first; VP runs in EDM's sigma view,
  sigma = sqrt(1 / alpha_bar - 1), over ``training.losses.noise_range``);
* ``run.lock`` while a run trains there (``utils/lock.py``): a second training in the same folder is refused.

``latest.pth`` also records the data (path, a content fingerprint, ``describe()``, size, config.data's dataset /
resolution / channels) and the batch size: a resume on other data or with another ``training.batch_size`` is
refused, naming old and new, unless ``force_resume`` (``--force_resume``).  The same images at another path (a
shipped resume file on a user's machine) are the same data.

All files are written atomically (temporary file + rename), the official checkpoint before ``latest.pth``.
"""
import csv
import hashlib
import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

import models
from models.checkpoint import (CheckpointError, atomic_save, default_format, detect_format, load_checkpoint_file,
                               load_into, official_object)
from training.ema import EMA, ema_rule
from training.losses import draw_levels, get_loss_fn, noise_range
from utils import distributed
from utils import progress as progress_lib
from models import speed as speed_lib
from utils.atomic import atomic_write_text
from data.loader import Failed, first_failure, guarded, raise_failed

log = logging.getLogger(__name__)
LOG_NAME = 'train_log.csv'
LATEST = os.path.join('checkpoints-meta', 'latest.pth')
_LATEST_KEYS = ('official', 'format', 'step', 'consumed', 'dataset_size', 'generator', 'ema_num_updates', 'window',
                'history', 'config')
NUM_BUCKETS = 10
FINGERPRINT_IMAGES = 64        # images hashed into the data fingerprint of a resume file (_fingerprint)
_NOISE, _ORDER, _DROPOUT, _INIT = range(4)        # seed-derivation tags


class ResumeMismatch(ValueError):
    """A resume on other data or with another batch size than the run that wrote the checkpoint."""


def run_train(config, workdir, data, num_workers=0, progress=True, max_steps=None, skip_bad=False,
              force_resume=False, max_minutes=None):
    """Train ``config``'s model on ``data`` in ``workdir``; a rerun of the same call resumes.

    Args:
      config: an ml_collections config (``configs/...``).  Reads ``seed``, ``device`` ('auto' | 'cpu' | 'cuda'),
        ``training.{batch_size, n_iters, snapshot_freq, log_freq, sde, continuous, reduce_mean,
        likelihood_weighting, anneal_power}``, ``optim.{optimizer='Adam', lr, beta1, eps, weight_decay, amsgrad,
        warmup, grad_clip}``, ``model.{family, ema, ema_rate, sigma_* (VE) or beta_* (VP), num_scales, ...}`` and
        ``data.{image_size, num_channels, random_flip, uniform_dequantization, centered}``.
        Optional speed switches, off when absent (``config.training.get``; ``models/speed.py``):
        ``training.channels_last`` (channels-last memory format; applied on CUDA only),
        ``training.precision`` ('fp32' | 'tf32': TF32 matmuls and convolutions on CUDA, nothing on the CPU | 'bf16':
        bfloat16 autocast of the forward pass and loss, CUDA and CPU; the older ``training.bf16 = True`` is 'bf16'),
        ``training.compile`` (``torch.compile`` of the forward and backward, CUDA and CPU; on the CPU it needs a C++
        compiler and paid for its compile after a few hundred NCSN steps: benchmarks/cpu_speed.py --compile) with
        ``training.compile_mode`` ('default' | 'max-autotune').
      workdir: the run folder (created).  If ``<workdir>/checkpoints-meta/latest.pth`` exists, training resumes
        from it (same config assumed) and continues bit-identically on the CPU.
      data: a dataset path (opened with ``data.readers.open_dataset(path, config, split='train')``, uncentred,
        no augmentation: that is done here) or any map-style Dataset of float32 ``(C, H, W)`` tensors in [0, 1]
        (items may also be tuples whose first entry is the image, as from a TensorDataset).
      num_workers: DataLoader worker processes (0 = load in the main process).
      progress: show progress (rank 0): a tqdm bar on a terminal, else one line per logged step
        (``utils/progress.py``); and the plan of the run in one line first.
      max_steps: stop after this global step (default: ``training.n_iters``); used to train in pieces.
      skip_bad: a dataset path's unreadable images are skipped with a warning: the next readable image (in index
        order) takes the place of each, so batches keep their size (else the reader's DataError, naming the file).
      force_resume: resume even though the data (path, description, size, config.data's dataset / resolution /
        channels) or ``training.batch_size`` differ from the run that wrote ``latest.pth`` (a warning instead of a
        :class:`ResumeMismatch`).
      max_minutes: stop after this much wall time (minutes, counted from this call: data, model and compile
        included): once a step ends past it, the exact resume state is saved (``checkpoints-meta/latest.pth`` and
        the official checkpoint of that step) and the call returns with ``stopped`` True; rerunning the same call
        resumes bit-identically (``--max_minutes``: a GPU session of fixed length).

    Rank 0 holds ``workdir``'s lock (``utils/lock.py``) for the whole run, taken before the data is read.

    ``training.batch_size``, ``n_iters``, ``snapshot_freq`` and ``log_freq`` must be integers >= 1.  A damaged
    ``checkpoints-meta/latest.pth`` is reported and the run resumes from the newest intact
    ``checkpoints/checkpoint_<k>.pth`` instead (with a warning: the noise generator restarts from a seed of that
    step, so that continuation is not bit-identical to an uninterrupted run).

    ``training.n_iters`` is the number of optimiser steps; an official checkpoint is written every
    ``training.snapshot_freq`` steps and at the end.  Under ``torchrun`` (RANK / WORLD_SIZE set) it runs
    DistributedDataParallel (nccl on CUDA, gloo on the CPU); ``training.batch_size`` is the global batch, split
    evenly across the processes, and rank 0 writes every file.

    Returns:
      dict with ``step`` (the last step), ``columns`` and ``history`` (the logged rows, rank 0), ``checkpoint``
      (the last official checkpoint path), ``net`` (the trained raw network) and ``ema`` (a
      :class:`training.ema.EMA` or None).
    """
    from utils.lock import workdir_lock
    _check_training(config.training)
    if max_minutes is not None and (isinstance(max_minutes, bool) or not isinstance(max_minutes, (int, float)) or
                                    not max_minutes > 0 or not math.isfinite(max_minutes)):
        raise ValueError(f'--max_minutes = {max_minutes!r}: expected a number of minutes > 0')
    deadline = None if max_minutes is None else _now() + 60. * float(max_minutes)
    with workdir_lock(workdir, enabled=distributed.env()[0] == 0):
        run = Trainer(config, workdir, data, num_workers, progress, skip_bad, force_resume)
        try:
            with speed_lib.backend(run.speed['precision'], run.device):
                return run.train(max_steps, deadline=deadline)
        finally:
            run.close()


class Trainer:
    """One training run: model, optimiser, EMA, generator and position, resumed from ``workdir`` if possible.

    :func:`run_train` is the entry point (same arguments); :meth:`train` is the loop and :meth:`train_step`
    one optimisation step on a batch of this process (``benchmarks/train_bench.py`` times it).
    """

    def __init__(self, config, workdir, data, num_workers=0, progress=True, skip_bad=False, force_resume=False):
        self.config, self.workdir, self.progress, self.force_resume = config, workdir, progress, force_resume
        self.bar = None
        tr, opt = config.training, config.optim
        _check_training(tr)
        self.rank, self.world, self.device, self.owns_group = _setup_distributed(config)
        self.batch = int(tr.batch_size)
        if self.batch % self.world:
            raise ValueError(f'training.batch_size={self.batch} must be divisible by the {self.world} processes')
        self.local = self.batch // self.world
        on_cuda = self.device.type == 'cuda'
        # models/speed.py: training.precision (fp32 | tf32 | bf16 autocast, CUDA and CPU; training.bf16 = True is
        # 'bf16'), training.compile (+ compile_mode; CUDA and CPU), training.channels_last (CUDA only)
        self.speed, ignored = speed_lib.training_switches(tr, self.device)
        if ignored and self.rank == 0:
            self._say(logging.INFO, f'training: {", ".join(ignored)} ignored on {self.device}')

        self.dataset = _open_data(data, config, skip_bad)
        self.data_info = _data_info(data, self.dataset, config)
        self.shape = (int(config.data.num_channels), int(config.data.image_size), int(config.data.image_size))
        first = _image(raise_failed(self.dataset[0]))
        if tuple(first.shape) != self.shape:
            raise ValueError(f'dataset items have shape {tuple(first.shape)}; the config expects {self.shape} '
                             '(data.num_channels, data.image_size, data.image_size)')

        with torch.random.fork_rng(devices=[]):          # same initial weights on every process and rerun
            torch.manual_seed(_derive_seed(config.seed, _INIT))
            self.net = models.create_model(config).train()
        memory_format = torch.channels_last if self.speed['channels_last'] else torch.preserve_format
        self.net.to(self.device, memory_format=memory_format)
        self.has_dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.net.modules())
        if opt.get('optimizer', 'Adam') != 'Adam':
            raise ValueError(f"optim.optimizer={opt.optimizer!r}: only 'Adam' (the official optimiser) is supported")
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999), eps=opt.eps,
                                          weight_decay=opt.weight_decay, amsgrad=bool(opt.get('amsgrad', False)))
        rule = ema_rule(config)
        self.ema = EMA(self.net, config.model.ema_rate, rule) if rule else None
        # An NCSN with EMA goes into NCSNv2's layout (official, and it has the EMA slot).
        self.format = 'ncsnv2' if config.model.family == 'ncsn' and self.ema else default_format(config)
        self.generator = torch.Generator(device=self.device).manual_seed(_derive_seed(config.seed, _NOISE))
        self.loss_fn = get_loss_fn(config, self.device)
        self.noise_range = noise_range(config)          # the buckets of the per-level loss columns
        self.columns = ['step', 'loss', 'lr', 'it_per_s'] + _bucket_names(config)
        self.window = torch.zeros(2, NUM_BUCKETS + 1, dtype=torch.float64, device=self.device)  # sums, counts
        self.step, self.consumed, self.history, self.saved_step = 0, 0, [], None
        self._resume()

        model = self.net
        if self.world > 1:
            model = nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if on_cuda else None)
        self.model = speed_lib.training_compile(model, self.speed) if self.speed['compile'] else model
        self.autocast = speed_lib.training_autocast(self.speed, self.device)
        self.num_workers = num_workers

    # -- the loop ------------------------------------------------------------------------------------------

    def train(self, max_steps, deadline=None):
        """Train up to ``max_steps`` (``training.n_iters``); with ``deadline`` (a ``time.time()``) stop after the first
        step that ends past it (``stopped`` in the result), saving the exact resume state."""
        tr = self.config.training
        stop = int(tr.n_iters) if max_steps is None else min(int(max_steps), int(tr.n_iters))
        log_freq, snapshot_freq = int(tr.log_freq), int(tr.snapshot_freq)
        self.stop, shown = stop, self.progress and self.rank == 0
        if shown and self.step < stop:       # the plan, in one line
            info = self.data_info
            print(f"training {self.config.model.family} on {info['size']} images ({info.get('path') or 'a dataset'}) "
                  f'in {self.workdir!r}: steps {self.step + 1} .. {stop}, batch {self.batch}, {self.device}; a log row '
                  f'every {log_freq} steps, a checkpoint every {snapshot_freq}', flush=True)
        # a bar on a terminal; otherwise (a log file) one line per logged step (utils/progress.py)
        bar = self.bar = _progress_bar(shown and progress_lib.interactive(), stop, self.step)
        tick, tick_step = time.time(), self.step
        batches = self._batches()
        stopped = False
        stop_signal = _StopSignal()
        try:
            stop_signal.install()
            while self.step < stop:
                if self._past(deadline, stop_signal):
                    stopped = True
                    break
                out = self.train_step(next(batches))
                self.step += 1
                self.consumed += self.batch
                self._accumulate(out)
                bar.update(1)
                if self.step % log_freq == 0:
                    rate = (self.step - tick_step) / max(time.time() - tick, 1e-9)
                    row = self._log(rate)
                    tick, tick_step = time.time(), self.step
                    if row is not None:
                        bar.set_postfix(loss=f'{row[1]:.4g}')
                if self.step % snapshot_freq == 0:
                    self.save()
        finally:
            stop_signal.restore()
            batches.close()         # stops DataLoader workers
            bar.close()             # before any error message, so that the two do not share a line
            self.bar = None
        if self.saved_step != self.step:
            self.save()
        if stopped and shown:
            why = f'{stop_signal.received}: saved at the next step' if stop_signal.received else \
                'the wall-time limit, --max_minutes'
            print(f'train: stopped at step {self.step} of {stop} ({why}); '
                  f'{os.path.join(self.workdir, LATEST)} holds the exact state: rerun the same command to resume',
                  flush=True)
        return {'step': self.step, 'columns': list(self.columns), 'history': [list(r) for r in self.history],
                'checkpoint': self._checkpoint_path(self.step), 'net': self.net, 'ema': self.ema,
                'stopped': stopped, 'signal': stop_signal.received}

    def _past(self, deadline, stop_signal):
        """Whether to stop before the next step: the wall-time deadline has passed, or a SIGTERM / first Ctrl-C came
        (``stop_signal``); under DDP on any process, so that all stop at one step."""
        past = (deadline is not None and _now() >= deadline) or stop_signal.received is not None
        if self.world > 1:
            flag = torch.tensor([float(past)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            past = bool(flag.item())
        return past

    def train_step(self, x):
        """One optimisation step on this process's share ``x`` of the global batch."""
        x, draws = self._augment_and_draw(x)
        if self.has_dropout:
            torch.manual_seed(_derive_seed(self.config.seed, _DROPOUT, self.step, self.rank))
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            out = self.loss_fn(self.model, x, draws)
        out.loss.backward()
        _optimize(self.optimizer, self.net.parameters(), self.step, self.config.optim)
        if self.ema is not None:
            self.ema.update(self.net)
        return out

    def _augment_and_draw(self, x):
        """Draw everything random for the global batch (fixed order), keep this process's slice, and apply
        uniform dequantisation x*255/256 + U/256, random horizontal flips and centring 2x-1 as configured."""
        d, g, n, dev = self.config.data, self.generator, self.batch, self.device
        mine = slice(self.rank * self.local, (self.rank + 1) * self.local)
        u = torch.rand((n, *self.shape), generator=g, device=dev) if d.uniform_dequantization else None
        flip = torch.rand(n, generator=g, device=dev) < 0.5 if d.random_flip else None
        draws = {k: (v[mine] if v is not None else None)
                 for k, v in draw_levels(self.config, n, self.shape, g, dev).items()}
        if u is not None:
            x = x * (255. / 256.) + u[mine] / 256.
        if flip is not None:
            x = torch.where(flip[mine].view(-1, 1, 1, 1), x.flip(-1), x)
        if d.centered:
            x = 2. * x - 1.
        if self.speed['channels_last']:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, draws

    def _batches(self):
        stream = _BatchStream(len(self.dataset), self.batch, self.config.seed, self.consumed, self.rank, self.world)
        loader = DataLoader(self.dataset, batch_sampler=stream, num_workers=self.num_workers, collate_fn=_collate,
                            pin_memory=self.device.type == 'cuda')
        for x in loader:
            yield raise_failed(x).to(self.device, non_blocking=True)   # a reader's DataError, not a worker traceback

    # -- logging -------------------------------------------------------------------------------------------

    def _accumulate(self, out):
        losses = out.losses.detach().double()
        bucket = _bucket(out.sigma.detach().double(), *self.noise_range) + 1
        self.window[0, 0] += losses.sum()
        self.window[1, 0] += losses.numel()
        self.window[0].index_add_(0, bucket, losses)
        self.window[1].index_add_(0, bucket, torch.ones_like(losses))

    def _reduce_window(self):
        """Sum the loss window over processes into rank 0 (the others restart from zero)."""
        if self.world > 1:
            dist.all_reduce(self.window)
            if self.rank != 0:
                self.window.zero_()

    def _log(self, rate):
        self._reduce_window()
        if self.rank != 0:
            return None
        sums, counts = self.window.cpu().numpy()
        means = [float(s / c) if c else float('nan') for s, c in zip(sums, counts)]
        row = [self.step, means[0], float(self.optimizer.param_groups[0]['lr']), round(rate, 3)] + means[1:]
        self.history.append(row)
        self.window.zero_()
        path = os.path.join(self.workdir, LOG_NAME)
        with open(path, 'a', newline='') as f:
            csv.writer(f).writerow(row)
        self._say(logging.INFO, f'step {self.step}: loss {means[0]:.5e}')
        if self.progress and (self.bar is None or self.bar.disable):
            stop = getattr(self, 'stop', self.step)
            left = f', about {progress_lib.duration((stop - self.step) / rate)} left' if rate > 0 and \
                self.step < stop else ''
            print(f'train: step {self.step}/{stop}, loss {means[0]:.5g}, {rate:.3g} it/s{left}', flush=True)
        return row

    def _say(self, level, message):
        """A log line; while the progress bar is drawn it goes through tqdm.write so that the two do not interleave."""
        if self.bar is not None and not self.bar.disable:
            if log.isEnabledFor(level):
                from tqdm import tqdm
                tqdm.write(f'{logging.getLevelName(level)}: {message}', file=sys.stderr)
        else:
            log.log(level, '%s', message)

    def _rewrite_log(self):
        """Start ``train_log.csv`` afresh from the logged history (drops rows of steps lost at a kill)."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.columns)
        writer.writerows(self.history)
        atomic_write_text(os.path.join(self.workdir, LOG_NAME), buf.getvalue())

    # -- checkpoints -----------------------------------------------------------------------------------

    def _checkpoint_path(self, step):
        return os.path.join(self.workdir, 'checkpoints', f'checkpoint_{step}.pth')

    def save(self):
        """Write the official checkpoint, then ``latest.pth`` (rank 0; barriers around)."""
        self._reduce_window()
        distributed.barrier()
        if self.rank == 0:
            n = len(self.dataset)
            ema = self.ema
            official = official_object(
                self.format, self.net, self.optimizer.state_dict(), step=self.step, epoch=self.consumed // n,
                ema_params=ema.shadow_params if ema else None,
                ema_decay=ema.decay if ema else float(self.config.model.get('ema_rate', 0.999)),
                ema_num_updates=ema.num_updates if ema else self.step)
            atomic_save(official, self._checkpoint_path(self.step))
            atomic_save({
                'official': official, 'format': self.format, 'step': self.step,
                'consumed': self.consumed, 'epoch': self.consumed // n, 'offset': self.consumed % n,
                'dataset_size': n, 'generator': self.generator.get_state(),
                'ema_num_updates': ema.num_updates if ema else 0,
                'window': self.window.cpu(), 'columns': self.columns, 'history': self.history,
                'world_size': self.world, 'config': self.config.to_json(),
                'data': self.data_info, 'batch_size': self.batch,
            }, os.path.join(self.workdir, LATEST))
        self.saved_step = self.step
        distributed.barrier()

    def _resume(self):
        path = os.path.join(self.workdir, LATEST)
        if not os.path.isfile(path):
            if self.rank == 0:
                os.makedirs(self.workdir, exist_ok=True)
                self._rewrite_log()
            distributed.barrier()
            return
        try:
            state = load_checkpoint_file(path)[0]
            missing = [k for k in _LATEST_KEYS if not isinstance(state, dict) or k not in state]
            if missing:
                raise CheckpointError(f'{path!r} lacks {missing}: not a resume file of this trainer')
        except CheckpointError as err:
            state = self._fallback_state(path, err)
        self._check_same_run(state, path)
        official = state['official']
        if state['format'] != self.format:
            raise ValueError(f'{path}: saved in the {state["format"]} layout, this config trains {self.format}')
        load_into(self.net, official, self.config, use_ema=False, source=state.get('source', path))
        self.optimizer.load_state_dict(official['optimizer'] if isinstance(official, dict) else official[1])
        if self.ema is not None:
            if self.format == 'score_sde':
                self.ema.load_state_dict(official['ema'])
            else:
                self.ema.load_state_dict({'decay': self.ema.decay, 'num_updates': state['ema_num_updates'],
                                          'shadow_params': [official[4][k] for k in self.ema.names]})
        if state.get('config') is not None:
            saved = json.loads(state['config'])
            changed = [k for k in ('model', 'data', 'optim') if saved.get(k) != json.loads(self.config[k].to_json())]
            if changed and self.rank == 0:
                self._say(logging.WARNING, f'resuming {path} with a different config.{"/".join(changed)} than the '
                                           'run that wrote it')
        if state.get('generator') is not None:
            self.generator.set_state(state['generator'])
        else:
            self.generator.manual_seed(_derive_seed(self.config.seed, _NOISE, int(state['step'])))
        self.step = self.saved_step = int(state['step'])
        self.consumed = int(state['consumed'])
        self.history = [list(r) for r in state['history']]
        if self.rank == 0:
            self.window.copy_(state['window'])
            self._rewrite_log()
        distributed.barrier()
        if self.rank == 0:
            self._say(logging.INFO, f'training: resumed {state.get("source", path)} at step {self.step}')

    def _check_same_run(self, state, path):
        """A ResumeMismatch naming what differs (old -> new) when ``state`` was written on other data or with another
        batch size; with ``force_resume`` a warning instead.  Older resume files record less: what they record is
        compared (the dataset size; the batch size and config.data in their config)."""
        old = state.get('data') or {}
        new = self.data_info
        saved = json.loads(state['config']) if state.get('config') else {}
        if not old and saved:
            d = saved.get('data', {})
            old = {k: d.get(k) for k in ('dataset', 'image_size', 'num_channels')}
        if state.get('generator') is not None or state.get('data'):    # not a fallback state: its size is the run's
            old.setdefault('size', state.get('dataset_size'))
        old_batch = state.get('batch_size') or saved.get('training', {}).get('batch_size')
        changes = []
        if old_batch is not None and int(old_batch) != self.batch:
            changes.append(f'training.batch_size: {old_batch} -> {self.batch}')
        same_content = old.get('fingerprint') is not None and old.get('fingerprint') == new.get('fingerprint')
        for key, what in (('path', 'dataset path'), ('fingerprint', 'dataset content (sampled images)'),
                          ('dataset', 'config.data.dataset'),
                          ('image_size', 'config.data.image_size'), ('num_channels', 'config.data.num_channels'),
                          ('size', 'dataset size'), ('describe', 'dataset')):
            if key == 'path' and same_content:        # the same images read from another place: a moved copy
                continue
            if old.get(key) is not None and new.get(key) is not None and old[key] != new[key]:
                a, b = (repr(old[key]), repr(new[key])) if key == 'path' else _differing(old[key], new[key])
                changes.append(f'{what}: {a} -> {b}')
        if not changes:
            return
        text = f'{path} was written by a run on other data or with another batch size ({"; ".join(changes)})'
        if not self.force_resume:
            raise ResumeMismatch(f'{text}: resuming would mix the two; pass --force_resume to resume anyway (the data '
                                 'order and the loss change), or use a new --workdir')
        if self.rank == 0:
            print(f'warning: {text}; resuming anyway (--force_resume)', file=sys.stderr, flush=True)

    def _fallback_state(self, latest, err):
        """A resume state from the newest intact ``checkpoints/checkpoint_<k>.pth`` when ``latest.pth`` is damaged:
        weights, optimiser and EMA from that official object, position k x batch, the logged rows up to step k, and
        the noise generator seeded from (seed, k) (the saved generator state is lost)."""
        folder = os.path.join(self.workdir, 'checkpoints')
        numbered = []
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            stem = name[len('checkpoint_'):-len('.pth')] if name.startswith('checkpoint_') and name.endswith('.pth') \
                else ''
            if stem.isdigit():
                numbered.append((int(stem), os.path.join(folder, name)))
        damaged = []
        for step, ckpt in sorted(numbered, reverse=True):
            try:
                obj = load_checkpoint_file(ckpt)[0]
                fmt = detect_format(obj)
            except CheckpointError as e:
                damaged.append(f'{os.path.basename(ckpt)}: {e}')
                continue
            if fmt != self.format or (fmt == 'ncsnv2' and self.ema is not None and len(obj) < 5):
                damaged.append(f'{os.path.basename(ckpt)}: {fmt} layout, this run needs {self.format}'
                               + (' with an EMA' if self.ema is not None else ''))
                continue
            if self.rank == 0:
                self._say(logging.WARNING, f'{latest} is damaged ({err}); resuming from {ckpt} (step {step}) '
                                           'instead: the noise generator restarts from a seed of that step and the '
                                           'loss window since the last log line is lost, so this continuation is '
                                           'not bit-identical to an uninterrupted run')
            ema_updates = step
            if fmt == 'score_sde' and isinstance(obj.get('ema'), dict):
                ema_updates = int(obj['ema'].get('num_updates', step))
            return {'official': obj, 'format': fmt, 'step': step, 'consumed': step * self.batch,
                    'dataset_size': len(self.dataset), 'generator': None, 'ema_num_updates': ema_updates,
                    'window': torch.zeros_like(self.window).cpu(), 'history': self._logged_rows(step),
                    'config': None, 'source': ckpt}
        tried = f' ({"; ".join(damaged)})' if damaged else ''
        raise CheckpointError(f'{latest} is damaged ({err}) and {folder} holds no intact checkpoint_<k>.pth to resume '
                              f'from{tried}; delete {latest} to train this workdir from scratch, or use a new '
                              '--workdir')

    def _logged_rows(self, step):
        """The rows of train_log.csv up to ``step`` (numbers), for a resume without latest.pth."""
        path = os.path.join(self.workdir, LOG_NAME)
        rows = []
        if not os.path.isfile(path):
            return rows
        with open(path, newline='') as f:
            for row in csv.reader(f):
                try:
                    values = [int(row[0])] + [float(v) for v in row[1:]]
                except (ValueError, IndexError):
                    continue                      # the header, or a line cut by a kill
                if values[0] <= step and len(values) == len(self.columns):
                    rows.append(values)
        return rows

    def close(self):
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


# -- the pieces ------------------------------------------------------------------------------------------

def _optimize(optimizer, params, step, optim):
    """score_sde ``optimization_manager``: lr = lr * min(step / warmup, 1) (step = steps done before this
    one), clip the global gradient norm to ``grad_clip`` when ``grad_clip >= 0``, then the optimiser step."""
    if optim.warmup > 0:
        for group in optimizer.param_groups:
            group['lr'] = optim.lr * min(step / optim.warmup, 1.)
    if optim.grad_clip >= 0:
        torch.nn.utils.clip_grad_norm_(list(params), max_norm=optim.grad_clip)
    optimizer.step()


class _BatchStream(Sampler):
    """This process's index lists of successive global batches, starting after ``consumed`` samples.

    Epoch e is ``randperm(N)`` of a generator seeded with (seed, e); a batch that reaches the end of an epoch
    continues in the next one.  Process r of W takes the r-th contiguous 1/W of every global batch.
    """

    def __init__(self, size, batch, seed, consumed, rank, world):
        self.size, self.batch, self.seed, self.consumed = size, batch, seed, consumed
        self.mine = slice(rank * batch // world, (rank + 1) * batch // world)

    def _perm(self, epoch):
        g = torch.Generator().manual_seed(_derive_seed(self.seed, _ORDER, epoch))
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self):
        pos, epoch, perm = self.consumed, None, None
        while True:
            batch = []
            while len(batch) < self.batch:
                e, offset = divmod(pos, self.size)
                if e != epoch:
                    epoch, perm = e, self._perm(e)
                take = min(self.batch - len(batch), self.size - offset)
                batch += perm[offset:offset + take]
                pos += take
            yield batch[self.mine]


class _StopSignal:
    """SIGTERM (what a scheduler or a session's end sends) and the first Ctrl-C (SIGINT) stop training at the next
    step boundary with the exact resume state saved, instead of losing the steps since the last snapshot; a second
    Ctrl-C interrupts at once, as before.  Installed only in the main thread (signal handlers live there)."""

    def __init__(self):
        self.received, self.previous = None, {}

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if sig == signal.SIGINT and previous is signal.SIG_IGN:
                continue            # a background job started without job control: Ctrl-C cannot reach it anyway
            self.previous[sig] = previous
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt          # the second Ctrl-C: stop now
        self.received = signal.Signals(signum).name
        print(f'train: {self.received} received: stopping after this step with the resume state saved '
              '(Ctrl-C again to stop at once)', file=sys.stderr, flush=True)

    def restore(self):
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
        self.previous = {}


def _now():
    """The wall clock of ``max_minutes`` (a function, so that tests can move it)."""
    return time.time()


def _derive_seed(*ints):
    """A 63-bit seed from a tuple of non-negative integers (NumPy SeedSequence hashing)."""
    words = np.random.SeedSequence([int(i) for i in ints]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def _image(item):
    return item[0] if isinstance(item, (tuple, list)) else item


def _collate(items):
    failed = first_failure(items)
    if failed is not None:
        return failed
    return torch.stack([torch.as_tensor(_image(it), dtype=torch.float32) for it in items])


def _check_training(tr):
    """One ValueError naming every training count that is not an integer >= 1."""
    bad = []
    for key, what in (('batch_size', 'the global batch'), ('n_iters', 'optimiser steps'),
                      ('snapshot_freq', 'steps between checkpoints'), ('log_freq', 'steps between log rows')):
        value = tr.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad.append(f'training.{key} = {value!r}: expected an integer >= 1 ({what})')
    if bad:
        raise ValueError('; '.join(bad))


class _Readable(Dataset):
    """A reader's dataset as the training loader sees it: a DataError travels out of worker processes as data
    (``data/loader.py``), and with ``skip_bad`` an unreadable image (``BadItem``) is replaced by the next readable
    one in index order, so every batch keeps its size."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        from data.readers import BadItem
        n = len(self.dataset)
        for k in range(n):
            item = guarded(self.dataset.__getitem__, (int(i) + k) % n)
            if not isinstance(item, BadItem):
                return item
        return Failed(f'no readable image in {getattr(self.dataset, "path", "the dataset")!r}')


def _differing(a, b):
    """The parts of two '; '-separated descriptions that differ (the whole values when they do not line up)."""
    if not isinstance(a, str) or not isinstance(b, str):
        return a, b
    pa, pb = a.split('; '), b.split('; ')
    if len(pa) != len(pb):
        return a, b
    diff = [(x, y) for x, y in zip(pa, pb) if x != y]
    return '; '.join(x for x, _ in diff), '; '.join(y for _, y in diff)


def _data_info(data, dataset, config):
    """What a run trained on, recorded in ``latest.pth`` and compared on resume: the path (absolute; a generated
    set such as ``deadleaves:<count>`` as given), a content fingerprint (:func:`_fingerprint`), the reader's
    ``describe()``, the size and config.data's dataset, resolution and channels.  A Dataset object given directly
    has no path or description (its size and fingerprint are recorded).  When both runs record a fingerprint and it
    matches, a changed path is a moved copy of the same data and is not a mismatch."""
    d = config.data
    info = {'path': None, 'describe': None, 'size': len(dataset), 'fingerprint': _fingerprint(dataset),
            'dataset': str(d.get('dataset', '')), 'image_size': int(d.image_size),
            'num_channels': int(d.num_channels)}
    if isinstance(data, (str, os.PathLike)):
        raw = os.fspath(data)
        expanded = os.path.expandvars(os.path.expanduser(raw))
        generated = expanded.lower().split(':')[0] in ('deadleaves', 'dead_leaves') and not os.path.exists(expanded)
        info['path'] = raw if generated else os.path.abspath(expanded)
        reader = getattr(dataset, 'dataset', dataset)
        if hasattr(reader, 'describe'):
            info['describe'] = reader.describe()
    return info


def _fingerprint(dataset, count=FINGERPRINT_IMAGES):
    """``'sha256:<16 hex>'`` of the dataset's size and ``count`` evenly spaced images as training reads them, each
    quantised to steps of 1/255 (so a last-bit difference in a resize does not count): tells MNIST from
    Fashion-MNIST, or a replaced file, whatever the path, in well under a second."""
    n = len(dataset)
    h = hashlib.sha256(str(n).encode())
    for i in sorted({k * n // count for k in range(min(count, n))}):
        image = torch.as_tensor(_image(raise_failed(dataset[i])), dtype=torch.float32)
        h.update(image.mul(255).round().to(torch.int32).contiguous().numpy().tobytes())
    return 'sha256:' + h.hexdigest()[:16]


def _open_data(data, config, skip_bad=False):
    if isinstance(data, (str, os.PathLike)):
        from data.readers import open_dataset
        ds = open_dataset(os.fspath(data), config, split='train', centered=False, augment=False, skip_bad=skip_bad)
        return _Readable(ds)
    if not hasattr(data, '__getitem__') or not hasattr(data, '__len__'):
        raise TypeError(f'data must be a dataset path or a map-style Dataset, not {type(data).__name__}')
    if len(data) == 0:
        raise ValueError('the training dataset is empty')
    return data


def _bucket(sigma, smin, smax):
    """Noise-level bucket 0..NUM_BUCKETS-1 of each sigma: equal slices of log sigma over smin .. smax
    (``training.losses.noise_range``), largest sigma first."""
    pos = torch.log(smax / sigma) / math.log(smax / smin)
    return (pos * NUM_BUCKETS + 1e-6).floor().long().clamp_(0, NUM_BUCKETS - 1)


def _bucket_names(config):
    """CSV column per bucket of :func:`_bucket`, named by its sigma range (hi, lo]; the last includes the smallest
    level.  VP runs log in the same sigma view, sigma = sqrt(1 / alpha_bar - 1) (``training.losses.noise_range``)."""
    smin, smax = noise_range(config)
    edges = [smax * (smin / smax) ** (k / NUM_BUCKETS) for k in range(NUM_BUCKETS + 1)]
    return [f'loss_sigma_{hi:.4g}_{lo:.4g}' for hi, lo in zip(edges, edges[1:])]


def _setup_distributed(config):
    """(rank, world_size, device, whether we created the process group) from torchrun's environment."""
    rank, world, local_rank = distributed.env()
    want = str(config.get('device', 'auto'))
    if want == 'auto':
        want = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(want)
    if device.type == 'cuda':
        device = torch.device('cuda', local_rank if world > 1 else (device.index or 0))
        torch.cuda.set_device(device)
    owns = world > 1 and not distributed.initialized()
    distributed.init(device)
    return rank, world, device, owns


def _progress_bar(enabled, total, initial):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, dynamic_ncols=True, desc='train')


