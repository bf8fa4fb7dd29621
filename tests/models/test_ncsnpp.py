"""NCSN++: official structure (counts, module order, key shapes) and FIR resampling against direct references."""
import numpy as np
import pytest
import torch

from configs.defaults import ve_ncsnpp, ve_ncsnpp_lsun
from models import fir
from models.ncsnpp import NCSNpp


# ---------------------------------------------------------------------------------------------
# Structure (built on the meta device: no memory, no init cost)

def _cifar(blocks=4, positional=False):
    c = ve_ncsnpp()
    c.model.num_res_blocks = blocks
    if positional:
        c.model.embedding_type = 'positional'
        c.training.continuous = False
    return c


def _ffhq_1024():
    c = ve_ncsnpp_lsun(1024)
    c.model.nf = 16
    c.model.ch_mult = (1, 2, 4, 8, 16, 32, 32, 32)
    c.model.num_res_blocks = 1
    c.model.sigma_max = 1348.
    c.sampling.snr = 0.15
    return c


STRUCTURES = {
    'cifar10_ncsnpp_continuous': (_cifar, 62_758_915, 572, 59),
    'cifar10_ncsnpp_deep_continuous': (lambda: _cifar(blocks=8), 107_587_075, 964, 95),
    'cifar10_ncsnpp': (lambda: _cifar(positional=True), 62_693_251, 571, 58),
    'ncsnpp_256': (ve_ncsnpp_lsun, 65_574_549, 646, 77),
    'ffhq_ncsnpp_1024': (_ffhq_1024, 105_785_896, 554, 70),
}


def _meta_net(builder):
    with torch.device('meta'):
        return NCSNpp(builder())


@pytest.mark.parametrize('name', list(STRUCTURES))
def test_structure_counts(name):
    builder, n_params, n_keys, n_modules = STRUCTURES[name]
    net = _meta_net(builder)
    sd = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == n_params
    assert len(sd) == n_keys
    assert len(net.all_modules) == n_modules
    assert 'sigmas' in sd and sd['sigmas'].shape == (builder().model.num_scales,)
    # The positional EMA list covers exactly the trainable params: all but the Fourier W.
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    fourier = builder().model.embedding_type == 'fourier'
    assert len(trainable) == n_keys - 1 - int(fourier)
    if fourier:
        assert not net.all_modules[0].W.requires_grad and sd['all_modules.0.W'].shape == (builder().model.nf,)


def _shape(sd, key):
    return tuple(sd[key].shape)


def test_cifar_module_table():
    sd = _meta_net(_cifar).state_dict()
    assert _shape(sd, 'all_modules.1.weight') == (512, 256)
    assert _shape(sd, 'all_modules.3.weight') == (128, 3, 3, 3)
    assert _shape(sd, 'all_modules.9.Conv2d_0.weight') == (128, 3, 3, 3)       # residual input pyramid
    assert _shape(sd, 'all_modules.19.Conv2d_0.weight') == (256, 128, 3, 3)
    assert _shape(sd, 'all_modules.25.Conv2d_0.weight') == (256, 256, 3, 3)
    assert _shape(sd, 'all_modules.8.Conv_2.weight') == (128, 128, 1, 1)        # RB DOWN has a 1x1 shortcut
    assert 'all_modules.4.Conv_2.weight' not in sd
    for i in (11, 13, 15, 17, 31, 50):                                           # attention blocks
        assert _shape(sd, f'all_modules.{i}.NIN_0.W') == (256, 256)
        assert _shape(sd, f'all_modules.{i}.NIN_3.b') == (256,)
    assert _shape(sd, 'all_modules.10.Conv_0.weight') == (256, 128, 3, 3)
    assert _shape(sd, 'all_modules.10.Dense_0.weight') == (256, 512)
    assert _shape(sd, 'all_modules.49.Conv_0.weight') == (256, 384, 3, 3)
    assert _shape(sd, 'all_modules.52.Conv_0.weight') == (128, 384, 3, 3)
    assert _shape(sd, 'all_modules.57.weight') == (128,)
    assert _shape(sd, 'all_modules.58.weight') == (3, 128, 3, 3)
    keys = list(sd)
    assert keys[:3] == ['sigmas', 'all_modules.0.W', 'all_modules.1.weight']
    assert keys[6:12] == ['all_modules.3.weight', 'all_modules.3.bias', 'all_modules.4.GroupNorm_0.weight',
                              'all_modules.4.GroupNorm_0.bias', 'all_modules.4.Conv_0.weight', 'all_modules.4.Conv_0.bias']


def test_256_module_table():
    net = _meta_net(ve_ncsnpp_lsun)
    sd = net.state_dict()
    for i, ch in ((7, 128), (11, 128), (15, 256), (19, 256), (25, 256), (29, 256)):  # input_skip Combine 1x1
        assert _shape(sd, f'all_modules.{i}.Conv_0.weight') == (ch, 3, 1, 1)
    for i in (21, 23, 33, 50):
        assert _shape(sd, f'all_modules.{i}.NIN_1.W') == (256, 256)
    for gn, conv, ch in ((38, 39, 256), (63, 64, 256), (69, 70, 128), (75, 76, 128)):   # output_skip heads
        assert _shape(sd, f'all_modules.{gn}.weight') == (ch,)
        assert _shape(sd, f'all_modules.{conv}.weight') == (3, ch, 3, 3)
    assert net.all_modules[38].num_groups == 32 and net.all_modules[38].eps == 1e-6
    assert _shape(sd, 'all_modules.62.Conv_0.weight') == (256, 384, 3, 3)
    assert _shape(sd, 'all_modules.66.Conv_0.weight') == (128, 384, 3, 3)


def test_ffhq_1024_groupnorm_groups():
    net = _meta_net(_ffhq_1024)
    assert isinstance(net.all_modules[23], type(net.all_modules[28]))            # attention at 16x16 down / mid / up
    assert type(net.all_modules[37]).__name__ == 'AttnBlockpp'
    assert net.all_modules[68].num_groups == 4 and net.all_modules[68].num_channels == 16
    assert tuple(net.all_modules[69].weight.shape) == (3, 16, 3, 3)


# ---------------------------------------------------------------------------------------------
# Forward behaviour on tiny networks

def _tiny(lsun=False, **model):
    c = ve_ncsnpp_lsun() if lsun else ve_ncsnpp()
    c.data.image_size = 16
    c.model.nf = 8
    c.model.ch_mult = (1, 2, 2)
    c.model.num_res_blocks = 1
    c.model.attn_resolutions = (8,)
    c.model.num_scales = 10
    c.model.init_scale = 1.   # the official 0 (-> 1e-10) gives denormal activations: slow on CPU, hides nothing here
    for k, v in model.items():
        c.model[k] = v
    if c.model.embedding_type == 'positional':
        c.training.continuous = False
    return c


@pytest.mark.slow
@pytest.mark.parametrize('model', [
    {},
    {'embedding_type': 'positional'},
    {'progressive': 'output_skip', 'progressive_input': 'input_skip', 'progressive_combine': 'cat'},
    {'progressive': 'residual', 'progressive_input': 'none'},
    {'resblock_type': 'ddpm', 'fir': False, 'progressive_input': 'none'},
    {'resblock_type': 'ddpm', 'progressive_input': 'input_skip', 'conditional': False},
])
def test_tiny_forward(model):
    torch.manual_seed(0)
    net = NCSNpp(_tiny(**model)).eval()
    x = torch.rand(3, 3, 16, 16)
    if net.embedding_type == 'positional':
        cond = torch.tensor([0, 4, 9])
        sig = net.sigmas[cond]
    else:
        cond = sig = torch.tensor([50., 1., 0.01])
    with torch.no_grad():
        out = net(x, cond)
        again = net(x, cond)
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(out, again)                             # dropout off in eval
    # scale_by_sigma: the same network without it returns out * sigma.
    net.scale_by_sigma = False
    with torch.no_grad():
        raw = net(x, cond)
    torch.testing.assert_close(out, raw / sig[:, None, None, None], rtol=1e-6, atol=0)


def test_positional_float64_sigmas_still_float32():
    net = NCSNpp(_tiny(embedding_type='positional')).eval()
    sd = net.state_dict()
    sd['sigmas'] = sd['sigmas'].double()                       # as in official checkpoints
    net.load_state_dict(sd)
    assert net.sigmas.dtype == torch.float32
    with torch.no_grad():
        assert net(torch.rand(2, 3, 16, 16), torch.tensor([1, 2])).dtype == torch.float32


@pytest.mark.slow
def test_backward_after_inference_mode():
    net = NCSNpp(_tiny(lsun=True))
    x = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():                               # FIR weights get cached here first
        net(x, torch.tensor([1., 2.]))
    net(x, torch.tensor([1., 2.])).square().mean().backward()
    assert net.all_modules[3].weight.grad is not None


# ---------------------------------------------------------------------------------------------
# FIR resampling against direct references (explicit zero insertion, padding, full 2-D convolution)

def _taps(k):
    k = np.asarray(k, dtype=np.float64)
    k = np.outer(k, k) if k.ndim == 1 else k
    return k / k.sum()


def ref_upfirdn(x, k, up, down, pad0, pad1):
    """(B, C, H, W) numpy: zero-insert, pad, y[i, j] = sum_ab k[a, b] p[i + K-1-a, j + K-1-b], keep every down-th."""
    B, C, H, W = x.shape
    K = k.shape[0]
    u = np.zeros((B, C, H * up, W * up))
    u[:, :, ::up, ::up] = x
    p = np.pad(u, ((0, 0), (0, 0), (pad0, pad1), (pad0, pad1)))
    Ho, Wo = p.shape[2] - K + 1, p.shape[3] - K + 1
    y = np.zeros((B, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            for a in range(K):
                for b in range(K):
                    y[:, :, i, j] += k[a, b] * p[:, :, i + K - 1 - a, j + K - 1 - b]
    return y[:, :, ::down, ::down]


KERNELS = [[1, 3, 3, 1], [1, 2, 5, 1], [1., 2.], [1, 2, 1], np.array([[1., 2., 0.], [3., 1., 1.], [0., 2., 4.]])]


def _rand(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape))


@pytest.mark.parametrize('k', KERNELS, ids=lambda k: str(np.asarray(k).tolist()))
def test_upsample_2d(k):
    x = _rand(2, 3, 5, 6)
    K = _taps(k).shape[0]
    p = K - 2
    ref = ref_upfirdn(x.numpy(), 4 * _taps(k), 2, 1, (p + 1) // 2 + 1, p // 2)
    out = fir.upsample_2d(x, k)
    assert out.shape == (2, 3, 10, 12)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fir.upsample_2d(x.float(), k).numpy(), ref, rtol=0, atol=1e-5)


def test_upsample_2d_kernel_1331_values():
    # 1-D view: y[2i] = (x[i-1] + 3 x[i]) / 4, y[2i+1] = (3 x[i] + x[i+1]) / 4, zero outside.
    x = torch.tensor([[[[1., 2., 4.]]]]).double()
    y = fir.upsample_2d(x.expand(1, 1, 3, 3).transpose(2, 3).contiguous().transpose(2, 3), [1, 3, 3, 1])
    row = np.array([1 * .75, (3 * 1 + 2) / 4, (1 + 3 * 2) / 4, (3 * 2 + 4) / 4, (2 + 3 * 4) / 4, 4 * .75])
    np.testing.assert_allclose(y[0, 0, 2].numpy(), row, atol=1e-12)         # an interior row (column sums are 1)


@pytest.mark.parametrize('k', KERNELS, ids=lambda k: str(np.asarray(k).tolist()))
def test_downsample_2d(k):
    x = _rand(2, 3, 8, 6, seed=1)
    K = _taps(k).shape[0]
    p = K - 2
    ref = ref_upfirdn(x.numpy(), _taps(k), 1, 2, (p + 1) // 2, p // 2)
    out = fir.downsample_2d(x, k)
    assert out.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


def test_conv_downsample_2d():
    x = _rand(2, 3, 8, 8, seed=2)
    w = _rand(5, 3, 3, 3, seed=3)
    k = [1, 3, 3, 1]
    f = ref_upfirdn(x.numpy(), _taps(k), 1, 1, 2, 2)                          # FIR pad (2, 2), no stride
    ref = np.zeros((2, 5, 4, 4))
    for i in range(4):
        for j in range(4):
            patch = f[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]                 # 3x3 conv, stride 2, no padding
            ref[:, :, i, j] = np.einsum('bcuv,ocuv->bo', patch, w.numpy())
    out = fir.conv_downsample_2d(x, w, k)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


def test_upsample_conv_2d():
    # TF semantics: stride-2 transposed conv with the flipped, transposed kernel (written here as a scatter),
    # then the FIR filter with gain 4 and pad ((p+1)//2 + 1, p//2 + 1), p = K - 2 - (kw - 1).
    x = _rand(2, 3, 4, 5, seed=4)
    w = _rand(6, 3, 3, 3, seed=5)
    k = [1, 3, 3, 1]
    xn, wn = x.numpy(), w.numpy()
    t = np.zeros((2, 6, 2 * 3 + 3, 2 * 4 + 3))
    for i in range(4):
        for j in range(5):
            for a in range(3):
                for b in range(3):
                    t[:, :, 2 * i + a, 2 * j + b] += np.einsum('bc,oc->bo', xn[:, :, i, j], wn[:, :, 2 - a, 2 - b])
    ref = ref_upfirdn(t, 4 * _taps(k), 1, 1, 1, 1)
    out = fir.upsample_conv_2d(x, w, k)
    assert out.shape == (2, 6, 8, 10)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


def test_fir_float32_and_general_upfirdn():
    x = _rand(1, 4, 6, 6, seed=6)
    k = [1, 3, 3, 1]
    torch.testing.assert_close(fir.upsample_2d(x, k), fir.upfirdn2d(x, k, up=2, pad=(2, 1), gain=4), rtol=0, atol=1e-12)
    torch.testing.assert_close(fir.downsample_2d(x.float(), k), fir.downsample_2d(x, k).float(), rtol=1e-6, atol=1e-6)
