"""Features of image files and datasets through clean-fid's pipeline, and FID / KID from them.

Image files (our ``samples/<index>.png``, or any folder / zip of images) go through clean-fid itself
(``cleanfid.fid.get_files_features``: PIL ``convert('RGB')`` -- so grayscale is repeated to 3 channels --, the
mode's resizer, the feature model).  Dataset images (``data.readers.open_dataset``) are quantised to uint8 exactly
as samples are (``runners.sample.to_uint8``), repeated to 3 channels when grayscale, and then take the same steps
as clean-fid's ``ResizeDataset`` (the mode's resizer, ``ToTensor``, the feature model).  FID is clean-fid's
``frechet_distance`` of (mean, covariance) as clean-fid computes them; KID is clean-fid's ``kernel_distance`` with
numpy's global generator seeded for the call.
"""
import os
import re
import zipfile

import numpy as np
import torch

from evaluation.features import EvalError, _need_cleanfid


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


def files_features(files, model, mode='clean', batch_size=64, num_workers=0, device='cpu', fdir=None,
                   progress=True, description='features'):
    """clean-fid's ``get_files_features``: (N, D) float32 features of the image files."""
    _need_cleanfid()
    from cleanfid.fid import get_files_features
    return get_files_features(list(files), model, num_workers=num_workers, batch_size=batch_size,
                              device=torch.device(device), mode=mode, description=description, fdir=fdir,
                              verbose=progress)


def _dataset_images_class():
    _need_cleanfid()
    from cleanfid.utils import ResizeDataset

    class DatasetImages(ResizeDataset):
        """clean-fid's ResizeDataset, reading images from a ``data.readers`` dataset instead of files."""

        def __init__(self, dataset, indices, mode):
            super().__init__(list(indices), mode=mode)
            self.dataset = dataset

        def __getitem__(self, i):
            from runners.sample import to_uint8
            x = self.dataset[self.files[i]]
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
                     progress=True, description='reference features'):
    """(N, D) float32 features of ``dataset[i]`` for ``i`` in ``indices`` (default: all), dataset items being
    float tensors (C, H, W) in [0, 1] (``open_dataset(..., centered=False)``)."""
    from cleanfid.fid import get_batch_features
    from tqdm import tqdm
    indices = range(len(dataset)) if indices is None else indices
    images = _dataset_images_class()(dataset, indices, mode)
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False, drop_last=False,
                                         num_workers=num_workers)
    feats = [get_batch_features(batch, model, torch.device(device))
             for batch in tqdm(loader, desc=description, disable=not progress)]
    return np.concatenate(feats)


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
