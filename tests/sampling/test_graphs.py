"""CUDA-graph sampling (sampling/graphs.py, ``--cuda_graphs``).  On the CPU: the factored steps that get captured,
run eagerly, reproduce every supported sampler bit for bit and draw for draw (the generator ends in the same state),
and what cannot be captured is refused in one line.  On a GPU (``-k cuda``): the captured run equals the eager one."""
import json

import pytest
import torch

import sampling
from benchmarks.tiny_models import random_score, tiny_ncsn, tiny_ncsnpp, tiny_ncsnv2
from models.speed import Speed
from sampling import graphs

CUDA = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield


def _pc(**kw):
    c = tiny_ncsnpp()
    for k, v in kw.items():
        section, field = k.split('__')
        c[section][field] = v
    return c


CASES = {
    'pc_pds': lambda: _pc(pds__enabled=True, pds__freq='radial'),
    'pc_em_ald2': lambda: _pc(sampling__predictor='euler_maruyama', sampling__corrector='ald', sampling__n_steps_each=2),
    'pc_ancestral': lambda: _pc(sampling__predictor='ancestral_sampling', sampling__corrector='none'),
    'pc_marginal': lambda: _pc(pds__enabled=True, pds__freq='radial', pds__predictor_drift='marginal',
                               sampling__noise_removal=False),
    'edm': lambda: _pc(sampling__method='edm'),
    'edm_stochastic': lambda: _pc(sampling__method='edm_stochastic', sampling__s_tmin=0.05, sampling__s_tmax=2.),
    'ode_euler': lambda: _pc(sampling__method='ode_euler', sampling__schedule='geometric'),
    'ald_ncsnv2_pds': lambda: _with(tiny_ncsnv2(), pds__enabled=True, pds__freq='radial'),
    'ald_ncsn': tiny_ncsn,
    'edm_stochastic_ncsn': lambda: _with(tiny_ncsn(), sampling__method='edm_stochastic', sampling__num_steps=5,
                                         sampling__s_tmin=0.05, sampling__s_tmax=0.5),
}


def _with(c, **kw):
    for k, v in kw.items():
        section, field = k.split('__')
        c[section][field] = v
    return c


def _run(config, factored, device='cpu', score=None, capture=False):
    score = score or random_score(config, device=device)
    shape = (3, config.data.num_channels, config.data.image_size, config.data.image_size)
    g = torch.Generator().manual_seed(1)
    P = sampling.preconditioner(config, shape[1:], device)
    randn, rand = sampling.noise_source(g, shape, device)
    seen = []

    def callback(i, sigma, x):
        seen.append((i, sigma, float(x.abs().max())))
    with torch.inference_mode():
        if factored:
            x, nfe = graphs.sample(config, score, shape, randn, rand, P, device, callback, capture=capture)
        else:
            x, nfe = sampling.SAMPLERS[config.sampling.method](config, score, shape, randn, rand, P, device, callback)
    return x, nfe, g.get_state(), seen


@pytest.mark.parametrize('case', sorted(CASES))
def test_factored_steps_reproduce_the_sampler_bit_for_bit(case):
    config = CASES[case]()
    x, nfe, state, seen = _run(config, False)
    y, nfe2, state2, seen2 = _run(config, True)
    assert torch.equal(x, y), float((x - y).abs().max())
    assert nfe == nfe2 == sampling.iterations(config)[1]
    assert torch.equal(state, state2)                   # the same draws, no more, no fewer
    assert seen == seen2                                # the callback sees the same steps, levels and states
    assert float(x.abs().max()) > 0.1                   # a real run (init_scale 1: the score is far from zero)


@pytest.mark.parametrize('method,fields,match', [
    ('ddim', {}, "sampling.method = 'ddim' is not captured"),
    ('dpmpp_2m', {}, "sampling.method = 'dpmpp_2m' is not captured"),
    ('ode', {}, "sampling.method = 'ode' is not captured"),
    ('edm', {'sampling.step_corrector': 'langevin'}, "step_corrector = 'langevin' after an EDM step"),
    ('pc', {'training.sde': 'vpsde'}, "training.sde = 'vpsde' is not captured"),
])
def test_what_cannot_be_captured_is_refused_in_one_line(method, fields, match):
    config = tiny_ncsnpp()
    config.sampling.method = method
    for k, v in fields.items():
        section, field = k.split('.')
        config[section][field] = v
    with pytest.raises(graphs.GraphsUnsupported, match=match) as e:
        graphs.check(config)
    assert '\n' not in str(e.value) and 'expected' in str(e.value)


def test_a_per_step_filter_is_refused():
    from preconditioning import auto
    P = auto.ScheduledPreconditioner.__new__(auto.ScheduledPreconditioner)
    with pytest.raises(graphs.GraphsUnsupported, match="pds.freq = 'auto' changes the filter at every step"):
        graphs.check(tiny_ncsnpp(), P)


def test_captured_steps_are_kept_for_the_next_batch():
    """A run's next batch replays the captured steps (one entry kept); other inputs capture anew."""
    config, made = tiny_ncsnpp(), []

    def make():
        made.append(1)
        return object()
    try:
        a = graphs._cached('pc', config, 'score', 'P', (2, 1, 8, 8), 'cuda', True, make)
        assert graphs._cached('pc', config, 'score', 'P', (2, 1, 8, 8), 'cuda', True, make) is a and len(made) == 1
        config.sampling.snr = 0.2
        assert graphs._cached('pc', config, 'score', 'P', (2, 1, 8, 8), 'cuda', True, make) is not a
        assert len(made) == 2 and len(graphs._CACHE) == 1
        graphs._cached('pc', config, 'score', 'P', (2, 1, 8, 8), 'cpu', False, make)       # eager: never kept
        assert len(made) == 3 and len(graphs._CACHE) == 1
    finally:
        graphs.clear_cache()
    assert not graphs._CACHE


def test_capture_needs_cuda():
    config = tiny_ncsnpp()
    with pytest.raises(graphs.GraphsUnsupported, match='capture needs a CUDA device, got cpu'):
        _run(config, True, capture=True)


def test_sampling_with_cuda_graphs_on_the_cpu_is_a_note_and_the_same_samples(tmp_path, capsys):
    """run_sample(speed=Speed(cuda_graphs=True)) on the CPU: one note line, the eager samples, the switches in
    settings.json (no 'precision' key for fp32: older folders compare equal)."""
    from runners.sample import run_sample
    config = tiny_ncsnpp()
    score = random_score(config)
    run_sample(config, score, str(tmp_path / 'a'), 4, 2, 0, progress=False)
    run_sample(config, score, str(tmp_path / 'b'), 4, 2, 0, progress=False, speed=Speed(cuda_graphs=True))
    err = capsys.readouterr().err
    assert err.count('note: --cuda_graphs needs a CUDA device') == 1
    import numpy as np
    for b in range(2):
        a = np.load(tmp_path / 'a' / 'batches' / f'batch_{b:06d}.npz')['samples']
        c = np.load(tmp_path / 'b' / 'batches' / f'batch_{b:06d}.npz')['samples']
        assert np.array_equal(a, c)
    settings = json.load(open(tmp_path / 'b' / 'settings.json'))
    assert settings['speed']['cuda_graphs'] is True and 'precision' not in settings


def test_a_folder_sampled_in_fp32_refuses_bf16(tmp_path):
    from runners.sample import SettingsMismatch, run_sample
    config = tiny_ncsnpp()
    score = random_score(config)
    run_sample(config, score, str(tmp_path), 2, 2, 0, progress=False)
    with pytest.raises(SettingsMismatch, match=r"precision differ"):
        run_sample(config, score, str(tmp_path), 4, 2, 0, progress=False, speed=Speed(precision='bf16'))
    run_sample(config, score, str(tmp_path), 4, 2, 0, progress=False, speed=Speed())     # fp32 resumes it


# -- on a GPU ------------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not CUDA, reason='needs a CUDA GPU')
@pytest.mark.parametrize('case', ['pc_pds', 'pc_em_ald2', 'edm_stochastic', 'ode_euler', 'ald_ncsnv2_pds', 'ald_ncsn'])
def test_cuda_graph_run_equals_the_eager_run_draw_for_draw(case):
    """The captured steps replayed on CUDA give torch.equal samples to the eager sampler on CUDA (the same kernels on
    the same numbers), the same NFE and the same generator state afterwards."""
    with torch.backends.cudnn.flags(enabled=True, deterministic=True, benchmark=False):
        config = CASES[case]()
        score = random_score(config, device='cuda')
        x, nfe, state, seen = _run(config, False, 'cuda', score)
        y, nfe2, state2, seen2 = _run(config, True, 'cuda', score, capture=True)
        graphs.clear_cache()
    print(f'{case}: max |eager - graph| = {float((x - y).abs().max()):.3g}')
    assert torch.equal(x, y)
    assert nfe == nfe2 and torch.equal(state, state2) and seen == seen2


@pytest.mark.skipif(not CUDA, reason='needs a CUDA GPU')
def test_cuda_graphs_with_bf16_and_compile_through_sampling_sample():
    """sampling.sample(graphs=True) with bf16 + channels-last + compile: within 1e-2 rms of the same switches
    eagerly (compile may pick other kernels inside the graph)."""
    from models import speed as speed_lib
    config = CASES['pc_pds']()
    out = []
    for graphed in (False, True):
        score = speed_lib.apply(random_score(config, device='cuda'),
                                Speed(precision='bf16', channels_last='on', compile=True, cuda_graphs=graphed))
        out.append(sampling.sample(config, score, (4, 1, 8, 8), torch.Generator().manual_seed(0), 'cuda',
                                   graphs=graphed)[0])
    assert float((out[0] - out[1]).pow(2).mean().sqrt()) <= 1e-2 * float(out[0].std())
