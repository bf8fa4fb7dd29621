"""ml_collections configs (``get_config()`` per file); ``load_file`` reads one by path, as ``--config`` does."""
import os


def load_file(path):
    """``get_config()`` of the config file at ``path`` (a .py file defining it), or ``get_config(setting)`` for
    ``path.py:setting`` (as ``--config`` takes it).  A missing or unreadable file raises ValueError in one line."""
    import importlib.util
    file, sep, setting = path.partition('.py:')
    file = file + '.py' if sep else path
    if not os.path.isfile(file):
        raise ValueError(f'config file {file!r} does not exist; expected a configs/<...>.py file (optionally '
                         'followed by :<setting>)')
    spec = importlib.util.spec_from_file_location('config_file', file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(setting) if setting else module.get_config()
