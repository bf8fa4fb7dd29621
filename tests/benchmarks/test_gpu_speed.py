"""benchmarks/gpu_speed.py --tiny: every path (PC and annealed Langevin steps, each switch, CUDA graphs' factored step,
compile, training rows, the budget) runs on tiny shapes on the CPU; the full-size run asks for a GPU in one line."""
import pytest
import torch

from benchmarks import gpu_speed


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield


TINY = ['--tiny', '--compile_backend', 'eager', '--threads', '1']


@pytest.mark.slow
def test_tiny_run_prints_every_row(capsys, tmp_path):
    log = tmp_path / 'gpu_speed.log'
    gpu_speed.main(TINY + ['--models', 'ncsnpp32', 'ncsnv2_church96', '--configs', 'baseline', 'tf32', 'bf16',
                           'channels_last', 'cuda_graphs', 'all', '--log', str(log)])
    out = capsys.readouterr().out
    rows = {(line.split()[0], line.split()[3]) for line in out.splitlines()
            if line.startswith(('ncsnpp32 ', 'ncsnv2_church96 '))}
    for model in ('ncsnpp32', 'ncsnv2_church96'):
        for config in ('baseline', 'tf32', 'bf16', 'channels_last', 'cuda_graphs', 'all'):
            assert (model, config) in rows, (model, config, out[-3000:])
    assert 'graphs: eager (no CUDA)' in out
    assert out.count('configs.ve.mnist_ncsnpp_cpu ') == 2 and out.count('configs.ve.deadleaves32_ncsnpp_cpu ') == 2
    assert 'summary: the fastest configuration' in out and 'failed' not in out
    assert log.read_text().splitlines()[0].startswith('benchmarks/gpu_speed.py --tiny on CPU')


def test_the_budget_skips_cells_in_one_line_each(capsys):
    gpu_speed.main(TINY + ['--models', 'ncsnpp32', '--configs', 'baseline', 'compile', '--budget_s', '0.001',
                           '--no_profile'])
    out = capsys.readouterr().out
    assert 'skipped (budget: about 5 s needed, 0 s left): ncsnpp32 2 baseline' in out
    assert 'skipped (budget' in out and 'ncsnpp32 2 compile' in out


def test_the_plan_puts_cheap_cells_first():
    cells = gpu_speed.plan(gpu_speed.MODELS, list(gpu_speed.CONFIGS), True, False)
    names = [c[3] if c[0] == 'sample' else 'train' for c in cells]
    assert names[:6] == ['baseline', 'fp32', 'tf32', 'bf16', 'channels_last', 'cuda_graphs']
    assert names.index('all') < names.index('train') < names.index('compile') < names.index('max_autotune')
    keys = [(c[0], getattr(c[1], 'key', c[1]), c[2], c[3]) for c in cells]
    assert len(keys) == len(set(keys))
    batches = {(c[1].key, c[2]) for c in cells if c[0] == 'sample'}
    assert ('ncsnpp32', 512) in batches and ('ncsnpp1024', 8) in batches and ('ncsnpp256', 64) in batches


@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal is for machines without a GPU')
def test_full_size_needs_a_gpu():
    with pytest.raises(SystemExit, match='error: the full-size benchmark needs a CUDA GPU'):
        gpu_speed.main([])
