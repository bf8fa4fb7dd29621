"""Image readers for dataset statistics (and, later, training): no TensorFlow, no LMDB.

``open_dataset(path, config)`` picks a reader from what ``path`` is and returns a map-style torch Dataset of
float32 tensors ``(C, S, S)`` with ``C = config.data.num_channels`` and ``S = config.data.image_size``, in
[0, 1] (or [-1, 1] when ``config.data.centered``).  Supported sources:

* **MNIST / Fashion-MNIST IDX files**, gzipped or raw: a torchvision root (``<root>/MNIST/raw/`` or
  ``<root>/FashionMNIST/raw/``), a plain folder holding ``{train,t10k}-images-idx3-ubyte[.gz]``, or the path of
  one images file.  ``split`` ('train' | 't10k'/'test') picks the file in a folder.  Raw files are memory-mapped;
  ``.gz`` files are decompressed into memory once (N*H*W bytes: 47 MB for the MNIST training set).
* **A folder of images** (.png .jpg .jpeg .webp .bmp, searched recursively, any case), in sorted order of the
  relative '/'-separated path.  Files with other extensions are ignored, as are hidden paths (a component starting
  with '.') and ``__MACOSX``.  Each image is decoded when it is read (bounded memory).
* **A .zip of images**, same rules, members sorted by name; each worker process opens its own handle.
* **Dead leaves** (``data/deadleaves.py``): the path ``'deadleaves'`` (or ``'deadleaves:<count>'``) generates the
  set ``config.data.deadleaves`` describes, in memory; ``split`` picks the seed (train 0, test 1).
* **A .npy / .npz array** ``(N,H,W,C)``, ``(N,C,H,W)`` or ``(N,H,W)``, uint8 in [0,255] or float in [0,1].  ``.npy``
  is memory-mapped; an ``.npz`` member is loaded into memory (key: the only array, else the first of
  ``images, x, samples, data, arr_0``).

Preprocessing (the same for every source; ``describe()`` of the dataset spells it out):

1. channels: an image with ``num_channels`` channels is kept; RGB -> L (PIL's ITU-R 601-2 luma) when the config
   asks for 1 channel; anything else (e.g. a grayscale image for a 3-channel config) is a ``DataError``.  RGBA/P
   images are converted to RGB (alpha dropped), LA to L.
2. geometry by ``config.data.crop``: ``'celeba'`` = CenterCrop(140) then Resize(S) (ermongroup/ncsn, ncsnv2);
   ``'lsun'`` = Resize(S) of the shorter side then CenterCrop(S) (ncsnv2 LSUN, score_sde); ``'none'`` = a square
   image, resized to S x S when it is larger (e.g. FFHQ 1024 -> 256).  Resizing is torchvision's
   ``functional.resize`` with bicubic interpolation on the PIL image (PIL is always antialiased); float arrays use the
   tensor path (bicubic, antialias=True, clamped to [0,1]).  Upsampling is refused: an image smaller than the target
   is a ``DataError`` naming the file and both sizes.
3. values: uint8 / 255 (float arrays as stored), then optional training augmentation (``augment=True``:
   ``config.data.uniform_dequantization`` then ``config.data.random_flip``), then ``x * 2 - 1`` when centred.

Unreadable files raise ``DataError`` naming the file, or with ``skip_bad=True`` warn (``DataWarning``) and yield a
``BadItem`` marker that ``collate_images`` / ``make_loader`` and ``data.stats.compute_stats`` drop.

This module is the front (``open_dataset``, ``ImageDataset``, ``make_loader``); the sources are one module per kind
(``data/image_files.py``: folder / zip; ``data/arrays.py``: .npy / .npz and dead leaves; ``data/idx.py``: IDX), the
preprocessing is ``data/transforms.py``, and the errors are ``data/common.py``.
"""
from __future__ import annotations

import os
import warnings
from typing import Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader, Dataset

from data.arrays import ArraySource, DeadLeavesSource
from data.common import BadItem, DataError, DataWarning, Unreadable, check_split
from data.idx import IdxSource, find_idx, idx_folder, looks_like_idx, read_idx
from data.image_files import IMAGE_EXTENSIONS, FolderSource, ZipSource
from data.transforms import CELEBA_CROP, CROPS, describe_transform, preprocess

__all__ = [
    'DataError', 'DataWarning', 'BadItem', 'ImageDataset', 'open_dataset', 'make_loader', 'collate_images',
    'IMAGE_EXTENSIONS', 'CELEBA_CROP', 'read_idx', 'find_idx',
]


def _open_source(path: str, split: Optional[str], dataset_name: str):
    check_split(split)
    if os.path.isdir(path):
        if idx_folder(path, dataset_name) is not None:
            return IdxSource(find_idx(path, split, 'images', dataset_name), split)
        src = FolderSource(path)
    elif os.path.isfile(path):
        low = path.lower()
        if low.endswith('.zip'):
            src = ZipSource(path)
        elif low.endswith(('.npz', '.npy')):
            src = ArraySource(path)
        elif looks_like_idx(path):
            src = IdxSource(path, None)         # a direct file: the file is the split
        else:
            raise DataError(f"unsupported data file '{path}'; expected a folder of images, a .zip of images, "
                            'a .npz/.npy array, or an MNIST-style IDX images file')
    else:
        raise DataError(f"data path '{path}' does not exist; expected a folder of images, a .zip of images, a "
                        '.npz/.npy array, or MNIST-style IDX files (a folder or one images file)')
    if split != 'train':
        raise DataError(f"split {split!r} applies to MNIST-style IDX data only; for '{path}' point the path at the "
                        'images of the split you want')
    return src


class ImageDataset(Dataset):
    """Map-style dataset of preprocessed images: ``ds[i]`` is a float32 tensor (C, S, S), or a ``BadItem`` when
    image i cannot be read and ``skip_bad`` is set.  Build it with ``open_dataset``."""

    def __init__(self, source, num_channels: int, image_size: int, crop: str, centered: bool,
                 skip_bad: bool = False, augment: bool = False, random_flip: bool = False,
                 uniform_dequantization: bool = False, path: str = '', split: Optional[str] = None):
        self.source = source
        self.num_channels, self.image_size, self.crop = num_channels, image_size, crop
        self.centered, self.skip_bad, self.augment = centered, skip_bad, augment
        self.random_flip, self.uniform_dequantization = random_flip, uniform_dequantization
        self.path, self.split = path, split

    def __len__(self):
        return len(self.source)

    def name(self, i: int) -> str:
        """The item's name relative to the dataset path (file path, zip member, or ``file[i]``)."""
        return self.source.name(i)

    def __getitem__(self, i: int):
        i = int(i)
        try:
            item = self.source.load(i)
        except Unreadable as e:
            msg = (f"cannot read image '{self.source.full_name(i)}' ({e}); expected a readable "
                   f"{'/'.join(x[1:] for x in IMAGE_EXTENSIONS)} image")
            if not self.skip_bad:
                raise DataError(msg + '; pass skip_bad=True to skip unreadable files') from None
            warnings.warn('skipping: ' + msg, DataWarning, stacklevel=2)
            return BadItem(self.source.name(i), str(e))
        x = preprocess(item, self.num_channels, self.image_size, self.crop, self.source.full_name(i))
        if self.augment:
            if self.uniform_dequantization:
                x = (x * 255. + torch.rand_like(x)) / 256.
            if self.random_flip and torch.rand(()) < 0.5:
                x = x.flip(-1)
        if self.centered:
            x = x * 2. - 1.
        return x

    def describe(self) -> str:
        """One line: source and preprocessing (recorded in the stats JSON)."""
        t = describe_transform(self.num_channels, self.image_size, self.crop,
                                getattr(self.source, 'is_float', False))
        vals = '[-1,1] (x*2-1)' if self.centered else '[0,1] (uncentred)'
        aug = ''
        if self.augment:
            aug = (f'; augment: uniform_dequantization={self.uniform_dequantization}, '
                   f'random_flip={self.random_flip}')
        return f'{self.source.describe()}; {t}{aug}; output {vals}'

    @property
    def source_kind(self) -> str:
        return self.source.kind


def open_dataset(path: str, config, split: str = 'train', skip_bad: bool = False, centered: Optional[bool] = None,
                 augment: bool = False) -> ImageDataset:
    """Open ``path`` as a dataset of float32 tensors ``(config.data.num_channels, S, S)``, S = image_size.

    Args:
      path: a folder of images (recursive), a .zip of images, a .npy/.npz array, an MNIST-style IDX folder
        (plain, or a torchvision root with ``MNIST/raw`` / ``FashionMNIST/raw``) or one IDX images file.
        ``~`` and ``$VARS`` are expanded (so ``'$PDS_DATA/mnist'`` works as written in a stats JSON).
      config: an ml_collections config; reads ``config.data.{dataset, image_size, num_channels, centered, crop,
        random_flip, uniform_dequantization}``.
      split: 'train' (default) or 'test' (= 't10k'); picks the IDX file in a folder.  Other sources hold one split:
        anything but 'train' is an error there.
      skip_bad: unreadable image files give a ``DataWarning`` and a ``BadItem`` instead of a ``DataError``.
        Images too small for the target or with the wrong channel count are errors either way.
      centered: override ``config.data.centered`` (statistics use ``centered=False``).
      augment: apply ``config.data.uniform_dequantization`` and ``random_flip`` (training only; uses torch's
        global RNG, which DataLoader seeds per worker).

    Returns:
      an ``ImageDataset``; ``describe()`` gives its preprocessing in words.  The first item is read once here so
      that a wrong path/format/config fails early.

    Raises:
      DataError: a missing path, an empty folder, an unreadable file, an image smaller than the target, a
        channel-count mismatch, a bad config value.
    """
    d = config.data
    num_channels, image_size = int(d.num_channels), int(d.image_size)
    crop = str(d.get('crop', 'none') if hasattr(d, 'get') else getattr(d, 'crop', 'none'))
    if crop not in CROPS:
        raise DataError(f'config.data.crop is {crop!r}; expected one of {CROPS}')
    if num_channels not in (1, 3):
        raise DataError(f'config.data.num_channels is {num_channels}; expected 1 or 3')
    if image_size <= 0:
        raise DataError(f'config.data.image_size is {image_size}; expected a positive size')
    if crop == 'celeba' and image_size > CELEBA_CROP:
        raise DataError(f"crop 'celeba' takes CenterCrop({CELEBA_CROP}) then Resize(image_size); image_size "
                        f'{image_size} > {CELEBA_CROP} would upsample')
    expanded = os.path.expandvars(os.path.expanduser(str(path)))
    if '$' in expanded and not os.path.exists(expanded):
        raise DataError(f"data path '{path}' has an unset environment variable (expanded: '{expanded}')")
    if expanded.lower().split(':')[0] in ('deadleaves', 'dead_leaves') and not os.path.exists(expanded):
        check_split(split)
        source = DeadLeavesSource(expanded, config, split)
    else:
        source = _open_source(expanded, split, str(getattr(d, 'dataset', '')))
    ds = ImageDataset(source, num_channels, image_size, crop,
                      centered=bool(d.centered) if centered is None else bool(centered),
                      skip_bad=skip_bad, augment=augment,
                      random_flip=bool(getattr(d, 'random_flip', False)),
                      uniform_dequantization=bool(getattr(d, 'uniform_dequantization', False)),
                      path=str(path),
                      split=getattr(source, 'split', None) if source.kind in ('idx', 'deadleaves') else None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DataWarning)    # the real pass warns
        ds[0]                                           # fail early on a wrong format / config
    return ds


def collate_images(batch: Sequence[Union[torch.Tensor, BadItem]]) -> Optional[torch.Tensor]:
    """Stack the tensors of a batch, dropping ``BadItem`` markers; None if nothing is left."""
    xs = [b for b in batch if isinstance(b, torch.Tensor)]
    return torch.stack(xs) if xs else None


def make_loader(dataset, batch_size: int, shuffle: bool = False, num_workers: int = 0, seed: Optional[int] = None,
                drop_last: bool = False, collate_fn=collate_images) -> DataLoader:
    """A DataLoader over ``dataset`` with ``num_workers`` worker processes.

    Batches are float tensors (B, C, S, S) from ``collate_images`` (unreadable items skipped with ``skip_bad`` are
    dropped, so a batch may be smaller, or None if all were bad).  ``seed`` seeds the shuffling order and the
    per-worker RNGs (augmentation) through a ``torch.Generator``; the order of batches never depends on
    ``num_workers``.
    """
    gen = None
    if seed is not None:
        gen = torch.Generator()
        gen.manual_seed(int(seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=int(num_workers),
                      collate_fn=collate_fn, drop_last=drop_last, generator=gen,
                      persistent_workers=False)
