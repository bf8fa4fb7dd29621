"""Per-dataset statistics for the PDS statistics filters (supp. Eq. 21-22), as fudan-zvg/PDS ``mask_gen_demo.py``.

* frequency statistic (Eq. 22 input): ``freq[c,u,v] = log(1 + mean_i |DFT2(x_i)[c,u,v]|^2)``, the mean power
  spectrum, with ``DFT2 = torch.fft.fft2`` over (H, W) (= the official ``fft(fft(x, dim=2), dim=3)``): full complex,
  unnormalised forward, **unshifted** (DC at [0, 0]), per channel.
* space statistic (Eq. 21 input): ``space[c,h,w] = mean_i x_i[c,h,w]^2`` (second moment, no log).

Both are taken on **[0, 1] images** (uncentred), whatever ``config.data.centered`` says, because that is what the
official demo does (``ToTensor()`` only) and the filters are max-normalised downstream.  Sums are float64, the
saved arrays float32 of shape (C, H, W).  ``preconditioning/`` turns them into filters; this module only measures.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from .readers import BadItem, DataError, open_dataset
from utils.atomic import atomic_write_bytes

__all__ = ['compute_stats', 'run_stats', 'plot_stats', 'subset_indices', 'stats_paths', 'data_name', 'check_outputs',
           'STATS_FORMAT']

STATS_FORMAT = (
    'PDS dataset statistics v1 (fudan-zvg/PDS mask_gen_demo.py convention). <name>_freq.npy: '
    'log(1 + mean_i |fft2(x_i)|^2) per (c,u,v), torch.fft.fft2 over (H,W), full complex, unnormalised forward, '
    'unshifted (DC at [0,0]). <name>_space.npy: mean_i x_i^2 per (c,h,w), no log. x_i in [0,1] (uncentred, '
    'whatever config.data.centered says). float64 sums, saved float32 (C,H,W). <name>_spectrum.npy (for '
    "pds.freq = 'auto'): float64 (2,C,H,W), [0] = mean_i |fft2(x_i)|^2 (same convention, no log), [1] = mean_i x_i.")
DEFAULT_BATCH_SIZE = 256


def subset_indices(n_total: int, num_images: Optional[int], seed: int = 0) -> List[int]:
    """Indices read by ``compute_stats``: all of ``range(n_total)`` when ``num_images`` is None (or equals
    ``n_total``), else the first ``num_images`` of ``torch.randperm(n_total)`` under ``torch.Generator`` seeded
    with ``seed``, sorted ascending (deterministic, sequential reads)."""
    if num_images is None:
        return list(range(n_total))
    num_images = int(num_images)
    if num_images <= 0:
        raise ValueError(f'num_images must be positive (or None for all), got {num_images}')
    if num_images > n_total:
        raise DataError(f'num_images is {num_images} but the dataset holds only {n_total} images')
    g = torch.Generator()
    g.manual_seed(int(seed))
    return sorted(torch.randperm(n_total, generator=g)[:num_images].tolist())


def _collate_with_bad(batch):
    xs = [b for b in batch if isinstance(b, torch.Tensor)]
    bad = [b for b in batch if isinstance(b, BadItem)]
    return (torch.stack(xs) if xs else None), bad


def compute_stats(dataset, num_images: Optional[int] = None, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE,
                  num_workers: int = 0, progress: bool = True) -> Dict[str, object]:
    """One pass over ``dataset`` (map-style, items are (C,H,W) tensors in [0,1]) computing the PDS statistics.

    Args:
      dataset: e.g. ``open_dataset(path, config, centered=False)``; items may be ``BadItem`` (skipped, counted).
      num_images: None = every image; else a seeded random subset of that size (``subset_indices``), read in
        ascending index order.
      seed: seeds the subset choice only.
      batch_size, num_workers: DataLoader settings; the result does not depend on ``num_workers``.
      progress: a tqdm bar (stderr) on a terminal, else one line per batch (``utils/progress.py``).

    Returns:
      dict with ``freq`` = log(1 + mean |fft2(x)|^2) and ``space`` = mean x^2, float32 numpy arrays (C,H,W)
      (frequency entries unshifted, DC at [0,0]), ``power`` = mean |fft2(x)|^2 and ``mean`` = mean x, float64
      (C,H,W) (for ``pds.freq = 'auto'``), ``count`` (images used), ``skipped`` (names of BadItems),
      ``indices_count`` (images asked for).

    Raises:
      ValueError: an item outside [0,1] (e.g. a centred dataset), or inconsistent shapes.
      DataError: no readable image, or ``num_images`` larger than the dataset.
    """
    indices = subset_indices(len(dataset), num_images, seed)
    src = dataset if num_images is None else Subset(dataset, indices)
    loader = DataLoader(src, batch_size=int(batch_size), shuffle=False, num_workers=int(num_workers),
                        collate_fn=_collate_with_bad)
    power = sq = None
    count, skipped = 0, []
    bar = None
    if progress:             # a bar on a terminal, else one line per batch (utils/progress.py)
        from utils.progress import interactive, iterate
        if interactive():
            from tqdm import tqdm
            bar = tqdm(total=len(indices), desc='stats', unit='img', dynamic_ncols=True)
        else:
            loader = iterate(loader, 'stats', total=-(-len(indices) // int(batch_size)))
    for x, bad in loader:
        skipped.extend(b.name for b in bad)
        if bar is not None:
            bar.update((0 if x is None else x.shape[0]) + len(bad))
        if x is None:
            continue
        if x.ndim != 4:
            raise ValueError(f'expected (C,H,W) images, got a batch of shape {tuple(x.shape)}')
        lo, hi = (float(v) for v in torch.aminmax(x))
        if lo < 0. or hi > 1.:
            raise ValueError(f'images must be in [0,1] (uncentred) for the PDS statistics, got values in '
                             f'[{lo:.4g}, {hi:.4g}]; open the dataset with centered=False')
        x = x.to(torch.float64)
        spec = torch.fft.fft2(x)                          # over the last two dims, unshifted, unnormalised
        p = (spec.real.square() + spec.imag.square()).sum(0)
        s = x.square().sum(0)
        if power is None:
            power, sq, total = p, s, x.sum(0)
        elif p.shape != power.shape:
            raise ValueError(f'image shape changed from {tuple(power.shape)} to {tuple(p.shape)}')
        else:
            power += p
            sq += s
            total += x.sum(0)
        count += x.shape[0]
    if bar is not None:
        bar.close()
    if count == 0:
        raise DataError(f'no readable images among the {len(indices)} asked for ({len(skipped)} skipped)')
    freq = torch.log1p(power / count).to(torch.float32).numpy()     # log(1 + mean |F|^2), Eq. 22 input
    space = (sq / count).to(torch.float32).numpy()                   # mean x^2, Eq. 21 input
    # Automatic PDS (preconditioning/auto.py) needs the spectrum itself, not its log: the raw mean power and the
    # mean image (float64), from which the per-frequency variance follows.
    return {'freq': freq, 'space': space, 'power': (power / count).numpy(), 'mean': (total / count).numpy(),
            'count': count, 'skipped': skipped, 'indices_count': len(indices)}


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def stats_paths(out_dir: str, name: str) -> Dict[str, str]:
    """``{'freq', 'space', 'spectrum', 'json', 'png'}`` file paths for statistics ``name`` in ``out_dir``."""
    return {k: os.path.join(out_dir, f'{name}_{suffix}') for k, suffix in
            (('freq', 'freq.npy'), ('space', 'space.npy'), ('spectrum', 'spectrum.npy'), ('json', 'stats.json'),
             ('png', 'stats.png'))}


def data_name(data_path: str, ds) -> str:
    """The file-name prefix of statistics of the data actually read (not of the config, which may name another
    dataset): an IDX folder's name (``fashion-mnist`` -> ``fashion_mnist``, a torchvision root's ``FashionMNIST`` ->
    ``fashionmnist``), a folder / zip / array's base name, ``deadleaves<size>`` for generated dead leaves; lower case,
    other characters than letters and digits as '_' (the shipped ``assets/stats/fashion_mnist_*``)."""
    source = getattr(ds, 'source', None)
    kind = getattr(source, 'kind', '')
    if kind == 'deadleaves':
        base = f'deadleaves{ds.image_size}'
    elif kind == 'idx':
        folder = os.path.dirname(os.path.abspath(source.path))
        if os.path.basename(folder) == 'raw':                # <root>/<MNIST|FashionMNIST>/raw/<file>
            folder = os.path.dirname(folder)
        base = os.path.basename(folder)
    else:
        base = os.path.basename(os.path.normpath(os.path.expandvars(os.path.expanduser(str(data_path)))))
        for ext in ('.gz', '.zip', '.npz', '.npy'):
            if base.lower().endswith(ext):
                base = base[:-len(ext)]
    return ''.join(c if c.isalnum() else '_' for c in base.lower()) or 'dataset'


def check_outputs(out_dir: str, name: str, overwrite: bool = False, plot: bool = False) -> Dict[str, str]:
    """The output paths of statistics ``name`` in ``out_dir``, once it is sure they can be written: a DataError names
    an existing file (unless ``overwrite``) or a folder that cannot be written.  Called before the pass over the data,
    so that hours of reading are never lost to an existing file."""
    paths = stats_paths(out_dir, name)
    wanted = ['freq', 'space', 'spectrum', 'json'] + (['png'] if plot else [])
    existing = [paths[k] for k in wanted if os.path.exists(paths[k])]
    if existing and not overwrite:
        more = f' (and {len(existing) - 1} more of its files)' if len(existing) > 1 else ''
        raise DataError(f'{existing[0]!r} exists{more}: statistics files are never replaced by default (sampling runs '
                        'read them); pass --overwrite to replace them, or choose another --name or --workdir')
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DataError(f'{out_dir!r} is a file; expected a folder for the statistics')
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise DataError(f'cannot write in {out_dir!r} ({e.strerror or e}); expected a writable folder') from None
    return paths


def run_stats(config, data_path: str, out_dir: str, name: Optional[str] = None, num_images: Optional[int] = None,
              seed: int = 0, num_workers: int = 0, split: str = 'train', skip_bad: bool = False,
              batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True,
              command: Optional[str] = None, overwrite: bool = False, plot: bool = False) -> Dict[str, object]:
    """Compute and save the PDS statistics of the dataset at ``data_path`` (the ``--mode stats`` entry point).

    Opens ``data_path`` with ``open_dataset(data_path, config, split, skip_bad, centered=False)`` (the config's
    crop/size/channels; always uncentred), runs ``compute_stats`` and writes, atomically (tmp file + os.replace):
    ``<out_dir>/<name>_freq.npy``, ``<name>_space.npy`` (float32, C x H x W), ``<name>_spectrum.npy`` (float64,
    2 x C x H x W: mean power, mean image) and ``<name>_stats.json`` (sorted
    keys: the data path as given, split, count, seed, num_images, batch_size, the transform, config.data, sha256 of
    both .npy files, the format, and ``command`` if given, e.g. the main.py command line).  Nothing in the files
    depends on time or on the machine, so a rerun gives byte-identical files.

    Args:
      config: ml_collections config (only ``config.data`` is used).
      data_path: see ``open_dataset``; recorded as given (write ``'$PDS_DATA/...'`` to keep it portable).
      out_dir: created if missing.
      name: file prefix; default :func:`data_name` of the data read (``mnist`` for ``$PDS_DATA/mnist``,
        ``fashion_mnist`` for ``$PDS_DATA/fashion-mnist``, whatever the config's dataset).
      num_images, seed: None = all images; else a seeded subset (``subset_indices``).
      num_workers, batch_size, progress: reading settings (the result does not depend on num_workers).
      split, skip_bad: passed to ``open_dataset``.
      command: free text recorded as ``command`` in the JSON.
      overwrite: replace existing files of that name; without it an existing file is a DataError naming it, raised
        before the pass over the data (the shipped ``assets/stats`` files, which sampling runs read, stay as they are).
      plot: also draw ``<name>_stats.png`` (:func:`plot_stats`).

    Returns:
      dict: ``freq``/``space``/``json`` (and ``png``) paths, ``count``, ``skipped`` (names), ``record`` (the JSON dict).
    """
    ds = open_dataset(data_path, config, split=split, skip_bad=skip_bad, centered=False)
    name = name or data_name(data_path, ds)
    paths = check_outputs(out_dir, name, overwrite, plot)
    res = compute_stats(ds, num_images=num_images, seed=seed, batch_size=batch_size, num_workers=num_workers,
                        progress=progress)
    freq_bytes, space_bytes = _npy_bytes(res['freq']), _npy_bytes(res['space'])
    spectrum_bytes = _npy_bytes(np.stack([res['power'], res['mean']]))
    d = config.data
    record = {
        'format': STATS_FORMAT,
        'name': name,
        'data_path': str(data_path),
        'source': ds.source_kind,
        'split': ds.split,
        'count': res['count'],
        'skipped': res['skipped'],
        'skip_bad': bool(skip_bad),
        'num_images': None if num_images is None else int(num_images),
        'seed': int(seed),
        'batch_size': int(batch_size),
        'transform': ds.describe(),
        'shape': list(res['freq'].shape),
        'dtype': 'float32',
        'config': {'dataset': str(d.dataset), 'image_size': int(d.image_size), 'num_channels': int(d.num_channels),
                   'crop': str(d.get('crop', 'none')), 'centered': bool(d.centered)},
        'call': (f'data.stats.run_stats(config, {str(data_path)!r}, out_dir, {name!r}, num_images={num_images!r}, '
                 f'seed={int(seed)}, split={split!r}, skip_bad={bool(skip_bad)}, batch_size={int(batch_size)}) '
                 'with config.data as in "config"'),
        'sha256': {os.path.basename(paths['freq']): hashlib.sha256(freq_bytes).hexdigest(),
                  os.path.basename(paths['space']): hashlib.sha256(space_bytes).hexdigest(),
                  os.path.basename(paths['spectrum']): hashlib.sha256(spectrum_bytes).hexdigest()},
        'freq_max': float(res['freq'].max()),
        'space_max': float(res['space'].max()),
    }
    if command is not None:
        record['command'] = str(command)
    atomic_write_bytes(paths['freq'], freq_bytes)
    atomic_write_bytes(paths['space'], space_bytes)
    atomic_write_bytes(paths['spectrum'], spectrum_bytes)
    atomic_write_bytes(paths['json'], (json.dumps(record, sort_keys=True, indent=2) + '\n').encode('utf-8'))
    if plot:
        plot_stats(paths['freq'], paths['space'], paths['png'])
    return {'freq': paths['freq'], 'space': paths['space'], 'spectrum': paths['spectrum'], 'json': paths['json'],
            'png': paths['png'] if plot else None, 'count': res['count'],
            'skipped': res['skipped'], 'record': record}


def plot_stats(freq_path: Optional[str], space_path: Optional[str], out_png: str,
               title: Optional[str] = None) -> str:
    """Save a PNG showing the statistics (matplotlib, Agg backend); returns ``out_png``.

    One row per channel (C <= 4; else the mean over channels): left, the frequency statistic
    log(1 + mean|F|^2) fftshift-ed so DC is in the centre (already a log scale; colour bar in those units);
    right, the space statistic mean x^2.  Either path may be None.  Written atomically.
    """
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt

    panels: List[Tuple[str, np.ndarray]] = []
    if freq_path is not None:
        f = np.load(freq_path).astype(np.float64)
        if f.ndim == 2:
            f = f[None]
        panels.append(('frequency: log(1 + mean |DFT|^2), fftshift-ed (DC at centre)',
                       np.fft.fftshift(f, axes=(-2, -1))))
    if space_path is not None:
        s = np.load(space_path).astype(np.float64)
        if s.ndim == 2:
            s = s[None]
        panels.append(('space: mean x^2', s))
    if not panels:
        raise ValueError('plot_stats needs freq_path or space_path')
    rows = []
    for label, a in panels:
        if a.shape[0] > 4:
            rows.append([(f'{label}\nmean over {a.shape[0]} channels', a.mean(0))])
        elif a.shape[0] == 1:
            rows.append([(label, a[0])])
        else:
            rows.append([(f'{label}\nchannel {c}', a[c]) for c in range(a.shape[0])])
    ncols = len(rows)
    nrows = max(len(r) for r in rows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.4 * nrows), squeeze=False)
    for j, r in enumerate(rows):
        for i in range(nrows):
            ax = axes[i][j]
            if i >= len(r):
                ax.axis('off')
                continue
            lab, img = r[i]
            im = ax.imshow(img, cmap='magma' if j == 0 and freq_path is not None else 'viridis',
                           interpolation='nearest')
            ax.set_title(lab, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title is None:
        title = os.path.basename(freq_path or space_path).rsplit('_', 1)[0]
    fig.suptitle(f'PDS statistics: {title}')
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100, metadata={'Software': None})
    plt.close(fig)
    out_dir = os.path.dirname(os.path.abspath(out_png))
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_bytes(out_png, buf.getvalue())
    return out_png
