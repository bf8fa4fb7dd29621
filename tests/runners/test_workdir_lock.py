"""One run per workdir (``utils/lock.py``): a second run in a busy folder is refused with one line naming the
owner; the lock goes away on exit, on an error and on Ctrl-C; a lock left by a killed run is taken over with a note."""
import json
import os
import subprocess
import sys

import pytest

from runners.sample import run_sample
from tests.runners.lock_helpers import hold_lock, kill_holder
from tests.runners.runner_helpers import ONE_THREAD, ROOT, empirical_config, empirical_model, one_line_error

LOCK = 'run.lock'


def _second_sample_run(workdir, *more):
    cmd = [sys.executable, os.path.join(ROOT, 'main.py'), '--config', 'configs/mnist_empirical_pds.py',
           '--mode', 'sample', '--workdir', str(workdir), '--num_samples', '2', '--batch_size', '2',
           '--config.sampling.num_levels=3', '--config.sampling.n_steps_each=1', *more]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ, **ONE_THREAD))


@pytest.mark.slow
def test_a_second_sample_run_in_a_busy_workdir_is_refused_naming_the_owner(tmp_path):
    """While one run samples into a folder, a second ``--mode sample`` there (other seed) is refused before it writes
    anything: settings.json and the batches stay the first run's."""
    config = empirical_config()
    model = empirical_model(config)
    work = tmp_path / 'run'
    seen = []

    def score(x, sigma):
        if not seen:
            seen.append(_second_sample_run(work, '--seed', '7'))
        return model(x, sigma)
    score.source = model.source
    run_sample(config, score, str(work), 2, 2, seed=3, progress=False)
    line = one_line_error(seen[0])
    assert f'is in use by another run (pid {os.getpid()} on host ' in line and 'command: ' in line
    assert str(work) in line
    settings = json.load(open(work / 'settings.json'))
    assert settings['seed'] == 3                               # the first run's settings, not the refused one's
    assert not (work / LOCK).exists()                          # released at the end of the run


def test_the_lock_is_released_on_exit_on_an_error_and_on_ctrl_c(tmp_path):
    from utils.lock import WorkdirBusy, acquire, release, workdir_lock
    work = tmp_path / 'w'
    for exc in (None, RuntimeError('crash'), KeyboardInterrupt()):
        with pytest.raises(type(exc)) if exc else _nothing():
            with workdir_lock(str(work)):
                assert (work / LOCK).is_file()
                with workdir_lock(str(work)):          # re-entrant in one process (eval samples into its workdir)
                    pass
                assert (work / LOCK).is_file()
                if exc:
                    raise exc
        assert not (work / LOCK).exists()
    assert not work.exists()                          # the lock made the folder and nothing else was written there
    with hold_lock(work) as pid:                      # another process: refused, naming it
        with pytest.raises(WorkdirBusy, match=rf'in use by another run \(pid {pid} on host .*, started .*, command: '):
            acquire(str(work))
    release(acquire(str(work)))                       # free again once that process ended


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_note(tmp_path, capfd):
    from utils.lock import release, acquire
    work = tmp_path / 'w'
    pid = kill_holder(work)
    assert (work / LOCK).is_file()                    # kill -9: the file stays ...
    lock = acquire(str(work))                         # ... but its lock went with the process
    err = capfd.readouterr().err
    assert f'was left by a run that ended without removing it (pid {pid} on host ' in err and 'taking it over' in err
    assert json.load(open(work / LOCK))['pid'] == os.getpid()
    release(lock)
    assert not (work / LOCK).exists()


@pytest.mark.slow
def test_a_workdir_that_is_a_file_is_one_line_before_any_work(tmp_path):
    from tests.runners.runner_helpers import run_main
    path = tmp_path / 'file'
    path.write_text('x')
    out = run_main('--config', 'configs/mnist_empirical_pds.py', '--mode', 'sample', '--workdir', str(path),
                   '--num_samples', '2', '--config.sampling.num_levels=3', '--config.sampling.n_steps_each=1')
    assert one_line_error(out) == f"error: --workdir {str(path)!r} is a file; expected a folder (or a path where " \
                                   'one can be made)'
    assert path.read_text() == 'x'


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def sigterm_recorded():
    """SIGTERM recorded instead of ending pytest, for code that installs no handler of its own (the bug)."""
    import signal
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGTERM, previous)


def _terminated_while_holding(work):
    """A run's body: it holds ``work``'s lock when SIGTERM arrives (as from ``kill`` or a session's end)."""
    import signal
    import time
    from utils.lock import workdir_lock

    def body(*args, **kwargs):
        with workdir_lock(str(work)):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)           # the handler interrupts this at once
        raise AssertionError('SIGTERM did not stop the run')
    return body


def test_sigterm_stops_a_sample_run_as_ctrl_c_does(tmp_path, monkeypatch, capsys, sigterm_recorded):
    """SIGTERM during ``--mode sample``: the lock file goes, one ``interrupted:`` line, exit status 143; before,
    the process died at once and left run.lock for the next run to take over."""
    import signal
    import types
    from runners import cli
    work = tmp_path / 'run'
    monkeypatch.setattr(cli, '_sample', _terminated_while_holding(work))
    flags = types.SimpleNamespace(seed=None, speed_up=None, pds=None, workdir=str(work))
    with pytest.raises(SystemExit) as stop:
        cli.run('sample', empirical_config(), flags)
    assert stop.value.code == 143 and not sigterm_recorded
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('interrupted: ') and 'rerun the same command' in err[0]
    assert not (work / LOCK).exists()
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL       # the caller's handler is back


def test_sigterm_stops_a_study_as_ctrl_c_does(tmp_path, monkeypatch, capsys, sigterm_recorded):
    from runners import study
    work = tmp_path / 'out' / 'point'
    monkeypatch.setattr(study, 'run_study', _terminated_while_holding(work))
    code = study.main(['c32_curves', '--csv', str(tmp_path / 'rows.csv'), '--out', str(tmp_path / 'out'),
                       '--no_progress'])
    assert code == 143 and not sigterm_recorded
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('interrupted: ') and 'rerun the same command to continue' in err[0]
    assert not (work / LOCK).exists()
