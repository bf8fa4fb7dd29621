"""Array sources: a .npy (memory-mapped) or .npz array of images ``(N, H, W, C)``, ``(N, C, H, W)`` or ``(N, H, W)``,
uint8 in [0, 255] or float in [0, 1], and the dead-leaves images generated in memory (``data/deadleaves.py``)."""
import os
from typing import Tuple

import numpy as np

from data.common import SPLIT_PREFIX, DataError

NPZ_KEYS = ('images', 'x', 'samples', 'data', 'arr_0')


def _to_nhwc_layout(shape: Tuple[int, ...], what: str) -> str:
    if len(shape) == 3:
        return 'NHW'
    if len(shape) == 4:
        if shape[3] in (1, 3):
            return 'NHWC'
        if shape[1] in (1, 3):
            return 'NCHW'
    raise DataError(f'{what} has shape {tuple(shape)}; expected (N,H,W,C) or (N,C,H,W) with C in (1, 3), or (N,H,W)')


class IndexedArray:
    """Shared by the array-backed sources: ``self.arr`` (N, ...) read from ``self.path``; item i is named ``file[i]``."""

    def __len__(self):
        return self.arr.shape[0]

    def name(self, i):
        return f'{os.path.basename(self.path)}[{i}]'

    def full_name(self, i):
        return f'{self.path}[{i}]'


class ArraySource(IndexedArray):
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


class DeadLeavesSource(IndexedArray):
    """Dead-leaves images generated in memory (``data/deadleaves.py``): path ``'deadleaves'`` or
    ``'deadleaves:<count>'``; the law comes from ``config.data`` (image_size, num_channels, deadleaves.*), the split
    picks the seed (train_seed 0 / test_seed 1 by default) and the count (train_count / test_count)."""
    kind = 'deadleaves'
    layout = 'NHWC'
    is_float = False

    def __init__(self, path: str, config, split: str):
        from data import deadleaves as dl
        p = config.data.get('deadleaves', {}) if hasattr(config.data, 'get') else {}
        test = SPLIT_PREFIX[split] == 't10k'
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
