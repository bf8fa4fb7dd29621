"""Another run holding a workdir's lock (``utils/lock.py``), in a subprocess: ``with hold_lock(folder) as pid:``."""
import contextlib
import os
import signal
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLDER = ('import sys; from utils.lock import acquire; acquire(sys.argv[1]); print("ready", flush=True); '
          'sys.stdin.read()')


def start_holder(folder):
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, str(folder)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()
    if first != 'ready':
        proc.kill()
        raise AssertionError(f'the lock holder did not start: {proc.stderr.read()[-2000:]}')
    return proc


@contextlib.contextmanager
def hold_lock(folder):
    """A subprocess holds ``folder``'s lock for the block; yields its pid.  It exits normally at the end."""
    proc = start_holder(folder)
    try:
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def kill_holder(folder):
    """A subprocess takes ``folder``'s lock and is killed with SIGKILL (its lock file stays behind); returns its pid."""
    proc = start_holder(folder)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.pid
