"""Check that moving documentation text lost or changed no number.

Every number token (integers, decimals, thousands separators, signs, exponents, version strings: ``7,500``,
``0.0202``, ``-1.00``, ``1e-5``, ``2.14.1``) is extracted from a "before" set of markdown files and an "after" set,
and the two are compared as multisets: a number that occurs fewer times after than before was lost or changed, and
the check fails (exit status 1), naming each one with its count and where it stood.  Numbers may be added (a
summary that repeats a figure, a new line count); they are counted and reported, never an error.

    python scripts/check_numbers.py --before-rev HEAD          # README.md, CONTRIBUTING.md, docs/*.md at HEAD
                                                               # against the same files in the working tree
    python scripts/check_numbers.py --before old.md --after new1.md new2.md
    python scripts/check_numbers.py --before-rev HEAD --files README.md 'docs/*.md' --show-added

Digits inside words count too (``pds_a5_50it`` gives 5 and 50, ``sha256`` 256): a renamed grid or point is then a
lost number, which is what a move must not do either.  A sign counts only where it cannot be a dash between two
values (``0.3-2`` is 0.3 and 2; ``( -1.00`` is -1.00).
"""
import argparse
import collections
import fnmatch
import glob
import os
import re
import subprocess
import sys

DEFAULT_FILES = ('README.md', 'CONTRIBUTING.md', 'docs/*.md')

NUMBER = re.compile(r'''
    (?<![\d.])                       # not the tail of a longer number
    (?:(?<![\w.)\]])[-+\u2212])?     # a sign, unless it follows a word, a number or a bracket (then it is a dash)
    \d+(?:,\d{3})*                   # integer part, with thousands separators: 7,500
    (?:\.\d+)*                       # decimals, or a version: 0.0202, 2.14.1
    (?:[eE][-+\u2212]?\d+)?          # exponent: 1e-5, 3.4e-9
''', re.X)


def numbers(text):
    """The number tokens of ``text``, in order, as written (a unicode minus read as '-')."""
    return [m.group(0).replace('\u2212', '-') for m in NUMBER.finditer(text)]


def where(texts, token):
    """``file:line`` of each line holding ``token`` in {name: text}."""
    out = []
    for name, text in texts.items():
        for i, line in enumerate(text.splitlines(), 1):
            if token in numbers(line):
                out.append(f'{name}:{i}')
    return out


def read_rev(rev, patterns, root='.'):
    """{path: text} of the tracked files matching ``patterns`` at git revision ``rev``."""
    listed = subprocess.run(['git', 'ls-tree', '-r', '--name-only', rev], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        raise SystemExit(f'error: --before-rev {rev}: {listed.stderr.strip()}')
    paths = [p for p in listed.stdout.splitlines() if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    texts = {}
    for path in sorted(paths):
        shown = subprocess.run(['git', 'show', f'{rev}:{path}'], cwd=root, capture_output=True, text=True)
        texts[f'{rev}:{path}'] = shown.stdout
    return texts


def read_files(patterns, root='.', strict=True):
    """{path: text} of the files matching ``patterns`` (globs, relative to ``root``, or plain paths); a plain path
    that does not exist is an error when ``strict``, else skipped (a deleted file then shows as lost numbers)."""
    texts = {}
    for pattern in patterns:
        found = sorted(glob.glob(os.path.join(root, pattern))) or ([os.path.join(root, pattern)]
                                                                   if strict and not glob.has_magic(pattern) else [])
        for path in found:
            if not os.path.isfile(path):
                raise SystemExit(f'error: {path}: no such file')
            with open(path, encoding='utf-8') as f:
                texts[os.path.relpath(path, root)] = f.read()
    return texts


def compare(before, after):
    """(lost, added): Counters of the tokens whose count fell, and of those whose count rose."""
    b = collections.Counter(t for text in before.values() for t in numbers(text))
    a = collections.Counter(t for text in after.values() for t in numbers(text))
    return b - a, a - b


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--before-rev', help='read the before files from this git revision (e.g. HEAD)')
    parser.add_argument('--before', nargs='+', help='before files (instead of --before-rev)')
    parser.add_argument('--after', nargs='+', help='after files (default: --files in the working tree)')
    parser.add_argument('--files', nargs='+', default=list(DEFAULT_FILES),
                        help='globs of the documentation files, for --before-rev and the default --after '
                             f'(default: {" ".join(DEFAULT_FILES)})')
    parser.add_argument('--root', default='.', help='repository root (default: the current folder)')
    parser.add_argument('--show-added', action='store_true', help='also list the numbers added')
    args = parser.parse_args(argv)
    if bool(args.before_rev) == bool(args.before):
        parser.error('give exactly one of --before-rev REV and --before FILE...')
    before = read_rev(args.before_rev, args.files, args.root) if args.before_rev else read_files(args.before, args.root)
    after = read_files(args.after, args.root) if args.after else read_files(args.files, args.root, strict=False)
    if not before:
        raise SystemExit('error: no before files matched')
    lost, added = compare(before, after)
    total_b = sum(len(numbers(t)) for t in before.values())
    total_a = sum(len(numbers(t)) for t in after.values())
    print(f'before: {len(before)} files, {total_b} number tokens ({", ".join(before)})')
    print(f'after:  {len(after)} files, {total_a} number tokens ({", ".join(after)})')
    print(f'added:  {sum(added.values())} tokens ({len(added)} distinct)')
    if args.show_added:
        for token, count in sorted(added.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f'  + {token} x{count}: {", ".join(where(after, token)[:6])}')
    if lost:
        print(f'LOST or changed: {sum(lost.values())} tokens ({len(lost)} distinct)')
        for token, count in sorted(lost.items(), key=lambda kv: kv[0]):
            print(f'  - {token} x{count} (before {count + sum(numbers(t).count(token) for t in after.values())}, '
                  f'after {sum(numbers(t).count(token) for t in after.values())}): '
                  f'{", ".join(where(before, token)[:6])}')
        return 1
    print('OK: every number of the before files is in the after files, at least as often')
    return 0


if __name__ == '__main__':
    sys.exit(main())
