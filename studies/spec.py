"""What a measurement study is: a model (config, checkpoint, reference images) and a list of points, each a set of
config overrides and a sample count.  Plain data: this module imports only ``configs`` (to build a point's config).

The engine that samples and scores the points is ``runners/study.py``; the tables and plots of their rows are
``evaluation/study_report.py``.  A point is found done in a results CSV by its :func:`config_name` (the command line
that names its config) and its sample count, so a point's name, overrides and count are its identity: change them
and the point is another one (its rows are no longer found).
"""
import importlib
from dataclasses import dataclass

# the iterations of the FID-against-iterations curves (10 .. 1000)
CURVE_ITERATIONS = (10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class Point:
    """One evaluation: ``overrides`` ((section.field, value), ...) applied to the study's config."""
    name: str                 # unique in its study: the workdir's name
    label: str                # the series it belongs to (plots, tables)
    overrides: tuple
    num_samples: int
    cell: tuple = ()          # map studies: (high-frequency gain, step_lr), the point's cell in the map


@dataclass(frozen=True)
class Study:
    name: str
    model: dict               # config module[:setting], checkpoint, reference spec and split, results folder
    points: tuple
    batch_size: int = 100
    table: str = 'curves'     # its --summary table: 'curves' (series x iterations), 'map' (gain x step), 'rivals'
    budgets: tuple = (10, 20, 50, 100)    # 'rivals' tables: the NFE budgets of the "best sampler within" lines
    # the speed switches that change the images (models/speed.py), set by at_precision: part of every point's identity
    precision: str = 'fp32'
    bf16_min_sigma: float = 0.


def model(config, checkpoint, results, ref='data:$PDS_DATA/mnist', ref_split='test'):
    """A study's model: ``config`` (``configs/<module>.py[:setting]`` as 'module[:setting]'; a module of a subfolder
    as 'folder/module', e.g. 've/deadleaves64_ncsnpp:cpu' for ``configs/ve/deadleaves64_ncsnpp.py:cpu``), the
    ``checkpoint`` it runs (relative to the repository), the reference images its FID is against, and ``results``, the
    folder of its committed rows (``results/<model>``; its name is also the folder of its untracked rows under
    ``--out``)."""
    return dict(config=config, checkpoint=checkpoint, ref=ref, ref_split=ref_split, results=results)


def gain_overrides(gain):
    """The radial filter of Eq. 20 with high-frequency gain ``gain``; gain 1 is vanilla.  Eq. 20's two readings are
    one axis: 'inverse' with lambda is *exactly* 'direct' with 1 / lambda (the filter is 1 inside the disc and lambda
    or 1 / lambda outside), so g > 1 is 'direct' lambda = g and g < 1 is 'inverse' lambda = 1 / g."""
    if abs(gain - 1) < 1e-12:
        return (('pds.enabled', False),)
    if gain > 1:
        return (('pds.freq', 'radial'), ('pds.radial_direction', 'direct'), ('pds.lam', round(gain, 6)))
    return (('pds.freq', 'radial'), ('pds.radial_direction', 'inverse'), ('pds.lam', round(1 / gain, 6)))


def gain_label(gain):
    """'vanilla', 'direct λ=1.6', 'inverse λ=1.6': the name of a high-frequency gain in tables and plots."""
    if abs(gain - 1) < 1e-12:
        return 'vanilla'
    return f'direct λ={gain:g}' if gain > 1 else f'inverse λ={1 / gain:g}'


def point_config(study, point):
    """The config a point runs: the study's config with the point's overrides."""
    from configs.defaults import set_field
    module, _, setting = study.model['config'].partition(':')
    get_config = importlib.import_module('configs.' + module.replace('/', '.')).get_config
    config = get_config(setting) if setting else get_config()
    for key, value in point.overrides:
        if not set_field(config, key, value):
            raise ValueError(f'study {study.name}: the config has no field {key!r}')
    return config


def at_precision(study, precision='fp32', bf16_min_sigma=0.):
    """``study`` sampled at ``precision`` ('fp32', 'tf32', 'bf16'; with bf16, float32 below ``bf16_min_sigma``):
    tf32 and bf16 change the images, so every point of it is another point, with its own rows (:func:`config_name`
    ends in ``--precision=...``) and its own workdir (:func:`precision_tag`).  fp32 is ``study`` itself."""
    from dataclasses import replace
    return replace(study, precision=precision, bf16_min_sigma=float(bf16_min_sigma or 0.))


def precision_tag(study):
    """'' at fp32, else 'bf16', 'tf32', 'bf16-min0.1' (bf16 with float32 below sigma 0.1): the suffix of the
    workdirs of a study sampled at another precision."""
    if study.precision == 'fp32' and not study.bf16_min_sigma:
        return ''
    return study.precision + (f'-min{study.bf16_min_sigma:g}' if study.bf16_min_sigma else '')


def config_name(study, point):
    """How the point's config is named on the command line (the CSV's ``config`` column, the resume key), with the
    precision flags when the study is sampled at another precision than fp32 (:func:`at_precision`)."""
    def flag(key, value):
        if key == 'pds.enabled':
            return f'--pds={str(value).lower()}'
        return f'--config.{key}={value}'
    module, colon, setting = study.model['config'].partition(':')
    name = f'configs/{module}.py{colon}{setting} ' + ' '.join(flag(k, v) for k, v in point.overrides)
    if precision_tag(study):
        name += f' --precision={study.precision}'
        if study.bf16_min_sigma:
            name += f' --bf16_min_sigma={study.bf16_min_sigma:g}'
    return name
