"""Carrying a dataset's DataError out of DataLoader worker processes as data.

torch re-raises an exception of a worker as a new exception whose message is the worker's whole traceback; the
user would see that instead of the one line the reader wrote (which names the file).  Wrapping the item access
with :func:`guarded` turns the error into a :class:`Failed` value, the collate function passes it on
(:func:`first_failure`), and the main process raises the reader's own message (:func:`raise_failed`).
"""
from typing import NamedTuple

from data.common import DataError


class Failed(NamedTuple):
    """The message of a DataError raised while reading one item (in whichever process read it)."""
    message: str


def guarded(read, i):
    """``read(i)``, or a :class:`Failed` holding the message of the DataError it raised."""
    try:
        return read(i)
    except DataError as e:
        return Failed(str(e))


def first_failure(items):
    """The first :class:`Failed` among ``items``, or None."""
    return next((it for it in items if isinstance(it, Failed)), None)


def raise_failed(batch):
    """Raise the reader's DataError in this process if ``batch`` is a :class:`Failed`; else return ``batch``."""
    if isinstance(batch, Failed):
        raise DataError(batch.message)
    return batch
