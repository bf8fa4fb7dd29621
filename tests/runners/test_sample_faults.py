"""``--mode sample`` on a damaged or reused workdir, and what a run says while it works: a truncated batch file is
recomputed, a foreign one named; a batch size change on resume shows both values; a batch size above the sample
count is clamped; fewer samples than the folder holds is said; the plan is announced and, without a terminal,
progress is one line per batch; Ctrl-C is a quiet stop that says how to resume; ``--device cuda`` without a GPU is
one line."""
import json
import types

import numpy as np
import pytest
import torch

from runners.sample import SamplingError, SettingsMismatch, run_sample
from tests.runners.runner_helpers import IMAGES, empirical_config, empirical_model


@pytest.fixture(scope='module')
def model():
    return empirical_model(empirical_config())


def _run(model, work, n=4, batch=2, **kw):
    return run_sample(empirical_config(), model, str(work), n, batch, seed=kw.pop('seed', 0), progress=kw.pop(
        'progress', False), **kw)


def test_a_truncated_batch_file_is_named_and_recomputed(model, tmp_path, capsys):
    work = tmp_path / 'run'
    _run(model, work)
    path = work / 'batches' / 'batch_000001.npz'
    before = np.load(path)['images']
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])                  # a copy cut short
    capsys.readouterr()
    assert _run(model, work) == [1]                         # only that batch is redone
    err = capsys.readouterr().err
    assert "batches/batch_000001.npz' cannot be read" in err and 'recomputing batch 1' in err
    assert np.array_equal(np.load(path)['images'], before)


def test_a_foreign_batch_file_is_named_not_a_numpy_error(model, tmp_path):
    work = tmp_path / 'run'
    _run(model, work)
    path = work / 'batches' / 'batch_000001.npz'
    np.savez(path, images=np.zeros((2, 32, 32, 3), np.uint8), samples=np.zeros((2, 3, 32, 32), np.float32),
             indices=np.arange(2, 4), nfe=1, seconds=1.)
    with pytest.raises(SamplingError) as err:
        _run(model, work)
    msg = str(err.value)
    assert "batches/batch_000001.npz' holds images of shape (32, 32, 3)" in msg and 'this run makes (28, 28, 1)' in msg
    assert 'delete it' in msg


def test_a_batch_size_change_on_resume_shows_both_values(model, tmp_path):
    work = tmp_path / 'run'
    _run(model, work, batch=2)
    with pytest.raises(SettingsMismatch, match=r'batch_size: 2 -> 4'):
        _run(model, work, batch=4)
    with pytest.raises(SettingsMismatch, match=r'seed: 0 -> 5'):
        _run(model, work, batch=2, seed=5)


def test_a_batch_size_above_the_sample_count_is_clamped(model, tmp_path, capsys):
    work = tmp_path / 'run'
    assert _run(model, work, n=3, batch=5000) == [0]
    assert json.load(open(work / 'settings.json'))['batch_size'] == 3
    assert 'batch size 5000 is more than the 3 samples asked for: using 3' in capsys.readouterr().err


def test_a_folder_of_a_larger_batch_is_resumed_as_it_was_made_not_clamped(model, tmp_path):
    """Fewer samples from a folder made with batch 4: its recorded batch size is kept (clamping would refuse it)."""
    work = tmp_path / 'run'
    _run(model, work, n=4, batch=4)
    assert _run(model, work, n=2, batch=4) == []
    assert json.load(open(work / 'settings.json'))['batch_size'] == 4


def test_fewer_samples_than_the_workdir_holds_is_said(model, tmp_path, capsys):
    work = tmp_path / 'run'
    _run(model, work, n=4)
    capsys.readouterr()
    assert _run(model, work, n=2) == []
    err = capsys.readouterr().err
    assert f"{str(work)!r} holds 4 samples; this run asks for 2" in err


def test_the_plan_is_announced_and_progress_is_one_line_per_batch_without_a_terminal(model, tmp_path, capsys):
    work = tmp_path / 'run'
    _run(model, work, n=4, batch=2, progress=True)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f'sampling 4 samples into {str(work)!r}: 2 batches of 2, 3 iterations, NFE 3 per '
                               'sample; 2 batches to run')
    assert lines[1].startswith('sampling: 1/2 batches, ') and 'about' in lines[1]
    assert lines[2].startswith('sampling: 2/2 batches, ')
    assert '\r' not in err and '\r' not in out                 # no progress-bar redraws in a log


def _flags(work, **kw):
    base = dict(mode='sample', seed=None, speed_up=None, pds=None, checkpoint=IMAGES, workdir=str(work),
                num_samples=2, batch_size=2, device='cpu', ema=True, compile=False, noise_device='cpu')
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_ctrl_c_is_a_quiet_stop_that_says_how_to_resume(tmp_path, monkeypatch, capsys):
    from runners import cli, sample

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(sample, 'run_sample', interrupted)
    try:
        with pytest.raises(SystemExit) as stop:
            cli.run('sample', empirical_config(), _flags(tmp_path / 'run'))
    except KeyboardInterrupt:
        pytest.fail('Ctrl-C came out as a KeyboardInterrupt (a traceback), not as a quiet stop')
    assert stop.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('interrupted: ') and 'rerun the same command to resume' in err[0]
    assert not (tmp_path / 'run' / 'run.lock').exists()


def test_cuda_without_a_gpu_is_one_clear_error(monkeypatch):
    from runners import cli
    from runners.validate import ConfigError
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match=r"--device 'cuda': no CUDA GPU is available here .*; use --device cpu"):
        cli.resolve_device('cuda')
    assert cli.resolve_device('auto') == torch.device('cpu')
    config = empirical_config()
    config.device = 'cuda'                        # training: config.device, not only --device
    with pytest.raises(ConfigError, match=r"--device 'cuda': no CUDA GPU"):
        cli._train(config, types.SimpleNamespace(mode='train', workdir='w', data='d', device='auto', workers=0,
                                                 skip_bad=False, force_resume=False))


@pytest.mark.parametrize('method', ['edm', 'ode'])
def test_a_sampler_that_cannot_apply_pds_refuses_before_the_workdir_exists(model, tmp_path, method):
    """PDS on a rival sampler without a step corrector is refused before anything is written (not after the
    folder and its settings.json were made), in the one line sampling.sample gives."""
    config = empirical_config(method=method, num_steps=3)
    assert config.pds.enabled and config.pds.freq == 'radial'
    work = tmp_path / 'run'
    with pytest.raises(ValueError, match=f"sampling.method = '{method}' applies PDS only through a Langevin "
                                         "corrector") as err:
        run_sample(config, model, str(work), 4, 2, seed=0, progress=False)
    assert '\n' not in str(err.value)
    assert not work.exists()
