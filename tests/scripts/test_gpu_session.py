"""scripts/gpu_session.sh rehearsed on the CPU (PDS_GPU_SESSION_TINY=1): the whole session (checks, tests, training on
a wall-time limit, shipping each file <= 16 MiB, the benchmark) ends well within its budget, a second session resumes
the first's training exactly where it stopped, and a failing stage makes the exit status non-zero."""
import os
import subprocess
import zipfile

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'gpu_session.sh')


def _session(tmp_path, name, **env):
    full = dict(os.environ, PDS_GPU_SESSION_TINY='1', WORKDIR=str(tmp_path / 'work'), OUT=str(tmp_path / name),
                SAMPLE_ROOT=str(tmp_path / 'samples'),
                OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', **env)
    return subprocess.run(['bash', SCRIPT], cwd=ROOT, env=full, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_session_trains_ships_benchmarks_and_the_next_resumes(tmp_path):
    first = _session(tmp_path, 'out1', GPU_TESTS='0')
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = tmp_path / 'out1'
    files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert files == ['c64/checkpoint.pth', 'c64/checkpoints-meta/latest.pth', 'c64/loss.png', 'c64/train_log.csv',
                     'gpu_speed.log', 'samples_0.zip', 'session.log']
    assert all(os.path.getsize(out / f) <= 16 * 2 ** 20 for f in files)
    log = (out / 'session.log').read_text()
    assert '(resume: no)' in log and 'the wall-time limit, --max_minutes' in log and 'every stage passed' in log
    # the sample-only point came back packed (4 samples of c32_curves' vanilla_10it), within the files left
    assert 'samples: packing the finished points' in log and '(2 files,' in log and 'packed c32_curves/' in log
    with zipfile.ZipFile(out / 'samples_0.zip') as z:
        assert sorted(n.split('/', 3)[-1] for n in z.namelist()) == ['batches/batch_000000.npz', 'settings.json']
    step = torch.load(out / 'c64' / 'checkpoints-meta' / 'latest.pth', weights_only=True)['step']
    assert step >= 1

    second = _session(tmp_path, 'out2', GPU_TESTS='0', BENCH='0', SAMPLES='')
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    log = (tmp_path / 'out2' / 'session.log').read_text()
    assert '(resume: yes)' in log and f'resumed {tmp_path / "work"}' in log and f'at step {step}' in log
    assert torch.load(tmp_path / 'out2' / 'c64' / 'checkpoints-meta' / 'latest.pth', weights_only=True)['step'] > step


def test_a_failing_stage_fails_the_session(tmp_path):
    run = _session(tmp_path, 'out', GPU_TESTS='0', BENCH='0', CONFIG='configs/ve/no_such_config.py')
    assert run.returncode == 1
    log = (tmp_path / 'out' / 'session.log').read_text()
    assert 'FAILED: training' in log and "cannot load the config file 'configs/ve/no_such_config.py'" in log


def test_the_default_sample_only_points_exist():
    """The GPU session's default SAMPLES name points of the studies (a renamed point would fail only on the GPU)."""
    import re
    from runners.study import STUDIES
    text = open(SCRIPT).read()
    study, points = re.search(r'C64_LONG=(\w+):(\S+)', text).groups()
    assert set(points.split(',')) <= {p.name for p in STUDIES[study](None).points} and len(points.split(',')) == 10
