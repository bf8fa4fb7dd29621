"""scripts/check_numbers.py: a pure move of documentation text passes, a changed or dropped number fails."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import check_numbers  # noqa: E402

OLD = """# Results

FID 22.1 against vanilla's 265.2 at 50 iterations (7,500 steps, KID 0.0202 ± 0.0007, step 1e-5).

| N | vanilla | auto |
|---|---|---|
| 20 | 0.0356 | 2.8e-9 |
| 50 | 0.0014 | 3.4e-9 |

Error slopes -1.00 and -2.24; torch 2.14.1; 0.3-2 % above sigma 0.1.
"""


def test_number_tokens():
    assert check_numbers.numbers('7,500 steps, 0.0202 ± 0.0007, 1e-5, 3.4e-9, torch 2.14.1') == \
        ['7,500', '0.0202', '0.0007', '1e-5', '3.4e-9', '2.14.1']
    assert check_numbers.numbers('slopes -1.00 and (-2.24); 0.3-2 %; pds_a5_50it; x1.52') == \
        ['-1.00', '-2.24', '0.3', '2', '5', '50', '1.52']


def _write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding='utf-8')
    return [str(folder / name) for name in files]


def _check(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'check_numbers.py'), *args],
                          capture_output=True, text=True, timeout=60)


def test_a_pure_move_passes_and_a_changed_number_fails(tmp_path):
    before = _write(tmp_path / 'before', {'README.md': OLD})
    head, table = OLD.split('| N |')
    moved = _write(tmp_path / 'moved', {'README.md': head + 'Details: [results](docs/results.md), 2 tables.\n',
                                        'results.md': '# Results\n\n| N |' + table})
    out = _check('--before', *before, '--after', *moved)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'OK' in out.stdout and 'added:  1 tokens' in out.stdout      # the summary's "2"

    changed = _write(tmp_path / 'changed', {'README.md': OLD.replace('22.1', '22.2')})
    out = _check('--before', *before, '--after', *changed)
    assert out.returncode == 1
    assert '- 22.1 x1 (before 1, after 0)' in out.stdout and 'README.md:3' in out.stdout

    dropped = _write(tmp_path / 'dropped', {'README.md': OLD.replace('| 50 | 0.0014 | 3.4e-9 |\n', '')})
    out = _check('--before', *before, '--after', *dropped)
    assert out.returncode == 1
    assert all(f'- {t} x1' in out.stdout for t in ('0.0014', '3.4e-9')) and '- 50 x1 (before 2, after 1)' in out.stdout


def test_before_rev_reads_git(tmp_path):
    """--before-rev REV reads README.md, CONTRIBUTING.md and docs/*.md at REV; after = the working tree."""
    repo = tmp_path / 'repo'
    _write(repo, {'README.md': OLD})
    git = lambda *a: subprocess.run(['git', *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git('init', '-q')
    git('add', 'README.md')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'old')
    head, table = OLD.split('| N |')
    _write(repo, {'README.md': head})
    _write(repo / 'docs', {'results.md': '# Results\n\n| N |' + table})
    out = _check('--before-rev', 'HEAD', '--root', str(repo))
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'HEAD:README.md' in out.stdout and 'docs/results.md' in out.stdout
    _write(repo / 'docs', {'results.md': '# Results\n\n| N |' + table.replace('0.0356', '0.0365')})
    out = _check('--before-rev', 'HEAD', '--root', str(repo))
    assert out.returncode == 1 and '- 0.0356 x1' in out.stdout
