"""``--mode sample``: draw samples to PNGs, resumably.

Layout of ``<workdir>``::

    settings.json          the exact config and options (a rerun with other settings is refused)
    samples/<index>.png    one image per sample (written atomically)
    batches/batch_<b>.npz  uint8 images and raw float samples of batch b; written last, it marks b as done
    grid.png               the first samples as a grid

Batch ``b`` holds indices ``b*B .. b*B+B-1`` and draws its noise from a generator seeded with
``SeedSequence([seed, b])``, so the images depend only on (config, checkpoint, seed, batch size), not
on interruptions or on how many processes share the work (``rank``/``world_size``: batch b runs on
rank b % world_size).
"""
import json
import math
import os
import time

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

import preconditioning
import sampling
from utils.atomic import atomic_write, atomic_write_text


class SamplingError(RuntimeError):
    """Sampling diverged or the output folder does not fit the request."""


def batch_generator(seed, batch, device='cpu'):
    """The generator of batch ``batch``: seeded from SeedSequence([seed, batch])."""
    state = np.random.SeedSequence([int(seed), int(batch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))


def to_uint8(x, centered=False):
    """Model-space samples -> uint8 NHWC images (torchvision save_image rounding: x*255 + 0.5, clamped)."""
    x = (x + 1) / 2 if centered else x
    return (x.clamp(0, 1) * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_png(image, path):
    """Atomically save one uint8 HWC image (1 channel -> grayscale)."""
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    atomic_write(path, lambda tmp: img.save(tmp, format='PNG'))


def make_grid(images, nrow=None):
    """uint8 NHWC -> one uint8 HWC grid with 2-pixel borders."""
    n, h, w, c = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.zeros((rows * (h + 2) + 2, nrow * (w + 2) + 2, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, nrow)
        grid[2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + col * (w + 2): 2 + col * (w + 2) + w] = img
    return grid


def _check_settings(workdir, settings):
    path = os.path.join(workdir, 'settings.json')
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        keys = ('config', 'checkpoint', 'seed', 'batch_size', 'use_ema')
        changed = [k for k in keys if old.get(k) != settings.get(k)]
        if changed:
            raise SamplingError(f'{workdir!r} already holds samples made with other settings ({", ".join(changed)} '
                                f'differ); use a new --workdir or the same settings to resume')
        settings = dict(old, num_samples=max(old['num_samples'], settings['num_samples']))
    atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True))


def _batch_done(workdir, b, count):
    """Batch b is done when its npz (written last) exists and holds ``count`` images."""
    path = os.path.join(workdir, 'batches', f'batch_{b:06d}.npz')
    return os.path.exists(path) and len(np.load(path)['indices']) >= count


def run_sample(config, score, workdir, num_samples, batch_size, seed, device='cpu', checkpoint='', use_ema=True,
               rank=0, world_size=1, progress=True, noise_device='cpu', barrier=None):
    """Sample ``num_samples`` images with ``score`` (a ScoreModel or any score(x, sigma)) into ``workdir``.

    Resumable: finished batches are skipped, unfinished ones redone from their seed.  Under torchrun give
    ``barrier`` (utils.distributed.barrier).  Returns the list of batch indices this process sampled."""
    shape = (batch_size, config.data.num_channels, config.data.image_size, config.data.image_size)
    its, nfe_per_sample = sampling.iterations(config)
    os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
    os.makedirs(os.path.join(workdir, 'batches'), exist_ok=True)
    settings = dict(config=config.to_dict(), checkpoint=checkpoint, seed=seed, batch_size=batch_size,
                    num_samples=num_samples, use_ema=use_ema, iterations=its, nfe=nfe_per_sample,
                    torch=torch.__version__, device=str(device), noise_device=noise_device)
    settings = json.loads(json.dumps(settings, default=list))  # tuples -> lists, as read back
    if rank == 0:
        _check_settings(workdir, settings)
    if barrier is not None:          # other ranks write only once rank 0 has accepted the folder
        barrier()
    P = preconditioning.from_config(config.pds, shape[1:], device=device)
    n_batches = math.ceil(num_samples / batch_size)

    def count(b):                    # images in batch b (the last one may be partial)
        return min(batch_size, num_samples - b * batch_size)
    todo = [b for b in range(rank, n_batches, world_size) if not _batch_done(workdir, b, count(b))]
    bar = tqdm(total=len(todo) * nfe_per_sample if nfe_per_sample else None,   # adaptive solvers: None
               disable=not progress, unit='nfe', desc='sampling')
    done = []
    for b in todo:
        def check(i, sigma, x):
            if not torch.isfinite(x).all():
                raise SamplingError(f'non-finite values in batch {b} at step {i} (noise level sigma = {sigma:.6g}); '
                                    'lower the step size / snr or check the checkpoint and config')
            bar.update(1)
        start = time.time()
        x, nfe = sampling.sample(config, score, shape, batch_generator(seed, b, noise_device), device, P, check)
        images = to_uint8(x, config.data.centered)
        first, keep = b * batch_size, count(b)
        for k in range(keep):
            save_png(images[k], os.path.join(workdir, 'samples', f'{first + k}.png'))
        atomic_write(os.path.join(workdir, 'batches', f'batch_{b:06d}.npz'),
                     lambda tmp: np.savez(tmp, images=images[:keep], samples=x[:keep].cpu().numpy(),
                                          indices=np.arange(first, first + keep), nfe=nfe,
                                          seconds=time.time() - start))
        bar.set_postfix(batch=b, nfe=nfe)
        done.append(b)
    bar.close()
    if rank == 0 and _batch_done(workdir, 0, 1):
        grid = np.load(os.path.join(workdir, 'batches', 'batch_000000.npz'))['images'][:64]
        save_png(make_grid(grid), os.path.join(workdir, 'grid.png'))
    return done
