"""Score networks of the three official families, built by name.

``create_model(config)`` builds the *raw* network with the official module tree (so official
state_dict keys load unchanged, minus the DataParallel ``module.`` prefix).  The raw networks keep
the official call signatures:

* NCSN / NCSNv2 (``ncsn``, ``ncsnv2_64``, ``ncsnv2_128``, ``ncsnv2_256``): ``net(x, labels)`` with
  integer noise-level indices (0 = largest sigma).
* NCSN++ (``ncsnpp``): ``net(x, cond)`` with ``cond`` = sigma (Fourier embedding) or the integer
  label (positional embedding; VP models: the float time label).
* DDPM (``ddpm``): ``net(x, labels)`` with the (float) time label.

Samplers never call raw networks: they use :class:`models.score.ScoreModel`, which exposes one
interface ``score(x, sigma)`` for every family.
"""
_MODELS = {}


def register_model(*names):
    """Class decorator: register a network class under one or more config names (``model.name``)."""
    def wrap(cls):
        for name in names:
            if name in _MODELS:
                raise ValueError(f"model name {name!r} is registered twice")
            _MODELS[name] = cls
        return cls
    return wrap


def get_model_class(name):
    _import_all()
    if name not in _MODELS:
        raise ValueError(f"unknown model.name {name!r}; expected one of {sorted(_MODELS)}")
    return _MODELS[name]


def create_model(config):
    """Build the raw network for ``config`` (an ml_collections ConfigDict) on the CPU, in eval mode."""
    net = get_model_class(config.model.name)(config)
    return net.eval()


def _import_all():
    # Importing the modules runs their @register_model decorators.
    from models import refinenet, ncsnpp, ddpm  # noqa: F401
