"""``python -m evaluation.study <study> ...``: the command of the measurement studies, kept where it always was.

The studies are data (``studies/``, one file per model), the engine that samples and scores them sits beside the
runners it drives (``runners/study.py``; ``python -m runners.study`` is the same command), and their tables and plots
are ``evaluation/study_report.py``.  This module only forwards the command line to the engine, by name and at run
time, so that importing ``evaluation`` never imports ``runners`` (the one exception ``tests/test_layers.py`` allows).
"""
import importlib
import os
import sys


def main(argv=None):
    """``runners.study.main``: the same arguments, the same exit codes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module('runners.study').main(argv, prog='python -m evaluation.study')


if __name__ == '__main__':
    sys.exit(main())
