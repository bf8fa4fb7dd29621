"""Helpers of the runner tests: the exact-score MNIST model (no network: fast), tiny NCSN checkpoints, folder
snapshots (to assert that nothing was written), and main.py in a subprocess."""
import hashlib
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, 'assets', 'mnist_train_1000.npz')
FREQ = os.path.join(ROOT, 'assets', 'stats', 'mnist_freq.npy')
ONE_THREAD = {'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}


def empirical_config(**sampling):
    """configs/mnist_empirical_pds.py (exact score of 1,000 MNIST images, radial PDS) with 3 levels x 1 step."""
    from configs import mnist_empirical_pds
    config = mnist_empirical_pds.get_config()
    config.model.data = IMAGES
    config.pds.freq_path = FREQ
    config.sampling.num_levels, config.sampling.n_steps_each = 3, 1
    for k, v in sampling.items():
        config.sampling[k] = v
    return config


def empirical_model(config):
    from models.checkpoint import load_score_model
    return load_score_model(config.model.data, config)


def ncsn_config():
    """configs/mnist_pds.py with a 4-channel NCSN, 3 levels x 1 step."""
    from configs import mnist_pds
    config = mnist_pds.get_config()
    config.model.nf = 4
    config.sampling.num_levels, config.sampling.n_steps_each = 3, 1
    return config


def save_ncsn(path, seed):
    """A random-weight NCSN (nf 4, ncsn format) at ``path``."""
    import models
    from models.checkpoint import save_checkpoint
    config = ncsn_config()
    torch.manual_seed(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_checkpoint(path, models.create_model(config), config)
    return path


def snapshot(folder):
    """{relative path: sha256} of every file under ``folder`` (empty dict if it does not exist)."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def run_main(*args, timeout=600):
    cmd = [sys.executable, os.path.join(ROOT, 'main.py'), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **ONE_THREAD))


def one_line_error(out):
    """The stderr of a failed run is one 'error: ...' line, no traceback."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0, out.stdout[-2000:]
    assert 'Traceback' not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith('error: '), out.stderr[-3000:]
    return lines[0]
