"""PDS filters (supplementary Eq. 20-22), all as float32 tables of shape (C, H, W).

Frequency tables are indexed on the *unshifted* DFT grid (DC at [0, 0]), exactly as the official
PDS mask files and ``torch.fft.fft2`` are.  Figures and Eq. 20 are written on the *centred* grid;
:func:`radial_filter` builds it there and moves it with ``ifftshift``.

Direction convention (Eq. 19 and 23): the paper's operator is M = A (.) F^-1[R (.) F[.]] and Eq. 23
runs the diffusion with M^-1, so for statistics filters the sampler's factor is the inverse,
:func:`normalised_inverse` = alpha / (m / max(m) + alpha - 1), exactly as the official code.  For the
radial filter of Eq. 20 (no official code) the direction is the config choice ``pds.radial_direction``.
"""
import numpy as np
import torch


class FilterError(ValueError):
    """A filter file or table that does not fit the model's (C, H, W)."""


def normalised_inverse(stat, alpha):
    """Eq. 21-22 then inversion, as the official sampler: m / max(m) (global max), then
    (m + alpha - 1) / alpha, then 1 / (.).  Entries lie in [1, alpha / (alpha - 1)] for m in (0, max]."""
    m = torch.as_tensor(np.asarray(stat, dtype=np.float32))
    if not torch.isfinite(m).all() or (m < 0).any() or m.max() <= 0:
        raise FilterError('a PDS statistic must be finite and non-negative with a positive maximum')
    if alpha < 1:
        raise FilterError(f'alpha must be >= 1 (alpha -> inf is the identity), got {alpha}')
    m = m / m.max()
    m = (m + alpha - 1) / alpha
    return m.pow(-1)


def radial_filter(shape, radius, lam):
    """Eq. 20 on the centred frequency grid, returned on the unshifted DFT grid.

    R = 1 where (h - H/2)^2 + (w - W/2)^2 <= 2 r^2 with r = ``radius`` * H (the DC term sits at
    (H/2, W/2) after fftshift), ``lam`` elsewhere.  The disc holds the low frequencies."""
    channels, height, width = shape
    r = radius * height
    h = torch.arange(height, dtype=torch.float64)[:, None] - height // 2
    w = torch.arange(width, dtype=torch.float64)[None, :] - width // 2
    centred = torch.where(h ** 2 + w ** 2 <= 2 * r ** 2, 1.0, float(lam))
    return torch.fft.ifftshift(centred, dim=(0, 1)).float().expand(channels, height, width).contiguous()


def load_statistic(path, shape, what='filter'):
    """Load a ``*_freq.npy`` / ``*_space.npy`` statistic (C, H, W) or (1, C, H, W); check it fits ``shape``."""
    try:
        table = np.load(path)
    except FileNotFoundError:
        raise FilterError(f'PDS {what} file {path!r} does not exist; make one with '
                          '`python main.py --config <cfg> --mode stats --data <dataset> --stats_dir <its '
                          "folder>`") from None
    except Exception as err:  # noqa: BLE001 -- any unreadable file gets one clear message
        raise FilterError(f'PDS {what} file {path!r} is not a readable .npy array ({err})') from None
    if table.ndim == 4 and table.shape[0] == 1:
        table = table[0]
    if tuple(table.shape) != tuple(shape):
        raise FilterError(f'PDS {what} file {path!r} has shape {tuple(table.shape)}, '
                          f'the model samples (C, H, W) = {tuple(shape)}')
    return table.astype(np.float32)
