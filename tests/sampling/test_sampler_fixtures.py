"""Every official sampler case (vanilla PC, PDS PC, NCSNv2 / NCSN v1 annealed Langevin; VP PC and ancestral on
DDPM / DDPM++) is reproduced to 1e-5 relative, draw for draw, from the same seeded CPU generator."""
import json
import os

import pytest
import torch

import preconditioning
import sampling
from configs import defaults
from models.checkpoint import load_score_model
from tests.conftest import FIXTURE_TOL, FIXTURES_VP_ENV, TEST_DEVICE, fixture_cases, load_case_config, rel_err

pytestmark = pytest.mark.slow        # end-to-end: in `make test` and CI, not `make test-fast`

CASES = fixture_cases('spec.json', 'expected.pt')
VP_CASES = fixture_cases('spec.json', 'expected.pt', env=FIXTURES_VP_ENV)


def config_for(case, spec):
    """The sampler settings of a case's spec.json applied to its model case's config."""
    model_case = os.path.join(os.path.dirname(case), spec['model_case'])
    config = load_case_config(model_case)
    config.pds = defaults.pds_config()
    s = config.sampling
    if 'sde' in spec:                                          # score_sde / PDS PC sampler
        s.method = 'pc'
        s.predictor, s.corrector = spec.get('predictor', 'reverse_diffusion'), spec.get('corrector', 'langevin')
        s.snr, s.n_steps_each, s.noise_removal = spec['snr'], spec['n_steps_each'], spec['noise_removal']
        s.speed_up = spec.get('speed_up', 1.)
        s.eps = 1e-5
        s.num_steps = 0 if 'speed_up' in spec else spec['sde']['N']
        config.model.sigma_min, config.model.sigma_max = spec['sde']['sigma_min'], spec['sde']['sigma_max']
        if 'freq_mask' in spec:
            pds = config.pds
            pds.enabled, pds.alpha = True, spec['alpha']
            pds.freq, pds.freq_path = 'stats', os.path.join(case, spec['freq_mask'])
            pds.space = spec['space_mask'] is not None
            pds.space_path = os.path.join(case, spec['space_mask']) if pds.space else ''
    else:                                                      # annealed Langevin
        s.method, s.ald_variant = 'ald', config.model.family
        s.step_lr, s.n_steps_each, s.denoise, s.num_levels = spec['step_lr'], spec['n_steps_each'], spec['denoise'], 0
    return config, model_case


@pytest.mark.parametrize('case', CASES)
def test_official_sampler(case):
    with open(os.path.join(case, 'spec.json')) as f:
        spec = json.load(f)
    expected = torch.load(os.path.join(case, 'expected.pt'), map_location='cpu', weights_only=True)
    config, model_case = config_for(case, spec)
    model = load_score_model(model_case, config, device=TEST_DEVICE)
    shape = tuple(spec['shape'])
    generator = torch.Generator().manual_seed(spec['seed'])

    draws = []
    randn, rand = sampling.noise_source(generator, shape, TEST_DEVICE)     # CPU draws, moved
    counted = (lambda: draws.append('randn') or randn(), lambda: draws.append('rand') or rand())
    sampling.noise_source = lambda *a: counted
    try:
        x, nfe = sampling.sample(config, model, shape, generator, TEST_DEVICE)
        assert x.device.type == TEST_DEVICE.type
        x = x.cpu()
    finally:
        sampling.noise_source = noise_source_orig
    assert nfe == expected['nfe'] == spec['nfe']
    assert len(draws) == spec['n_draws']
    assert draws == [d[0] for d in expected['draws']]
    assert x.dtype == torch.float32 and x.shape == expected['x'].shape
    err = rel_err(x, expected['x'])
    print(f"{os.path.basename(case)} on {TEST_DEVICE}: max rel. error {err:.1e}")     # shown with pytest -s
    assert err <= FIXTURE_TOL
    if 'x_clamped' in expected:
        # saved images = clamp(x, 0, 1); the tolerance stays relative to the unclamped output's scale
        assert (x.clamp(0, 1) - expected['x_clamped']).abs().max() <= FIXTURE_TOL * expected['x'].abs().max()


noise_source_orig = sampling.noise_source


@pytest.mark.parametrize('case', CASES)
def test_official_mask_processing(case):
    with open(os.path.join(case, 'spec.json')) as f:
        spec = json.load(f)
    if 'freq_mask' not in spec:
        pytest.skip('not a PDS case')
    expected = torch.load(os.path.join(case, 'expected.pt'), map_location='cpu', weights_only=True)
    shape = tuple(spec['shape'][1:])
    for key, name in (('freq_mask_processed', spec['freq_mask']), ('space_mask_processed', spec['space_mask'])):
        if name is None:
            assert expected[key].numel() == 1 and float(expected[key]) == 1.
            continue
        ours = preconditioning.normalised_inverse(preconditioning.load_statistic(os.path.join(case, name), shape), spec['alpha'])
        assert torch.equal(ours[None], expected[key])


def vp_config_for(case, spec):
    """A VP sampler case's spec.json on its model case's config: the SDE (beta, N from the spec, not the config),
    eps, predictor, corrector, snr, n_steps_each, noise removal, continuous or discrete labels."""
    model_case = os.path.join(os.path.dirname(case), spec['model_case'])
    config = load_case_config(model_case)
    config.pds = defaults.pds_config()
    if spec['sde']['type'] != 'VPSDE':
        raise ValueError(f"{case}: a VP sampler case with sde type {spec['sde']['type']!r}")
    config.training.sde, config.training.continuous = 'vpsde', spec['continuous']
    config.model.beta_min, config.model.beta_max = spec['sde']['beta_min'], spec['sde']['beta_max']
    s = config.sampling
    s.method, s.predictor, s.corrector = 'pc', spec['predictor'], spec['corrector']
    s.snr, s.n_steps_each, s.noise_removal = spec['snr'], spec['n_steps_each'], spec['noise_removal']
    s.probability_flow = spec.get('probability_flow', False)
    s.eps, s.speed_up, s.num_steps = spec['eps'], 1., spec['sde']['N']
    return config, model_case


@pytest.mark.parametrize('case', VP_CASES)
def test_official_vp_sampler(case):
    with open(os.path.join(case, 'spec.json')) as f:
        spec = json.load(f)
    expected = torch.load(os.path.join(case, 'expected.pt'), map_location='cpu', weights_only=True)
    config, model_case = vp_config_for(case, spec)
    model = load_score_model(model_case, config, device=TEST_DEVICE)
    shape = tuple(spec['shape'])
    generator = torch.Generator().manual_seed(spec['seed'])

    draws, calls = [], []
    randn, rand = sampling.noise_source(generator, shape, TEST_DEVICE)
    counted = (lambda: draws.append('randn') or randn(), lambda: draws.append('rand') or rand())
    sampling.noise_source = lambda *a: counted
    hook = model.net.register_forward_hook(lambda *a: calls.append(1))
    try:
        x, nfe = sampling.sample(config, model, shape, generator, TEST_DEVICE)
        assert x.device.type == TEST_DEVICE.type
        x = x.cpu()
    finally:
        sampling.noise_source = noise_source_orig
        hook.remove()
    # our NFE counts the score evaluations made; the official sampler returns N (n_steps_each + 1) whatever the
    # corrector (3.13 of the VP README), so it is checked against model_calls
    assert nfe == len(calls) == expected['model_calls'] == spec['model_calls']
    assert expected['nfe'] == spec['sde']['N'] * (spec['n_steps_each'] + 1)
    assert sampling.iterations(config)[1] == nfe
    assert len(draws) == spec['n_draws'] and draws == ['randn'] * len(expected['draws'])
    assert x.dtype == torch.float32 and x.shape == expected['x'].shape
    err = rel_err(x, expected['x'])
    err_scaled = rel_err((x + 1) / 2, expected['x_inverse_scaled'])     # the inverse scaler of centred data
    print(f"{os.path.basename(case)} on {TEST_DEVICE}: max rel. error {err:.1e} (x), {err_scaled:.1e} (inverse-scaled)")
    assert err <= FIXTURE_TOL and err_scaled <= FIXTURE_TOL


@pytest.mark.parametrize('case', VP_CASES)
def test_vp_time_grid_and_chain_index(case):
    """The grid linspace(1, eps, N) and the chain index long(t (N - 1)) of every step, as the official sampler used."""
    from sampling.sde import VPSDE
    with open(os.path.join(case, 'spec.json')) as f:
        spec = json.load(f)
    expected = torch.load(os.path.join(case, 'expected.pt'), map_location='cpu', weights_only=True)
    sde = VPSDE(spec['sde']['beta_min'], spec['sde']['beta_max'], spec['sde']['N'])
    t = torch.linspace(sde.T, spec['eps'], sde.N)
    assert torch.equal(t, expected['timesteps'])
    assert torch.equal(sde.index(t), expected['grid_index'])
