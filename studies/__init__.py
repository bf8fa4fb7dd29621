"""The measurement studies, as data: one file per model (``model_a.py``, ``model_b.py``, ...), each defining its
studies as functions ``name(samples=None) -> studies.spec.Study`` and listing them in a module-level ``STUDIES`` dict.
Adding a model's studies is adding one file here; this registry finds every module of the folder.

    from studies import STUDIES, get
    study = get('a_curves')                 # or STUDIES['a_curves'](samples)

They are run by ``python -m evaluation.study <study>`` (the engine: ``runners/study.py``) and tabulated by
``evaluation/study_report.py``.
"""
import importlib
import pkgutil
import textwrap

from studies.spec import Point, Study  # noqa: F401


def discover(package=__name__, path=__path__):
    """{study name: builder} and {module name: module} of every model file of the ``package`` folder (``path``):
    each module but ``spec`` and the ``_private`` ones, and the studies of its ``STUDIES``."""
    found, modules, where = {}, {}, {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if info.name.startswith('_') or info.name == 'spec':
            continue
        modules[info.name] = module = importlib.import_module(f'{package}.{info.name}')
        for name, build in getattr(module, 'STUDIES', {}).items():
            if name in found:
                raise ValueError(f'study {name!r} is defined twice: {package}/{where[name]}.py and '
                                 f'{package}/{info.name}.py')
            found[name], where[name] = build, info.name
    return found, modules


STUDIES, MODULES = discover()


def describe():
    """One paragraph per model file: its studies and the first sentence of its docstring (the engine's --help)."""
    out = []
    for name, module in MODULES.items():
        first = ' '.join((module.__doc__ or '').split()).split('; ')[0].split('.  ')[0]
        out.append(textwrap.fill(f"studies/{name}.py ({', '.join(getattr(module, 'STUDIES', {}))}): {first}", 100,
                                 subsequent_indent='  '))
    return '\n'.join(out)


def get(name, samples=None):
    """The study ``name`` (``samples`` per point if given, else its own counts)."""
    if name not in STUDIES:
        raise ValueError(f'no study {name!r}; expected one of {sorted(STUDIES)}')
    return STUDIES[name](samples)
