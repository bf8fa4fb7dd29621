#!/usr/bin/env bash
# Developer shortcuts (also `make test-fast`, `make test`):
#   bash scripts/dev.sh test-fast   the tests without the `slow` marker: under 2 minutes on 2 CPU cores
#   bash scripts/dev.sh test        the full suite: README's second fenced block, exactly what CI (.ci/run) runs
# Extra arguments go to pytest (test-fast only), e.g. `bash scripts/dev.sh test-fast tests/sampling --durations=30`.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-}"
shift || true
case "$target" in
  test-fast)
    exec python -m pytest -q -m "not slow" "$@" ;;
  test)
    # the command CI runs, read from README.md as .ci/run reads it
    cmd=$(awk '/^```/{n++; next} n==3{print}' README.md)
    echo "+ $cmd"
    exec bash -c "$cmd" ;;
  *)
    echo "usage: bash scripts/dev.sh test-fast [pytest args] | test" >&2
    exit 2 ;;
esac
