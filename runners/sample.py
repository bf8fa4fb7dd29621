"""``--mode sample``: draw samples to PNGs, resumably.

Layout of ``<workdir>``::

    settings.json          the exact config and options, and the sha256 of every input file (checkpoint, PDS
                           statistics); once a batch is finished, a rerun with other settings or changed input
                           files is refused (before that, the folder takes the new settings)
    samples/<index>.png    one image per sample (written atomically)
    batches/batch_<b>.npz  uint8 images and raw float samples of batch b; written last, it marks b as done (a
                           truncated one is recomputed with a note; one of another run's shape is refused, named)
    grid.png               the first samples as a grid
    run.lock               while a run works in the folder (``utils/lock.py``): a second run there is refused

Batch ``b`` holds indices ``b*B .. b*B+B-1`` and draws its noise from a generator seeded with
``SeedSequence([seed, b])``, so the images depend only on (config, checkpoint, seed, batch size), not
on interruptions or on how many processes share the work (``rank``/``world_size``: batch b runs on
rank b % world_size).
"""
import contextlib
import json
import math
import os
import sys
import time
import zipfile

import numpy as np
import torch
from tqdm import tqdm

import sampling
from runners import validate
from utils import progress as progress_lib
from utils import provenance
from utils.atomic import atomic_write, atomic_write_text
from utils.images import make_grid, save_png, to_uint8  # noqa: F401  (also runners.sample's names)
from utils.lock import workdir_lock


class SamplingError(RuntimeError):
    """Sampling diverged or the output folder does not fit the request."""


class SettingsMismatch(SamplingError):
    """The output folder holds finished batches made with other settings (or input files) than this run's."""


def _config_changes(old, new, prefix=''):
    """The config fields that differ between two config dicts, as ``dotted.name: old -> new`` (for a message)."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_changes(a, b, f'{prefix}{k}.')
        elif a != b:
            out.append(f'{prefix}{k}: {a!r} -> {b!r}' if k in old and k in new else f'{prefix}{k}')
    return out


def _as_recorded(old, new):
    """``new`` (a config dict) without the :data:`ADDED_KEYS` that ``old`` lacks and ``new`` holds at their old
    behaviour's value, for the comparison with a folder sampled before those keys existed."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    new = {k: (dict(v) if isinstance(v, dict) else v) for k, v in new.items()}
    for dotted, value in ADDED_KEYS.items():
        section, key = dotted.split('.')
        if key not in (old.get(section) or {}) and (new.get(section) or {}).get(key, value) == value:
            (new.get(section) or {}).pop(key, None)
    return new


def batch_generator(seed, batch, device='cpu'):
    """The generator of batch ``batch``: seeded from SeedSequence([seed, batch])."""
    state = np.random.SeedSequence([int(seed), int(batch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))


SETTINGS = 'settings.json'
# Settings that change the images: a workdir holding finished batches refuses a rerun that differs in one of them.
COMPARED = ('config', 'seed', 'batch_size', 'use_ema', 'noise_device', 'precision', 'bf16_min_sigma')
# ``precision`` and ``bf16_min_sigma`` (models/speed.py) are recorded only when not fp32 / not 0, so that folders made
# before they existed compare equal to fp32 runs; tf32 / bf16 (and where bf16 stops) change the images, the other
# speed switches (recorded under ``speed``) do not.
# Config keys added after folders were sampled, with the value that reproduces the images made before them: a folder
# whose recorded config lacks such a key resumes under a config that holds it at that value.
ADDED_KEYS = {'sampling.last_step': 'predictor'}
# Divergence bound (see divergence_bound): |x| <= DATA_ABS_MAX + DIVERGENCE_FACTOR * sigma_max * gain(M).
DATA_ABS_MAX = 1.
DIVERGENCE_FACTOR = 100.


def _finished_batches(workdir):
    folder = os.path.join(workdir, 'batches')
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.startswith('batch_') and n.endswith('.npz'))


def remove_stray_temporaries(workdir):
    """Delete the ``.tmp-*`` files that killed atomic writes (``utils/atomic.py``) left in ``workdir``, its
    ``samples/`` and ``batches/``.  Returns how many were removed."""
    removed = 0
    for folder in (workdir, os.path.join(workdir, 'samples'), os.path.join(workdir, 'batches')):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if name.startswith('.tmp-') and os.path.isfile(path):
                os.remove(path)
                removed += 1
    return removed


def _read_settings(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SamplingError(f'{path!r} cannot be read as JSON ({e}); expected the settings.json a sampling run wrote '
                            '(delete it only if batches/ holds no finished batch)') from None


def _compare(old, settings):
    """``(settings, changed)``: ``settings`` with its config as ``old`` recorded it (:func:`_as_recorded`), and the
    :data:`COMPARED` keys (the settings that change the images) whose values differ from ``old``'s."""
    settings = dict(settings, config=_as_recorded(old.get('config'), settings.get('config')))
    return settings, [k for k in COMPARED if old.get(k) != settings.get(k)]


def _check_settings(workdir, settings):
    """Accept ``workdir`` for ``settings`` and write its settings.json, or refuse with a SamplingError.

    A folder without a finished batch takes the new settings (settings.json is rewritten, the images of unfinished
    batches made with other settings are removed).  A folder with finished batches must have been made with the
    same settings (:data:`COMPARED`) and from the same input files (sha256 of the checkpoint and PDS files)."""
    path = os.path.join(workdir, SETTINGS)
    finished = _finished_batches(workdir)
    if os.path.exists(path):
        old = _read_settings(path)
        settings, changed = _compare(old, settings)
        if not finished:
            if changed or old.get('inputs') != settings.get('inputs'):
                _remove_unfinished_images(workdir)
        else:
            old_in, new_in = old.get('inputs'), settings.get('inputs') or {}
            if 'checkpoint' not in new_in and not (old_in or {}).get('checkpoint') and \
                    old.get('checkpoint') != settings.get('checkpoint'):
                changed.append('checkpoint')
            if changed:
                parts = [f'{c}: {old.get(c)!r} -> {settings.get(c)!r}' if c in old and c in settings else c
                         for c in changed if c != 'config']
                if 'config' in changed:
                    fields = _config_changes(old.get('config') or {}, settings.get('config') or {})
                    more = f'; {len(fields) - 4} more' if len(fields) > 4 else ''
                    parts.append('config: ' + '; '.join(fields[:4]) + more if fields else 'config')
                said = ', '.join(parts)
                flags = {'batch_size': '--batch_size', 'seed': '--seed', 'noise_device': '--noise_device',
                         'precision': '--precision', 'bf16_min_sigma': '--bf16_min_sigma'}
                same = ' '.join(f'{flags[c]} {old[c]}' for c in changed if c in flags and c in old)
                raise SettingsMismatch(f'{workdir!r} already holds samples made with other settings ({said} '
                                       f'differ); use a new --workdir or the same settings to resume' +
                                       (f' ({same})' if same else ''))
            if old_in is None:
                print(f'warning: {path} predates input hashing: the {len(finished)} finished batches cannot be checked '
                      'against the checkpoint and PDS files of this run; recording the current ones', file=sys.stderr)
            else:
                names = provenance.changed_inputs(old_in, new_in)
                if names:
                    raise SettingsMismatch(
                        f'{workdir!r} holds {len(finished)} finished batches made from other input files '
                        f'({provenance.describe_changes(old_in, new_in, names)}); resuming would mix samples of '
                        'different models or filters: use a new --workdir, or restore those files to resume')
            held = _held_samples(finished, old)
            if held > settings['num_samples']:
                print(f'note: {workdir!r} holds {held} samples; this run asks for {settings["num_samples"]}: the first '
                      f'{settings["num_samples"]} are used, the others are kept', file=sys.stderr, flush=True)
            settings = dict(old, num_samples=max(old['num_samples'], settings['num_samples']),
                            inputs=old_in if old_in is not None else new_in)
    else:
        images = [n for n in os.listdir(os.path.join(workdir, 'samples')) if n.endswith('.png')] \
            if os.path.isdir(os.path.join(workdir, 'samples')) else []
        if finished or images:
            raise SamplingError(f'{workdir!r} holds {len(finished)} finished batches and {len(images)} images but no '
                                f'{SETTINGS}: they cannot be checked against these settings; use a new --workdir')
    atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True))


def _recorded_batch(workdir):
    """The batch size of ``workdir``'s finished batches (settings.json), or None (none finished, or unreadable)."""
    path = os.path.join(workdir, SETTINGS)
    if not _finished_batches(workdir) or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return int(json.load(f)['batch_size'])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _held_samples(finished, settings):
    """How many samples the finished batch files (names) hold under ``settings``' batch size and sample count."""
    size, total = int(settings.get('batch_size') or 0), int(settings.get('num_samples') or 0)
    if size < 1:
        return 0
    indices = [int(n[len('batch_'):-len('.npz')]) for n in finished if n[len('batch_'):-len('.npz')].isdigit()]
    return sum(max(0, min(size, total - b * size)) for b in indices)


def _remove_unfinished_images(workdir):
    """Without a finished batch every image in samples/ is from an interrupted batch: remove those made with other
    settings so that the folder never mixes runs."""
    folder = os.path.join(workdir, 'samples')
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.endswith('.png') and name[:-4].isdigit():
            os.remove(os.path.join(folder, name))
    if os.path.isfile(os.path.join(workdir, 'grid.png')):
        os.remove(os.path.join(workdir, 'grid.png'))


def batch_path(workdir, b):
    """``<workdir>/batches/batch_<b>.npz``: batch b's images and samples, written last (it marks b as done)."""
    return os.path.join(workdir, 'batches', f'batch_{b:06d}.npz')


class DamagedBatch(SamplingError):
    """A ``batches/*.npz`` that cannot be read (cut short by a copy, overwritten with junk)."""


def read_batch(path, keys=('indices',)):
    """``{key: array}`` of a batch file, or a DamagedBatch naming it when it cannot be read (or lacks ``keys``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DamagedBatch(f'{path!r} lacks {missing}: not a batch file of --mode sample')
            return {k: z[k] for k in keys}
    except DamagedBatch:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DamagedBatch(f'{path!r} cannot be read ({type(e).__name__}: {e})') from None


def _batch_done(workdir, b, count, image_shape=None, batch_size=None):
    """Batch b is done when its npz (written last) exists and holds ``count`` images.  A file that cannot be read is
    not done (it is recomputed, with a note: the seeds make the same images); one that holds images of another shape
    or other indices than batch b of this run is a SamplingError naming it."""
    path = batch_path(workdir, b)
    if not os.path.exists(path):
        return False
    try:
        z = read_batch(path, ('indices', 'images'))
    except DamagedBatch as e:
        print(f'note: {e}; recomputing batch {b}', file=sys.stderr, flush=True)
        return False
    images, indices = z['images'], z['indices']
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise SamplingError(f'{path!r} holds images of shape {tuple(images.shape[1:])}, this run makes '
                            f'{tuple(image_shape)}: it is not a batch of this workdir; delete it to recompute it, or '
                            'use a new --workdir')
    first = b * batch_size if batch_size else None
    if first is not None and (len(indices) != len(images) or
                              list(indices) != list(range(first, first + len(indices)))):
        raise SamplingError(f'{path!r} holds samples {list(indices[:3])}... where batch {b} of batch size '
                            f'{batch_size} holds {first} ..: it is not a batch of this workdir; delete it to '
                            'recompute it, or use a new --workdir')
    return len(indices) >= count


def seed_workdir(workdir, source, config, seed, batch_size, num_samples, use_ema=True, noise_device='cpu',
                 precision='fp32', bf16_min_sigma=0.):
    """Start the new ``workdir`` with the first ``num_samples`` images of ``source``, another sampling folder that
    holds exactly the images a run with these arguments would draw: the same :data:`COMPARED` settings (config,
    seed, batch size, EMA, noise device, precision and bf16_min_sigma) and its batches 0 .. ceil(num_samples / batch_size) - 1
    finished (batch b depends only on config, checkpoint, seed and batch size).  The checkpoint and PDS files are
    checked by the run that follows, as on any resume (the caller keeps checkpoints apart: one folder per sha256).

    The batches and PNGs are hard links (copies across file systems); settings.json is ``source``'s with this
    sample count and ``seeded_from`` naming ``source``.  Written into a temporary folder and renamed, so a killed
    call leaves no half-seeded workdir.  Returns True when seeded, False (nothing written) when ``workdir`` exists
    or ``source`` does not hold those images."""
    import shutil
    path = os.path.join(source, SETTINGS)
    if os.path.exists(workdir) or not os.path.isfile(path) or num_samples < 1:
        return False
    try:
        old = _read_settings(path)
    except SamplingError:
        return False
    new = dict(config=json.loads(json.dumps(config.to_dict(), default=str)), seed=seed, batch_size=batch_size,
               use_ema=use_ema, noise_device=str(torch.device(noise_device)))
    if precision != 'fp32':                           # recorded only when not fp32 / not 0 (as run_sample does)
        new['precision'] = precision
    if bf16_min_sigma:
        new['bf16_min_sigma'] = float(bf16_min_sigma)
    if _compare(old, new)[1] or int(old.get('num_samples') or 0) < num_samples:
        return False
    needed = range(math.ceil(num_samples / batch_size))
    if not all(os.path.isfile(batch_path(source, b)) for b in needed):
        return False
    tmp = f'{workdir}.seeding'
    shutil.rmtree(tmp, ignore_errors=True)            # a killed earlier call's
    os.makedirs(os.path.join(tmp, 'batches'))
    os.makedirs(os.path.join(tmp, 'samples'))

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    for b in needed:
        link(batch_path(source, b), batch_path(tmp, b))
    for i in range(num_samples):                      # missing ones are rewritten from the batches on resume
        png = os.path.join(source, 'samples', f'{i}.png')
        if os.path.isfile(png):
            link(png, os.path.join(tmp, 'samples', f'{i}.png'))
    atomic_write_text(os.path.join(tmp, SETTINGS), json.dumps(
        dict(old, num_samples=num_samples, seeded_from=os.path.abspath(source)), indent=1, sort_keys=True))
    os.makedirs(os.path.dirname(os.path.abspath(workdir)), exist_ok=True)
    try:
        os.rename(tmp, workdir)
    except OSError:                                   # another run made workdir meanwhile: it is theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True


def run_inputs(config, score=None, checkpoint=''):
    """The provenance records (``utils/provenance.py``) of every file a sampling run reads: the checkpoint the
    model was loaded from (``score.source``, set by ``models.checkpoint.load_score_model``; else the
    ``checkpoint`` file itself when it is one) and the PDS statistics files.  Each file is hashed once."""
    inputs = {}
    source = getattr(score, 'source', None)
    if source:
        inputs['checkpoint'] = dict(source)
    elif checkpoint and os.path.isfile(checkpoint):
        inputs['checkpoint'] = provenance.file_record(checkpoint)
    for name, path in provenance.pds_files(config).items():
        if os.path.isfile(path):        # a missing file is the preconditioner's error (it names the file)
            inputs[name] = provenance.file_record(path)
    return inputs


def _filter_gain(P):
    """An upper bound of the operator norm of M (the noise multiplier): max |freq| x max |space|, at least 1;
    None for a preconditioner whose tables change per step (``pds.freq = 'auto'``): its gain is not known ahead."""
    if getattr(P, 'is_identity', False):
        return 1.
    if not hasattr(P, 'freq') and not hasattr(P, 'space'):
        return None
    gain = 1.
    for name in ('freq', 'space'):
        table = getattr(P, name, None)
        if isinstance(table, torch.Tensor):
            gain *= max(1., float(table.abs().max()))
    return gain


def divergence_bound(config, P):
    """The largest |x| a run may reach before it counts as diverged: ``1 + 100 sigma_max ||M||``.

    Data lie in [0, 1] (or [-1, 1] centred); the PC prior is ``sigma_max M z`` and every later state is the data
    plus noise of std at most ``sigma_max ||M||`` per pixel (the samplers' target laws p_sigma), so a correct run
    stays within about ``1 + 6 sigma_max ||M||`` even for millions of pixels (6 standard deviations); even the
    random-weight networks of the pipeline tests stay within 15 sigma_max.  A diverging sampler (too large a
    step_lr / snr, a bad checkpoint) grows geometrically and passes ``100 sigma_max ||M||`` within a few steps,
    long before it overflows.  For a per-step preconditioner (``pds.freq = 'auto'``) ||M|| is not known ahead:
    only non-finite values are caught.  sigma_max is the largest level the sampler visits in the VE view
    (``sampling.sigma_range``): model.sigma_max for VE, sigma(1) of the VP SDE for VP (whose PC states stay near
    N(0, I); the rival samplers' y = x / sqrt(alpha_bar) starts at sigma_max z)."""
    gain = _filter_gain(P)
    if gain is None:
        return math.inf
    return DATA_ABS_MAX + DIVERGENCE_FACTOR * sampling.sigma_range(config)[1] * gain


GRID_SIZE = 64           # samples shown in grid.png


def run_sample(config, score, workdir, num_samples, batch_size, seed, device='cpu', checkpoint='', use_ema=True,
               rank=0, world_size=1, progress=True, noise_device='cpu', barrier=None, speed=None):
    """Sample ``num_samples`` images with ``score`` (a ScoreModel or any score(x, sigma)) into ``workdir``.

    Resumable: finished batches are skipped, unfinished ones redone from their seed.  Under torchrun give
    ``barrier`` (utils.distributed.barrier).  Returns the list of batch indices this process sampled.

    Everything is checked before the first file is written: the sampler settings (``runners.validate``), the
    PDS operator and its files, and the workdir (same settings and same input files -- sha256 of the checkpoint
    and of the PDS statistics, recorded in settings.json -- when it holds finished batches).  A run whose states
    leave :func:`divergence_bound` stops with a SamplingError naming batch, step and sigma; nothing of that batch
    is written.  ``speed``: the run's ``models.speed.Speed`` (recorded in settings.json; the score model already
    carries its precision, layout and compile; ``cuda_graphs`` captures the sampler steps on a CUDA device)."""
    its, nfe_per_sample = validate.check_sampling(config, num_samples, batch_size, seed=seed)
    recorded = _recorded_batch(workdir)
    if recorded is not None and num_samples <= recorded <= batch_size:
        batch_size = recorded        # a folder sampled with a larger batch (before clamping): resume it as it was made
    else:
        batch_size = validate.clamp_batch(num_samples, batch_size, say=rank == 0)
    shape = (batch_size, config.data.num_channels, config.data.image_size, config.data.image_size)
    noise_device = str(torch.device(noise_device))
    inputs = run_inputs(config, score, checkpoint)
    before = {n: provenance.stamp(r['path']) for n, r in inputs.items() if n != 'checkpoint'}
    P = validate.build_preconditioner(config, shape[1:], device=device)
    sampling.check_pds(config, P)        # a sampler that cannot apply P refuses before the workdir is touched
    moved = [n for n, st in before.items() if provenance.stamp(inputs[n]['path']) != st]
    if moved:
        raise SamplingError(f'{", ".join(moved)} changed while being read; rerun once the file is complete')
    bound = divergence_bound(config, P)
    settings = dict(config=config.to_dict(), checkpoint=checkpoint, seed=seed, batch_size=batch_size,
                    num_samples=num_samples, use_ema=use_ema, iterations=its, nfe=nfe_per_sample,
                    torch=torch.__version__, device=str(device), noise_device=noise_device, inputs=inputs)
    if speed is not None:            # models/speed.py: the switches (the score model already carries them)
        settings['speed'] = speed.record()
        if speed.precision != 'fp32':
            settings['precision'] = speed.precision
        if speed.bf16_min_sigma:
            settings['bf16_min_sigma'] = float(speed.bf16_min_sigma)
        from models.speed import graphs_wanted
        graphs = graphs_wanted(speed, device, say=rank == 0)
        if graphs:
            from sampling.graphs import check
            check(config, P)
            if noise_device == 'cpu' and rank == 0:
                print('note: --cuda_graphs with the noise drawn on the CPU (--noise_device cpu, reproducible across '
                      'devices): at large images drawing it can set the pace; --noise_device device draws it on the '
                      'GPU', file=sys.stderr, flush=True)
    else:
        graphs = False
    settings = json.loads(json.dumps(settings, default=str))  # tuples -> lists, as read back
    with contextlib.ExitStack() as held:
        if rank == 0:                # one run per folder (utils/lock.py); re-entrant for --mode eval's sampling
            held.enter_context(workdir_lock(workdir))
            remove_stray_temporaries(workdir)
            _check_settings(workdir, settings)
            os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
            os.makedirs(os.path.join(workdir, 'batches'), exist_ok=True)
        if barrier is not None:      # other ranks write only once rank 0 has accepted the folder
            barrier()
        if speed is not None:        # the precision's TF32 flags (CUDA) while sampling
            from models.speed import backend
            held.enter_context(backend(speed.precision, device))
        return _sample_batches(config, score, workdir, num_samples, batch_size, seed, device, rank, world_size,
                               progress, noise_device, shape, P, bound, its, nfe_per_sample, graphs)


def _sample_batches(config, score, workdir, num_samples, batch_size, seed, device, rank, world_size, progress,
                    noise_device, shape, P, bound, its, nfe_per_sample, graphs=False):
    n_batches = math.ceil(num_samples / batch_size)
    image_shape = (shape[2], shape[3], shape[1])

    def count(b):                    # images in batch b (the last one may be partial)
        return min(batch_size, num_samples - b * batch_size)
    todo = [b for b in range(rank, n_batches, world_size)
            if not _batch_done(workdir, b, count(b), image_shape, batch_size)]
    for b in sorted(set(range(rank, n_batches, world_size)) - set(todo)):
        _restore_images(workdir, b)
    if progress and rank == 0:       # the plan, in one line, before the long work
        cost = f'{its} iterations, NFE {nfe_per_sample} per sample' if its else 'iterations and NFE adaptive'
        print(f'sampling {num_samples} samples into {workdir!r}: {n_batches} batches of {batch_size}, {cost}; '
              f'{len(todo)} batches to run' + (f' on {world_size} processes' if world_size > 1 else ''), flush=True)
    # The callback runs once per sampler step (PC: per predictor step; annealed Langevin: per Langevin step, the
    # final denoising call is not a step), i.e. `its` times per batch.
    # Adaptive solvers (its None) know their step count only afterwards: the bar then has no total.
    # On a terminal a bar; otherwise (a log file) one line per batch (utils/progress.py).
    lines = progress and not progress_lib.interactive()
    bar = tqdm(total=len(todo) * its if its else None, disable=not progress or lines, unit='step', desc='sampling')
    started, desc = time.time(), 'sampling' if world_size == 1 else f'sampling (rank {rank}/{world_size})'
    done = []
    try:
        for b in todo:
            seen = [0]

            def check(i, sigma, x, b=b):
                _check_state(x, bound, f'batch {b} at step {i} (noise level sigma = {sigma:.6g})')
                seen[0] += 1
                bar.update(1)
            start = time.time()
            x, nfe = sampling.sample(config, score, shape, batch_generator(seed, b, noise_device), device, P, check,
                                     graphs=graphs)
            _check_state(x, bound, f'batch {b} at its output (after step {seen[0] - 1} and any final denoising)')
            if its and seen[0] < its:
                bar.update(its - seen[0])
            images = to_uint8(x, config.data.centered)
            first, keep = b * batch_size, count(b)
            for k in range(keep):
                save_png(images[k], os.path.join(workdir, 'samples', f'{first + k}.png'))
            atomic_write(batch_path(workdir, b),
                         lambda tmp: np.savez(tmp, images=images[:keep], samples=x[:keep].cpu().numpy(),
                                              indices=np.arange(first, first + keep), nfe=nfe,
                                              seconds=time.time() - start))
            bar.set_postfix(batch=b, nfe=nfe)
            done.append(b)
            if lines:
                progress_lib.line(desc, len(done), len(todo), started, extra=f'batch {b}, NFE {nfe}')
    finally:
        bar.close()             # before any error message, so that the two do not share a line
    if rank == 0 and _batch_done(workdir, 0, 1):
        save_png(make_grid(_first_images(workdir, GRID_SIZE)), os.path.join(workdir, 'grid.png'))
    return done


def _restore_images(workdir, b):
    """Rewrite the PNGs of finished batch b that are missing, from its npz (the record; the PNGs are derived from it):
    e.g. after only ``settings.json`` and ``batches/`` were copied from the machine that sampled."""
    with np.load(batch_path(workdir, b)) as z:
        indices = z['indices']
        missing = [k for k, i in enumerate(indices) if not os.path.exists(os.path.join(workdir, 'samples', f'{i}.png'))]
        if missing:
            os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
            images = z['images']
            for k in missing:
                save_png(images[k], os.path.join(workdir, 'samples', f'{indices[k]}.png'))


def _first_images(workdir, n):
    """The first ``n`` samples (fewer if fewer are done), from the finished batches 0, 1, ... in order (a batch file
    exists only once written whole, and holds at least one image)."""
    images, have, b = [], 0, 0
    while have < n and os.path.exists(batch_path(workdir, b)):
        try:
            batch = read_batch(batch_path(workdir, b), ('images',))['images']
        except DamagedBatch:
            break
        if images and batch.shape[1:] != images[0].shape[1:]:
            break
        images.append(batch)
        have, b = have + len(images[-1]), b + 1
    return np.concatenate(images)[:n]


def _check_state(x, bound, where):
    """SamplingError if ``x`` holds non-finite values or leaves the divergence bound."""
    peak = float(x.detach().abs().amax())
    if not math.isfinite(peak):
        raise SamplingError(f'non-finite values in {where}; lower the step size / snr or check the checkpoint and '
                            'config (nothing of this batch was written)')
    if peak > bound:
        raise SamplingError(f'sampling diverged in {where}: max |x| = {peak:.3g} exceeds {bound:.4g} (data range + '
                            f'{DIVERGENCE_FACTOR:g} sigma_max x filter gain, which a correct run never reaches); lower '
                            'sampling.step_lr / snr or check the checkpoint and config (nothing of this batch was '
                            'written)')
