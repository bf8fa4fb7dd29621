"""NCSN++ (score_sde ``ncsnpp``): the U-Net of Song et al. (ICLR 2021), pure PyTorch.

Written from the behavioural specification of the official score_sde_pytorch code (no code copied; no
CUDA extension: FIR resampling is in ``models/fir.py``).  Every layer lives in one ``nn.ModuleList``
``all_modules`` in construction order, and the forward pass consumes it in the same order, so official
state_dict keys (``all_modules.<N>.<sub>``), shapes and the named-parameter order (which the positional
EMA list relies on) are reproduced exactly.  The buffer ``sigmas`` (descending geometric schedule) is a
state_dict key as in the official model, but float32 here (official checkpoints store float64;
``load_state_dict`` casts on copy), so outputs stay float32 for the positional model too.

``net(x, cond)``: ``x`` (B, C, H, W) in [0, 1] unless ``data.centered``; ``cond`` = sigma (B,) for the
Fourier (continuous) embedding, the integer level (B,) (0 = sigma_max) for the positional one.  With
``scale_by_sigma`` the output is divided by sigma, i.e. it is the score.

Notes on official behaviour kept or resolved here:
* ``upsample_conv_2d`` (FIR upsampling with a conv, used only with ``progressive = 'residual'`` or with
  ``resblock_type = 'ddpm'`` + ``fir`` + ``resamp_with_conv``) cannot run in the official PyTorch port
  (it slices with negative steps); we implement the TF semantics it was ported from.  No official
  config uses it.
* ``conv_size`` and ``attention_type`` ('ddpm') are read by no official layer; they are ignored.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import register_model
from models import fir as fir_ops
from models.score import sigma_buffer

SQRT2 = math.sqrt(2.)


# ---------------------------------------------------------------------------------------------
# Initialisation and basic layers

def default_init_(tensor, scale=1.):
    """DDPM init: variance scaling, fan_avg, uniform (scale 0 -> 1e-10), axes (out, in, *receptive)."""
    scale = 1e-10 if scale == 0 else scale
    shape = tensor.shape
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    bound = math.sqrt(3. * scale / ((fan_in + fan_out) / 2.))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def conv3x3(in_ch, out_ch, bias=True, init_scale=1., stride=1, padding=1):
    conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=padding, bias=bias)
    default_init_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def conv1x1(in_ch, out_ch, bias=True, init_scale=1.):
    conv = nn.Conv2d(in_ch, out_ch, 1, bias=bias)
    default_init_(conv.weight, init_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def dense(in_dim, out_dim):
    lin = nn.Linear(in_dim, out_dim)
    default_init_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


def group_norm(channels, groups=None):
    """NCSN++'s GroupNorm: min(C / 4, 32) groups (``groups``: a fixed count, e.g. 32 in the DDPM network)."""
    return nn.GroupNorm(num_groups=groups or min(channels // 4, 32), num_channels=channels, eps=1e-6)


def get_act(name):
    name = name.lower()
    if name == 'swish':
        return nn.SiLU()
    if name == 'elu':
        return nn.ELU()
    if name == 'relu':
        return nn.ReLU()
    if name == 'lrelu':
        return nn.LeakyReLU(negative_slope=0.2)
    raise NotImplementedError(f'model.nonlinearity {name!r}: expected swish, elu, relu or lrelu')


class NIN(nn.Module):
    """Per-pixel linear map (network-in-network): params ``W [in, out]`` (transposed vs nn.Linear), ``b [out]``."""

    def __init__(self, in_dim, out_dim, init_scale=0.1):
        super().__init__()
        self.W = nn.Parameter(default_init_(torch.empty(in_dim, out_dim), init_scale))
        self.b = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x):
        # (B, C, H, W) -> (B, out, H, W); a 1x1 conv with weight W^T.
        return F.conv2d(x, self.W.t()[:, :, None, None], self.b)


class GaussianFourierProjection(nn.Module):
    """[sin(2 pi x W), cos(2 pi x W)] of a (B,) input; ``W`` ~ N(0, scale^2) fixed (requires_grad=False)."""

    def __init__(self, embedding_size=256, scale=1.):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x):
        # Same operation order as the official code: the arguments reach |x W| 2 pi ~ 1e3, where
        # float32 rounding of the argument is visible in sin/cos.
        proj = x[:, None] * self.W[None, :] * 2 * np.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def timestep_embedding(timesteps, dim, max_positions=10000):
    """DDPM sinusoidal embedding of (B,) levels: [sin(t f), cos(t f)], f_j = exp(-j log(max_pos) / (dim/2 - 1))."""
    half = dim // 2
    freq = math.log(max_positions) / (half - 1)
    freq = torch.exp(torch.arange(half, dtype=torch.float32, device=timesteps.device) * -freq)
    emb = timesteps.float()[:, None] * freq[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


# ---------------------------------------------------------------------------------------------
# NCSN++ blocks

class AttnBlockpp(nn.Module):
    """Self-attention over all H*W positions: q, k, v = NIN_0/1/2(GN(x)); out = (x + NIN_3(softmax(q k^T / sqrt C) v)) [/ sqrt 2]."""

    def __init__(self, channels, skip_rescale=False, init_scale=0., groups=None):
        super().__init__()
        self.GroupNorm_0 = group_norm(channels, groups)
        self.NIN_0 = NIN(channels, channels)
        self.NIN_1 = NIN(channels, channels)
        self.NIN_2 = NIN(channels, channels)
        self.NIN_3 = NIN(channels, channels, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.GroupNorm_0(x).reshape(B, C, H * W).transpose(1, 2)           # (B, N, C)
        wqkv = torch.cat([self.NIN_0.W, self.NIN_1.W, self.NIN_2.W], dim=1)    # (C, 3C)
        bqkv = torch.cat([self.NIN_0.b, self.NIN_1.b, self.NIN_2.b])
        q, k, v = torch.addmm(bqkv, h.reshape(B * H * W, C), wqkv).reshape(B, H * W, 3 * C).split(C, dim=2)
        w = torch.bmm(q, k.transpose(1, 2)) * (int(C) ** (-0.5))               # (B, N, N)
        w = torch.softmax(w, dim=-1)
        h = torch.bmm(w, v)                                                     # (B, N, C)
        h = torch.addmm(self.NIN_3.b, h.reshape(B * H * W, C), self.NIN_3.W)
        h = h.reshape(B, H * W, C).transpose(1, 2).reshape(B, C, H, W)
        h = x + h
        return h / SQRT2 if self.skip_rescale else h


class Upsample(nn.Module):
    """x2 upsampling: FIR (``Conv2d_0`` = fused FIR-upsample conv when with_conv) or nearest (+ ``Conv_0`` 3x3)."""

    def __init__(self, in_ch=None, out_ch=None, with_conv=False, fir=False, fir_kernel=(1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        if with_conv:
            if fir:
                self.Conv2d_0 = FIRConv2d(in_ch, out_ch, 3, up=True, fir_kernel=fir_kernel)
            else:
                self.Conv_0 = conv3x3(in_ch, out_ch)
        self.fir, self.with_conv, self.fir_kernel = fir, with_conv, tuple(fir_kernel)

    def forward(self, x):
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else fir_ops.upsample_2d(x, self.fir_kernel)
        h = fir_ops.naive_upsample_2d(x)
        return self.Conv_0(h) if self.with_conv else h


class Downsample(nn.Module):
    """/2 downsampling: FIR (``Conv2d_0`` = FIR pad (2, 2) + 3x3 conv stride 2 when with_conv) or
    average pooling / (pad (0, 1) + ``Conv_0`` 3x3 stride 2)."""

    def __init__(self, in_ch=None, out_ch=None, with_conv=False, fir=False, fir_kernel=(1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        if with_conv:
            if fir:
                self.Conv2d_0 = FIRConv2d(in_ch, out_ch, 3, down=True, fir_kernel=fir_kernel)
            else:
                self.Conv_0 = conv3x3(in_ch, out_ch, stride=2, padding=0)
        self.fir, self.with_conv, self.fir_kernel = fir, with_conv, tuple(fir_kernel)

    def forward(self, x):
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else fir_ops.downsample_2d(x, self.fir_kernel)
        if self.with_conv:
            return self.Conv_0(F.pad(x, (0, 1, 0, 1)))
        return F.avg_pool2d(x, 2, stride=2)


class FIRConv2d(nn.Module):
    """Conv (params ``weight [out, in, k, k]``, ``bias [out]``) fused with FIR up- or downsampling."""

    def __init__(self, in_ch, out_ch, kernel, up=False, down=False, fir_kernel=(1, 3, 3, 1), bias=True):
        super().__init__()
        assert not (up and down) and kernel % 2 == 1
        self.weight = nn.Parameter(default_init_(torch.empty(out_ch, in_ch, kernel, kernel)))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.up, self.down, self.kernel, self.fir_kernel = up, down, kernel, tuple(fir_kernel)

    def forward(self, x):
        if self.up:
            x = fir_ops.upsample_conv_2d(x, self.weight, self.fir_kernel)
        elif self.down:
            x = fir_ops.conv_downsample_2d(x, self.weight, self.fir_kernel)
        else:
            x = F.conv2d(x, self.weight, padding=self.kernel // 2)
        if self.bias is not None:
            x = x + self.bias.reshape(1, -1, 1, 1)
        return x


class Combine(nn.Module):
    """Input-pyramid merge: ``Conv_0`` (1x1, dim1 -> dim2) of the pyramid, then sum with or concat to h."""

    def __init__(self, dim1, dim2, method='cat'):
        super().__init__()
        if method not in ('cat', 'sum'):
            raise ValueError(f'model.progressive_combine {method!r}: expected cat or sum')
        self.Conv_0 = conv1x1(dim1, dim2)
        self.method = method

    def forward(self, x, y):
        h = self.Conv_0(x)
        return torch.cat([h, y], dim=1) if self.method == 'cat' else h + y


class ResnetBlockBigGANpp(nn.Module):
    """BigGAN residual block with optional FIR (or naive) resampling of both branches.

    h = act(GN0(x)); [up/down h and x]; h = Conv_0(h) + Dense_0(act(temb)); h = Conv_1(dropout(act(GN1(h))));
    x = Conv_2(x) (1x1, iff in != out or resampling); out = (x + h) [/ sqrt 2].
    """

    def __init__(self, act, in_ch, out_ch=None, temb_dim=None, up=False, down=False, dropout=0.1,
                 fir=False, fir_kernel=(1, 3, 3, 1), skip_rescale=True, init_scale=0.):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        self.GroupNorm_0 = group_norm(in_ch)
        self.Conv_0 = conv3x3(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = dense(temb_dim, out_ch)
        self.GroupNorm_1 = group_norm(out_ch)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(out_ch, out_ch, init_scale=init_scale)
        if in_ch != out_ch or up or down:
            self.Conv_2 = conv1x1(in_ch, out_ch)
        self.act = act
        self.up, self.down, self.fir, self.fir_kernel = up, down, fir, tuple(fir_kernel)
        self.skip_rescale = skip_rescale

    def _resample(self, x):
        if self.up:
            return fir_ops.upsample_2d(x, self.fir_kernel) if self.fir else fir_ops.naive_upsample_2d(x)
        if self.down:
            return fir_ops.downsample_2d(x, self.fir_kernel) if self.fir else fir_ops.naive_downsample_2d(x)
        return x

    def forward(self, x, temb=None):
        h = self.act(self.GroupNorm_0(x))
        h, x = self._resample(h), self._resample(x)
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))
        if hasattr(self, 'Conv_2'):
            x = self.Conv_2(x)
        h = x + h
        return h / SQRT2 if self.skip_rescale else h


class ResnetBlockDDPMpp(nn.Module):
    """DDPM residual block: as BigGAN without resampling; shortcut ``NIN_0`` (or ``Conv_2`` 3x3) iff in != out."""

    def __init__(self, act, in_ch, out_ch=None, temb_dim=None, conv_shortcut=False, dropout=0.1,
                 skip_rescale=False, init_scale=0., groups=None):
        super().__init__()
        out_ch = out_ch if out_ch else in_ch
        self.GroupNorm_0 = group_norm(in_ch, groups)
        self.Conv_0 = conv3x3(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = dense(temb_dim, out_ch)
        self.GroupNorm_1 = group_norm(out_ch, groups)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv3x3(out_ch, out_ch, init_scale=init_scale)
        if in_ch != out_ch:
            if conv_shortcut:
                self.Conv_2 = conv3x3(in_ch, out_ch)
            else:
                self.NIN_0 = NIN(in_ch, out_ch)
        self.act = act
        self.out_ch = out_ch
        self.skip_rescale = skip_rescale

    def forward(self, x, temb=None):
        h = self.Conv_0(self.act(self.GroupNorm_0(x)))
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))
        if x.shape[1] != self.out_ch:
            x = self.Conv_2(x) if hasattr(self, 'Conv_2') else self.NIN_0(x)
        h = x + h
        return h / SQRT2 if self.skip_rescale else h


# ---------------------------------------------------------------------------------------------
# The network

@register_model('ncsnpp')
class NCSNpp(nn.Module):
    """NCSN++ (score_sde ``models/ncsnpp.py::NCSNpp``) with the official module order and keys."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        m = config.model
        self.act = act = get_act(m.nonlinearity)
        self.register_buffer('sigmas', sigma_buffer(config))

        self.nf = nf = int(m.nf)
        ch_mult = tuple(int(c) for c in m.ch_mult)
        self.num_res_blocks = num_res_blocks = int(m.num_res_blocks)
        self.attn_resolutions = attn_resolutions = tuple(int(r) for r in m.attn_resolutions)
        dropout = float(m.dropout)
        resamp_with_conv = bool(m.resamp_with_conv)
        self.num_resolutions = num_resolutions = len(ch_mult)
        all_resolutions = [config.data.image_size // (2 ** i) for i in range(num_resolutions)]
        self.conditional = conditional = bool(m.conditional)
        fir = bool(m.fir)
        fir_kernel = tuple(m.fir_kernel)
        self.skip_rescale = skip_rescale = bool(m.skip_rescale)
        self.resblock_type = resblock_type = m.resblock_type.lower()
        self.progressive = progressive = m.progressive.lower()
        self.progressive_input = progressive_input = m.progressive_input.lower()
        self.embedding_type = embedding_type = m.embedding_type.lower()
        self.scale_by_sigma = bool(m.scale_by_sigma)
        self.centered = bool(config.data.centered)
        init_scale = float(m.init_scale)
        combine_method = m.progressive_combine.lower()
        if progressive not in ('none', 'output_skip', 'residual'):
            raise ValueError(f'model.progressive {progressive!r}: expected none, output_skip or residual')
        if progressive_input not in ('none', 'input_skip', 'residual'):
            raise ValueError(f'model.progressive_input {progressive_input!r}: expected none, input_skip or residual')
        if resblock_type not in ('biggan', 'ddpm'):
            raise ValueError(f'model.resblock_type {resblock_type!r}: expected biggan or ddpm')
        temb_dim = nf * 4

        modules = []
        if embedding_type == 'fourier':
            modules.append(GaussianFourierProjection(embedding_size=nf, scale=m.fourier_scale))
            embed_dim = 2 * nf
        elif embedding_type == 'positional':
            embed_dim = nf
        else:
            raise ValueError(f'model.embedding_type {embedding_type!r}: expected fourier or positional')
        if conditional:
            modules.append(dense(embed_dim, temb_dim))
            modules.append(dense(temb_dim, temb_dim))

        def attn(ch):
            return AttnBlockpp(ch, skip_rescale=skip_rescale, init_scale=init_scale)

        def resnet(in_ch, out_ch=None, up=False, down=False):
            if resblock_type == 'biggan':
                return ResnetBlockBigGANpp(act, in_ch, out_ch, temb_dim=temb_dim, up=up, down=down,
                                           dropout=dropout, fir=fir, fir_kernel=fir_kernel,
                                           skip_rescale=skip_rescale, init_scale=init_scale)
            return ResnetBlockDDPMpp(act, in_ch, out_ch, temb_dim=temb_dim, dropout=dropout,
                                     skip_rescale=skip_rescale, init_scale=init_scale)

        # Parameter-free FIR pyramids live outside all_modules (no keys).
        if progressive == 'output_skip':
            self.pyramid_upsample = Upsample(fir=fir, fir_kernel=fir_kernel, with_conv=False)
        if progressive_input == 'input_skip':
            self.pyramid_downsample = Downsample(fir=fir, fir_kernel=fir_kernel, with_conv=False)

        channels = config.data.num_channels
        input_pyramid_ch = channels
        modules.append(conv3x3(channels, nf))
        hs_c = [nf]
        in_ch = nf
        for i_level in range(num_resolutions):
            for _ in range(num_res_blocks):
                out_ch = nf * ch_mult[i_level]
                modules.append(resnet(in_ch, out_ch))
                in_ch = out_ch
                if all_resolutions[i_level] in attn_resolutions:
                    modules.append(attn(in_ch))
                hs_c.append(in_ch)
            if i_level != num_resolutions - 1:
                if resblock_type == 'ddpm':
                    modules.append(Downsample(in_ch=in_ch, with_conv=resamp_with_conv, fir=fir, fir_kernel=fir_kernel))
                else:
                    modules.append(resnet(in_ch, down=True))
                if progressive_input == 'input_skip':
                    modules.append(Combine(input_pyramid_ch, in_ch, method=combine_method))
                    if combine_method == 'cat':
                        in_ch *= 2
                elif progressive_input == 'residual':
                    modules.append(Downsample(in_ch=input_pyramid_ch, out_ch=in_ch, with_conv=True,
                                              fir=fir, fir_kernel=fir_kernel))
                    input_pyramid_ch = in_ch
                hs_c.append(in_ch)

        in_ch = hs_c[-1]
        modules.append(resnet(in_ch))
        modules.append(attn(in_ch))
        modules.append(resnet(in_ch))

        pyramid_ch = 0
        for i_level in reversed(range(num_resolutions)):
            for _ in range(num_res_blocks + 1):
                out_ch = nf * ch_mult[i_level]
                modules.append(resnet(in_ch + hs_c.pop(), out_ch))
                in_ch = out_ch
            if all_resolutions[i_level] in attn_resolutions:
                modules.append(attn(in_ch))
            if progressive != 'none':
                if i_level == num_resolutions - 1:
                    modules.append(group_norm(in_ch))
                    if progressive == 'output_skip':
                        modules.append(conv3x3(in_ch, channels, init_scale=init_scale))
                        pyramid_ch = channels
                    else:
                        modules.append(conv3x3(in_ch, in_ch))
                        pyramid_ch = in_ch
                elif progressive == 'output_skip':
                    modules.append(group_norm(in_ch))
                    modules.append(conv3x3(in_ch, channels, init_scale=init_scale))
                    pyramid_ch = channels
                else:
                    modules.append(Upsample(in_ch=pyramid_ch, out_ch=in_ch, with_conv=True, fir=fir,
                                            fir_kernel=fir_kernel))
                    pyramid_ch = in_ch
            if i_level != 0:
                if resblock_type == 'ddpm':
                    modules.append(Upsample(in_ch=in_ch, with_conv=resamp_with_conv, fir=fir, fir_kernel=fir_kernel))
                else:
                    modules.append(resnet(in_ch, up=True))
        assert not hs_c

        if progressive != 'output_skip':
            modules.append(group_norm(in_ch))
            modules.append(conv3x3(in_ch, channels, init_scale=init_scale))

        self.all_modules = nn.ModuleList(modules)

    def forward(self, x, time_cond):
        modules = iter(self.all_modules)
        B = x.shape[0]
        time_cond = time_cond.reshape(-1)
        if time_cond.shape[0] == 1 and B != 1:
            time_cond = time_cond.expand(B)

        if self.embedding_type == 'fourier':
            used_sigmas = time_cond
            temb = next(modules)(torch.log(used_sigmas))
        else:
            used_sigmas = self.sigmas[time_cond.long()]
            temb = timestep_embedding(time_cond, self.nf)
        if self.conditional:
            temb = next(modules)(temb)
            temb = next(modules)(self.act(temb))
        else:
            temb = None

        if not self.centered:
            x = 2 * x - 1.

        # Down path
        input_pyramid = x if self.progressive_input != 'none' else None
        hs = [next(modules)(x)]
        for i_level in range(self.num_resolutions):
            for _ in range(self.num_res_blocks):
                h = next(modules)(hs[-1], temb)
                if h.shape[-1] in self.attn_resolutions:
                    h = next(modules)(h)
                hs.append(h)
            if i_level != self.num_resolutions - 1:
                if self.resblock_type == 'ddpm':
                    h = next(modules)(hs[-1])
                else:
                    h = next(modules)(hs[-1], temb)
                if self.progressive_input == 'input_skip':
                    input_pyramid = self.pyramid_downsample(input_pyramid)
                    h = next(modules)(input_pyramid, h)
                elif self.progressive_input == 'residual':
                    input_pyramid = next(modules)(input_pyramid)
                    input_pyramid = input_pyramid + h
                    if self.skip_rescale:
                        input_pyramid = input_pyramid / SQRT2
                    h = input_pyramid
                hs.append(h)

        # Middle
        h = hs[-1]
        h = next(modules)(h, temb)
        h = next(modules)(h)
        h = next(modules)(h, temb)

        # Up path
        pyramid = None
        for i_level in reversed(range(self.num_resolutions)):
            for _ in range(self.num_res_blocks + 1):
                h = next(modules)(torch.cat([h, hs.pop()], dim=1), temb)
            if h.shape[-1] in self.attn_resolutions:
                h = next(modules)(h)
            if self.progressive != 'none':
                if i_level == self.num_resolutions - 1:
                    pyramid = self.act(next(modules)(h))
                    pyramid = next(modules)(pyramid)
                elif self.progressive == 'output_skip':
                    pyramid = self.pyramid_upsample(pyramid)
                    pyramid_h = self.act(next(modules)(h))
                    pyramid = pyramid + next(modules)(pyramid_h)
                else:
                    pyramid = next(modules)(pyramid) + h
                    if self.skip_rescale:
                        pyramid = pyramid / SQRT2
                    h = pyramid
            if i_level != 0:
                if self.resblock_type == 'ddpm':
                    h = next(modules)(h)
                else:
                    h = next(modules)(h, temb)
        assert not hs

        if self.progressive == 'output_skip':
            h = pyramid
        else:
            h = self.act(next(modules)(h))
            h = next(modules)(h)
        if next(modules, None) is not None:
            raise RuntimeError('NCSNpp.forward did not consume every module of all_modules')

        if self.scale_by_sigma:
            h = h / used_sigmas.reshape(B, *([1] * (h.dim() - 1))).to(h.dtype)
        return h
