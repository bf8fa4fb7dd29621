"""NCSN (v1) and NCSNv2 score networks: dilated RefineNets with (conditional) InstanceNorm++.

Written from the behavioural specification of the official ermongroup code (no code copied).  The
module tree reproduces the official state_dict keys, shapes and order exactly, so official
checkpoints load strictly after stripping the DataParallel ``module.`` prefix.

One set of building blocks serves both families.  A block is *conditional* when it is given
``num_classes`` (NCSN v1: ConditionalInstanceNorm2d++ everywhere, norms inside the RefineNet
blocks, average pooling in CRP) and *unconditional* otherwise (NCSNv2: InstanceNorm2d++ in the
residual blocks only, no norms inside the RefineNet blocks, max pooling in CRP).  Every block has
``forward(x, y)``; unconditional norms ignore ``y``.

Networks (``net(x, y)``, ``x`` in [0, 1] unless ``data.centered``, ``y`` = LongTensor of noise-level
indices, 0 = largest sigma):

* ``ncsn``       -- NCSN v1 (CondRefineNetDilated).  Returns the raw output (not divided by sigma).
* ``ncsnv2_64``  -- NCSNv2 (CIFAR10, CelebA).  Output divided by ``sigmas[y]``.
* ``ncsnv2_128`` -- NCSNv2Deeper (LSUN).
* ``ncsnv2_256`` -- NCSNv2Deepest (FFHQ).
"""
import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import register_model
from models.score import sigma_buffer


# ---------------------------------------------------------------------------------------------
# Normalisation

class InstanceNormPlus(nn.Module):
    """InstanceNorm2d++ (``num_classes`` None; params ``alpha, gamma, beta`` of shape [C]) or
    ConditionalInstanceNorm2d++ (``embed`` = Embedding(num_classes, 3C), rows ``[gamma | alpha | beta]``).

    mu_c = spatial mean per channel; mu~ = (mu - mean_c mu) / sqrt(var_c(mu, unbiased) + 1e-5);
    out = gamma * (InstanceNorm(x) + alpha * mu~) + beta.
    """

    def __init__(self, num_features, num_classes=None):
        super().__init__()
        self.num_features = num_features
        self.conditional = num_classes is not None
        if self.conditional:
            self.embed = nn.Embedding(num_classes, 3 * num_features)
            with torch.no_grad():
                self.embed.weight[:, :num_features].normal_(1., 0.02)
                self.embed.weight[:, num_features:].zero_()
        else:
            self.alpha = nn.Parameter(torch.empty(num_features).normal_(1., 0.02))
            self.gamma = nn.Parameter(torch.empty(num_features).normal_(1., 0.02))
            self.beta = nn.Parameter(torch.zeros(num_features))

    def _params(self, y):
        if self.conditional:
            return self.embed(y).chunk(3, dim=-1)
        return self.gamma[None], self.alpha[None], self.beta[None]

    def forward(self, x, y=None):
        if _REFERENCE:
            return self.forward_reference(x, y)
        # The same function with the affine maps folded per (sample, channel):
        #   out = (x - mu) * scale + shift,  scale = gamma / sqrt(var + eps),  shift = beta + gamma alpha mu~.
        mu = x.mean(dim=(2, 3), keepdim=True)
        d = x - mu                                                  # two-pass variance: exact and, on the
        var = (d * d).mean(dim=(2, 3))                              # CPU, ~15x faster than torch.var_mean
        mu = mu[..., 0, 0]
        v, m = torch.var_mean(mu, dim=-1, keepdim=True)            # unbiased, over channels ([B, C]: tiny)
        mu_t = (mu - m) * torch.rsqrt(v + 1e-5)
        gamma, alpha, beta = self._params(y)
        scale = gamma * torch.rsqrt(var + 1e-5)
        shift = beta + gamma * alpha * mu_t
        return torch.addcmul(shift[..., None, None], d, scale[..., None, None])

    def forward_reference(self, x, y=None):
        """The definition, step by step (several passes over x); ``forward`` computes the same."""
        means = x.mean(dim=(2, 3))
        m = means.mean(dim=-1, keepdim=True)
        v = means.var(dim=-1, keepdim=True)  # unbiased, over channels
        means = (means - m) / torch.sqrt(v + 1e-5)
        h = F.instance_norm(x, eps=1e-5)
        gamma, alpha, beta = self._params(y)
        h = h + means[..., None, None] * alpha[..., None, None]
        return gamma[..., None, None] * h + beta[..., None, None]


_REFERENCE = False


@contextlib.contextmanager
def reference_ops():
    """Run the networks on the step-by-step reference path (the pre-optimisation code) inside the block:
    InstanceNorm++ in several passes, 2x2 mean pooling as four slices, identity resizes computed.  Used by
    ``benchmarks/cpu_speed.py`` (old vs new side by side) and the tests that compare both paths."""
    global _REFERENCE
    previous, _REFERENCE = _REFERENCE, True
    try:
        yield
    finally:
        _REFERENCE = previous


class _ELU(torch.autograd.Function):
    """ELU(x) = x (x > 0), exp(x) - 1 (x <= 0).  On the CPU torch's ELU (and expm1) is not vectorised: this
    computes exp(min(x, 0)) - 1 + relu(x) with vectorised kernels (~7x faster; |diff| <= 1.2e-7 for
    |ELU| <= 1) and back-propagates from the output, as torch's own ELU does."""

    @staticmethod
    def forward(ctx, x):
        out = torch.clamp(x, max=0.).exp_().sub_(1.).add_(F.relu(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, 1., 1., 1., True, out)


def elu(x):
    return F.elu(x) if _REFERENCE else _ELU.apply(x)


_BANDS = {}


def _box_matrix(n, k, device, dtype):
    """(n, n) banded matrix of 1/k: ``x @ B`` is the k-wide zero-padded moving average along the last axis."""
    key = (n, k, device, dtype)
    if key not in _BANDS:
        with torch.inference_mode(False):       # a cached ordinary tensor, usable later by autograd
            i = torch.arange(n, device=device)
            _BANDS[key] = (((i[:, None] - i[None, :]).abs() <= k // 2).to(dtype) / k)
    return _BANDS[key]


def avg_pool_same(x, k):
    """k x k average pooling, stride 1, padding k // 2, zero padding counted (AvgPool2d's default), as two
    small matrix products B_H x B_W (separable box filter): on the CPU ~6x faster than AvgPool2d."""
    if _REFERENCE:
        return F.avg_pool2d(x, k, stride=1, padding=k // 2)
    bh = _box_matrix(x.shape[-2], k, x.device, x.dtype)
    bw = _box_matrix(x.shape[-1], k, x.device, x.dtype)
    return torch.matmul(bh, torch.matmul(x, bw))


# ---------------------------------------------------------------------------------------------
# Convolutions

def conv3x3(cin, cout, bias=True, dilation=1):
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=bias)


class ConvMeanPool(nn.Module):
    """Conv (stride 1, 'same' padding) then 2x2 mean pooling; keys ``conv.*``."""

    def __init__(self, cin, cout, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        h = self.conv(x)
        if _REFERENCE or h.shape[-1] % 2 or h.shape[-2] % 2:
            return (h[:, :, ::2, ::2] + h[:, :, 1::2, ::2] + h[:, :, ::2, 1::2] + h[:, :, 1::2, 1::2]) / 4.
        return F.avg_pool2d(h, 2)      # = the four-slice mean for even sizes, one kernel


# ---------------------------------------------------------------------------------------------
# Residual block (encoder)

class ResidualBlock(nn.Module):
    """norm1 -> ELU -> conv1 -> norm2 -> ELU -> conv2, plus shortcut.

    ``resample='down'`` halves the resolution only without dilation (ConvMeanPool); with dilation it
    keeps the size and uses a dilated 3x3 shortcut.  Key order: conv1, normalize2, conv2, [shortcut], normalize1.
    """

    def __init__(self, cin, cout, num_classes=None, resample=None, dilation=1):
        super().__init__()
        dil = dilation > 1
        if resample == 'down':
            self.conv1 = conv3x3(cin, cin, dilation=dilation)
            self.normalize2 = InstanceNormPlus(cin, num_classes)
            if dil:
                self.conv2 = conv3x3(cin, cout, dilation=dilation)
                self.shortcut = conv3x3(cin, cout, dilation=dilation)
            else:
                self.conv2 = ConvMeanPool(cin, cout, 3)
                self.shortcut = ConvMeanPool(cin, cout, 1)
        elif resample is None:
            self.conv1 = conv3x3(cin, cout, dilation=dilation)
            self.normalize2 = InstanceNormPlus(cout, num_classes)
            self.conv2 = conv3x3(cout, cout, dilation=dilation)
            if cin != cout:
                self.shortcut = (conv3x3(cin, cout, dilation=dilation) if dil
                                 else nn.Conv2d(cin, cout, 1))
        else:
            raise ValueError(f'unsupported resample {resample!r}')
        if not hasattr(self, 'shortcut'):
            self.shortcut = None
        self.normalize1 = InstanceNormPlus(cin, num_classes)

    def forward(self, x, y=None):
        h = self.conv1(elu(self.normalize1(x, y)))
        h = self.conv2(elu(self.normalize2(h, y)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return skip + h


# ---------------------------------------------------------------------------------------------
# RefineNet blocks (decoder).  Conditional: norm before each conv (v1); unconditional: no norms (v2).

class RCUBlock(nn.Module):
    """Residual conv units: per block, per stage [norm ->] ELU -> conv3x3 (no bias); add the block input.
    Keys ``{b}_{s}_norm`` (conditional only) and ``{b}_{s}_conv`` with b, s from 1."""

    def __init__(self, features, n_blocks, n_stages, num_classes=None):
        super().__init__()
        self.n_blocks, self.n_stages = n_blocks, n_stages
        self.conditional = num_classes is not None
        for b in range(1, n_blocks + 1):
            for s in range(1, n_stages + 1):
                if self.conditional:
                    self.add_module(f'{b}_{s}_norm', InstanceNormPlus(features, num_classes))
                self.add_module(f'{b}_{s}_conv', conv3x3(features, features, bias=False))

    def forward(self, x, y=None):
        for b in range(1, self.n_blocks + 1):
            residual = x
            for s in range(1, self.n_stages + 1):
                h = elu(getattr(self, f'{b}_{s}_norm')(x, y) if self.conditional else x)
                x = getattr(self, f'{b}_{s}_conv')(h)
            x = x + residual
        return x


class MSFBlock(nn.Module):
    """Multi-resolution fusion: sum_i bilinear(align_corners=True)(conv_i([norm_i](x_i))) at ``shape``."""

    def __init__(self, in_planes, features, num_classes=None):
        super().__init__()
        self.convs = nn.ModuleList([conv3x3(c, features, bias=True) for c in in_planes])
        if num_classes is not None:
            self.norms = nn.ModuleList([InstanceNormPlus(c, num_classes) for c in in_planes])
        else:
            self.norms = None

    def forward(self, xs, y, shape):
        out = 0.
        for i, x in enumerate(xs):
            if self.norms is not None:
                x = self.norms[i](x, y)
            h = self.convs[i](x)
            if _REFERENCE or tuple(h.shape[2:]) != tuple(shape):   # same size + align_corners: identity
                h = F.interpolate(h, size=shape, mode='bilinear', align_corners=True)
            out = out + h
        return out


class CRPBlock(nn.Module):
    """Chained residual pooling: x = ELU(x); path = x; per stage path = conv(pool([norm](path))); x += path.
    Pooling 5x5 / stride 1 / pad 2: average (conditional, v1) or max (unconditional, v2)."""

    def __init__(self, features, n_stages, num_classes=None):
        super().__init__()
        self.convs = nn.ModuleList([conv3x3(features, features, bias=False) for _ in range(n_stages)])
        if num_classes is not None:
            self.norms = nn.ModuleList([InstanceNormPlus(features, num_classes) for _ in range(n_stages)])
            self.pool = lambda h: avg_pool_same(h, 5)
        else:
            self.norms = None
            self.pool = nn.MaxPool2d(5, stride=1, padding=2)

    def forward(self, x, y=None):
        x = elu(x)
        path = x
        for i, conv in enumerate(self.convs):
            if self.norms is not None:
                path = self.norms[i](path, y)
            path = conv(self.pool(path))
            x = path + x
        return x


class RefineBlock(nn.Module):
    """adapt_convs (RCU 2x2 per input) -> msf (if >1 input) -> crp (2 stages) -> output_convs
    (RCU, 3 blocks if ``end`` else 1).  Key order: adapt_convs, output_convs, msf, crp."""

    def __init__(self, in_planes, features, num_classes=None, start=False, end=False):
        super().__init__()
        self.adapt_convs = nn.ModuleList([RCUBlock(c, 2, 2, num_classes) for c in in_planes])
        self.output_convs = RCUBlock(features, 3 if end else 1, 2, num_classes)
        self.msf = None if start else MSFBlock(in_planes, features, num_classes)
        self.crp = CRPBlock(features, 2, num_classes)

    def forward(self, xs, y, shape):
        hs = [adapt(x, y) for adapt, x in zip(self.adapt_convs, xs)]
        h = hs[0] if self.msf is None else self.msf(hs, y, shape)
        return self.output_convs(self.crp(h, y), y)


# ---------------------------------------------------------------------------------------------
# Networks

class _RefineNet(nn.Module):
    """Generic dilated RefineNet.

    ``levels`` (shallow -> deep, data-flow order): ``(res_name, blocks, refine_name, features)`` with
    ``blocks`` = list of ``(cin, cout, resample, dilation)`` in units of ngf.  Level k's refine block takes
    ``[res output, previous (deeper) refine output]`` and outputs ``features * ngf`` channels at the res
    output's resolution.  ``refine_order`` is the registration (state_dict) order of the refine blocks.
    """
    conditional = False
    scale_by_sigma = True
    levels = ()
    refine_order = ()

    def __init__(self, config):
        super().__init__()
        ngf = config.model.nf
        channels = config.data.num_channels
        self.centered = bool(config.data.get('centered', False))
        nc = config.model.num_scales if self.conditional else None
        # v2: `sigmas` is the first state_dict entry; v1: same attribute, not saved (official v1 has none).
        self.register_buffer('sigmas', sigma_buffer(config), persistent=self.scale_by_sigma)

        self.begin_conv = conv3x3(channels, ngf)
        self.normalizer = InstanceNormPlus(ngf, nc)
        self.end_conv = conv3x3(ngf, channels)
        for res_name, blocks, _, _ in self.levels:
            self.add_module(res_name, nn.ModuleList([
                ResidualBlock(cin * ngf, cout * ngf, nc, resample, dil) for cin, cout, resample, dil in blocks]))
        # in_planes of each refine block: its level's res width and the deeper refine block's width.
        refine_args = {}
        deeper = None
        for i, (_, blocks, refine_name, features) in enumerate(reversed(self.levels)):
            width = blocks[-1][1]
            in_planes = [width] if deeper is None else [width, deeper]
            refine_args[refine_name] = ([c * ngf for c in in_planes], features * ngf, nc,
                                        deeper is None, i == len(self.levels) - 1)
            deeper = features
        assert sorted(refine_args) == sorted(self.refine_order)
        for name in self.refine_order:
            self.add_module(name, RefineBlock(*refine_args[name]))

    def forward(self, x, y):
        h = x if self.centered else 2. * x - 1.
        h = self.begin_conv(h)
        feats = []
        for res_name, _, _, _ in self.levels:
            for block in getattr(self, res_name):
                h = block(h, y)
            feats.append(h)
        ref = None
        for (_, _, refine_name, _), feat in zip(reversed(self.levels), reversed(feats)):
            xs = [feat] if ref is None else [feat, ref]
            ref = getattr(self, refine_name)(xs, y, feat.shape[2:])
        out = self.end_conv(elu(self.normalizer(ref, y)))
        if self.scale_by_sigma:
            out = out / self.sigmas[y].view(-1, *([1] * (out.dim() - 1)))
        return out


_RES_64 = (
    ('res1', [(1, 1, None, 1), (1, 1, None, 1)], 'refine4', 1),
    ('res2', [(1, 2, 'down', 1), (2, 2, None, 1)], 'refine3', 1),
    ('res3', [(2, 2, 'down', 2), (2, 2, None, 2)], 'refine2', 2),
    ('res4', [(2, 2, 'down', 4), (2, 2, None, 4)], 'refine1', 2),
)
_RES1_2 = (
    ('res1', [(1, 1, None, 1), (1, 1, None, 1)], 'refine5', 1),
    ('res2', [(1, 2, 'down', 1), (2, 2, None, 1)], 'refine4', 1),
    ('res3', [(2, 2, 'down', 1), (2, 2, None, 1)], 'refine3', 2),
)
_RES4_5 = (
    ('res4', [(2, 4, 'down', 2), (4, 4, None, 2)], 'refine2', 2),
    ('res5', [(4, 4, 'down', 4), (4, 4, None, 4)], 'refine1', 4),
)


@register_model('ncsn')
class NCSN(_RefineNet):
    """NCSN v1 (CondRefineNetDilated): ConditionalInstanceNorm2d++, AvgPool CRP, raw output. 173 keys."""
    conditional = True
    scale_by_sigma = False
    levels = _RES_64
    refine_order = ('refine1', 'refine2', 'refine3', 'refine4')


@register_model('ncsnv2_64')
class NCSNv2(_RefineNet):
    """NCSNv2 (CIFAR10 / CelebA): InstanceNorm2d++, MaxPool CRP, output / sigma. 154 keys."""
    levels = _RES_64
    refine_order = ('refine1', 'refine2', 'refine3', 'refine4')


@register_model('ncsnv2_128')
class NCSNv2Deeper(_RefineNet):
    """NCSNv2Deeper (LSUN): five levels, total downsampling /4. 192 keys."""
    levels = _RES1_2 + _RES4_5
    refine_order = ('refine1', 'refine2', 'refine3', 'refine4', 'refine5')


@register_model('ncsnv2_256')
class NCSNv2Deepest(_RefineNet):
    """NCSNv2Deepest (FFHQ): Deeper plus ``res31``/``refine31`` (total /8). 230 keys."""
    levels = _RES1_2 + (('res31', [(2, 2, 'down', 1), (2, 2, None, 1)], 'refine31', 2),) + _RES4_5
    refine_order = ('refine1', 'refine2', 'refine3', 'refine31', 'refine4', 'refine5')

