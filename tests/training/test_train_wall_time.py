"""``max_minutes`` (``--max_minutes``): a run stops after a wall-time limit at a step boundary, saves the exact
resume state, and the next run continues bit-identically (the GPU sessions of scripts/gpu_session.sh)."""
import pytest

import training.train as train_mod
from training import run_train
from train_helpers import blobs, tiny_ncsnv2, trainable


class Clock:
    """A wall clock that moves only when a training step runs (10 s per step)."""

    def __init__(self):
        self.now = 1000.

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(train_mod, '_now', c)
    step = train_mod.Trainer.train_step

    def slow_step(self, x):
        c.now += 10.
        return step(self, x)
    monkeypatch.setattr(train_mod.Trainer, 'train_step', slow_step)
    return c


def _config():
    config = tiny_ncsnv2(steps=8, log_freq=3, snapshot_freq=100)     # no snapshot before the stop
    config.data.uniform_dequantization = True
    return config


def test_a_run_stops_on_its_wall_time_and_resumes_bit_identically(tmp_path, clock, capsys):
    data = blobs(10)
    full = run_train(_config(), str(tmp_path / 'a'), data, progress=False)
    first = run_train(_config(), str(tmp_path / 'b'), data, progress=True, max_minutes=0.5)   # 30 s: 3 steps
    assert first['stopped'] and first['step'] == 3
    assert (tmp_path / 'b' / 'checkpoints-meta' / 'latest.pth').is_file()
    assert (tmp_path / 'b' / 'checkpoints' / 'checkpoint_3.pth').is_file()
    out = capsys.readouterr().out
    assert 'train: stopped at step 3 of 8 (the wall-time limit, --max_minutes)' in out
    assert 'rerun the same command to resume' in out
    second = run_train(_config(), str(tmp_path / 'b'), data, progress=False, max_minutes=0.5)
    assert second['stopped'] and second['step'] == 6
    last = run_train(_config(), str(tmp_path / 'b'), data, progress=False, max_minutes=10)
    assert not last['stopped'] and last['step'] == 8
    for x, y in zip(trainable(full['net']) + full['ema'].shadow_params,
                    trainable(last['net']) + last['ema'].shadow_params):
        assert x.equal(y)
    assert str([r[:3] + r[4:] for r in full['history']]) == str([r[:3] + r[4:] for r in last['history']])  # no it/s


def test_max_minutes_must_be_a_positive_number(tmp_path):
    for bad in (0, -1., float('nan'), True, '5'):
        with pytest.raises(ValueError, match='expected a number of minutes > 0'):
            run_train(_config(), str(tmp_path), blobs(10), progress=False, max_minutes=bad)


@pytest.fixture
def ctrl_c_reaches_us():
    """Ctrl-C as at a terminal: a test run in the background (nohup, CI) inherits SIGINT ignored, and training leaves
    an ignored SIGINT alone."""
    import signal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize('signame', ['SIGTERM', 'SIGINT'])
def test_sigterm_or_ctrl_c_stops_at_the_next_step_with_the_state_saved(tmp_path, monkeypatch, capsys, signame,
                                                                       ctrl_c_reaches_us):
    """A SIGTERM (a scheduler, a session's end) or the first Ctrl-C during step 3 stops the run after that step with
    the exact resume state saved (before: the steps since the last snapshot were lost), and the rerun continues
    bit-identically; the handlers are restored afterwards."""
    import os
    import signal
    sig = getattr(signal, signame)
    before = signal.getsignal(sig)
    data = blobs(10)
    full = run_train(_config(), str(tmp_path / 'a'), data, progress=False)
    step = train_mod.Trainer.train_step

    def step_then_signal(self, x):
        out = step(self, x)
        if self.step == 2:                      # during the 3rd step (self.step counts the steps done before it)
            os.kill(os.getpid(), sig)
        return out
    monkeypatch.setattr(train_mod.Trainer, 'train_step', step_then_signal)
    first = run_train(_config(), str(tmp_path / 'b'), data, progress=True)
    assert first['stopped'] and first['step'] == 3 and first['signal'] == signame
    assert signal.getsignal(sig) == before
    assert f'train: stopped at step 3 of 8 ({signame}: saved at the next step)' in capsys.readouterr().out
    monkeypatch.setattr(train_mod.Trainer, 'train_step', step)
    last = run_train(_config(), str(tmp_path / 'b'), data, progress=False)
    assert not last['stopped'] and last['step'] == 8 and last['signal'] is None
    for x, y in zip(trainable(full['net']) + full['ema'].shadow_params,
                    trainable(last['net']) + last['ema'].shadow_params):
        assert x.equal(y)


def test_a_second_ctrl_c_stops_at_once(tmp_path, monkeypatch, ctrl_c_reaches_us):
    import os
    import signal
    step = train_mod.Trainer.train_step

    def step_then_two_ctrl_c(self, x):
        out = step(self, x)
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(train_mod.Trainer, 'train_step', step_then_two_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_train(_config(), str(tmp_path / 'c'), blobs(10), progress=False)


def test_an_ignored_ctrl_c_stays_ignored(tmp_path):
    """A background run (SIGINT ignored, as nohup / '&' leave it) keeps ignoring Ctrl-C: training does not install a
    handler for it, and the disposition is the same afterwards."""
    import signal
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        out = run_train(_config(), str(tmp_path / 'd'), blobs(10), progress=False)
        assert out['step'] == 8 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
