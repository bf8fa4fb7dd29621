"""FIR up/down-sampling of NCSN++ (score_sde ``up_or_down_sampling.py`` semantics), pure PyTorch.

Written from the behavioural specification; no official code (and none of the NC-licensed CUDA
``upfirdn2d`` kernel) is used.  Every filter is a depthwise convolution (``groups`` = channels), so the
same code runs on any device and dtype.

The kernel ``k`` is 1-D (``[1, 3, 3, 1]`` in every official config; made 2-D by an outer product) or
2-D, and is normalised to sum 1.  ``upfirdn2d(x, k, up, down, pad)`` means: insert ``up - 1`` zeros
after every sample, zero-pad ``pad = (before, after)`` on both axes, *convolve* with ``k`` (true
convolution, i.e. correlation with the flipped kernel), keep every ``down``-th sample.

* ``upsample_2d(x, k)``      = upfirdn2d(x, 4 k, up=2, pad=(p + 1) // 2 + 1, p // 2), p = len(k) - 2
  -> (B, C, 2H, 2W).  Computed polyphase: one small depthwise conv producing the 4 output phases,
  then ``pixel_shuffle`` (no multiplications by inserted zeros).
* ``downsample_2d(x, k)``    = upfirdn2d(x, k, down=2, pad=((p + 1) // 2, p // 2))  -> (B, C, H/2, W/2).
* ``conv_downsample_2d(x, w, k)`` = upfirdn2d(x, k, pad=((p + 1) // 2, p // 2)) with p = len(k) - 2 + kw - 1
  (= (2, 2) for [1,3,3,1] and a 3x3 conv), then ``conv2d(w, stride=2, padding=0)``.
* ``upsample_conv_2d(x, w, k)``: the fused "upsample then conv" of the TF original: a stride-2
  transposed convolution with the spatially flipped, in/out-transposed ``w``, then
  upfirdn2d(4 k, pad=((p + 1) // 2 + 1, p // 2 + 1)), p = len(k) - 2 - (kw - 1).  Here the transposed
  convolution is written as zero insertion + full padding + ``conv2d(w)``.  (Only NCSN++ with
  ``progressive = 'residual'`` or ``resblock_type = 'ddpm'`` + ``fir`` + ``resamp_with_conv`` uses it; the
  official PyTorch port of this function cannot run, see ``models/ncsnpp.py``.)
"""
import functools

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['setup_kernel', 'upfirdn2d', 'upsample_2d', 'downsample_2d', 'conv_downsample_2d',
           'upsample_conv_2d', 'naive_upsample_2d', 'naive_downsample_2d']


def setup_kernel(k):
    """1-D or 2-D FIR taps -> normalised 2-D float64 array (outer product for 1-D, sum 1)."""
    if isinstance(k, torch.Tensor):
        k = k.detach().cpu().numpy()
    k = np.asarray(k, dtype=np.float64)
    if k.ndim == 1:
        k = np.outer(k, k)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f'FIR kernel must be 1-D or square 2-D, got shape {k.shape}')
    return k / k.sum()


def _key(k):
    """Hashable form of a kernel given as a list / tuple / array / tensor."""
    if isinstance(k, (tuple, list)) and all(isinstance(v, (int, float)) for v in k):   # the usual 1-D taps
        return (len(k),), tuple(float(v) for v in k)
    if isinstance(k, torch.Tensor):
        k = k.detach().cpu().numpy()
    k = np.asarray(k, dtype=np.float64)
    return k.shape, tuple(k.ravel().tolist())


def _taps(kkey, gain):
    shape, vals = kkey
    return setup_kernel(np.array(vals).reshape(shape)) * gain


def _kernel_size(k):
    return int(k.shape[0]) if isinstance(k, torch.Tensor) else int(np.shape(k)[0])


def _as_weight(w, channels, device, dtype):
    # Cached weights must be ordinary tensors even when first built under torch.inference_mode(),
    # otherwise a later autograd forward could not save them for backward.
    with torch.inference_mode(False):
        w = torch.tensor(np.ascontiguousarray(w), dtype=dtype, device=device)
        return w.repeat(channels, 1, 1, 1).contiguous()


@functools.lru_cache(maxsize=256)
def _filter_weight(kkey, gain, channels, device, dtype):
    """Depthwise (C, 1, K, K) weight: flipped, scaled taps (conv2d correlates, upfirdn convolves)."""
    return _as_weight(_taps(kkey, gain)[::-1, ::-1][None, None], channels, device, dtype)


@functools.lru_cache(maxsize=256)
def _phase_weight(kkey, gain, pad0, channels, device, dtype):
    """Polyphase form of ``upfirdn2d(up=2, pad=(pad0, .))``: (4C, 1, S, S) taps, left and right pad.

    Output sample 2i + a (a = 0, 1) is sum_t kf[t] u[2i + a + t - pad0] with kf the flipped kernel and u
    the zero-inserted input, i.e. the sum over the t with a + t - pad0 even of kf[t] x[i + d],
    d = (a + t - pad0) / 2.  Phase (a, b) of channel c is output channel 4c + 2a + b, the order
    ``pixel_shuffle(2)`` expects.
    """
    kf = _taps(kkey, gain)[::-1, ::-1]
    K = kf.shape[0]
    offsets = [(a + t - pad0) // 2 for a in (0, 1) for t in range(K) if (a + t - pad0) % 2 == 0]
    dmin, dmax = min(offsets), max(offsets)
    S = dmax - dmin + 1
    w = np.zeros((2, 2, S, S))
    for a in (0, 1):
        for b in (0, 1):
            for t in range(K):
                for u in range(K):
                    if (a + t - pad0) % 2 == 0 and (b + u - pad0) % 2 == 0:
                        w[a, b, (a + t - pad0) // 2 - dmin, (b + u - pad0) // 2 - dmin] = kf[t, u]
    return _as_weight(w.reshape(4, 1, S, S), channels, device, dtype), -dmin, dmax


def _fir(x, k, gain, pad, down=1):
    """upfirdn2d without upsampling: zero-pad ``pad = (before, after)``, convolve, stride ``down``."""
    C = x.shape[1]
    w = _filter_weight(_key(k), float(gain), C, x.device, x.dtype)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, w, stride=down, groups=C)


def _up2(x, k, gain, pad):
    """upfirdn2d(x, gain k, up=2, pad) for pads whose output is exactly (2H, 2W) (polyphase)."""
    C = x.shape[1]
    if pad[0] + pad[1] != _kernel_size(k) - 1:
        raise ValueError(f'polyphase upsampling needs pads summing to K - 1, got {pad}')
    w, left, right = _phase_weight(_key(k), float(gain), int(pad[0]), C, x.device, x.dtype)
    y = F.conv2d(F.pad(x, (left, right, left, right)), w, groups=C)   # (B, 4C, H, W)
    return F.pixel_shuffle(y, 2)


def upfirdn2d(x, k, up=1, down=1, pad=(0, 0), gain=1.):
    """General upfirdn2d (same ``up``/``down``/``pad`` on both axes); reference semantics, any factors."""
    if up > 1:
        B, C, H, W = x.shape
        u = x.new_zeros(B, C, H * up, W * up)
        u[:, :, ::up, ::up] = x
        x = u
    return _fir(x, k, gain, pad, down)


def upsample_2d(x, k=(1, 3, 3, 1), factor=2, gain=1):
    """FIR upsampling by 2: (B, C, H, W) -> (B, C, 2H, 2W); kernel scaled by gain * factor**2."""
    if factor != 2:
        p = _kernel_size(k) - factor
        return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2), gain=gain * factor ** 2)
    p = _kernel_size(k) - 2
    return _up2(x, k, gain * 4, ((p + 1) // 2 + 1, p // 2))


def downsample_2d(x, k=(1, 3, 3, 1), factor=2, gain=1):
    """FIR downsampling by ``factor``: pad ((p+1)//2, p//2) with p = K - factor, filter, stride ``factor``."""
    p = _kernel_size(k) - factor
    return _fir(x, k, gain, ((p + 1) // 2, p // 2), down=factor)


def conv_downsample_2d(x, w, k=(1, 3, 3, 1), factor=2, gain=1):
    """FIR filter (pad p = K - factor + kw - 1, split ((p+1)//2, p//2)), then conv2d(w, stride=factor, padding=0)."""
    kh, kw = w.shape[-2:]
    if kh != kw:
        raise ValueError(f'conv_downsample_2d needs a square conv kernel, got {tuple(w.shape)}')
    p = (_kernel_size(k) - factor) + (kw - 1)
    x = _fir(x, k, gain, ((p + 1) // 2, p // 2))
    return F.conv2d(x, w, stride=factor, padding=0)


def upsample_conv_2d(x, w, k=(1, 3, 3, 1), factor=2, gain=1):
    """Fused FIR upsample + conv (TF ``upsample_conv_2d``): transposed conv, then FIR.  -> (B, O, 2H, 2W).

    The stride-``factor`` transposed conv with flip(w) transposed is zero insertion (x at multiples of
    ``factor``, length factor (H - 1) + 1), zero padding kw - 1 on each side, then ``conv2d(w)``.
    """
    kh, kw = w.shape[-2:]
    if kh != kw:
        raise ValueError(f'upsample_conv_2d needs a square conv kernel, got {tuple(w.shape)}')
    B, C, H, W = x.shape
    u = x.new_zeros(B, C, factor * (H - 1) + 1, factor * (W - 1) + 1)
    u[:, :, ::factor, ::factor] = x
    u = F.conv2d(F.pad(u, (kw - 1,) * 4), w)                 # (B, O, factor (H - 1) + kw, ...)
    p = (_kernel_size(k) - factor) - (kw - 1)
    return _fir(u, k, gain * factor ** 2, ((p + 1) // 2 + factor - 1, p // 2 + 1))


def naive_upsample_2d(x, factor=2):
    """Nearest-neighbour upsampling (each pixel repeated factor x factor times)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H, 1, W, 1).expand(B, C, H, factor, W, factor)
    return x.reshape(B, C, H * factor, W * factor)


def naive_downsample_2d(x, factor=2):
    """Mean over non-overlapping factor x factor blocks."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H // factor, factor, W // factor, factor).mean(dim=(3, 5))
