"""Carry the samples of a sample-only run from the GPU machine back here, within what the device tool returns, and
put them where the study that scores them looks (issue 28: sample on the GPU, score on the CPU).

    python scripts/pack_samples.py pack runs/study "$OUT" --max_files 2 --max_bytes 30000000     # on the GPU machine
    python scripts/pack_samples.py unpack <the files brought back> runs/study                      # here
    python -m evaluation.study c64_curves --csv results/model_c64/study.csv    # finds the batches done: features only

pack: every sampling workdir under ROOT (a folder with settings.json and batches/batch_*.npz) whose batches are all
finished goes into OUT/samples_<k>.zip files, each at most --file_bytes (16 MiB, the tool's per-file limit), at
most --max_files of them and --max_bytes together.  A point goes in whole or not at all, so that no point is ever
scored from samples drawn on two devices; the costliest points go first (NFE x samples, from their settings: those
the CPU would take longest to redo), and those left out (unfinished, or no room) are named.  Only what scoring needs travels: settings.json and, per batch, the uint8 images, their indices,
the NFE and the seconds; the raw float samples stay behind (nothing reads them once a batch is done), which makes a
2,000-sample 64 px point about 19 MB packed (25 MB before compression) instead of 123 MB.

``--partial`` (pack): also the unfinished points that were sampled on the CPU, with their finished batches, to carry
a long CPU run from one machine to another (a session's machine that is taken back): unpacked, the study (or
``--mode sample`` in that folder) samples only the batches still missing, with the same per-batch seeds, so the point
ends as one uninterrupted run would.  A point cut short on a GPU is never packed partly (it would be finished on
another device).  A killed run's leftover run.lock (no process holds it) does not keep a point back.
``--unfinished_only`` (pack, implies ``--partial``): only those unfinished CPU points; the finished ones are left out
and named (a finished point already scored has nothing left to do elsewhere).

unpack: every point in the given files (a point may span two of them) is written under DEST at its relative path,
settings.json first and each batch file last (a batch file marks its batch done), each one atomically.  A point
already at DEST is left alone where its files are the same; where DEST holds finished batches that differ, or a
run is working there (run.lock), it is refused in one line (exit status 1) and nothing of it is written.  A point
at DEST with no finished batch takes the packed one, and its images of unfinished batches are removed first, as a
sampling run with new settings does (runners/sample.py), so no image of another run stays beside the packed ones.
"""
import argparse
import io
import json
import math
import os
import re
import sys
import zipfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from runners.sample import SETTINGS, _finished_batches  # noqa: E402
from utils.atomic import atomic_write_bytes  # noqa: E402
from utils.lock import WorkdirBusy, check_free  # noqa: E402

MiB = 2 ** 20
BATCH = re.compile(r'batch_(\d{6})\.npz$')
KEPT = ('images', 'indices', 'nfe', 'seconds')     # what scoring reads of a batch (runners/sample.py, evaluate.py)
PACKED = 'packed_batches.json'                     # a partly packed point: the batch numbers it carries
ENTRY_OVERHEAD = 200                               # zip local header + central directory record per entry, generous
FILE_OVERHEAD = 1024                               # end-of-central-directory record and slack


class PackError(Exception):
    """Bad input to pack / unpack: one line for the user."""


def _points(root):
    """``{relative workdir: absolute path}`` of every folder under ``root`` holding settings.json, sorted."""
    found = {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        if SETTINGS in files:
            found[os.path.relpath(d, root)] = d
            dirs[:] = []                 # a workdir holds no workdir
    return dict(sorted(found.items()))


def _expected_batches(settings):
    size, total = int(settings.get('batch_size') or 0), int(settings.get('num_samples') or 0)
    return math.ceil(total / size) if size > 0 and total > 0 else None


def _slim_batch(path):
    """The batch file at ``path`` as npz bytes holding only :data:`KEPT`, or None if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not {'images', 'indices'} <= set(z.files):
                return None
            arrays = {k: z[k] for k in KEPT if k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _deflated_size(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)        # what ZipFile(compresslevel=6) writes
    return len(c.compress(data)) + len(c.flush())


def point_entries(rel, path, partial=False, unfinished_only=False):
    """``[(entry name, bytes)]`` of a finished point (settings first, then its batches in order), or a reason string
    why it cannot travel.  ``partial``: an unfinished point sampled on the CPU travels with its finished batches and
    a :data:`PACKED` entry naming them; ``unfinished_only``: only such a point, a finished one stays."""
    try:
        with open(os.path.join(path, SETTINGS), 'rb') as f:
            raw = f.read()
        settings = json.loads(raw)
    except (OSError, ValueError) as e:
        return f'its settings.json cannot be read ({e})'
    try:
        check_free(path, 'the point')
    except WorkdirBusy:
        return 'a run is working in it (run.lock)'
    want = _expected_batches(settings)
    folder = os.path.join(path, 'batches')
    names = [n for n in _finished_batches(path) if BATCH.match(n)]
    numbers = [int(BATCH.match(n).group(1)) for n in names]
    entries = [(f'{rel}/{SETTINGS}', raw)]
    if want is None or numbers != list(range(want)):
        why = f'unfinished ({len(names)} of {want} batches)'
        device = str(settings.get('device', 'cpu'))
        if not partial or want is None or not names or any(n >= want for n in numbers):
            return why
        if device.split(':')[0] != 'cpu':
            return f'{why}, sampled on {device}: a point cut short there is finished there, never packed partly'
        entries.append((f'{rel}/{PACKED}', json.dumps(numbers).encode('utf-8')))
    elif unfinished_only:
        return 'finished (--unfinished_only carries the unfinished points only)'
    for n in names:
        data = _slim_batch(os.path.join(folder, n))
        if data is None:
            return f'batches/{n} cannot be read'
        entries.append((f'{rel}/batches/{n}', data))
    return entries


def _cost(path):
    """NFE x samples of a workdir (its settings), the work this machine would redo without it; 0 if unknown."""
    try:
        with open(os.path.join(path, SETTINGS)) as f:
            settings = json.load(f)
        return float(settings.get('nfe') or 0) * float(settings.get('num_samples') or 0)
    except (OSError, ValueError, TypeError):
        return 0.0


def pack(root, out, max_files=8, max_bytes=64 * MiB, file_bytes=16 * MiB, log=print, partial=False,
         unfinished_only=False):
    """Write the finished points under ``root`` (``partial``: and the unfinished CPU ones, their finished batches;
    ``unfinished_only``: those unfinished ones alone)
    into ``out``/samples_<k>.zip within the limits, the costliest first (NFE x samples: the points the CPU would take
    longest to redo), ties by name; returns ``(packed point names, {left-out point: reason})``."""
    if not os.path.isdir(root):
        raise PackError(f'{root!r} is not a folder; expected the --out folder of evaluation.study --sample_only '
                        '(e.g. runs/study)')
    if max_files < 1 or max_bytes < 1 or file_bytes <= FILE_OVERHEAD + ENTRY_OVERHEAD:
        raise PackError(f'nothing can be packed with --max_files {max_files}, --max_bytes {max_bytes}, '
                        f'--file_bytes {file_bytes}; expected at least one file of a few kB')
    os.makedirs(out, exist_ok=True)
    earlier = sorted(n for n in os.listdir(out) if re.match(r'samples_\d+\.zip$', n))
    if earlier:                          # never beside the files of another pack: unpack reads the folder whole
        raise PackError(f'{out!r} already holds {", ".join(earlier)} of an earlier pack; expected a folder without '
                        'samples_<k>.zip files (remove them, or pack into another folder)')
    files = [[]]                         # entries per output file
    sizes = [FILE_OVERHEAD]
    packed, left = [], {}
    points = _points(root)
    for rel in sorted(points, key=lambda r: (-_cost(points[r]), r)):
        path = points[rel]
        entries = point_entries(rel, path, partial or unfinished_only, unfinished_only)
        if isinstance(entries, str):
            left[rel] = entries
            continue
        plan_files, plan_sizes = [list(f) for f in files], list(sizes)
        fits = True
        for name, data in entries:
            need = _deflated_size(data) + ENTRY_OVERHEAD + len(name)
            if need + FILE_OVERHEAD > file_bytes:
                fits = False
                break
            if plan_sizes[-1] + need > file_bytes:
                plan_files.append([])
                plan_sizes.append(FILE_OVERHEAD)
            plan_files[-1].append((name, data))
            plan_sizes[-1] += need
        if fits and len(plan_files) <= max_files and sum(plan_sizes) <= max_bytes:
            files, sizes = plan_files, plan_sizes
            packed.append(rel)
        else:
            left[rel] = (f'no room ({sum(plan_sizes) - sum(sizes)} bytes more than the limits allow)' if fits else
                         f'a batch is larger than --file_bytes {file_bytes}')
    for k, entries in enumerate(f for f in files if f):
        target = os.path.join(out, f'samples_{k}.zip')
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for name, data in entries:
                z.writestr(name, data)
        if len(buf.getvalue()) > file_bytes:     # the plan's bound is generous: this would be a bug here
            raise PackError(f'{target} would be {len(buf.getvalue())} bytes, over --file_bytes {file_bytes}')
        atomic_write_bytes(target, buf.getvalue())
        log(f'wrote {target}: {len(entries)} files, {len(buf.getvalue()) / MiB:.1f} MiB')
    for rel in packed:
        log(f'packed {rel}')
    for rel, why in left.items():
        log(f'left out {rel}: {why}')
    return packed, left


def _read_packs(paths):
    """``{point: {relative file: bytes}}`` from the zip files (or folders of them) in ``paths``."""
    zips = []
    for p in paths:
        if os.path.isdir(p):
            zips += sorted(os.path.join(p, n) for n in os.listdir(p) if re.match(r'samples_\d+\.zip$', n))
        elif os.path.isfile(p):
            zips.append(p)
        else:
            raise PackError(f'{p!r} does not exist; expected the samples_<k>.zip files that pack wrote, or their folder')
    if not zips:
        raise PackError(f'no samples_<k>.zip in {", ".join(map(repr, paths))}; expected the files that pack wrote')
    points = {}
    for path in zips:
        try:
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    parts = name.split('/')
                    if name.startswith('/') or '..' in parts or '\\' in name:
                        raise PackError(f'{path!r} holds the entry {name!r}, outside its folder: not a file of pack')
                    if parts[-1] in (SETTINGS, PACKED):
                        rel, inner = '/'.join(parts[:-1]), parts[-1]
                    elif len(parts) >= 3 and parts[-2] == 'batches' and BATCH.match(parts[-1]):
                        rel, inner = '/'.join(parts[:-2]), 'batches/' + parts[-1]
                    else:
                        raise PackError(f'{path!r} holds {name!r}: not a file of pack')
                    points.setdefault(rel, {})[inner] = z.read(name)
        except (zipfile.BadZipFile, OSError, zlib.error) as e:
            raise PackError(f'{path!r} cannot be read ({type(e).__name__}: {e}); bring it back again') from None
    return points


def _check_point(rel, files):
    """The point's settings, after checking that every batch it names is there."""
    if SETTINGS not in files:
        raise PackError(f'point {rel!r} has no settings.json in the files given; give every samples_<k>.zip of the pack')
    try:
        settings = json.loads(files[SETTINGS])
    except ValueError as e:
        raise PackError(f'point {rel!r}: its settings.json cannot be read ({e}); bring the pack back again') from None
    want = _expected_batches(settings)
    have = sorted(int(BATCH.match(n.split('/')[-1]).group(1)) for n in files if n not in (SETTINGS, PACKED))
    if PACKED in files:                  # a partly packed point: the batches pack named
        try:
            named = sorted(int(b) for b in json.loads(files[PACKED]))
        except (ValueError, TypeError) as e:
            raise PackError(f'point {rel!r}: its {PACKED} cannot be read ({e}); bring the pack back again') from None
        if want is None or have != named or any(not 0 <= b < want for b in named):
            raise PackError(f'point {rel!r}: {len(have)} of the {len(named)} packed batches in the files given; give '
                            'every samples_<k>.zip of the pack')
        return settings
    if want is None or have != list(range(want)):
        raise PackError(f'point {rel!r}: {len(have)} of {want} batches in the files given; give every samples_<k>.zip '
                        'of the pack')
    return settings


def _same(path, data, is_settings):
    """Whether the file at ``path`` holds what the packed ``data`` holds (a batch: the same arrays of :data:`KEPT`;
    the raw float samples a batch sampled there also holds do not count)."""
    if not os.path.isfile(path):
        return False
    if is_settings:
        with open(path, 'rb') as f:
            return f.read() == data
    try:
        with np.load(path, allow_pickle=False) as here, np.load(io.BytesIO(data), allow_pickle=False) as packed:
            return all(k in here.files and np.array_equal(here[k], packed[k]) for k in packed.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def unpack(paths, dest, log=print):
    """Write the points of the pack files ``paths`` under ``dest``; returns the names of the points written."""
    points = _read_packs(paths)
    plans = []
    for rel, files in sorted(points.items()):
        _check_point(rel, files)
        target = os.path.join(dest, *rel.split('/'))
        try:
            check_free(target, 'the point')
        except WorkdirBusy:
            raise PackError(f'{target!r}: a run is working there (run.lock); unpack when it has stopped') from None
        finished = _finished_batches(target)
        if finished:
            same = all(_same(os.path.join(target, *n.split('/')), data, n == SETTINGS) for n, data in files.items()
                       if n != PACKED)
            if not same:
                raise PackError(f'{target!r} already holds {len(finished)} finished batches that differ from the '
                                'packed ones (sampled elsewhere); move that folder aside to unpack, or unpack into '
                                'another folder')
            log(f'already there: {rel}')
            continue
        plans.append((rel, target, files))
    for rel, target, files in plans:
        samples = os.path.join(target, 'samples')
        if os.path.isdir(samples):       # images of unfinished batches of another run: never beside the packed ones
            for n in os.listdir(samples):
                if n.endswith('.png'):
                    os.remove(os.path.join(samples, n))
        os.makedirs(os.path.join(target, 'batches'), exist_ok=True)
        atomic_write_bytes(os.path.join(target, SETTINGS), files[SETTINGS])
        batches = sorted(n for n in files if n not in (SETTINGS, PACKED))
        for n in batches:
            atomic_write_bytes(os.path.join(target, *n.split('/')), files[n])
        log(f'unpacked {rel} ({len(batches)} batches{", unfinished: resume it to sample the rest" if PACKED in files else ""})')
    return [rel for rel, _, _ in plans]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='verb', required=True)
    a = sub.add_parser('pack', help='finished points under ROOT -> OUT/samples_<k>.zip within the limits')
    a.add_argument('root')
    a.add_argument('out')
    a.add_argument('--max_files', type=int, default=8)
    a.add_argument('--max_bytes', type=int, default=64 * MiB)
    a.add_argument('--file_bytes', type=int, default=16 * MiB)
    a.add_argument('--partial', action='store_true',
                   help='also unfinished points sampled on the CPU, with their finished batches (to resume elsewhere)')
    a.add_argument('--unfinished_only', action='store_true',
                   help='only the unfinished CPU points (implies --partial): carry a long run, not the finished ones')
    b = sub.add_parser('unpack', help='the points of pack files (or their folder) -> DEST')
    b.add_argument('files', nargs='+')
    b.add_argument('dest')
    args = p.parse_args(argv)
    try:
        if args.verb == 'pack':
            pack(args.root, args.out, args.max_files, args.max_bytes, args.file_bytes, partial=args.partial,
                 unfinished_only=args.unfinished_only)
        else:
            unpack(args.files, args.dest)
    except PackError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
