"""NCSN / NCSNv2 RefineNets: official structure counts and InstanceNorm++ math."""
import pytest
import torch

from configs.defaults import ncsn, ncsnv2
from models.refinenet import NCSN, NCSNv2, NCSNv2Deeper, NCSNv2Deepest, InstanceNormPlus


def _ncsn_cfg(nf, channels, size):
    c = ncsn()
    c.model.nf, c.data.num_channels, c.data.image_size = nf, channels, size
    return c


def _v2_cfg(name, nf=128, scales=232, size=32):
    c = ncsnv2(name)
    c.model.nf, c.model.num_scales, c.model.sigma_max, c.data.image_size = nf, scales, 50., size
    return c


@pytest.mark.parametrize('cls, cfg, n_params, n_keys', [
    (NCSN, _ncsn_cfg(64, 1, 28), 7_638_657, 173),
    (NCSN, _ncsn_cfg(128, 3, 32), 30_117_635, 173),
    (NCSNv2, _v2_cfg('ncsnv2_64'), 29_694_083, 154),
    (NCSNv2Deeper, _v2_cfg('ncsnv2_128'), 83_445_379, 192),
    (NCSNv2Deepest, _v2_cfg('ncsnv2_256'), 94_132_611, 230),
])
def test_structure_counts(cls, cfg, n_params, n_keys):
    with torch.device('meta'):
        net = cls(cfg)
    sd = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == n_params
    assert len(sd) == n_keys
    keys = list(sd)
    if cls is NCSN:
        assert 'sigmas' not in sd and net.sigmas.shape == (cfg.model.num_scales,)
        assert keys[:3] == ['begin_conv.weight', 'begin_conv.bias', 'normalizer.embed.weight']
        assert sd['normalizer.embed.weight'].shape == (cfg.model.num_scales, 3 * cfg.model.nf)
    else:
        assert keys[0] == 'sigmas' and sd['sigmas'].shape == (cfg.model.num_scales,)
        assert keys[3:6] == ['normalizer.alpha', 'normalizer.gamma', 'normalizer.beta']


def test_sigmas_geometric_descending():
    net = NCSNv2(_v2_cfg('ncsnv2_64', nf=4, scales=12))
    s = net.sigmas
    assert s.dtype == torch.float32
    assert s[0].item() == pytest.approx(50.) and s[-1].item() == pytest.approx(0.01)
    r = s[1:] / s[:-1]
    assert torch.allclose(r, r[0].expand_as(r), rtol=1e-5) and (r < 1).all()


def _instance_norm_pp_reference(x, gamma, alpha, beta):
    # gamma, alpha, beta: (B, C)
    mu = x.mean(dim=(2, 3))                                     # (B, C)
    var_sp = ((x - mu[..., None, None]) ** 2).mean(dim=(2, 3))  # biased spatial variance
    h = (x - mu[..., None, None]) / torch.sqrt(var_sp[..., None, None] + 1e-5)
    C = x.shape[1]
    m = mu.mean(dim=1, keepdim=True)
    v = ((mu - m) ** 2).sum(dim=1, keepdim=True) / (C - 1)      # unbiased over channels
    mu_t = (mu - m) / torch.sqrt(v + 1e-5)
    h = h + (mu_t * alpha)[..., None, None]
    return gamma[..., None, None] * h + beta[..., None, None]


def test_instance_norm_plus_matches_formula():
    g = torch.Generator().manual_seed(0)
    B, C, nc = 3, 5, 7
    x = torch.randn(B, C, 6, 6, generator=g, dtype=torch.float64) * 2 + torch.randn(B, C, 1, 1, generator=g, dtype=torch.float64)

    norm = InstanceNormPlus(C).double()
    with torch.no_grad():
        for p in (norm.alpha, norm.gamma, norm.beta):
            p.copy_(torch.randn(C, generator=g, dtype=torch.float64))
    ref = _instance_norm_pp_reference(x, norm.gamma.expand(B, C), norm.alpha.expand(B, C), norm.beta.expand(B, C))
    torch.testing.assert_close(norm(x), ref, rtol=1e-10, atol=1e-10)
    assert [n for n, _ in norm.named_parameters()] == ['alpha', 'gamma', 'beta']

    cnorm = InstanceNormPlus(C, num_classes=nc).double()
    with torch.no_grad():
        cnorm.embed.weight.copy_(torch.randn(nc, 3 * C, generator=g, dtype=torch.float64))
    y = torch.tensor([0, 6, 3])
    rows = cnorm.embed.weight[y]
    ref = _instance_norm_pp_reference(x, rows[:, :C], rows[:, C:2 * C], rows[:, 2 * C:])  # [gamma | alpha | beta]
    torch.testing.assert_close(cnorm(x, y), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize('cls, name, size', [
    (NCSN, 'ncsn', 28), (NCSNv2, 'ncsnv2_64', 32), (NCSNv2Deeper, 'ncsnv2_128', 32), (NCSNv2Deepest, 'ncsnv2_256', 32)])
def test_forward_shape_and_sigma_scaling(cls, name, size):
    torch.manual_seed(0)
    cfg = _ncsn_cfg(4, 1, size) if cls is NCSN else _v2_cfg(name, nf=4, scales=6, size=size)
    net = cls(cfg).eval()
    C = cfg.data.num_channels
    x = torch.rand(2, C, size, size)
    y = torch.tensor([0, cfg.model.num_scales - 1])
    with torch.no_grad():
        out = net(x, y)
        assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
        if cls is not NCSN:   # v2 divides by sigma_y; v1 returns the raw output
            net.scale_by_sigma = False
            raw = net(x, y)
            torch.testing.assert_close(out, raw / net.sigmas[y].view(-1, 1, 1, 1))


@pytest.mark.slow
def test_fused_ops_match_the_reference_path_forward_and_backward():
    """The CPU fast path (fused InstanceNorm++, vectorised ELU with its own backward, box-filter pooling, skipped
    identity resizes) against the step-by-step reference ops: outputs and every parameter gradient, in float64 so
    that only a different formula, not float32 rounding, could separate them."""
    from models.refinenet import reference_ops
    torch.manual_seed(0)
    net = NCSN(_ncsn_cfg(8, 1, 28)).train().double()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([0, 3, 6, 9])

    def run():
        net.zero_grad()
        out = net(x, y)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]
    fast, g_fast = run()
    with reference_ops():
        ref, g_ref = run()
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
