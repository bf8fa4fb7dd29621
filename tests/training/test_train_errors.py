"""Training's bad inputs are one clear line: zero counts, an unreadable image (also inside a DataLoader worker), a
damaged resume file (which falls back to the newest intact checkpoint); --skip_bad works; log lines do not tear the
progress bar."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from training import run_train
from train_helpers import blobs, tiny_ncsn, tiny_ncsnv2, trainable


@pytest.mark.parametrize('field', ['snapshot_freq', 'log_freq', 'batch_size', 'n_iters'])
def test_zero_counts_are_one_error_naming_the_field(tmp_path, field):
    config = tiny_ncsn()
    config.training[field] = 0
    with pytest.raises(ValueError) as err:
        run_train(config, str(tmp_path / 'run'), blobs(8), progress=False)
    assert str(err.value).startswith(f'training.{field} = 0: expected an integer >= 1')
    assert not os.path.exists(tmp_path / 'run')


def png_folder(folder, n=8, size=8, broken=(3,)):
    os.makedirs(folder)
    images = (np.asarray(blobs(n, size).tensors[0])[:, 0] * 255).round().astype(np.uint8)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f'{i}.png'))
    for i in broken:
        data = open(os.path.join(folder, f'{i}.png'), 'rb').read()
        open(os.path.join(folder, f'{i}.png'), 'wb').write(data[:len(data) // 2])
    return folder


def test_corrupt_png_in_a_loader_worker_names_the_file(tmp_path):
    from data.readers import DataError
    data = png_folder(str(tmp_path / 'imgs'))
    with pytest.raises(DataError) as err:
        run_train(tiny_ncsn(steps=4), str(tmp_path / 'run'), data, num_workers=1, progress=False)
    msg = str(err.value)
    assert msg.startswith("cannot read image '") and '3.png' in msg and 'skip_bad' in msg
    assert 'Traceback' not in msg and 'worker process' not in msg


def test_skip_bad_trains_on_the_readable_images(tmp_path):
    data = png_folder(str(tmp_path / 'imgs'))
    with pytest.warns(UserWarning, match='skipping'):
        result = run_train(tiny_ncsn(steps=4), str(tmp_path / 'run'), data, progress=False, skip_bad=True)
    assert result['step'] == 4 and (tmp_path / 'run' / 'checkpoints' / 'checkpoint_4.pth').is_file()


@pytest.mark.slow
def test_skip_bad_from_the_command_line(tmp_path):
    import subprocess
    import sys
    from tests.runners.runner_helpers import ROOT, ONE_THREAD
    data = png_folder(str(tmp_path / 'imgs'))
    cmd = [sys.executable, 'main.py', '--config', 'configs/ncsn/mnist.py', '--mode', 'train', '--device', 'cpu',
           '--workdir', str(tmp_path / 'run'), '--data', data, '--config.model.nf=4', '--config.data.image_size=8',
           '--config.training.batch_size=4', '--config.training.n_iters=2', '--config.training.snapshot_freq=2',
           '--workers', '1']
    env = dict(os.environ, **ONE_THREAD)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode != 0 and last.startswith("error: cannot read image '") and 'pass --skip_bad' in last
    assert 'Traceback' not in out.stderr
    out = subprocess.run(cmd + ['--skip_bad'], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / 'run' / 'checkpoints' / 'checkpoint_2.pth').is_file()


def _config():
    return tiny_ncsnv2(steps=6, log_freq=1, snapshot_freq=2)


def test_truncated_latest_falls_back_to_the_newest_intact_checkpoint(tmp_path, caplog):
    work = tmp_path / 'run'
    run_train(_config(), str(work), blobs(16), progress=False, max_steps=4)
    latest = work / 'checkpoints-meta' / 'latest.pth'
    data = latest.read_bytes()
    latest.write_bytes(data[:len(data) // 3])
    newest = work / 'checkpoints' / 'checkpoint_4.pth'
    newest.write_bytes(b'')                          # damaged too: the step-2 checkpoint is the newest intact one
    with caplog.at_level('WARNING'):
        result = run_train(_config(), str(work), blobs(16), progress=False)
    warning = ' '.join(r.getMessage() for r in caplog.records if r.levelname == 'WARNING')
    assert 'latest.pth is damaged' in warning and 'checkpoint_2.pth (step 2)' in warning
    assert 'not bit-identical' in warning
    assert result['step'] == 6 and [r[0] for r in result['history']] == [1, 2, 3, 4, 5, 6]
    assert torch.load(latest, weights_only=True)['step'] == 6          # a sound latest.pth again
    assert all(torch.isfinite(p).all() for p in trainable(result['net']))


def test_damaged_latest_without_intact_checkpoint_says_which_file_to_delete(tmp_path):
    from models.checkpoint import CheckpointError
    work = tmp_path / 'run'
    run_train(_config(), str(work), blobs(16), progress=False, max_steps=2)
    (work / 'checkpoints-meta' / 'latest.pth').write_text('garbage')
    (work / 'checkpoints' / 'checkpoint_2.pth').write_text('garbage')
    with pytest.raises(CheckpointError) as err:
        run_train(_config(), str(work), blobs(16), progress=False)
    msg = str(err.value)
    assert 'latest.pth' in msg and 'holds no intact checkpoint_<k>.pth' in msg
    assert f"delete {work / 'checkpoints-meta' / 'latest.pth'} to train this workdir from scratch" in msg


def test_log_lines_go_through_the_progress_bar(tmp_path, monkeypatch, caplog):
    """While the bar is drawn a log line is written with tqdm.write (above the bar), not through a handler that
    would print it into the middle of the bar's line."""
    import tqdm
    from utils import progress
    written = []
    monkeypatch.setattr(progress, 'interactive', lambda: True)      # a terminal: the bar is drawn
    monkeypatch.setattr(tqdm.tqdm, 'write', classmethod(lambda cls, s, file=None, **kw: written.append(s)))
    caplog.set_level('INFO', logger='training.train')
    run_train(tiny_ncsn(steps=2), str(tmp_path / 'run'), blobs(8), progress=True)
    assert len(written) == 2 and written[0].startswith('INFO: step 1: loss ') and written[1].startswith('INFO: step 2')
    assert not [r for r in caplog.records if 'step 1: loss' in r.getMessage()]      # not also through logging
