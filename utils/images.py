"""uint8 images: model-space samples to pixels, PNG files and grids (used by ``runners.sample`` for its outputs,
``evaluation.metrics`` for dataset images fed to the feature network, ``data.deadleaves`` for its report grids)."""
import math

import numpy as np
import torch
from PIL import Image

from utils.atomic import atomic_write


def to_uint8(x, centered=False):
    """Model-space samples -> uint8 NHWC images (torchvision save_image rounding: x*255 + 0.5, clamped)."""
    x = (x + 1) / 2 if centered else x
    return (x.clamp(0, 1) * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_png(image, path):
    """Atomically save one uint8 HWC image (1 channel -> grayscale)."""
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    atomic_write(path, lambda tmp: img.save(tmp, format='PNG'))


def make_grid(images, nrow=None, fill=0):
    """uint8 NHWC -> one uint8 HWC grid of ``nrow`` images per row (default: square) with 2-pixel borders of
    value ``fill``."""
    n, h, w, c = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.full((rows * (h + 2) + 2, nrow * (w + 2) + 2, c), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, nrow)
        grid[2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + col * (w + 2): 2 + col * (w + 2) + w] = img
    return grid
