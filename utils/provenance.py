"""Which exact files a run read: resolved path, size and a streamed sha256 of each.

``--mode sample`` records them in ``settings.json`` (``inputs``) and refuses a rerun of the same workdir whose
inputs changed (a run folder that now resolves to a newer ``checkpoint_<k>.pth``, an overwritten PDS statistics
file); ``--mode eval`` copies them into ``eval.json`` and the results CSV.  Every file is hashed once per run.

An input record is ``{'path': absolute path, 'size': bytes, 'sha256': hex digest}``; a run's inputs are a dict
name -> record with the names ``checkpoint`` (the checkpoint file actually loaded, or the image set of
``model.family = 'empirical'``), ``pds.freq_path``, ``pds.space_path`` and ``pds.spectrum_path`` (when PDS reads
them).
"""
import hashlib
import os

CHUNK = 1 << 20


def sha256_stream(f, chunk=CHUNK):
    """sha256 hex digest of an open binary file from its current position to the end (streamed)."""
    h = hashlib.sha256()
    for block in iter(lambda: f.read(chunk), b''):
        h.update(block)
    return h.hexdigest()


def record_of_handle(f, path):
    """The input record of the open binary file ``f`` (hashed from its start; left at its start again).

    Hashing and then reading through the same handle guarantees that the hash is of the bytes that were read,
    even if the file is replaced (renamed over) meanwhile."""
    f.seek(0)
    digest = sha256_stream(f)
    size = f.tell()
    f.seek(0)
    return {'path': os.path.abspath(path), 'size': size, 'sha256': digest}


def file_record(path):
    """The input record of the file at ``path``."""
    with open(path, 'rb') as f:
        return record_of_handle(f, path)


def pds_files(config):
    """``{name: path}`` of the statistics files the preconditioner of ``config`` reads (none when PDS is off)."""
    p = config.pds
    if not p.enabled:
        return {}
    files = {}
    freq = p.get('freq', 'none')
    if freq == 'stats' and p.get('freq_path'):
        files['pds.freq_path'] = p.freq_path
    elif freq == 'auto':       # sampling.preconditioner: spectrum_path, else the *_spectrum.npy beside freq_path
        path = p.get('spectrum_path') or (p.freq_path[:-len('_freq.npy')] + '_spectrum.npy'
                                          if str(p.get('freq_path', '')).endswith('_freq.npy') else '')
        if path:
            files['pds.spectrum_path'] = path
    elif freq not in ('none', 'radial') and p.get('freq_path'):
        files['pds.freq_path'] = p.freq_path
    if p.get('space') and p.get('space_path'):
        files['pds.space_path'] = p.space_path
    return files


def stamp(path):
    """A cheap identity of a file (inode, size, mtime): compared to see that a file did not change while read."""
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def short(record):
    """``<path> (sha256 <first 12 hex digits>)`` for messages."""
    if not record:
        return 'nothing recorded'
    return f"{record['path']} (sha256 {record['sha256'][:12]})"


def changed_inputs(old, new):
    """The names whose content differs between two input dicts (a name present on one side only counts).
    Content is compared by sha256, so a file found under another path with the same bytes is not a change."""
    names = sorted(set(old) | set(new))
    return [n for n in names if (old.get(n) or {}).get('sha256') != (new.get(n) or {}).get('sha256')]


def describe_changes(old, new, names):
    """One phrase per changed input: what the earlier run read and what this one reads."""
    parts = []
    for n in names:
        before, now = old.get(n), new.get(n)
        if before is None:
            parts.append(f'{n}: not read before, now {short(now)}')
        elif now is None:
            parts.append(f'{n}: was {short(before)}, not read now')
        else:
            parts.append(f'{n}: was {short(before)}, now {short(now)}')
    return '; '.join(parts)


def csv_fields(inputs):
    """The results-CSV columns of a run's inputs: ``checkpoint_file`` (the file actually loaded, a run folder
    resolved), ``checkpoint_sha256`` and ``input_files`` (``name=path sha256:<hex>`` of every other input,
    '; '-separated).  Unknown inputs stay blank."""
    inputs = inputs or {}
    ckpt = inputs.get('checkpoint') or {}
    others = [f"{n}={r['path']} sha256:{r['sha256']}" for n, r in sorted(inputs.items()) if n != 'checkpoint' and r]
    return {'checkpoint_file': ckpt.get('path', ''), 'checkpoint_sha256': ckpt.get('sha256', ''),
            'input_files': '; '.join(others)}
