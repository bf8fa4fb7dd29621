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
"""
from __future__ import annotations

import gzip
import io
import os
import warnings
import zipfile
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

__all__ = [
    'DataError', 'DataWarning', 'BadItem', 'ImageDataset', 'open_dataset', 'make_loader', 'collate_images',
    'IMAGE_EXTENSIONS', 'CELEBA_CROP', 'read_idx', 'find_idx',
]

IMAGE_EXTENSIONS = ('.bmp', '.jpeg', '.jpg', '.png', '.webp')
CELEBA_CROP = 140                  # ermongroup/ncsn + ncsnv2: CenterCrop(140) before Resize for CelebA
INTERPOLATION = InterpolationMode.BICUBIC
CROPS = ('none', 'celeba', 'lsun')
NPZ_KEYS = ('images', 'x', 'samples', 'data', 'arr_0')
IDX_IMAGES_MAGIC = 0x00000803      # unsigned byte, 3 dims
IDX_LABELS_MAGIC = 0x00000801      # unsigned byte, 1 dim
IDX_SPLIT_PREFIX = {'train': 'train', 'test': 't10k', 't10k': 't10k'}
IDX_KINDS = {'images': 'images-idx3', 'labels': 'labels-idx1'}


class DataError(ValueError):
    """A dataset cannot be read as asked: the message says what was wrong and what was expected."""


class DataWarning(UserWarning):
    """A file was skipped (``skip_bad=True``)."""


class BadItem(NamedTuple):
    """Returned in place of an image that could not be read when ``skip_bad=True``."""
    name: str
    reason: str


# ---------------------------------------------------------------------------------------------------------------
# Sources: len(), name(i), load(i) -> PIL.Image or np.ndarray (H, W, C); raise _Unreadable for a bad file.
# ---------------------------------------------------------------------------------------------------------------

class _Unreadable(Exception):
    pass


def _is_hidden(rel: str) -> bool:
    return any(part.startswith('.') or part == '__MACOSX' for part in rel.split('/'))


def _has_image_ext(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _decode_image(fp, name: str) -> Image.Image:
    try:
        img = Image.open(fp)
        img.load()
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError (truncated), SyntaxError, ...
        raise _Unreadable(f'{type(e).__name__}: {e}') from None
    return img


class _FolderSource:
    kind = 'folder'

    def __init__(self, root: str):
        self.root = root
        files, others = [], 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            for fn in filenames:
                rel = os.path.relpath(os.path.join(dirpath, fn), root).replace(os.sep, '/')
                if _is_hidden(rel):
                    continue
                if _has_image_ext(fn):
                    files.append(rel)
                else:
                    others += 1
        if not files:
            raise DataError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under '{root}' (searched recursively; "
                f'{others} file(s) with other extensions ignored); expected a folder of images, a .zip of images, '
                'a .npz/.npy array, or MNIST-style IDX files')
        self.files = sorted(files)

    def __len__(self):
        return len(self.files)

    def name(self, i):
        return self.files[i]

    def full_name(self, i):
        return os.path.join(self.root, self.files[i])

    def load(self, i):
        path = self.full_name(i)
        try:
            with open(path, 'rb') as f:
                return _decode_image(f, path)
        except OSError as e:
            raise _Unreadable(f'{type(e).__name__}: {e}') from None

    def describe(self):
        return f'folder of {len(self.files)} image files (sorted relative paths)'


class _ZipSource:
    kind = 'zip'

    def __init__(self, path: str):
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"cannot open '{path}' as a zip archive ({type(e).__name__}: {e}); "
                            'expected a .zip of png/jpg/jpeg/webp/bmp images') from None
        names = [zi.filename for zi in infos if not zi.is_dir()]
        files = sorted(n for n in names if _has_image_ext(n) and not _is_hidden(n))
        if not files:
            raise DataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in zip '{path}' "
                            f'({len(names)} other member(s) ignored)')
        self.files = files
        self._zf, self._pid = None, None

    def __len__(self):
        return len(self.files)

    def name(self, i):
        return self.files[i]

    def full_name(self, i):
        return f'{self.path}:{self.files[i]}'

    def _handle(self):
        if self._zf is None or self._pid != os.getpid():   # one handle per (worker) process
            self._zf, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zf

    def load(self, i):
        try:
            raw = self._handle().read(self.files[i])
        except Exception as e:
            raise _Unreadable(f'{type(e).__name__}: {e}') from None
        return _decode_image(io.BytesIO(raw), self.full_name(i))

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_zf'], state['_pid'] = None, None
        return state

    def describe(self):
        return f'zip of {len(self.files)} image files (sorted member names)'


def _to_nhwc_layout(shape: Tuple[int, ...], what: str) -> str:
    if len(shape) == 3:
        return 'NHW'
    if len(shape) == 4:
        if shape[3] in (1, 3):
            return 'NHWC'
        if shape[1] in (1, 3):
            return 'NCHW'
    raise DataError(f'{what} has shape {tuple(shape)}; expected (N,H,W,C) or (N,C,H,W) with C in (1, 3), or (N,H,W)')


class _IndexedArray:
    """Shared by the array-backed sources: ``self.arr`` (N, ...) read from ``self.path``; item i is named ``file[i]``."""

    def __len__(self):
        return self.arr.shape[0]

    def name(self, i):
        return f'{os.path.basename(self.path)}[{i}]'

    def full_name(self, i):
        return f'{self.path}[{i}]'


class _ArraySource(_IndexedArray):
    kind = 'array'

    def __init__(self, path: str):
        self.path = path
        try:
            if path.lower().endswith('.npy'):
                arr = np.load(path, mmap_mode='r', allow_pickle=False)
                self.key = None
            else:
                with np.load(path, allow_pickle=False) as npz:
                    keys = list(npz.files)
                    if len(keys) == 1:
                        key = keys[0]
                    else:
                        key = next((k for k in NPZ_KEYS if k in keys), None)
                        if key is None:
                            raise DataError(f"'{path}' holds arrays {keys}; expected a single array or one named "
                                            f'one of {list(NPZ_KEYS)}')
                    arr = npz[key]
                    self.key = key
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"cannot read '{path}' as a numpy array ({type(e).__name__}: {e}); expected a .npy or "
                            '.npz holding (N,H,W,C), (N,C,H,W) or (N,H,W) images') from None
        what = f"array '{path}'" + (f" (key '{self.key}')" if self.key else '')
        self.layout = _to_nhwc_layout(arr.shape, what)
        if arr.dtype == np.uint8:
            self.is_float = False
        elif arr.dtype.kind == 'f':
            self.is_float = True
        else:
            raise DataError(f'{what} has dtype {arr.dtype}; expected uint8 in [0,255] or float in [0,1]')
        if arr.shape[0] == 0:
            raise DataError(f'{what} holds no images (shape {tuple(arr.shape)})')
        self.arr = arr
        self.what = what

    def load(self, i):
        a = np.asarray(self.arr[i])
        if self.layout == 'NHW':
            a = a[:, :, None]
        elif self.layout == 'NCHW':
            a = a.transpose(1, 2, 0)
        if self.is_float:
            a = a.astype(np.float32)
            lo, hi = float(a.min()), float(a.max())
            if not (lo >= 0. and hi <= 1.):      # also catches NaN
                raise DataError(f'{self.full_name(i)} has values in [{lo}, {hi}]; float arrays must be in [0, 1]')
        return np.ascontiguousarray(a)

    def describe(self):
        kind = 'float [0,1]' if self.is_float else 'uint8 [0,255]'
        return f'{os.path.basename(self.path)} array {tuple(self.arr.shape)} {self.layout} {kind}'


class _DeadLeavesSource(_IndexedArray):
    """Dead-leaves images generated in memory (``data/deadleaves.py``): path ``'deadleaves'`` or
    ``'deadleaves:<count>'``; the law comes from ``config.data`` (image_size, num_channels, deadleaves.*), the split
    picks the seed (train_seed 0 / test_seed 1 by default) and the count (train_count / test_count)."""
    kind = 'deadleaves'
    layout = 'NHWC'
    is_float = False

    def __init__(self, path: str, config, split: str):
        from data import deadleaves as dl
        p = config.data.get('deadleaves', {}) if hasattr(config.data, 'get') else {}
        test = IDX_SPLIT_PREFIX[split] == 't10k'
        self.seed = int(p.get('test_seed' if test else 'train_seed',
                              dl.DEFAULT_TEST_SEED if test else dl.DEFAULT_TRAIN_SEED))
        count = p.get('test_count' if test else 'train_count', 10000 if test else 50000)
        _, _, n = path.partition(':')
        if n:
            try:
                count = int(n)
            except ValueError:
                raise DataError(f"data path '{path}': expected 'deadleaves' or 'deadleaves:<count>'") from None
        try:
            self.spec = dl.from_config(config)
            self.arr = dl.generate(self.spec, count, seed=self.seed)
        except dl.DeadLeavesError as e:
            raise DataError(str(e)) from None
        self.path, self.split = path, 'test' if test else 'train'

    def load(self, i):
        return np.asarray(self.arr[i])

    def describe(self):
        return f'{self.spec.describe()}; seed {self.seed} ({self.split}), {len(self.arr)} images'


def _read_idx_header(path: str) -> Tuple[int, Tuple[int, ...], int]:
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


def _looks_like_idx(path: str) -> bool:
    base = os.path.basename(path).lower()
    if 'idx' in base or base.endswith('-ubyte') or base.endswith('-ubyte.gz'):
        return True
    try:
        return _read_idx_header(path)[0] in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC)
    except DataError:
        return False


def read_idx(path: str, mmap: bool = True) -> np.ndarray:
    """An MNIST-style IDX file (gzipped or raw) as a uint8 array: images ``(N, H, W)`` (idx3) or labels ``(N,)``
    (idx1).  The header is checked against the file's size; a raw file is memory-mapped when ``mmap``, a ``.gz``
    one is decompressed into memory.  Anything else raises ``DataError`` naming the file."""
    magic, dims, header = _read_idx_header(path)
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
    if split not in IDX_SPLIT_PREFIX:
        raise DataError(f"split must be 'train' or 'test' (or 't10k'), got {split!r}")
    if kind not in IDX_KINDS:
        raise DataError(f"IDX kind must be one of {sorted(IDX_KINDS)}, got {kind!r}")
    folder = _idx_folder(path, dataset_name)
    if folder is None:
        raise DataError(f"'{path}' holds no MNIST-style IDX files (expected train-images-idx3-ubyte[.gz] etc., or a "
                        'torchvision root with MNIST/raw or FashionMNIST/raw)')
    stem = f'{IDX_SPLIT_PREFIX[split]}-{IDX_KINDS[kind]}'
    for fn in (f'{stem}-ubyte', stem.replace('-idx', '.idx') + '-ubyte',
               f'{stem}-ubyte.gz', stem.replace('-idx', '.idx') + '-ubyte.gz'):
        p = os.path.join(folder, fn)
        if os.path.isfile(p):
            return p            # raw first (memory-mapped), as torchvision keeps both after extraction
    raise DataError(f"no '{stem}-ubyte[.gz]' in '{folder}' for split '{split}' (found: {sorted(os.listdir(folder))})")


class _IdxSource(_IndexedArray):
    kind = 'idx'

    def __init__(self, path: str, split: Optional[str]):
        self.path, self.split = path, split
        if _read_idx_header(path)[0] == IDX_LABELS_MAGIC:
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


def _idx_folder(path: str, dataset_name: str) -> Optional[str]:
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


def _open_source(path: str, split: Optional[str], dataset_name: str):
    if split not in IDX_SPLIT_PREFIX:
        raise DataError(f"split must be 'train' or 'test' (or 't10k'), got {split!r}")
    if os.path.isdir(path):
        if _idx_folder(path, dataset_name) is not None:
            return _IdxSource(find_idx(path, split, 'images', dataset_name), split)
        src = _FolderSource(path)
    elif os.path.isfile(path):
        low = path.lower()
        if low.endswith('.zip'):
            src = _ZipSource(path)
        elif low.endswith(('.npz', '.npy')):
            src = _ArraySource(path)
        elif _looks_like_idx(path):
            src = _IdxSource(path, None)         # a direct file: the file is the split
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


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------------------------------

_PIL_CHANNELS = {'1': 1, 'L': 1, 'LA': 1, 'P': 3, 'PA': 3, 'RGB': 3, 'RGBA': 3, 'RGBX': 3, 'CMYK': 3, 'YCbCr': 3,
                 'LAB': 3, 'HSV': 3}


def _geometry_plan(h: int, w: int, size: int, crop: str, name: str) -> List[Tuple[str, Any]]:
    """List of ('crop', (th, tw)) / ('resize', [..]) steps for an h x w image; DataError if it is too small."""
    if crop == 'celeba':
        if h < CELEBA_CROP or w < CELEBA_CROP:
            raise DataError(f"image '{name}' is {h}x{w} (HxW) but crop 'celeba' needs at least "
                            f'{CELEBA_CROP}x{CELEBA_CROP} (CenterCrop({CELEBA_CROP}) then Resize({size}))')
        steps = [('crop', (CELEBA_CROP, CELEBA_CROP))]
        if size != CELEBA_CROP:
            steps.append(('resize', [size, size]))
        return steps
    if crop == 'lsun':
        if min(h, w) < size:
            raise DataError(f"image '{name}' is {h}x{w} (HxW) but crop 'lsun' at image_size {size} needs a shorter "
                            f'side of at least {size} (Resize({size}) then CenterCrop({size}))')
        steps = []
        if min(h, w) != size:
            steps.append(('resize', [size]))      # shorter side -> size, aspect kept (torchvision Resize(int))
        if h != w:
            steps.append(('crop', (size, size)))
        return steps
    # 'none'
    if h != w:
        raise DataError(f"image '{name}' is {h}x{w} (HxW), not square; crop 'none' expects square images "
                        "(use config.data.crop = 'lsun' or 'celeba' to centre-crop)")
    if h < size:
        raise DataError(f"image '{name}' is {h}x{w} (HxW), smaller than image_size {size}x{size} "
                        '(upsampling is not done)')
    return [('resize', [size, size])] if h != size else []


def _apply_plan(img, steps):
    for op, arg in steps:
        if op == 'crop':
            img = TF.center_crop(img, list(arg))
        else:
            img = TF.resize(img, arg, interpolation=INTERPOLATION, antialias=True)
    return img


def _rgb_to_l_float(a: np.ndarray) -> np.ndarray:
    # PIL's convert('L') weights (ITU-R 601-2), for float arrays
    return (a[..., 0:1] * 0.299 + a[..., 1:2] * 0.587 + a[..., 2:3] * 0.114).astype(np.float32)


def _preprocess(item, num_channels: int, size: int, crop: str, name: str) -> torch.Tensor:
    """PIL image or (H,W,C) array -> float32 tensor (C, size, size) in [0, 1]."""
    if isinstance(item, Image.Image):
        mode = item.mode
        src_c = _PIL_CHANNELS.get(mode)
        if src_c is None:
            raise DataError(f"image '{name}' has PIL mode '{mode}' (16-bit/float/other); expected an 8-bit "
                            'grayscale or RGB image')
        if src_c == num_channels:
            target = 'L' if src_c == 1 else 'RGB'
        elif src_c == 3 and num_channels == 1:
            target = 'L'
        else:
            raise DataError(f"image '{name}' has {src_c} channel(s) (mode '{mode}') but config.data.num_channels is "
                            f'{num_channels}' + ('; use a 1-channel config for grayscale data' if src_c == 1 else ''))
        if mode != target:
            item = item.convert(target)
        w, h = item.size
        item = _apply_plan(item, _geometry_plan(h, w, size, crop, name))
        a = np.asarray(item, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div_(255.)

    a = item                                    # (H, W, C) uint8 or float32
    h, w, src_c = a.shape
    if src_c != num_channels and not (src_c == 3 and num_channels == 1):
        raise DataError(f"image '{name}' has {src_c} channel(s) but config.data.num_channels is {num_channels}"
                        + ('; use a 1-channel config for grayscale data' if src_c == 1 else ''))
    steps = _geometry_plan(h, w, size, crop, name)
    if a.dtype == np.uint8:
        if not steps and src_c == num_channels:  # fast path (MNIST): identical to the PIL path
            return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div_(255.)
        pil = Image.fromarray(a[:, :, 0], 'L') if src_c == 1 else Image.fromarray(a, 'RGB')
        return _preprocess(pil, num_channels, size, crop, name)
    if src_c != num_channels:
        a = _rgb_to_l_float(a)
    t = torch.from_numpy(a.transpose(2, 0, 1).copy())
    if steps:
        t = _apply_plan(t, steps).clamp_(0., 1.)
    return t.float()


def _describe_transform(num_channels: int, size: int, crop: str, float_source: bool) -> str:
    interp = ('torchvision bicubic on the float tensor, antialias=True, clamped to [0,1]' if float_source
              else 'torchvision bicubic on the PIL image (antialiased)')
    geo = {
        'celeba': f'CenterCrop({CELEBA_CROP}) then Resize({size}) [{interp}]',
        'lsun': f'Resize(shorter side -> {size}) [{interp}] then CenterCrop({size})',
        'none': f'square images, Resize({size}x{size}) [{interp}] if larger',
    }[crop]
    chans = ('1 channel (RGB -> L by ITU-R 601-2 luma)' if num_channels == 1
             else '3 channels (RGB; RGBA/P -> RGB)')
    vals = 'float as stored' if float_source else 'uint8 / 255'
    return f'crop {crop!r}: {geo}; {chans}; values {vals} -> [0,1]'


# ---------------------------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------------------------

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
        except _Unreadable as e:
            msg = (f"cannot read image '{self.source.full_name(i)}' ({e}); expected a readable "
                   f"{'/'.join(x[1:] for x in IMAGE_EXTENSIONS)} image")
            if not self.skip_bad:
                raise DataError(msg + '; pass skip_bad=True to skip unreadable files') from None
            warnings.warn('skipping: ' + msg, DataWarning, stacklevel=2)
            return BadItem(self.source.name(i), str(e))
        x = _preprocess(item, self.num_channels, self.image_size, self.crop, self.source.full_name(i))
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
        t = _describe_transform(self.num_channels, self.image_size, self.crop,
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
        if split not in IDX_SPLIT_PREFIX:
            raise DataError(f"split must be 'train' or 'test' (or 't10k'), got {split!r}")
        source = _DeadLeavesSource(expanded, config, split)
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
