"""Shared test helpers: the official reference fixtures are switched on by PDS_FIXTURES (VE models and samplers) and
PDS_FIXTURES_VP (VP: DDPM / DDPM++ models and VP samplers); PDS_TEST_DEVICE (default cpu, e.g. cuda) is where the
fixture tests run the models and samplers."""
import json
import os

import ml_collections
import pytest
import torch

FIXTURES_ENV = 'PDS_FIXTURES'
FIXTURES_VP_ENV = 'PDS_FIXTURES_VP'
# the official-fixture tests run their models and samplers here (noise still drawn on the CPU, draw for draw); on
# CUDA without TF32 (cuDNN's default for convolutions), which would leave the 1e-5 tolerance by itself
TEST_DEVICE = torch.device(os.environ.get('PDS_TEST_DEVICE', 'cpu'))
# PDS_TEST_PRECISION=tf32 (issue 33, --precision tf32): on CUDA the fixture tests run with TF32 matmuls and cuDNN
# convolutions on and pass at FIXTURE_TOL = 1e-3 relative instead of 1e-5 (on the CPU tf32 changes nothing)
TEST_PRECISION = os.environ.get('PDS_TEST_PRECISION', 'fp32')
if TEST_PRECISION not in ('fp32', 'tf32'):
    raise RuntimeError(f"PDS_TEST_PRECISION={TEST_PRECISION!r}: expected 'fp32' or 'tf32'")
FIXTURE_TOL = 1e-3 if TEST_PRECISION == 'tf32' else 1e-5
if TEST_DEVICE.type == 'cuda':
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = TEST_PRECISION == 'tf32'


def fixture_cases(*required_files, env=FIXTURES_ENV):
    """pytest params, one per case folder of $PDS_FIXTURES (or the folder of ``env``, e.g. PDS_FIXTURES_VP) holding all
    ``required_files`` (ids = folder names); a single skipped param when the variable is unset."""
    root = os.environ.get(env)
    if not root:
        what = 'VP (DDPM / DDPM++) ' if env == FIXTURES_VP_ENV else ''
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f'{env} is not set (point it at the official {what}reference fixtures folder)'))]
    if not os.path.isdir(root):
        raise RuntimeError(f'{env}={root!r} is not a folder')
    cases = [os.path.join(root, name) for name in sorted(os.listdir(root))
             if all(os.path.isfile(os.path.join(root, name, f)) for f in required_files)]
    if not cases:
        raise RuntimeError(f'{env}={root!r} has no case folder with {required_files}')
    return [pytest.param(case, id=os.path.basename(case)) for case in cases]


def load_case_config(folder):
    with open(os.path.join(folder, 'config.json')) as f:
        return ml_collections.ConfigDict(json.load(f))


def rel_err(out, ref):
    return float((out.double() - ref.double()).abs().max() / ref.double().abs().max())


@pytest.fixture
def single_thread():
    """Run a test with one torch thread: tiny models are dominated by per-op overhead, one thread is fastest and
    immune to a busy machine, and subprocess comparisons see the same numbers (folders use it autouse)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
