"""ml_collections configs (``get_config()`` per file); ``load_file`` reads one by path, as ``--config`` does."""


def load_file(path):
    """``get_config()`` of the config file at ``path`` (a .py file defining it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('config_file', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
