"""VP models (DDPM, DDPM++): the configs build score_sde's architectures, the checkpoints round-trip in score_sde's
format, the score conventions are the official ones, and a checkpoint of the other process gets one clear line.
(The tiny official checkpoints of $PDS_FIXTURES_VP check the architectures key for key:
tests/models/test_model_fixtures.py.)"""
import importlib
import math

import pytest
import torch

import models
from configs import defaults
from models.checkpoint import CheckpointError, describe_network, load_score_model, official_object
from sampling.sde import VPSDE
from tests.models.test_checkpoint import randomized, save
from tests.models.test_checkpoint import tiny as tiny_ve

# (config module, params, state_dict keys): our build of score_sde's classes (the tiny official checkpoints verify
# the classes key for key).  score_sde's DDPM has 35,218,947 parameters, not Ho et al.'s 35.7M: its up path has
# one attention block per level at 16 px where the TF original has one after every ResNet block (2 more blocks).
STRUCTURE = [
    ('configs.vp.cifar10_ddpmpp_continuous', 61_804_419, 565),
    ('configs.vp.cifar10_ddpmpp_deep_continuous', 106_632_579, 957),
    ('configs.vp.cifar10_ncsnpp_continuous', 62_693_251, 571),
    ('configs.vp.cifar10_ncsnpp_deep_continuous', 107_521_411, 963),
    ('configs.vp.ddpm.cifar10', 35_218_947, 309),
    ('configs.vp.ddpm.cifar10_continuous', 35_218_947, 309),
    ('configs.vp.ddpm.celebahq', 111_569_923, 431),
    ('configs.vp.ddpm.church', 111_569_923, 431),
    ('configs.vp.ddpm.bedroom', 111_569_923, 431),
]


@pytest.mark.parametrize('module,params,keys', STRUCTURE, ids=[m.split('.', 1)[1] for m, _, _ in STRUCTURE])
def test_vp_config_structure(module, params, keys):
    config = importlib.import_module(module).get_config()
    assert config.training.sde == 'vpsde' and config.data.centered and not config.model.scale_by_sigma
    assert (config.model.beta_min, config.model.beta_max, config.sampling.eps) == (0.1, 20., 1e-3)
    with torch.device('meta'):
        net = models.create_model(config)
    assert sum(p.numel() for p in net.parameters()) == params
    assert len(net.state_dict()) == keys


def test_vp_sampler_defaults_are_the_official_ones():
    from configs.vp import cifar10_ddpmpp_continuous
    from configs.vp.ddpm import cifar10
    c = cifar10_ddpmpp_continuous.get_config()
    assert (c.sampling.predictor, c.sampling.corrector, c.training.continuous, c.model.embedding_type,
            c.model.fir, c.model.progressive_input) == ('euler_maruyama', 'none', True, 'positional', False, 'none')
    c = cifar10.get_config()
    assert (c.sampling.predictor, c.sampling.corrector, c.training.continuous, c.model.name) == \
        ('ancestral_sampling', 'none', False, 'ddpm')


def tiny_vp(name, continuous=True):
    c = defaults.vp(name, continuous)
    c.model.ch_mult, c.model.num_res_blocks, c.model.attn_resolutions = (1, 2), 1, (8,)
    c.model.nf = 8 if name == 'ncsnpp' else 32
    c.data.image_size = 16
    return c


@pytest.mark.parametrize('name', ['ncsnpp', 'ddpm'])
def test_vp_round_trip_with_ema(tmp_path, name):
    config = tiny_vp(name)
    net = randomized(config, 0)
    ema = [p.detach() + 1 for p in net.parameters() if p.requires_grad]
    path = save(official_object('score_sde', net, step=3, ema_params=ema), tmp_path / 'c.pth')
    model = load_score_model(path, config)
    assert all(torch.equal(a, b) for a, b in zip([p for p in model.net.parameters() if p.requires_grad], ema))
    assert model.process == 'vpsde'


def _one_line(err):
    text = str(err.value)
    assert '\n' not in text, text
    return text


def test_checkpoint_of_the_other_process_is_one_line(tmp_path):
    """A DDPM / DDPM++ (VP) checkpoint under a VE config, and a VE NCSN++ checkpoint under the VP configs."""
    ddpm = save(official_object('score_sde', randomized(tiny_vp('ddpm'), 0)), tmp_path / 'ddpm.pth')
    ddpmpp = save(official_object('score_sde', randomized(tiny_vp('ncsnpp'), 0)), tmp_path / 'ddpmpp.pth')
    ve = save(official_object('score_sde', randomized(tiny_ve('ncsnpp'), 0)), tmp_path / 've.pth')
    with pytest.raises(CheckpointError, match=r'holds a ddpm network, the config builds a ncsnpp network \(a DDPM '
                                              r'network .*VP.*the config: an NCSN\+\+ with a fourier time embedding '
                                              r'for the VE SDE\)') as err:
        load_score_model(ddpm, tiny_ve('ncsnpp'))
    _one_line(err)
    with pytest.raises(CheckpointError, match='positional time embedding .*VP SDE.*builds an NCSN\\+\\+ with a fourier '
                                              'time embedding for the VE SDE: .*missing keys') as err:
        load_score_model(ddpmpp, tiny_ve('ncsnpp'))
    _one_line(err)
    with pytest.raises(CheckpointError, match='Fourier time embedding \\(continuous VE NCSN\\+\\+.*builds an '
                                              'NCSN\\+\\+ with a positional time embedding for the VP SDE') as err:
        load_score_model(ve, tiny_vp('ncsnpp'))
    _one_line(err)
    with pytest.raises(CheckpointError, match='holds a ncsnpp network, the config builds a ddpm network') as err:
        load_score_model(ve, tiny_vp('ddpm'))
    _one_line(err)
    with pytest.raises(CheckpointError, match='holds a ncsnpp network, the config builds a ddpm network') as err:
        load_score_model(ddpmpp, tiny_vp('ddpm'))
    _one_line(err)
    with pytest.raises(CheckpointError, match='cannot hold a ddpm model') as err:
        load_score_model(save([{}, {}], tmp_path / 'list.pth'), tiny_vp('ddpm'))
    _one_line(err)


def test_describe_network():
    assert 'DDPM network' in describe_network(randomized(tiny_vp('ddpm'), 0).state_dict())
    assert 'positional' in describe_network(randomized(tiny_vp('ncsnpp'), 0).state_dict())
    assert 'Fourier' in describe_network(randomized(tiny_ve('ncsnpp'), 0).state_dict())


def test_ddpm_needs_32_groups():
    config = tiny_vp('ddpm')
    config.model.nf = 16
    with pytest.raises(ValueError, match='multiple of 32'):
        models.create_model(config)


class Recorder(torch.nn.Module):
    """A network that records its labels and returns ones."""

    def __init__(self):
        super().__init__()
        self.labels = None

    def forward(self, x, labels):
        self.labels = labels
        return torch.ones_like(x)


def _score_model(continuous):
    from models.score import ScoreModel
    return ScoreModel(Recorder(), tiny_vp('ddpm', continuous))


def test_vp_score_labels_and_std_are_the_official_ones():
    """Continuous: labels 999 t, std sqrt(1 - exp(2 m(t))); discrete: labels t (N - 1) with the sampler's N,
    unrounded, and the std of the sampler's N-step table at the truncated label."""
    x = torch.zeros(2, 3, 16, 16)
    t = torch.tensor([1., 0.3089])
    model, sde = _score_model(True), VPSDE(0.1, 20., 24)
    out = model.vp_score(x, t, sde)
    assert torch.equal(model.net.labels, t * 999)
    assert torch.equal(out[:, 0, 0, 0], -1 / sde.marginal_std(t))
    model = _score_model(False)
    out = model.vp_score(x, t, sde)
    assert torch.equal(model.net.labels, t * 23)
    assert torch.equal(out[:, 0, 0, 0], -1 / sde.sqrt_1m_alphas_cumprod[(t * 23).long()])


def test_vp_model_as_a_sigma_score():
    """EDM's view: score(y, sigma) = -net(y / sqrt(1 + sigma^2), label) / sigma; the label is 999 t(sigma)
    (continuous) or the chain index where sigma_j = sigma (discrete: exactly j on the chain's levels)."""
    y = torch.ones(2, 3, 16, 16)
    model = _score_model(True)
    sde = model.vp
    t = torch.tensor([0.7, 0.01], dtype=torch.float64)
    sigma = sde.sigma(t)
    out = model(y, sigma)
    assert torch.allclose(model.net.labels.double(), 999 * t, rtol=1e-6)
    assert torch.allclose(out[:, 0, 0, 0].double(), -1 / sigma, rtol=1e-6)
    model = _score_model(False)
    j = torch.tensor([999, 17])
    sigma = torch.sqrt(1 / model.vp.alphas_cumprod[j].double() - 1)
    model(y, sigma)
    assert torch.allclose(model.net.labels, j.float(), atol=1e-4)
    with pytest.raises(ValueError, match='covers 0 < sigma') as err:
        model(y, 200.)
    _one_line(err)
    with pytest.raises(ValueError, match='VE convention'):
        model(y, labels=torch.tensor([1, 2]))


def test_vp_sde_facts():
    sde = VPSDE(0.1, 20., 1000)
    assert torch.equal(sde.discrete_betas, torch.linspace(1e-4, 0.02, 1000))
    t = torch.tensor([0.5])
    m = -0.25 * 0.25 * 19.9 - 0.5 * 0.5 * 0.1
    assert abs(float(sde.marginal_std(t)) - math.sqrt(1 - math.exp(2 * m))) < 1e-6
    assert abs(float(sde.sigma(t.double())) - math.sqrt(math.exp(-2 * m) - 1)) < 1e-12
    assert sde.index(torch.tensor([1., 0.5])).tolist() == [999, 499]


def test_model_d_is_model_b_on_the_vp_recipe():
    """configs/vp/mnist_ddpmpp_cpu.py (Model D): Model B's NCSN++ network, optimiser and schedule on score_sde's VP
    DDPM++ continuous recipe.  Parameters: 839,973 against Model B's 843,137 (-0.4 %: the positional embedding's
    Linear(nf, 4 nf) replaces the Fourier one's Linear(2 nf, 4 nf)); its exact resume file fits the 16 MB limit."""
    from configs.ve import mnist_ncsnpp_cpu
    from configs.vp import mnist_ddpmpp_cpu
    import sampling
    d, b = mnist_ddpmpp_cpu.get_config(), mnist_ncsnpp_cpu.get_config()
    with torch.device('meta'):
        n_d = sum(p.numel() for p in models.create_model(d).parameters())
        n_b = sum(p.numel() for p in models.create_model(b).parameters())
    assert (n_d, n_b) == (839_973, 843_137) and abs(n_d / n_b - 1) < 0.01 and 16 * n_d < 15.5e6
    for key in ('family', 'name', 'nf', 'ch_mult', 'num_res_blocks', 'attn_resolutions', 'resblock_type', 'dropout',
                'ema_rate', 'skip_rescale', 'normalization', 'nonlinearity', 'conditional', 'resamp_with_conv'):
        assert d.model[key] == b.model[key], key
    for section, keys in (('training', ('batch_size', 'n_iters', 'snapshot_freq', 'log_freq')),
                          ('optim', ('lr', 'warmup', 'grad_clip', 'beta1', 'eps')),
                          ('data', ('dataset', 'image_size', 'num_channels', 'random_flip'))):
        for key in keys:
            assert d[section][key] == b[section][key], (section, key)
    # score_sde's VP DDPM++ continuous recipe (configs/vp/cifar10_ddpmpp_continuous.py)
    assert (d.training.sde, d.training.continuous, d.training.reduce_mean, d.training.likelihood_weighting) == \
        ('vpsde', True, True, False)
    assert (d.model.embedding_type, d.model.fir, d.model.scale_by_sigma, d.model.progressive_input) == \
        ('positional', False, False, 'none')
    assert (d.model.beta_min, d.model.beta_max, d.model.num_scales, d.data.centered) == (0.1, 20., 1000, True)
    assert (d.sampling.method, d.sampling.predictor, d.sampling.corrector, d.sampling.eps) == \
        ('pc', 'euler_maruyama', 'none', 1e-3)
    # the PDS config (configs/mnist_ddpmpp_cpu_pds.py, as Model B's): each row builds its preconditioner
    from configs import mnist_ddpmpp_cpu_pds
    assert mnist_ddpmpp_cpu_pds.get_config().pds.setting == 'table2_100it'
    for setting, its, drift, freq in (('table2_100it', 100, 'official', 'stats'),
                                      ('table2_200it', 200, 'official', 'stats'),
                                      ('marginal_100it', 100, 'marginal', 'stats'),
                                      ('marginal_200it', 200, 'marginal', 'stats'),
                                      ('auto_100it', 100, 'official', 'auto')):
        c = mnist_ddpmpp_cpu_pds.get_config(setting)
        assert sampling.iterations(c) == (its, its) and (c.pds.predictor_drift, c.pds.freq) == (drift, freq)
        assert not getattr(sampling.preconditioner(c, (1, 28, 28)), 'is_identity', False)
