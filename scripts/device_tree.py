"""What a call of the GPU machine (the device tool's `run`) would carry, against its 64 MiB limit, at no device time.

    python scripts/device_tree.py --carry .whl runs/model_c64_gpu      # the size, the largest files; exit 1 if over
    python scripts/device_tree.py --drop_resume --carry .whl           # first set aside what no GPU stage reads
    git checkout -- checkpoints results                                # after the call: put them back

The tool copies the working tree (tracked files and untracked files that git does not ignore) plus the `carry` paths,
64 MiB in all.  The shipped checkpoints' trainer resume files (checkpoints/*/checkpoints-meta/latest.pth, about 54 MB
together) and the committed result images (results/**/*.png: sample grids and plots, about 14 MB) are what pushes the
tree over; no GPU stage reads them (sampling reads checkpoint.pth, training resumes a carried run folder, the
benchmarks write their own results), so --drop_resume deletes the committed, unchanged ones from the working tree for
the call; git restores them.  A modified or uncommitted one is never deleted.
"""
import argparse
import os
import subprocess
import sys

LIMIT = 64 * 2 ** 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESUME = 'checkpoints/*/checkpoints-meta/*'
# what --drop_resume sets aside (git pathspecs): the resume files and the committed result images
SET_ASIDE = (RESUME, ':(glob)results/**/*.png')


def _git(*args):
    return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def tree_files():
    """``{path: bytes}`` of what travels without carry: tracked and untracked-not-ignored files that exist."""
    names = _git('ls-files', '-z', '--cached', '--others', '--exclude-standard').split('\0')
    return {n: os.path.getsize(os.path.join(ROOT, n)) for n in dict.fromkeys(names)
            if n and os.path.isfile(os.path.join(ROOT, n))}


def carried_files(paths):
    out = {}
    for p in paths:
        full = os.path.join(ROOT, p)
        if os.path.isfile(full):
            out[p] = os.path.getsize(full)
        elif os.path.isdir(full):
            for d, _, files in os.walk(full):
                for f in files:
                    out[os.path.relpath(os.path.join(d, f), ROOT)] = os.path.getsize(os.path.join(d, f))
        else:
            raise FileNotFoundError(p)
    return out


def set_aside_names():
    """The committed files that --drop_resume would delete (:data:`SET_ASIDE`), whether present or not."""
    return [n for n in _git('ls-files', '-z', '--', *SET_ASIDE).split('\0') if n]


def drop_resume(log=print):
    """Delete the committed, unchanged files of :data:`SET_ASIDE` (resume files, result images) from the working
    tree; returns their paths."""
    tracked = set_aside_names()
    changed = set(_git('diff', '--name-only', '-z', 'HEAD', '--', *SET_ASIDE).split('\0'))
    dropped = []
    for n in tracked:
        if n in changed or not os.path.isfile(os.path.join(ROOT, n)):
            continue
        os.remove(os.path.join(ROOT, n))
        dropped.append(n)
    if dropped:
        log(f'set aside {len(dropped)} resume files and result images (restore them after the call: git checkout -- '
            'checkpoints results)')
    return dropped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('--carry', nargs='*', default=[], help='the paths the call will name in carry')
    p.add_argument('--drop_resume', action='store_true', help='delete the committed resume files and result images '
                   'from the working tree first (git checkout -- checkpoints results restores them)')
    p.add_argument('--top', type=int, default=8, help='list this many of the largest files')
    args = p.parse_args(argv)
    try:
        if args.drop_resume:
            drop_resume()
        files = tree_files()
        carried = carried_files(args.carry)
    except FileNotFoundError as e:
        print(f'error: the carry path {e.args[0]!r} does not exist; expected a path relative to the repository root',
              file=sys.stderr)
        return 2
    except (subprocess.CalledProcessError, OSError) as e:
        print(f'error: git could not list the working tree ({e}); run this inside the repository', file=sys.stderr)
        return 2
    files.update(carried)
    total = sum(files.values())
    for n, size in sorted(files.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f'{size / 2 ** 20:8.1f} MiB  {n}')
    verdict = 'fits' if total <= LIMIT else 'does NOT fit'
    print(f'{total / 2 ** 20:.1f} MiB would travel ({len(files)} files, {sum(carried.values()) / 2 ** 20:.1f} MiB of '
          f'them carried): {verdict} in the 64 MiB limit' +
          ('' if total <= LIMIT or args.drop_resume else '; --drop_resume sets the shipped resume files and result images aside'))
    return 0 if total <= LIMIT else 1


if __name__ == '__main__':
    sys.exit(main())
