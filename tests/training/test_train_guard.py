"""Training refuses what would silently mix runs: a resume on other data (path, dataset, size) or with another batch
size (unless ``force_resume``), and a second training in a busy workdir; without a terminal its progress is one
line per logged step, not progress-bar redraws."""
import os
import subprocess
import sys

import numpy as np
import pytest

from training import run_train
from train_helpers import blobs, tiny_ncsn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_resume_with_another_batch_size_or_dataset_size_is_refused_naming_both(tmp_path):
    work = str(tmp_path / 'run')
    run_train(tiny_ncsn(steps=2), work, blobs(16), progress=False)
    config = tiny_ncsn(steps=4)
    config.training.batch_size = 8
    with pytest.raises(ValueError) as err:
        run_train(config, work, blobs(20), progress=False)
    msg = str(err.value)
    assert 'training.batch_size: 4 -> 8' in msg and 'dataset size: 16 -> 20' in msg
    assert 'pass --force_resume to resume anyway' in msg and 'checkpoints-meta/latest.pth' in msg
    assert run_train(config, work, blobs(20), progress=False, force_resume=True)['step'] == 4


def _deadleaves_config(steps):
    config = tiny_ncsn(steps=steps)
    config.data.dataset = 'DeadLeaves'
    config.data.deadleaves = dict(train_count=8)
    return config


def test_resume_on_another_dataset_path_is_refused_also_for_dead_leaves(tmp_path):
    """A generated dataset (``--data deadleaves``) is recorded like any other: its path, describe() and size."""
    work = str(tmp_path / 'run')
    run_train(_deadleaves_config(1), work, 'deadleaves', progress=False)
    with pytest.raises(ValueError) as err:
        run_train(_deadleaves_config(2), work, 'deadleaves:12', progress=False)
    msg = str(err.value)
    assert "dataset path: 'deadleaves' -> 'deadleaves:12'" in msg and 'dataset size: 8 -> 12' in msg
    assert 'dataset: seed 0 (train), 8 images -> seed 0 (train), 12 images' in msg      # what its describe() says
    assert run_train(_deadleaves_config(2), work, 'deadleaves', progress=False)['step'] == 2     # same data: fine


def test_the_same_images_at_another_path_resume_and_other_images_at_the_same_path_are_refused(tmp_path):
    """The data is recognised by its content: a moved copy (a shipped resume file on a user's machine) resumes;
    a file replaced by other images of the same shape, size and name (MNIST by Fashion-MNIST) is refused."""
    rng = np.random.default_rng(0)
    first, other = (rng.integers(0, 256, (8, 8, 8), dtype=np.uint8) for _ in range(2))
    here, there = tmp_path / 'a' / 'images.npy', tmp_path / 'b' / 'images.npy'
    for path in (here, there):
        path.parent.mkdir()
        np.save(path, first)
    work = str(tmp_path / 'run')
    assert run_train(tiny_ncsn(steps=1), work, str(here), progress=False)['step'] == 1
    assert run_train(tiny_ncsn(steps=2), work, str(there), progress=False)['step'] == 2      # a moved copy
    np.save(there, other)
    with pytest.raises(ValueError) as err:
        run_train(tiny_ncsn(steps=3), work, str(there), progress=False)
    msg = str(err.value)
    assert 'dataset content (sampled images): sha256:' in msg and 'dataset path' not in msg, msg
    np.save(here, other)          # other images at the first path: refused too, naming the path and the content
    with pytest.raises(ValueError) as err:
        run_train(tiny_ncsn(steps=3), work, str(here), progress=False)
    assert 'dataset path: ' in str(err.value) and 'dataset content (sampled images)' in str(err.value)


@pytest.mark.slow
def test_a_second_training_in_a_busy_workdir_is_refused(tmp_path):
    work = tmp_path / 'run'
    images = tmp_path / 'images.npy'
    np.save(images, np.random.default_rng(0).integers(0, 256, (8, 8, 8), dtype=np.uint8))
    seen = []

    class Data(type(blobs(8))):
        def __getitem__(self, i):
            if not seen:
                seen.append(subprocess.run(
                    [sys.executable, 'main.py', '--config', 'configs/ncsn/mnist.py', '--mode', 'train', '--workdir',
                     str(work), '--data', str(images), '--device', 'cpu', '--config.model.nf=4',
                     '--config.data.image_size=8', '--config.training.batch_size=2', '--config.training.n_iters=1'],
                    cwd=ROOT, capture_output=True, text=True, timeout=600,
                    env=dict(os.environ, OMP_NUM_THREADS='1')))
            return super().__getitem__(i)
    data = Data(*blobs(8).tensors)
    run_train(tiny_ncsn(steps=1), str(work), data, progress=False)
    out = seen[0]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0 and 'Traceback' not in out.stderr, out.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"error: --workdir {str(work)!r} is in use by another run (pid "
                                                   f'{os.getpid()} on host '), lines
    assert not (work / 'run.lock').exists()


def test_progress_without_a_terminal_is_one_line_per_logged_step(tmp_path, capsys):
    run_train(tiny_ncsn(steps=4, log_freq=2), str(tmp_path / 'run'), blobs(8), progress=True)
    out, err = capsys.readouterr()
    assert out.startswith(f"training ncsn on 8 images (a dataset) in {str(tmp_path / 'run')!r}: steps 1 .. 4, batch 4")
    lines = [line for line in out.splitlines() if line.startswith('train:')]
    assert len(lines) == 2 and lines[0].startswith('train: step 2/4, loss ') and lines[1].startswith('train: step 4/4')
    assert '\r' not in err and '\r' not in out
