"""MNIST-style IDX sources: one images file (gzipped or raw; raw files are memory-mapped, ``.gz`` ones decompressed
into memory once), a folder holding ``{train,t10k}-images-idx3-ubyte[.gz]``, or a torchvision root
(``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/``); ``split`` picks the file in a folder."""
import gzip
import os
from typing import Optional, Tuple

import numpy as np

from data.arrays import IndexedArray
from data.common import SPLIT_PREFIX, DataError, check_split

IDX_IMAGES_MAGIC = 0x00000803      # unsigned byte, 3 dims
IDX_LABELS_MAGIC = 0x00000801      # unsigned byte, 1 dim
IDX_KINDS = {'images': 'images-idx3', 'labels': 'labels-idx1'}


def read_idx_header(path: str) -> Tuple[int, Tuple[int, ...], int]:
    """(magic, dims, header_bytes) of an IDX file, gzipped or raw."""
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, 'rb') as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"'{path}' is too short to be an IDX file")
            magic = int.from_bytes(head, 'big')
            ndim = magic & 0xFF
            if magic >> 8 != 0x08 or ndim not in (1, 3):
                return magic, (), 0
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataError(f"'{path}' has a truncated IDX header")
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read '{path}' ({type(e).__name__}: {e}); expected an IDX file") from None
    return magic, tuple(int.from_bytes(dims[4 * k:4 * k + 4], 'big') for k in range(ndim)), 4 + 4 * ndim


def _is_gzip(path: str) -> bool:
    with open(path, 'rb') as f:
        return f.read(2) == b'\x1f\x8b'


def looks_like_idx(path: str) -> bool:
    base = os.path.basename(path).lower()
    if 'idx' in base or base.endswith('-ubyte') or base.endswith('-ubyte.gz'):
        return True
    try:
        return read_idx_header(path)[0] in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC)
    except DataError:
        return False


def read_idx(path: str, mmap: bool = True) -> np.ndarray:
    """An MNIST-style IDX file (gzipped or raw) as a uint8 array: images ``(N, H, W)`` (idx3) or labels ``(N,)``
    (idx1).  The header is checked against the file's size; a raw file is memory-mapped when ``mmap``, a ``.gz``
    one is decompressed into memory.  Anything else raises ``DataError`` naming the file."""
    magic, dims, header = read_idx_header(path)
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise DataError(f"'{path}' is not an IDX file of unsigned bytes (magic 0x{magic:08x}; expected "
                        f'0x{IDX_IMAGES_MAGIC:08x} for images or 0x{IDX_LABELS_MAGIC:08x} for labels)')
    nbytes = int(np.prod(dims))
    what = ' x '.join(str(d) for d in dims)
    gz = _is_gzip(path)
    if gz:
        with gzip.open(path, 'rb') as f:
            f.read(header)
            buf = f.read(nbytes + 1)
        size = len(buf)
    else:
        size = os.path.getsize(path) - header
    if size != nbytes:
        raise DataError(f"'{path}' holds {size} bytes after its header; the header promises {what} = {nbytes}")
    if dims[0] == 0:
        raise DataError(f"'{path}' holds no items")
    if gz:
        return np.frombuffer(buf, dtype=np.uint8).reshape(dims)
    if mmap:
        return np.memmap(path, dtype=np.uint8, mode='r', offset=header, shape=dims)
    return np.fromfile(path, dtype=np.uint8, offset=header).reshape(dims)


def find_idx(path: str, split: str, kind: str = 'images', dataset_name: str = '') -> str:
    """The IDX file of ``kind`` ('images' | 'labels') for ``split`` ('train' | 'test'/'t10k') under ``path``: a
    folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` or a torchvision root (``MNIST/raw``,
    ``FashionMNIST/raw``; ``dataset_name`` picks one when both are there).  Raises ``DataError`` saying what is
    missing."""
    check_split(split)
    if kind not in IDX_KINDS:
        raise DataError(f"IDX kind must be one of {sorted(IDX_KINDS)}, got {kind!r}")
    folder = idx_folder(path, dataset_name)
    if folder is None:
        raise DataError(f"'{path}' holds no MNIST-style IDX files (expected train-images-idx3-ubyte[.gz] etc., or a "
                        'torchvision root with MNIST/raw or FashionMNIST/raw)')
    stem = f'{SPLIT_PREFIX[split]}-{IDX_KINDS[kind]}'
    for fn in (f'{stem}-ubyte', stem.replace('-idx', '.idx') + '-ubyte',
               f'{stem}-ubyte.gz', stem.replace('-idx', '.idx') + '-ubyte.gz'):
        p = os.path.join(folder, fn)
        if os.path.isfile(p):
            return p            # raw first (memory-mapped), as torchvision keeps both after extraction
    raise DataError(f"no '{stem}-ubyte[.gz]' in '{folder}' for split '{split}' (found: {sorted(os.listdir(folder))})")


class IdxSource(IndexedArray):
    kind = 'idx'

    def __init__(self, path: str, split: Optional[str]):
        self.path, self.split = path, split
        if read_idx_header(path)[0] == IDX_LABELS_MAGIC:
            raise DataError(f"'{path}' is an IDX labels file (idx1); expected the images file (idx3), e.g. "
                            'train-images-idx3-ubyte.gz')
        self.arr = read_idx(path)               # any other magic is refused there: this is an (N, H, W) array
        self.is_float = False

    def load(self, i):
        return np.array(self.arr[i])[:, :, None]

    def describe(self):
        n, h, w = self.arr.shape
        return f'IDX {os.path.basename(self.path)} ({n} x {h} x {w} uint8)'


def _has_idx_images(folder: str) -> bool:
    try:
        return any('-images' in fn and 'idx3' in fn for fn in os.listdir(folder))
    except OSError:
        return False


def _norm_name(s: str) -> str:
    return ''.join(ch for ch in str(s).lower() if ch.isalnum())


def idx_folder(path: str, dataset_name: str) -> Optional[str]:
    """The folder holding IDX files if ``path`` is an IDX folder or a torchvision root, else None."""
    if not os.path.isdir(path):
        return None
    candidates = []
    for sub in ('MNIST', 'FashionMNIST'):
        raw = os.path.join(path, sub, 'raw')
        if os.path.isdir(raw) and _has_idx_images(raw):
            candidates.append((sub, raw))
    if len(candidates) > 1:
        wanted = _norm_name(dataset_name)
        chosen = [c for c in candidates if _norm_name(c[0]) == wanted]
        if len(chosen) != 1:
            raise DataError(f"'{path}' holds both MNIST/raw and FashionMNIST/raw and config.data.dataset is "
                            f"'{dataset_name}'; set it to 'MNIST' or 'FashionMNIST', or point at one raw folder")
        candidates = chosen
    if candidates:
        return candidates[0][1]
    return path if _has_idx_images(path) else None
