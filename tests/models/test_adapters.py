"""models/adapters.py: a user's own noise-prediction network (DDPM-style, on a discrete chain) or EDM-style denoiser as
the one score interface.  On the exact Gaussian N(MU, P) (tests/sampling/test_vp_rivals.py) the adapted networks
must give the VE score -(y - MU) / (P + sigma^2) itself, the eps adapter must equal the project's own VP model wrapper
(models.score.ScoreModel) call for call, and a DDPM / DDIM / PDS run through it must equal the run of the shipped
wrapper draw for draw."""
import numpy as np
import pytest
import torch

import sampling
from models.adapters import DenoiserScore, EpsScore, chain_label
from models.sde import VPSDE
from tests.sampling.test_vp_rivals import SIDE, GaussianNoiseNet, gaussian, ve_score, vp_config, vp_model

pytestmark = pytest.mark.usefixtures('single_thread')


def _chain(config):
    m = config.model
    return VPSDE(m.beta_min, m.beta_max, m.num_scales)


def _eps_adapter(config, P, MU, **kw):
    chain = _chain(config)
    net = GaussianNoiseNet(chain, False, P, MU)
    return EpsScore(net, chain.alphas_cumprod, **kw), net


def test_eps_adapter_is_the_exact_ve_score_and_the_shipped_wrapper():
    P, MU = gaussian()
    config = vp_config('ddim', continuous=False)
    score, _ = _eps_adapter(config, P, MU)
    levels = _chain(config).level_sigmas()
    y = torch.randn(6, 1, SIDE, SIDE, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    # on the chain's levels and between them (the network reads fractional labels, log-linear in sigma)
    sigma = torch.tensor([float(levels[0]), float(levels[10]), 0.37, 1.0, 42.0, float(levels[-1])],
                         dtype=torch.float64)
    got = score(y, sigma)
    want = ve_score(P, MU)(y, sigma)
    assert float((got - want).abs().max() / want.abs().max()) < 1e-10
    shipped = vp_model(config, P, MU)               # models.score.ScoreModel of the same network
    assert torch.equal(shipped(y, sigma), got)


def test_chain_labels_are_integers_on_the_levels_and_log_linear_between():
    levels = VPSDE(0.1, 20., 1000).level_sigmas().numpy()
    on = torch.tensor(levels[[0, 1, 500, 999]])
    assert np.allclose(chain_label(on, levels).numpy(), [0, 1, 500, 999], atol=1e-9)
    between = torch.tensor([np.sqrt(levels[7] * levels[8])])             # the geometric midpoint of levels 7 and 8
    assert float(chain_label(between, levels)) == pytest.approx(7.5, abs=1e-9)
    P, MU = gaussian()
    config = vp_config('ddim', continuous=False)
    chain = _chain(config)
    seen = []
    score = EpsScore(lambda x, t: seen.append(t) or torch.zeros_like(x), chain.alphas_cumprod, round_labels=True)
    score(torch.zeros(2, 1, SIDE, SIDE), torch.tensor([float(levels[3]), float(between)]))
    assert seen[0].dtype == torch.int64 and seen[0].tolist() == [3, 8]      # 7.5 rounds to even: 8


@pytest.mark.parametrize('method,pds', [('ddim', False), ('ddpm', False), ('ddpm', True)])
def test_a_run_through_the_adapter_equals_the_shipped_wrapper_run(method, pds):
    """DDIM and DDPM ancestral (with PDS in its marginal form), 50 steps of the 1000-step chain, the same draws: the
    same samples to float32 precision (the shipped wrapper reads the official time labels, the adapter the level's
    index: the same levels, another route).  Not VP PC: on a discrete model the official PC labels follow the
    sampler's N, not the chain's (an oddity of the official code that the shipped wrapper keeps for the fixtures);
    the adapter always reads the chain's own levels."""
    P, MU = gaussian()
    config = vp_config(method, continuous=False, num_steps=50)
    if pds:
        config.pds.enabled, config.pds.freq, config.pds.predictor_drift = True, 'radial', 'marginal'
    score, net = _eps_adapter(config, P, MU)
    x, nfe = sampling.sample(config, score, (8, 1, SIDE, SIDE), torch.Generator().manual_seed(5))
    shipped = vp_model(config, P, MU)
    x_ref, nfe_ref = sampling.sample(config, shipped, (8, 1, SIDE, SIDE), torch.Generator().manual_seed(5))
    assert nfe == nfe_ref == net.calls == 50
    assert float((x - x_ref).abs().max() / x_ref.abs().max()) < 1e-5


def test_denoiser_adapter_is_the_exact_ve_score():
    P, MU = gaussian()

    def denoiser(y, sigma):                       # E[y_0 | y] of N(MU, P) at noise sigma
        s2 = sigma.view(-1, 1, 1, 1) ** 2
        return MU + P / (P + s2) * (y - MU)
    y = torch.randn(4, 1, SIDE, SIDE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.01, 0.5, 3., 80.], dtype=torch.float64)
    got, want = DenoiserScore(denoiser)(y, sigma), ve_score(P, MU)(y, sigma)
    assert float((got - want).abs().max() / want.abs().max()) < 1e-12


def test_bad_chains_and_levels_outside_the_chain_are_one_line():
    with pytest.raises(ValueError, match=r'alphas_cumprod: expected a strictly decreasing sequence in \(0, 1\)'):
        EpsScore(None, [0.9, 0.95])
    with pytest.raises(ValueError, match=r'alphas_cumprod: expected'):
        EpsScore(None, [1.0, 0.5])
    score = EpsScore(lambda x, t: x, VPSDE(0.1, 20., 1000).alphas_cumprod)
    with pytest.raises(ValueError) as err:
        score(torch.zeros(1, 1, 2, 2), 500.)
    assert str(err.value) == ('sigma in [500, 500]: this chain covers [0.01, 157.4] (its first and last levels); '
                              'expected model.sigma_min / sigma_max (or the VP chain of the config) within them')


def test_the_own_model_example_of_the_docs_runs():
    """docs/usage.md's "PDS on your own model" block runs as printed; its stand-in (the exact noise predictor of
    N(0, I) data) samples N(0, I): DDPM + PDS (b) at 100 steps keeps the law (per-pixel std within 10 %)."""
    import os
    import re
    doc = open(os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'usage.md')).read()
    block = re.search(r'<!-- tests/models/test_adapters.py runs this block -->\n```python\n(.*?)```', doc, re.S).group(1)
    scope = {}
    exec(compile(block, 'docs/usage.md', 'exec'), scope)
    x, nfe = scope['x'], scope['nfe']
    assert x.shape == (4, 3, 32, 32) and nfe == 100
    assert 0.9 < float(x.std()) < 1.1 and abs(float(x.mean())) < 0.05
