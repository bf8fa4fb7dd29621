"""One run per folder: an exclusive lock on a run's workdir for the life of the run.

``--mode sample``, ``eval`` and ``train`` (and each point of ``python -m evaluation.study``) hold
``<workdir>/run.lock`` while they run: a second run in the same folder is refused with one line naming the
owner (pid, host, start time, command) before it writes anything, instead of interleaving its batches, settings
or training steps with the first one's.

The lock is ``fcntl.flock`` on that file, so the kernel drops it when the process ends in any way (exit, Ctrl-C,
a crash, ``kill -9``); the file itself records the owner for the message and is removed on a normal exit
(context manager, and ``atexit`` for a lock taken without one).  A file left by a run that died has no lock on
it: the next run takes it over with a note naming the dead owner.  Where the file system has no ``flock`` (some
network mounts) the recorded owner decides: a live pid on this host, or any pid on another host, keeps the folder.

Taking the lock is also the check that the workdir can be used at all: a path that is a file, or a folder that
cannot be written, is refused here (:class:`WorkdirError`) before any work is done.  Locks are re-entrant within
a process (``--mode eval`` samples through ``--mode sample``'s code into the same folder).  Under torchrun only
rank 0 takes the lock (``enabled=rank == 0``).
"""
import atexit
import contextlib
import datetime
import errno
import fcntl
import json
import os
import shlex
import socket
import sys

LOCK_NAME = 'run.lock'


class WorkdirError(RuntimeError):
    """A workdir that cannot hold a run: a file, a folder that cannot be written, or one in use (below)."""


class WorkdirBusy(WorkdirError):
    """Another live run holds the workdir's lock."""


_held = {}          # realpath of the workdir -> _Lock held by this process


class _Lock:
    def __init__(self, workdir, path, fd, created, owner):
        self.workdir, self.path, self.fd, self.created, self.owner = workdir, path, fd, created, owner
        self.count, self.pid = 1, os.getpid()


def command_line():
    """This process's command line as typed (python and its arguments)."""
    argv = getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv
    return shlex.join([os.path.basename(argv[0])] + list(argv[1:]))


def _owner():
    return dict(pid=os.getpid(), host=socket.gethostname(),
                started=datetime.datetime.now().isoformat(timespec='seconds'), command=command_line())


def describe_owner(info):
    """'pid 123 on host h, started 2024-01-01T10:00:00, command: python main.py ...'"""
    if not info:
        return 'an unknown process (the lock file is empty)'
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {info.get('started', '?')}, "
            f"command: {info.get('command', '?')}")


def _read_owner(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = b''
        while True:
            block = os.read(fd, 65536)
            if not block:
                break
            data += block
        return json.loads(data.decode('utf-8')) if data.strip() else None
    except (OSError, ValueError):
        return None


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True
    return True


def _alive(info):
    """Whether the run recorded in ``info`` may still be running (flock-less file systems only)."""
    if not info:
        return False
    if info.get('host') != socket.gethostname():
        return True                 # cannot be checked from here
    return int(info.get('pid', -1)) != os.getpid() and _pid_alive(info.get('pid', -1))


def _busy(workdir, what, info):
    return WorkdirBusy(f'{what} {workdir!r} is in use by another run ({describe_owner(info)}); wait for it to '
                       f'finish or use another {what} (two runs in one folder would mix their outputs)')


def acquire(workdir, what='--workdir'):
    """Take the lock of ``workdir`` (created if missing) for this process, or raise WorkdirError / WorkdirBusy.
    Re-entrant: a second acquire by the same process counts up.  Returns the lock (give it to :func:`release`)."""
    workdir = os.fspath(workdir)
    real = os.path.realpath(workdir)
    lock = _held.get(real)
    if lock is not None and lock.pid == os.getpid():
        lock.count += 1
        return lock
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise WorkdirError(f'{what} {workdir!r} is a file; expected a folder (or a path where one can be made)')
    created = not os.path.exists(workdir)
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f'cannot create {what} {workdir!r} ({e.strerror or e}); expected a writable folder') \
            from None
    path = os.path.join(workdir, LOCK_NAME)
    try:
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise WorkdirError(f'cannot write in {what} {workdir!r} ({e.strerror or e}); expected a writable '
                                   'folder') from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_owner(fd)
                os.close(fd)
                raise _busy(workdir, what, info) from None
            except OSError as e:         # no flock on this file system: the recorded owner decides
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise WorkdirError(f'cannot lock {path!r} ({e.strerror or e})') from None
                info = _read_owner(fd)
                if _alive(info):
                    os.close(fd)
                    raise _busy(workdir, what, info) from None
            try:                         # the previous owner may have removed the file between open and flock
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _read_owner(fd)
        if old:
            dead = 'no longer running' if old.get('host') == socket.gethostname() else 'its lock is free'
            print(f"note: {path} was left by a run that ended without removing it ({describe_owner(old)}; {dead}); "
                  'taking it over', file=sys.stderr)
        owner = _owner()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(owner, sort_keys=True) + '\n').encode('utf-8'))
    except BaseException:
        if created:
            _remove_empty(workdir)
        raise
    lock = _held[real] = _Lock(workdir, path, fd, created, owner)
    return lock


def release(lock):
    """Give back one acquire of ``lock``; the last one removes the lock file (and the workdir if this lock created
    it and nothing else was written there)."""
    if lock is None:
        return
    lock.count -= 1
    if lock.count > 0:
        return
    real = os.path.realpath(lock.workdir)
    if _held.get(real) is lock:
        del _held[real]
    if lock.pid != os.getpid():      # a forked child (e.g. a DataLoader worker) never removes its parent's lock
        return
    try:
        if os.stat(lock.path).st_ino == os.fstat(lock.fd).st_ino:
            os.unlink(lock.path)
    except OSError:
        pass
    try:
        os.close(lock.fd)
    except OSError:
        pass
    if lock.created:
        _remove_empty(lock.workdir)


def _remove_empty(folder):
    try:
        os.rmdir(folder)             # only when empty
    except OSError:
        pass


@contextlib.contextmanager
def workdir_lock(workdir, enabled=True, what='--workdir'):
    """``with workdir_lock(workdir):`` -- the run's exclusive lock on ``workdir`` (nothing when not ``enabled``,
    e.g. on ranks other than 0)."""
    if not enabled or not workdir:
        yield None
        return
    lock = acquire(workdir, what)
    try:
        yield lock
    finally:
        release(lock)


def check_free(folder, what='--sample_dir'):
    """Raise WorkdirBusy when another process holds ``folder``'s lock (a run still writing the folder that is about
    to be read); a folder without a lock file, or one this process holds, is free."""
    path = os.path.join(folder, LOCK_NAME)
    lock = _held.get(os.path.realpath(folder))
    if (lock is not None and lock.pid == os.getpid()) or not os.path.isfile(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkdirBusy(f'{what} {folder!r} is being written by another run ({describe_owner(_read_owner(fd))}'
                              '); wait for it to finish before scoring it') from None
        except OSError:
            if _alive(_read_owner(fd)):
                raise WorkdirBusy(f'{what} {folder!r} is being written by another run '
                                  f'({describe_owner(_read_owner(fd))}); wait for it to finish before scoring it') \
                    from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def one_at_a_time(path, what, say=None):
    """``with one_at_a_time(path, what):`` -- hold an exclusive ``flock`` on the file ``path`` (created if missing,
    left in place), waiting for a process that holds it first: for work that two processes would otherwise both do
    from the start, such as computing one set of cached reference features (the second waits, then finds the cache).
    ``say(line)`` is told once when it has to wait, with the holder's pid and command.  Where the file cannot be
    opened or the file system has no ``flock``, nothing is held (the work is then only possibly done twice)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say is not None:
                say(f'note: {describe_owner(_read_owner(fd))} is computing {what}; waiting for it to finish')
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(_owner(), sort_keys=True) + '\n').encode('utf-8'))
        except OSError:
            pass
        yield
    finally:
        os.close(fd)             # drops the flock


@atexit.register
def _release_all():
    for lock in list(_held.values()):
        lock.count = 1
        release(lock)
