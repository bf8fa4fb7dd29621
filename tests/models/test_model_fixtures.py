"""Official checkpoints load through the public loader and give the official outputs (to 1e-5 relative)."""
import os

import pytest
import torch

from models.checkpoint import load_score_model
from tests.conftest import TEST_DEVICE, fixture_cases, load_case_config, rel_err

CASES = fixture_cases('checkpoint.pth', 'io.pt', 'config.json')


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
    assert rel_err(raw, ref) <= 1e-5
    assert rel_err(via_sigma, ref) <= 1e-5


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
        assert rel_err(out, ref) <= 1e-5                # NCSN has no EMA
    else:
        assert rel_err(out, ref) > 0.1
