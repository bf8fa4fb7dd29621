"""Atomic file writes: write a temporary file in the target folder, then rename it over the target.
A killed process never leaves a half-written file under the final name."""
import os
import tempfile


def atomic_write(path, write):
    """Call ``write(tmp_path)`` to produce the file, then move it to ``path`` (folders are created)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path, data):
    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    atomic_write(path, write)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode('utf-8'))
