"""README's first fenced block is what a new user runs: its sample command works (with fewer samples)."""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fenced_blocks():
    text = open(os.path.join(ROOT, 'README.md')).read()
    return re.findall(r'^```[a-z]*\n(.*?)^```', text, flags=re.S | re.M)


def test_first_block_sample_run(tmp_path):
    lines = [line for line in fenced_blocks()[0].splitlines() if line.startswith('python main.py')]
    assert len(lines) == 1
    args = shlex.split(lines[0])[1:]
    args[args.index('--workdir') + 1] = str(tmp_path / 'first')
    args[args.index('--num_samples') + 1] = '8'
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / 'first' / 'samples')) == sorted(f'{i}.png' for i in range(8))
    assert (tmp_path / 'first' / 'grid.png').exists()
    # the exact score of a training set: samples land on training images (RMS distance ~0.02, noise ~0.3)
    x = torch.from_numpy(np.load(tmp_path / 'first' / 'batches' / 'batch_000000.npz')['samples']).clamp(0, 1).flatten(1)
    train = torch.from_numpy(np.load(os.path.join(ROOT, 'assets', 'mnist_train_1000.npz'))['images']).float().flatten(1) / 255
    nearest = torch.cdist(x, train).min(1).values / x.shape[1] ** 0.5
    assert float(nearest.mean()) < 0.05


def test_second_block_is_the_test_command():
    assert fenced_blocks()[1].strip() == 'python -m pytest -q'


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
