"""SIGTERM (a scheduler, ``kill``, a session's end) stops a run as Ctrl-C does.

Python's default for SIGTERM ends the process at once: no ``finally`` runs, so a workdir's ``run.lock`` file
stays behind (the kernel drops the lock itself; the next run finds the file, notes the dead owner and takes it
over) and the user reads no line saying what was kept.  Inside :func:`terminate_as_interrupt` a SIGTERM raises
:class:`Terminated`, a ``KeyboardInterrupt``, so the run unwinds through the same path as a Ctrl-C: every output
is written atomically and kept, the lock file is removed, one ``interrupted: ...`` line says how to resume, and the
exit status is 128 + 15 = 143 (130 for Ctrl-C).  Training has its own handler (``training/train.py``: it finishes
the step and saves first) and does not use this.
"""
import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """The run received SIGTERM."""
    exit_status = 128 + signal.SIGTERM


def exit_status(interrupt):
    """The exit status of a run stopped by ``interrupt``: 143 for SIGTERM, 130 for Ctrl-C."""
    return getattr(interrupt, 'exit_status', 130)


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler comes back after it.  Only the
    main thread can install handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
