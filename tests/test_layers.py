"""The floors of the code: a package imports only packages on lower floors (never one above it, nor a neighbour on
its own floor), so data flows one way: config -> data -> model / preconditioner -> sampler -> evaluation / training
-> runners (``main.py``, ``scripts/``, ``benchmarks/`` and the tests sit on top and may import anything).  Every
import counts, also one inside a function and ``importlib.import_module('<name>')``."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLOORS = {'utils': 0, 'configs': 1, 'data': 2, 'studies': 2, 'models': 3, 'preconditioning': 3, 'sampling': 4,
          'evaluation': 5, 'training': 5, 'runners': 6}

# (module, imported package): the only arrows that go up, each with its reason
ALLOWED = {
    # the command ``python -m evaluation.study`` kept where it was: it forwards the command line to the engine by
    # name, at run time (nothing in evaluation imports runners when imported)
    ('evaluation/study.py', 'runners'),
}


def _imports(path):
    """(line, imported module name) of every absolute import in ``path``, and of import_module / run_module calls
    with a literal name."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', None)) in (
                'import_module', 'run_module') and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            yield node.lineno, node.args[0].value


def _modules():
    for package in FLOORS:
        for folder, dirs, files in os.walk(os.path.join(ROOT, package)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for name in sorted(files):
                if name.endswith('.py'):
                    yield package, os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, '/')


def test_no_module_imports_from_a_higher_floor():
    wrong, used = [], set()
    for package, module in _modules():
        for line, name in _imports(os.path.join(ROOT, module)):
            target = name.split('.')[0]
            if target == package or target not in FLOORS or FLOORS[target] < FLOORS[package]:
                continue
            if (module, target) in ALLOWED:
                used.add((module, target))
                continue
            wrong.append(f'{module}:{line}: {package} (floor {FLOORS[package]}) imports {name} (floor '
                         f'{FLOORS[target]})')
    assert not wrong, '\n'.join(wrong)
    assert used == ALLOWED, f'exceptions no longer needed: {sorted(ALLOWED - used)}'


@pytest.mark.parametrize('package', sorted(FLOORS))
def test_every_package_has_a_floor(package):
    assert os.path.isfile(os.path.join(ROOT, package, '__init__.py'))


def test_every_top_level_package_is_on_a_floor():
    """A new top-level package gets its floor here (or is a top-level folder of scripts)."""
    top = {'tests', 'scripts', 'benchmarks', 'assets', 'checkpoints', 'results', 'runs', 'docs', 'shared'}
    packages = {d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, '__init__.py'))}
    assert packages - top <= set(FLOORS), sorted(packages - top - set(FLOORS))
