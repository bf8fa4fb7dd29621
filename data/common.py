"""What every data source shares: the errors a reader raises, the marker of a skipped image, and the two splits.

A source (``data/image_files.py``: folders and zips of images; ``data/arrays.py``: .npy / .npz arrays and the
in-memory dead leaves; ``data/idx.py``: MNIST-style IDX files) has ``len()``, ``name(i)``, ``full_name(i)``,
``load(i)`` -> a PIL image or an (H, W, C) array, ``describe()`` and ``kind``, and raises :class:`Unreadable` for a
file it cannot decode; ``data/readers.py`` (``open_dataset``) picks one and applies ``data/transforms.py``.
"""
from typing import NamedTuple

SPLIT_PREFIX = {'train': 'train', 'test': 't10k', 't10k': 't10k'}     # the split -> its MNIST file prefix


class DataError(ValueError):
    """A dataset cannot be read as asked: the message says what was wrong and what was expected."""


class DataWarning(UserWarning):
    """A file was skipped (``skip_bad=True``)."""


class BadItem(NamedTuple):
    """Returned in place of an image that could not be read when ``skip_bad=True``."""
    name: str
    reason: str


class Unreadable(Exception):
    """One item of a source cannot be decoded (the dataset turns it into a DataError or, with skip_bad, a BadItem)."""


def check_split(split):
    """DataError unless ``split`` is 'train', 'test' or 't10k'."""
    if split not in SPLIT_PREFIX:
        raise DataError(f"split must be 'train' or 'test' (or 't10k'), got {split!r}")
