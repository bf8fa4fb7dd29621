"""The preprocessing every source's images take (``open_dataset``; ``ImageDataset.describe()`` spells it out):
channels (RGB -> L by ITU-R 601-2 luma when the config asks for 1), geometry by ``config.data.crop`` ('celeba',
'lsun', 'none'; torchvision bicubic, antialiased, never upsampling), values uint8 / 255 or float as stored."""
from typing import Any, List, Tuple

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from data.common import DataError

CELEBA_CROP = 140                  # ermongroup/ncsn + ncsnv2: CenterCrop(140) before Resize for CelebA
INTERPOLATION = InterpolationMode.BICUBIC
CROPS = ('none', 'celeba', 'lsun')

_PIL_CHANNELS = {'1': 1, 'L': 1, 'LA': 1, 'P': 3, 'PA': 3, 'RGB': 3, 'RGBA': 3, 'RGBX': 3, 'CMYK': 3, 'YCbCr': 3,
                 'LAB': 3, 'HSV': 3}


def geometry_plan(h: int, w: int, size: int, crop: str, name: str) -> List[Tuple[str, Any]]:
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


def apply_plan(img, steps):
    for op, arg in steps:
        if op == 'crop':
            img = TF.center_crop(img, list(arg))
        else:
            img = TF.resize(img, arg, interpolation=INTERPOLATION, antialias=True)
    return img


def _rgb_to_l_float(a: np.ndarray) -> np.ndarray:
    # PIL's convert('L') weights (ITU-R 601-2), for float arrays
    return (a[..., 0:1] * 0.299 + a[..., 1:2] * 0.587 + a[..., 2:3] * 0.114).astype(np.float32)


def preprocess(item, num_channels: int, size: int, crop: str, name: str) -> torch.Tensor:
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
        item = apply_plan(item, geometry_plan(h, w, size, crop, name))
        a = np.asarray(item, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div_(255.)

    a = item                                    # (H, W, C) uint8 or float32
    h, w, src_c = a.shape
    if src_c != num_channels and not (src_c == 3 and num_channels == 1):
        raise DataError(f"image '{name}' has {src_c} channel(s) but config.data.num_channels is {num_channels}"
                        + ('; use a 1-channel config for grayscale data' if src_c == 1 else ''))
    steps = geometry_plan(h, w, size, crop, name)
    if a.dtype == np.uint8:
        if not steps and src_c == num_channels:  # fast path (MNIST): identical to the PIL path
            return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div_(255.)
        pil = Image.fromarray(a[:, :, 0], 'L') if src_c == 1 else Image.fromarray(a, 'RGB')
        return preprocess(pil, num_channels, size, crop, name)
    if src_c != num_channels:
        a = _rgb_to_l_float(a)
    t = torch.from_numpy(a.transpose(2, 0, 1).copy())
    if steps:
        t = apply_plan(t, steps).clamp_(0., 1.)
    return t.float()


def describe_transform(num_channels: int, size: int, crop: str, float_source: bool) -> str:
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
