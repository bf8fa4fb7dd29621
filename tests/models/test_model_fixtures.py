"""Official checkpoints load through the public loader and give the official outputs (to 1e-5 relative): the VE
cases of $PDS_FIXTURES and the VP (DDPM / DDPM++) cases of $PDS_FIXTURES_VP."""
import os

import pytest
import torch

from models.checkpoint import load_score_model
from sampling.sde import VPSDE
from tests.conftest import FIXTURE_TOL, FIXTURES_VP_ENV, TEST_DEVICE, fixture_cases, load_case_config, rel_err

pytestmark = pytest.mark.slow        # end-to-end: in `make test` and CI, not `make test-fast`

CASES = fixture_cases('checkpoint.pth', 'io.pt', 'config.json')
VP_CASES = fixture_cases('checkpoint.pth', 'io.pt', 'config.json', env=FIXTURES_VP_ENV)


@pytest.mark.parametrize('case', CASES)
def test_official_model_output(case):
    config = load_case_config(case)
    model = load_score_model(case, config, device=TEST_DEVICE)   # a run folder: finds checkpoint.pth, applies the EMA
    io = torch.load(os.path.join(case, 'io.pt'), map_location=TEST_DEVICE, weights_only=True)
    ref = io.get('out_float32_sigmas', io['out'])
    with torch.no_grad():
        cond = io['sigmas'] if 't' in io else io['labels']
        raw = model.net(io['x'], cond)                 # the official call signature
        via_sigma = model(io['x'], io['sigmas'])       # the one score interface: sigma -> level index where needed
    assert raw.device.type == TEST_DEVICE.type
    assert raw.dtype == torch.float32 and raw.shape == ref.shape
    print(f'{os.path.basename(case)} on {TEST_DEVICE}: max rel. error {rel_err(raw, ref):.1e}')   # shown with pytest -s
    assert rel_err(raw, ref) <= FIXTURE_TOL
    assert rel_err(via_sigma, ref) <= FIXTURE_TOL


@pytest.mark.parametrize('case', CASES)
def test_raw_weights_differ_from_ema(case):
    """use_ema=False gives the raw weights; for EMA checkpoints this must be far from the reference."""
    config = load_case_config(case)
    io = torch.load(os.path.join(case, 'io.pt'), map_location='cpu', weights_only=True)
    ref = io.get('out_float32_sigmas', io['out'])
    model = load_score_model(case, config, use_ema=False)
    with torch.no_grad():
        out = model(io['x'], io['sigmas'])
    if config.model.family == 'ncsn':
        assert rel_err(out, ref) <= FIXTURE_TOL                # NCSN has no EMA
    else:
        assert rel_err(out, ref) > 0.1


@pytest.mark.parametrize('case', VP_CASES)
def test_official_vp_model_output(case):
    """The raw network on the official labels (999 t, or t (N - 1) unrounded) and the official VP score
    -model_out / std(t) (continuous std, or the N-step table's entry at the truncated label) through vp_score."""
    config = load_case_config(case)
    model = load_score_model(case, config, device=TEST_DEVICE)
    io = torch.load(os.path.join(case, 'io.pt'), map_location=TEST_DEVICE, weights_only=True)
    sde = VPSDE(config.model.beta_min, config.model.beta_max, config.model.num_scales)
    with torch.no_grad():
        raw = model.net(io['x_input'], io['labels'])
        score = model.vp_score(io['x_input'], io['t'], sde)
    assert raw.device.type == TEST_DEVICE.type
    assert raw.dtype == torch.float32 and raw.shape == io['model_out'].shape
    std = sde.marginal_std(io['t'].cpu()) if config.training.continuous else \
        sde.sqrt_1m_alphas_cumprod[io['labels_long'].cpu()]
    # the official float32 std to within an ulp or two (float64 std, or expm1, differ by ~1e-4 at t = 0.0012)
    assert torch.allclose(std, io['std'].cpu(), rtol=2e-7, atol=0)
    print(f'{os.path.basename(case)} on {TEST_DEVICE}: max rel. error {rel_err(raw, io["model_out"]):.1e} (network), '
          f'{rel_err(score, io["out"]):.1e} (score)')
    assert rel_err(raw, io['model_out']) <= FIXTURE_TOL
    assert rel_err(score, io['out']) <= FIXTURE_TOL


@pytest.mark.parametrize('case', VP_CASES)
def test_vp_model_as_a_sigma_score(case):
    """EDM's view of the same model: score(y, sigma) with y = x / sqrt(alpha_bar) equals sqrt(alpha_bar) times the VP
    score at the level alpha_bar = 1 / (1 + sigma^2).  For a continuous model that is the official score at t (the
    float32 std of the official code loses ~1e-4 relative at small t); for a discrete one, at the chain's own levels."""
    config = load_case_config(case)
    model = load_score_model(case, config, device=TEST_DEVICE)
    io = torch.load(os.path.join(case, 'io.pt'), map_location=TEST_DEVICE, weights_only=True)
    sde = VPSDE(config.model.beta_min, config.model.beta_max, config.model.num_scales)
    if config.training.continuous:
        t = io['t'].double()
        ab = sde.alpha_bar(t)
        ref, tol = io['out'], 3e-4
    else:
        j = io['labels_long']
        ab = sde.alphas_cumprod.to(j.device)[j].double()
        with torch.no_grad():
            ref = -model.net(io['x_input'], j.float()) / sde.sqrt_1m_alphas_cumprod.to(j.device)[j][:, None, None, None]
        tol = FIXTURE_TOL
    scale = ab.sqrt()[:, None, None, None]
    with torch.no_grad():
        out = model((io['x_input'] / scale).float(), torch.sqrt(1 / ab - 1)) / scale.float()
    assert rel_err(out, ref) <= tol


@pytest.mark.parametrize('case', VP_CASES)
def test_vp_raw_weights_differ_from_ema(case):
    config = load_case_config(case)
    io = torch.load(os.path.join(case, 'io.pt'), map_location='cpu', weights_only=True)
    model = load_score_model(case, config, use_ema=False)
    with torch.no_grad():
        out = model.net(io['x_input'], io['labels'])
    assert rel_err(out, io['model_out']) > 0.1
