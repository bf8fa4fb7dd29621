"""DDPM (score_sde ``ddpm``): the U-Net of Ho, Jain and Abbeel (NeurIPS 2020) as score_sde ships it, pure PyTorch.

Written from the behavioural specification of score_sde's DDPM network (no code copied); the layers are NCSN++'s
DDPM-style ones (``models/ncsnpp.py``) with DDPM's GroupNorm of a fixed 32 groups (so ``nf`` must be a multiple of
32).  The module order, and hence the official state_dict keys ``all_modules.<N>.<sub>`` and the named-parameter
order the positional EMA list relies on, are the official ones:

    0, 1        Dense nf -> 4 nf, 4 nf -> 4 nf        (time embedding: sinusoidal(label, nf) -> dense -> act -> dense)
    2           conv3x3 C -> nf
    down path   per level: num_res_blocks ResNet blocks (+ self-attention at attn_resolutions), then a Downsample
                (3x3 stride-2 conv after a (0, 1) pad, or 2x2 average pooling) except at the last level
    middle      ResNet, attention, ResNet
    up path     per level: num_res_blocks + 1 ResNet blocks on [h, skip], attention at attn_resolutions once after
                them (score_sde's port; Ho et al.'s TF original attends after every block, so its CIFAR-10 model has
                35.7M parameters against score_sde's 35,218,947), then an Upsample (nearest x2, + 3x3 conv) except
                at level 0
    last two    GroupNorm(32) -> act -> conv3x3 nf -> C

``net(x, labels)``: ``x`` (B, C, H, W) in [-1, 1] when ``data.centered`` (VP configs: the data scaler maps outside
the network), else in [0, 1] (mapped to 2x - 1 inside); ``labels`` (B,) float or integer time labels, embedded
without rounding (score_sde's VP score functions pass 999 t or t (N - 1)).  The output is the raw network output
(the noise prediction for VP); ``scale_by_sigma`` (score_sde's VE DDPM config) divides it by ``sigmas[labels]``.
The DDPM class always conditions on the label (its ``conditional`` switch changes nothing) and ignores
``model.embedding_type``.
"""
import torch
from torch import nn

from models import register_model
from models.ncsnpp import (AttnBlockpp, Downsample, ResnetBlockDDPMpp, Upsample, conv3x3, dense, get_act, group_norm,
                           timestep_embedding)
from models.score import sigma_buffer

GROUPS = 32


@register_model('ddpm')
class DDPM(nn.Module):
    """score_sde ``models/ddpm.py::DDPM`` with the official module order and keys."""

    def __init__(self, config):
        super().__init__()
        m = config.model
        self.act = act = get_act(m.nonlinearity)
        self.register_buffer('sigmas', sigma_buffer(config))
        self.nf = nf = int(m.nf)
        if nf % GROUPS:
            raise ValueError(f'model.nf = {nf}: the DDPM network normalises with GroupNorm of {GROUPS} groups, so nf '
                             f'must be a multiple of {GROUPS}')
        ch_mult = tuple(int(c) for c in m.ch_mult)
        self.num_res_blocks = num_res_blocks = int(m.num_res_blocks)
        self.attn_resolutions = attn_resolutions = tuple(int(r) for r in m.attn_resolutions)
        dropout, with_conv = float(m.dropout), bool(m.resamp_with_conv)
        self.num_resolutions = num_resolutions = len(ch_mult)
        resolutions = [config.data.image_size // (2 ** i) for i in range(num_resolutions)]
        self.centered = bool(config.data.centered)
        self.scale_by_sigma = bool(m.scale_by_sigma)
        channels = config.data.num_channels

        def resnet(in_ch, out_ch=None):
            return ResnetBlockDDPMpp(act, in_ch, out_ch, temb_dim=4 * nf, dropout=dropout, groups=GROUPS)

        def attn(ch):
            return AttnBlockpp(ch, groups=GROUPS)

        modules = [dense(nf, 4 * nf), dense(4 * nf, 4 * nf), conv3x3(channels, nf)]
        hs_c, in_ch = [nf], nf
        for level in range(num_resolutions):
            for _ in range(num_res_blocks):
                modules.append(resnet(in_ch, nf * ch_mult[level]))
                in_ch = nf * ch_mult[level]
                if resolutions[level] in attn_resolutions:
                    modules.append(attn(in_ch))
                hs_c.append(in_ch)
            if level != num_resolutions - 1:
                modules.append(Downsample(in_ch=in_ch, with_conv=with_conv))
                hs_c.append(in_ch)
        modules += [resnet(in_ch), attn(in_ch), resnet(in_ch)]
        for level in reversed(range(num_resolutions)):
            for _ in range(num_res_blocks + 1):
                modules.append(resnet(in_ch + hs_c.pop(), nf * ch_mult[level]))
                in_ch = nf * ch_mult[level]
            if resolutions[level] in attn_resolutions:
                modules.append(attn(in_ch))
            if level != 0:
                modules.append(Upsample(in_ch=in_ch, with_conv=with_conv))
        assert not hs_c
        modules += [group_norm(in_ch, GROUPS), conv3x3(in_ch, channels, init_scale=0.)]
        self.all_modules = nn.ModuleList(modules)

    def forward(self, x, labels):
        modules = iter(self.all_modules)
        labels = labels.reshape(-1)
        if labels.shape[0] == 1 and x.shape[0] != 1:
            labels = labels.expand(x.shape[0])
        temb = next(modules)(timestep_embedding(labels, self.nf))
        temb = next(modules)(self.act(temb))
        h = x if self.centered else 2 * x - 1.

        hs = [next(modules)(h)]
        for level in range(self.num_resolutions):
            for _ in range(self.num_res_blocks):
                h = next(modules)(hs[-1], temb)
                if h.shape[-1] in self.attn_resolutions:
                    h = next(modules)(h)
                hs.append(h)
            if level != self.num_resolutions - 1:
                hs.append(next(modules)(hs[-1]))

        h = next(modules)(hs[-1], temb)
        h = next(modules)(h)
        h = next(modules)(h, temb)

        for level in reversed(range(self.num_resolutions)):
            for _ in range(self.num_res_blocks + 1):
                h = next(modules)(torch.cat([h, hs.pop()], dim=1), temb)
            if h.shape[-1] in self.attn_resolutions:
                h = next(modules)(h)
            if level != 0:
                h = next(modules)(h)
        assert not hs
        h = self.act(next(modules)(h))
        h = next(modules)(h)
        if next(modules, None) is not None:
            raise RuntimeError('DDPM.forward did not consume every module of all_modules')
        if self.scale_by_sigma:
            h = h / self.sigmas[labels.long()].reshape(-1, 1, 1, 1).to(h.dtype)
        return h
