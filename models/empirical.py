"""The exact score of an empirical distribution smoothed by Gaussian noise (no network, no training).

For images x_1..x_N, p_sigma(x) = (1/N) sum_i N(x; x_i, sigma^2 I) has the score

    s(x, sigma) = (sum_i w_i x_i - x) / sigma^2,   w = softmax_i(-|x - x_i|^2 / (2 sigma^2)).

It is the ideal denoiser of that set: a sampler driven by it reproduces training images, so it shows
what a sampler and its preconditioning do with a perfect score, on the CPU in seconds.  It is the
model of the offline first run (``configs/mnist_empirical_pds.py``, 1,000 MNIST training images in
``assets/mnist_train_1000.npz``).
"""
import numpy as np
import torch
from torch import nn


class EmpiricalScore(nn.Module):
    """``score(x, sigma)`` of the Gaussian-smoothed empirical distribution of ``images`` (N, C, H, W)."""

    def __init__(self, images):
        super().__init__()
        flat = torch.as_tensor(images, dtype=torch.float32).flatten(1)
        self.register_buffer('points', flat)
        self.register_buffer('sq_norms', (flat ** 2).sum(1))

    @classmethod
    def from_file(cls, path, config, name=None):
        """Images from an ``.npz`` (key ``images``) or ``.npy`` array, uint8 NHWC, scaled to [0, 1]
        (centred when ``config.data.centered``); checked against the config's (C, H, W).  ``path`` may be an
        open binary file (``name``: its path, for messages)."""
        name = name or path
        data = np.load(path, allow_pickle=False)
        if hasattr(data, 'files'):
            with data:
                if 'images' not in data.files:
                    raise ValueError(f'{name!r} holds arrays {data.files}; expected one named images')
                images = np.asarray(data['images'])
        else:
            images = np.asarray(data)
        expected = (config.data.image_size, config.data.image_size, config.data.num_channels)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f'{name!r} holds images of shape {images.shape[1:]}, the config samples (H, W, C) = {expected}')
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.
        return cls(x * 2 - 1 if config.data.centered else x)

    def forward(self, x, sigma=None, labels=None):
        batch = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).expand(batch)[:, None]
        flat = x.flatten(1)
        sq_dist = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ self.points.T + self.sq_norms[None]
        weights = torch.softmax(-sq_dist / (2 * sigma ** 2), dim=1)
        return ((weights @ self.points - flat) / sigma ** 2).view_as(x)
