"""``main.py --mode sample`` end to end on a tiny random-weight NCSN: files, resume, refusals, NaN stop."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import models
from configs.ncsn import mnist
from models.checkpoint import save_checkpoint
from runners.sample import SamplingError, run_sample

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ['--config.model.nf=4', '--config.sampling.n_steps_each=1']


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    config = mnist.get_config()
    config.model.nf = 4
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('ckpt') / 'checkpoint.pth')
    save_checkpoint(path, models.create_model(config), config)
    return path


def main(*args):
    cmd = [sys.executable, 'main.py', '--config', 'configs/mnist_pds.py', '--mode', 'sample', *TINY, *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_sample_writes_resumes_and_refuses(tiny_checkpoint, tmp_path):
    work = str(tmp_path / 'run')
    out = main('--checkpoint', tiny_checkpoint, '--workdir', work, '--num_samples', '5', '--batch_size', '2')
    assert out.returncode == 0, out.stderr[-3000:]
    pngs = sorted(os.listdir(os.path.join(work, 'samples')))
    assert pngs == [f'{i}.png' for i in range(5)]
    from PIL import Image
    from runners.sample import make_grid
    shown = np.asarray(Image.open(os.path.join(work, 'grid.png')))      # the first samples of every batch, in order
    images = np.stack([np.asarray(Image.open(os.path.join(work, 'samples', f'{i}.png'))) for i in range(5)])
    images = images.reshape(5, images.shape[1], images.shape[2], -1)
    assert np.array_equal(shown.reshape(make_grid(images).shape), make_grid(images))
    settings = json.load(open(os.path.join(work, 'settings.json')))
    assert settings['iterations'] == 10 and settings['nfe'] == 10 and settings['config']['pds']['enabled']
    first = {p: open(os.path.join(work, 'samples', p), 'rb').read() for p in pngs}

    # interrupted run: batch 1 lost its marker and one image -> rerun redoes exactly that batch
    os.remove(os.path.join(work, 'batches', 'batch_000001.npz'))
    os.remove(os.path.join(work, 'samples', '3.png'))
    mtime0 = os.path.getmtime(os.path.join(work, 'samples', '0.png'))
    out = main('--checkpoint', tiny_checkpoint, '--workdir', work, '--num_samples', '5', '--batch_size', '2')
    assert out.returncode == 0, out.stderr[-3000:]
    assert {p: open(os.path.join(work, 'samples', p), 'rb').read() for p in pngs} == first
    assert os.path.getmtime(os.path.join(work, 'samples', '0.png')) == mtime0     # batch 0 not redone

    # other settings in the same folder: one clear error, nothing written
    out = main('--checkpoint', tiny_checkpoint, '--workdir', work, '--num_samples', '5', '--batch_size', '2', '--seed', '7')
    assert out.returncode != 0 and 'already holds samples made with other settings' in out.stderr
    assert 'seed' in out.stderr and 'Traceback' not in out.stderr


def test_sampling_is_independent_of_interruptions_and_ranks(tiny_checkpoint, tmp_path):
    """Two 'ranks' splitting the batches write the same images as one process."""
    from models.checkpoint import load_score_model
    config = mnist.get_config()
    config.model.nf, config.sampling.n_steps_each, config.sampling.num_levels = 4, 1, 3
    model = load_score_model(tiny_checkpoint, config)
    run_sample(config, model, str(tmp_path / 'one'), 5, 2, seed=3, progress=False)
    for rank in (0, 1):
        run_sample(config, model, str(tmp_path / 'two'), 5, 2, seed=3, rank=rank, world_size=2, progress=False)
    for i in range(5):
        a = open(tmp_path / 'one' / 'samples' / f'{i}.png', 'rb').read()
        assert a == open(tmp_path / 'two' / 'samples' / f'{i}.png', 'rb').read()
    batch = np.load(tmp_path / 'one' / 'batches' / 'batch_000002.npz')
    assert list(batch['indices']) == [4] and batch['nfe'] == 3


def test_non_finite_values_stop_with_step_and_sigma(tiny_checkpoint, tmp_path):
    from models.checkpoint import load_score_model
    config = mnist.get_config()
    config.model.nf, config.sampling.n_steps_each, config.sampling.step_lr = 4, 1, 1e38
    model = load_score_model(tiny_checkpoint, config)
    with pytest.raises(SamplingError, match=r'batch 0 at step \d+ \(noise level sigma = '):
        run_sample(config, model, str(tmp_path / 'nan'), 2, 2, seed=0, progress=False)
    assert not os.listdir(tmp_path / 'nan' / 'samples')


@pytest.mark.slow
def test_config_that_does_not_match_the_checkpoint(tiny_checkpoint, tmp_path):
    out = subprocess.run([sys.executable, 'main.py', '--config', 'configs/mnist_pds.py', '--mode', 'sample',
                          '--checkpoint', tiny_checkpoint, '--workdir', str(tmp_path / 'x'), '--num_samples', '1'],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    assert "detected format 'ncsn'" in out.stderr and 'shape mismatch' in out.stderr
    assert out.stderr.strip().startswith('error:') and 'Traceback' not in out.stderr


def test_folder_sampled_before_a_config_key_existed_resumes_at_its_old_behaviour(tmp_path):
    """settings.json without ``sampling.last_step`` (folders sampled before it existed) resumes under a config that
    holds it at 'predictor' (the images they were made with), and refuses 'denoiser' naming the field."""
    from runners.sample import SETTINGS, SettingsMismatch, _check_settings
    from configs import defaults
    cfg = json.loads(json.dumps(defaults.ve_ncsnpp().to_dict()))
    old_cfg = json.loads(json.dumps(cfg))
    del old_cfg['sampling']['last_step']
    base = {'seed': 0, 'batch_size': 2, 'num_samples': 4, 'inputs': {}}
    work = tmp_path / 'run'
    (work / 'batches').mkdir(parents=True)
    (work / 'batches' / 'batch_000000.npz').write_bytes(b'')
    (work / SETTINGS).write_text(json.dumps(dict(base, config=old_cfg)))
    _check_settings(str(work), dict(base, config=cfg))
    assert 'last_step' not in json.load(open(work / SETTINGS))['config']['sampling']
    cfg['sampling']['last_step'] = 'denoiser'
    with pytest.raises(SettingsMismatch, match='sampling.last_step'):
        _check_settings(str(work), dict(base, config=cfg))
