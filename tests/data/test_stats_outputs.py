"""``--mode stats`` never overwrites statistics files without ``--overwrite`` (checked before the pass), names them
after the data actually read, and writes into the workdir by default (never into the shipped assets/stats)."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from data import DataError, run_stats
from data import stats as stats_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _idx_folder(folder, n=6, seed=0):
    """A plain MNIST-style IDX folder (train split) of n random 28 x 28 images."""
    os.makedirs(folder, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    with open(os.path.join(folder, 'train-images-idx3-ubyte'), 'wb') as f:
        f.write(np.array([0x803, *images.shape], dtype='>i4').tobytes())
        f.write(images.tobytes())
    return str(folder)


def _digests(folder):
    return {n: hashlib.sha256(open(os.path.join(folder, n), 'rb').read()).hexdigest() for n in os.listdir(folder)}


def test_existing_statistics_are_never_overwritten_without_overwrite(tmp_path, make_config, monkeypatch):
    data = _idx_folder(tmp_path / 'mnist')
    config = make_config('MNIST', 28, 1)
    out = str(tmp_path / 'stats')
    run_stats(config, data, out, progress=False)
    before = _digests(out)
    monkeypatch.setattr(stats_lib, 'compute_stats', lambda *a, **k: pytest.fail('the pass ran before the check'))
    with pytest.raises(DataError) as err:
        run_stats(config, _idx_folder(tmp_path / 'other' / 'mnist', seed=1), out, progress=False)
    assert f"{os.path.join(out, 'mnist_freq.npy')!r} exists" in str(err.value) and '--overwrite' in str(err.value)
    assert _digests(out) == before
    monkeypatch.undo()
    run_stats(config, _idx_folder(tmp_path / 'other' / 'mnist', seed=1), out, progress=False, overwrite=True)
    assert _digests(out)['mnist_freq.npy'] != before['mnist_freq.npy']


def test_files_are_named_after_the_data_read_not_the_config(tmp_path, make_config):
    """Fashion-MNIST read with the MNIST config is named fashion_mnist_* (as the shipped files), not mnist_*."""
    data = _idx_folder(tmp_path / 'fashion-mnist')
    res = run_stats(make_config('MNIST', 28, 1), data, str(tmp_path / 'stats'), progress=False)
    assert os.path.basename(res['freq']) == 'fashion_mnist_freq.npy' and res['record']['name'] == 'fashion_mnist'


def _stats(cwd, *args):
    cmd = [sys.executable, os.path.join(ROOT, 'main.py'), '--config', os.path.join(ROOT, 'configs', 'ncsn', 'mnist.py'),
           '--mode', 'stats', '--noplot', *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))


@pytest.mark.slow
def test_stats_write_into_the_workdir_by_default_never_into_assets(tmp_path):
    data = _idx_folder(tmp_path / 'mnist')
    out = _stats(tmp_path, '--data', data)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0 and lines == ['error: --mode stats needs --workdir (the statistics are written there; '
                                             'or name the folder with --stats_dir)'], out.stderr[-2000:]
    out = _stats(tmp_path, '--data', data, '--workdir', str(tmp_path / 'w'))
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / 'w')) == ['mnist_freq.npy', 'mnist_space.npy', 'mnist_spectrum.npy',
                                                  'mnist_stats.json']
    assert not (tmp_path / 'assets').exists()
    assert '\r' not in out.stderr and out.stdout.startswith('stats: 1/1 batches, ')     # no bar redraws in a log
