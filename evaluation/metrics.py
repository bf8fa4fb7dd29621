"""Features of image files and datasets through clean-fid's pipeline, and FID / KID from them.

Image files (our ``samples/<index>.png``, or any folder / zip of images) go through clean-fid itself
(``cleanfid.fid.get_files_features``: PIL ``convert('RGB')`` -- so grayscale is repeated to 3 channels --, the
mode's resizer, the feature model).  Dataset images (``data.readers.open_dataset``) are quantised to uint8 exactly
as samples are (``utils.images.to_uint8``), repeated to 3 channels when grayscale, and then take the same steps
as clean-fid's ``ResizeDataset`` (the mode's resizer, ``ToTensor``, the feature model).  FID is clean-fid's
``frechet_distance`` of (mean, covariance) as clean-fid computes them; KID is clean-fid's ``kernel_distance`` with
numpy's global generator seeded for the call.
"""
import glob
import io
import os
import re
import warnings
import zipfile

import numpy as np
import torch

from evaluation.features import EvalError, _need_cleanfid
from data.loader import Failed, first_failure, guarded, raise_failed


def _natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def list_images(path):
    """``(files, fdir)`` for clean-fid: the image files of a folder (recursive) or a .zip, in natural order
    (``2.png`` before ``10.png``), with clean-fid's extensions; hidden files are skipped."""
    _need_cleanfid()
    from cleanfid.utils import EXTENSIONS
    exts = {e.lower() for e in EXTENSIONS}
    ok = lambda n: os.path.splitext(n)[1].lower()[1:] in exts and not any(  # noqa: E731
        part.startswith('.') for part in n.replace(os.sep, '/').split('/'))
    if os.path.isfile(path) and path.lower().endswith('.zip'):
        with zipfile.ZipFile(path) as zf:
            files = sorted({n for n in zf.namelist() if ok(n)}, key=_natural_key)
        fdir = path
    elif os.path.isdir(path):
        files = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = [d for d in dirnames if not d.startswith('.')]
            files += [os.path.join(dirpath, f) for f in filenames if ok(f)]
        files.sort(key=lambda f: _natural_key(os.path.relpath(f, path)))
        fdir = None
    else:
        raise EvalError(f'sample folder {path!r} does not exist (expected a folder or .zip of images)')
    if not files:
        raise EvalError(f'no image files in {path!r} (extensions {sorted(exts)})')
    return files, fdir


def _open_image(name, fdir=None, full=False):
    """Open one image file (a path, or a member of the zip ``fdir``) with PIL: the header only, or fully decoded
    with ``full``.  Returns its (width, height); raises what PIL raises for a damaged file."""
    from PIL import Image
    if fdir is not None:
        with zipfile.ZipFile(fdir) as zf:
            data = io.BytesIO(zf.read(name))
        img = Image.open(data)
    else:
        img = Image.open(name)
    with img:
        if full:
            img.load()
        return img.size


def _display(name, fdir):
    return f'{fdir}:{name}' if fdir is not None else name


def check_image_files(files, fdir=None, skip_bad=False, full=False):
    """The readable files of ``files`` (one size), in order, and the names of the unreadable ones.

    Every file's header is read (``full``: every file decoded).  An unreadable file is an EvalError naming it, or
    with ``skip_bad`` a warning and the file left out; images of different sizes (the samples of different runs)
    are an EvalError naming one file of each size."""
    good, bad, sizes = [], [], {}
    for name in files:
        try:
            size = _open_image(name, fdir, full)
        except Exception as e:  # noqa: BLE001 -- PIL raises UnidentifiedImageError, OSError, SyntaxError, ...
            why = f'{type(e).__name__}: {e}'
            if not skip_bad:
                raise EvalError(f"cannot read image '{_display(name, fdir)}' ({why}); expected a readable image "
                                '(pass --skip_bad to leave unreadable images out)') from None
            bad.append(_display(name, fdir))
            warnings.warn(f"skipping unreadable image '{_display(name, fdir)}' ({why})", stacklevel=2)
            continue
        sizes.setdefault(size, name)
        good.append(name)
    if len(sizes) > 1:
        listed = ', '.join(f"'{_display(n, fdir)}' is {w}x{h}" for (w, h), n in sorted(sizes.items()))
        raise EvalError(f'the images to score have {len(sizes)} different sizes ({listed}); expected images of one '
                        'size (the samples of one run)')
    if not good:
        raise EvalError(f'none of the {len(files)} images could be read')
    return good, bad


def files_features(files, model, mode='clean', batch_size=64, num_workers=0, device='cpu', fdir=None,
                   progress=True, description='features'):
    """clean-fid's ``get_files_features`` (the same dataset, loader and feature call): (N, D) float32 features of the
    image files; progress is a bar on a terminal, else one line per batch (``utils/progress.py``)."""
    _need_cleanfid()
    from cleanfid.fid import get_batch_features
    from cleanfid.utils import ResizeDataset
    from utils.progress import iterate
    dataset = ResizeDataset(list(files), fdir=fdir, mode=mode)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False,
                                         num_workers=num_workers)
    feats = [get_batch_features(batch, model, torch.device(device))
             for batch in iterate(loader, description, enabled=progress)]
    return np.concatenate(feats)


def _dataset_images_class():
    _need_cleanfid()
    from cleanfid.utils import ResizeDataset

    class DatasetImages(ResizeDataset):
        """clean-fid's ResizeDataset, reading images from a ``data.readers`` dataset instead of files."""

        def __init__(self, dataset, indices, mode):
            super().__init__(list(indices), mode=mode)
            self.dataset = dataset

        def __getitem__(self, i):
            from data.readers import BadItem
            from utils.images import to_uint8
            x = guarded(self.dataset.__getitem__, self.files[i])
            if isinstance(x, (BadItem, Failed)):     # skipped (skip_bad) / a DataError: the collate handles them
                return x
            img_np = to_uint8(x[None].float(), centered=False)[0]          # (H, W, C) uint8
            if img_np.shape[2] == 1:
                img_np = np.repeat(img_np, 3, axis=2)
            img_np = self.custom_image_tranform(img_np)
            img_resized = self.fn_resize(img_np)                            # as ResizeDataset.__getitem__
            if img_resized.dtype == 'uint8':
                return self.transforms(np.array(img_resized)) * 255
            return self.transforms(img_resized)
    return DatasetImages


def dataset_features(dataset, model, mode='clean', indices=None, batch_size=64, num_workers=0, device='cpu',
                     progress=True, description='reference features', empty_ok=False):
    """(N, D) float32 features of ``dataset[i]`` for ``i`` in ``indices`` (default: all), dataset items being
    float tensors (C, H, W) in [0, 1] (``open_dataset(..., centered=False)``).  No readable image at all (every one
    skipped as unreadable): EvalError, or with ``empty_ok`` an empty (0, 0) array."""
    from cleanfid.fid import get_batch_features
    from utils.progress import iterate
    indices = range(len(dataset)) if indices is None else indices
    images = _dataset_images_class()(dataset, indices, mode)
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False, drop_last=False,
                                         num_workers=num_workers, collate_fn=_collate_readable)
    feats = []
    for batch in iterate(loader, description, enabled=progress):
        batch = raise_failed(batch)              # the reader's one-line DataError, not a worker traceback
        if batch is not None:
            feats.append(get_batch_features(batch, model, torch.device(device)))
    if not feats:
        if empty_ok:
            return np.zeros((0, 0), np.float32)
        raise EvalError('no readable image in the reference dataset')
    return np.concatenate(feats)


def load_features(path, digest):
    """The ``feats`` saved at ``path`` under ``digest`` (:func:`save_features`), or None when the file is missing,
    damaged or was made with other settings (another digest): such features are recomputed, never trusted."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path) as z:
            if str(z['digest']) != digest:
                return None
            return z['feats']
    except Exception:  # noqa: BLE001 -- a damaged file is recomputed, never trusted
        return None


def save_features(path, feats, digest):
    """Write ``feats`` (float32) with ``digest`` to ``path`` atomically, making its folder."""
    from utils.atomic import atomic_write
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    atomic_write(path, lambda tmp: np.savez(tmp, feats=np.asarray(feats, np.float32), digest=digest))


def part_path(whole, k='*'):
    """Part ``k`` of the feature set to be saved at ``whole`` (``<stem>.npz``): ``<stem>.part<k:04d>.npz`` beside it
    (``'*'``: the glob pattern of every part, with the stem escaped)."""
    stem = whole[:-len('.npz')] if whole.endswith('.npz') else whole
    return f'{stem}.part{k:04d}.npz' if k != '*' else glob.escape(stem) + '.part*.npz'


def remove_parts(whole):
    """Remove every part of the set saved at ``whole``, also those of an earlier run in more, smaller parts."""
    for path in glob.glob(part_path(whole)):
        os.remove(path)


def features_in_parts(count, part_size, compute, whole, digest):
    """The features of items ``0 .. count - 1`` as a list of parts of ``part_size`` items: ``compute(first, last)``
    gives part ``[first, last)``, which is saved at ``part_path(whole, k)`` under ``digest`` and reused by a later
    call (a run that was killed resumes at the part it was in).  The caller saves the whole set at ``whole`` and then
    calls :func:`remove_parts`.  Parts that start on feature-batch boundaries make the same batches, and features, as
    a single pass."""
    parts = []
    for k, first in enumerate(range(0, count, part_size)):
        feats = load_features(part_path(whole, k), digest)
        if feats is None:
            feats = compute(first, min(first + part_size, count))
            save_features(part_path(whole, k), feats, digest)
        parts.append(feats)
    return parts


def _collate_readable(items):
    """Stack the images of a batch, dropping skipped ones (``BadItem``); a ``Failed`` item is passed on whole."""
    failed = first_failure(items)
    if failed is not None:
        return failed
    xs = [x for x in items if isinstance(x, torch.Tensor)]
    return torch.stack(xs) if xs else None


def statistics(feats):
    """(mu, sigma) as clean-fid computes them: ``np.mean(axis=0)``, ``np.cov(rowvar=False)``."""
    if len(feats) < 2:
        raise EvalError(f'FID needs at least 2 images, got {len(feats)}')
    return np.mean(feats, axis=0), np.cov(feats, rowvar=False)


def fid_from_stats(mu1, sigma1, mu2, sigma2):
    """clean-fid's ``frechet_distance``; the two sets must have the same feature dimension."""
    from cleanfid.fid import frechet_distance
    if np.shape(mu1) != np.shape(mu2):
        raise EvalError(f'the reference statistics have {np.shape(mu2)[0]} features but the feature extractor gives '
                        f'{np.shape(mu1)[0]}: they were made with another extractor')
    return float(frechet_distance(mu1, sigma1, mu2, sigma2))


def kid_from_feats(feats, ref_feats, seed=0):
    """clean-fid's ``kernel_distance(ref_feats, feats)`` (100 subsets of min(N, N_ref, 1000)), with numpy's global
    generator seeded with ``seed`` for the call and restored afterwards."""
    from cleanfid.fid import kernel_distance
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return float(kernel_distance(ref_feats, feats))
    finally:
        np.random.set_state(state)


def kid_subsets(feats, ref_feats, seed=0, num_subsets=100, max_subset_size=1000):
    """KID as :func:`kid_from_feats` (clean-fid's ``kernel_distance(ref_feats, feats)``: the unbiased MMD^2 of the
    cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over ``num_subsets`` subsets of m = min(N, N_ref,
    ``max_subset_size``) drawn without replacement, the same draws from ``seed``), and the standard deviation of the
    per-subset values (ddof 1; torch-fidelity's ``kid_std``).  Returns (mean, std)."""
    x_all = np.asarray(ref_feats, dtype=np.float64)
    y_all = np.asarray(feats, dtype=np.float64)
    d = x_all.shape[1]
    m = min(len(x_all), len(y_all), max_subset_size)
    if m < 2:
        raise EvalError(f'KID needs at least 2 images on each side, got {len(y_all)} and {len(x_all)}')
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        y = y_all[rng.choice(len(y_all), m, replace=False)]       # clean-fid draws the samples' subset first
        x = x_all[rng.choice(len(x_all), m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        values[i] = ((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m
    return float(values.mean()), float(values.std(ddof=1)) if num_subsets > 1 else 0.
