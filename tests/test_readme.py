"""README's first fenced block is what a new user runs: its sample command works (with fewer samples)."""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fenced_blocks():
    text = open(os.path.join(ROOT, 'README.md')).read()
    return re.findall(r'^```[a-z]*\n(.*?)^```', text, flags=re.S | re.M)


def _run_sample(args, workdir, n=8):
    args = list(args)
    args[args.index('--workdir') + 1] = str(workdir)
    args[args.index('--num_samples') + 1] = str(n)
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(workdir / 'samples')) == sorted(f'{i}.png' for i in range(n))
    assert (workdir / 'grid.png').exists()
    return torch.from_numpy(np.load(workdir / 'batches' / 'batch_000000.npz')['samples'])


@pytest.mark.slow
def test_first_block_sample_run(tmp_path):
    """The shipped CPU-trained NCSN with PDS: the command's samples are exactly what the Python API draws
    from the same checkpoint, config and seed (so the README command is the documented sampler)."""
    import sampling
    from configs import mnist_cpu_pds
    from models.checkpoint import load_score_model
    from runners.sample import batch_generator
    lines = [line for line in fenced_blocks()[0].splitlines() if line.startswith('python main.py')]
    assert len(lines) == 1
    args = shlex.split(lines[0])[1:]
    assert args[args.index('--config') + 1] == 'configs/mnist_cpu_pds.py'
    x = _run_sample(args, tmp_path / 'first')
    config = mnist_cpu_pds.get_config()
    model = load_score_model(os.path.join(ROOT, args[args.index('--checkpoint') + 1]), config)
    shape = (min(config.sampling.batch_size, 8), 1, 28, 28)     # a batch larger than the samples asked is clamped
    ref, nfe = sampling.sample(config, model, shape, batch_generator(config.seed, 0))
    assert nfe == 20
    torch.testing.assert_close(x, ref[:8], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_exact_score_first_run(tmp_path):
    """The documented offline option without a network: the exact score of 1,000 training images; samples land
    on training images (RMS distance ~0.02, noise ~0.3)."""
    args = shlex.split('main.py --config configs/mnist_empirical_pds.py --mode sample --workdir runs/first '
                       '--num_samples 16 --device cpu')
    x = _run_sample(args, tmp_path / 'first').clamp(0, 1).flatten(1)
    train = torch.from_numpy(np.load(os.path.join(ROOT, 'assets', 'mnist_train_1000.npz'))['images']).float().flatten(1) / 255
    nearest = torch.cdist(x, train).min(1).values / x.shape[1] ** 0.5
    assert float(nearest.mean()) < 0.05


def test_second_block_is_the_test_command():
    assert fenced_blocks()[1].strip() == 'python -m pytest -q'


@pytest.mark.slow
def test_python_api_example_runs():
    text = open(os.path.join(ROOT, 'README.md')).read()
    section = text[text.index('## Python API'):]
    code = re.search(r'```python\n(.*?)```', section, flags=re.S).group(1)
    scope = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(code, 'README.md', 'exec'), scope)
    finally:
        os.chdir(cwd)
    assert scope['x'].shape == (16, 1, 28, 28) and scope['nfe'] == 20
