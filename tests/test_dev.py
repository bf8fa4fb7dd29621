"""The developer commands: ``make test`` / ``make test-fast`` (scripts/dev.sh) and what CI runs."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_make_test_runs_what_ci_runs():
    """``make test`` (scripts/dev.sh test) reads README's test command exactly as .ci/run does."""
    read = "awk '/^```/{n++; next} n==3{print}' README.md"
    for path in ('scripts/dev.sh', '.ci/run'):
        assert read in open(os.path.join(ROOT, path), encoding='utf-8').read(), path
    make = open(os.path.join(ROOT, 'Makefile'), encoding='utf-8').read()
    assert 'bash scripts/dev.sh test\n' in make and 'bash scripts/dev.sh test-fast\n' in make
