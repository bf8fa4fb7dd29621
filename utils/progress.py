"""Progress for terminals and for logs.

On a terminal (stdout and stderr both TTYs) progress is a tqdm bar.  Otherwise -- a background run writing to a
log file, a pipe, CI -- a bar would fill the log with redraws, so a run prints one plain line per batch instead
(:func:`iterate`, or :func:`line` from a loop that counts its own units).
"""
import sys
import time


def interactive():
    """Whether progress bars can be drawn: stdout and stderr are both terminals."""
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def duration(seconds):
    """'45 s', '12 min', '3.4 h' (for estimates)."""
    seconds = max(0., float(seconds))
    if seconds < 90:
        return f'{seconds:.0f} s'
    if seconds < 90 * 60:
        return f'{seconds / 60:.0f} min'
    return f'{seconds / 3600:.1f} h'


def line(desc, done, total, started, unit='batches', extra=''):
    """Print ``desc: done/total unit, elapsed, about <eta> left[; extra]`` (one line, flushed)."""
    elapsed = time.time() - started
    eta = f', about {duration(elapsed / done * (total - done))} left' if total and done and done < total else ''
    of = f'/{total}' if total else ''
    print(f'{desc}: {done}{of} {unit}, {duration(elapsed)}{eta}' + (f'; {extra}' if extra else ''), flush=True)


def iterate(iterable, desc, total=None, enabled=True, unit='batches'):
    """``iterable`` with progress: a tqdm bar on a terminal, else one :func:`line` per item; nothing when not
    ``enabled``."""
    if not enabled:
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    if interactive():
        from tqdm import tqdm
        yield from tqdm(iterable, desc=desc, total=total)
        return
    started = time.time()
    for k, item in enumerate(iterable):
        yield item
        line(desc, k + 1, total, started, unit)
