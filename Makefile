# Developer shortcuts (the same as `bash scripts/dev.sh <target>`).
#   make test-fast   the tests without the `slow` marker: under 2 minutes on 2 CPU cores
#   make test        the full suite: README's second fenced block, exactly what CI (.ci/run) runs
.PHONY: test test-fast

test-fast:
	bash scripts/dev.sh test-fast

test:
	bash scripts/dev.sh test
