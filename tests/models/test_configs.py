"""Every real config builds the official architecture: parameter and state_dict key counts (meta device)."""
import importlib

import pytest
import torch

import models

# (config module, params, state_dict keys) -- the official counts
OFFICIAL = [
    ('configs.ve.cifar10_ncsnpp_continuous', 62_758_915, 572),
    ('configs.ve.cifar10_ncsnpp_deep_continuous', 107_587_075, 964),
    ('configs.ve.cifar10_ncsnpp', 62_693_251, 571),
    ('configs.ve.bedroom_ncsnpp_continuous', 65_574_549, 646),
    ('configs.ve.church_ncsnpp_continuous', 65_574_549, 646),
    ('configs.ve.ffhq_256_ncsnpp_continuous', 65_574_549, 646),
    ('configs.ve.celebahq_256_ncsnpp_continuous', 65_574_549, 646),
    ('configs.ve.ffhq_ncsnpp_continuous', 105_785_896, 554),
    ('configs.ve.celebahq_ncsnpp_continuous', 105_785_896, 554),
    ('configs.ncsn.mnist', 7_638_657, 173),
    ('configs.ncsn.cifar10', 30_117_635, 173),
    ('configs.ncsn.celeba', 30_117_635, 173),
    ('configs.ncsnv2.cifar10', 29_694_083, 154),
    ('configs.ncsnv2.celeba', 29_694_083, 154),
    ('configs.ncsnv2.church', 83_445_379, 192),
    ('configs.ncsnv2.tower', 83_445_379, 192),
    ('configs.ncsnv2.bedroom', 83_445_379, 192),
    ('configs.ncsnv2.ffhq', 94_132_611, 230),
]


@pytest.mark.parametrize('module,params,keys', OFFICIAL, ids=[m.split('.', 1)[1] for m, _, _ in OFFICIAL])
def test_official_structure(module, params, keys):
    config = importlib.import_module(module).get_config()
    with torch.device('meta'):
        net = models.create_model(config)
    assert sum(p.numel() for p in net.parameters()) == params
    assert len(net.state_dict()) == keys


# settings of the paper's tables: (pds config, setting, iterations as the paper counts, freq filter, space filter)
TABLE_ROWS = [
    ('mnist', 'table1_20it', 20, 'radial', False),
    ('church96', 'table1_126it', 126, 'radial', False),
    ('church96', 'table1_157it', 157, 'radial', False),
    ('church96', 'table1_210it', 210, 'radial', False),
    ('tower', 'table1_65it', 65, 'radial', False),
    ('tower', 'table1_81it', 81, 'radial', False),
    ('tower', 'table1_108it', 108, 'radial', False),
    ('cifar10', 'table2_100it', 100, 'stats', False),
    ('cifar10', 'table2_200it', 200, 'stats', False),
    ('bedroom', 'table2_166it', 166, 'stats', False),
    ('church', 'table2_166it', 166, 'stats', False),
    ('ffhq', 'table2_66it', 66, 'stats', True),
]


@pytest.mark.parametrize('name,setting,iterations,freq,space', TABLE_ROWS)
def test_paper_table_rows(name, setting, iterations, freq, space):
    import sampling
    config = importlib.import_module(f'configs.{name}_pds').get_config(setting)
    assert config.pds.enabled and config.pds.setting == setting
    assert sampling.iterations(config)[0] == iterations
    assert config.pds.freq == freq and bool(config.pds.space) == space


def test_table_row_values():
    from configs import mnist_pds, tower_pds, cifar10_pds
    c = mnist_pds.get_config()
    assert (c.pds.radius, c.pds.lam, c.sampling.method, c.sampling.ald_variant) == (0.2, 1.6, 'ald', 'ncsn')
    assert tower_pds.get_config().pds.lam == 1.1
    c = cifar10_pds.get_config('table2_200it')
    assert (c.pds.alpha, c.sampling.speed_up, c.model.num_res_blocks) == (10., 5., 8)
    with pytest.raises(ValueError, match='unknown PDS setting'):
        mnist_pds.get_config('table9')


def test_model_b_resume_file_fits_the_repository_limit():
    """Model B (configs/ve/mnist_ncsnpp_cpu.py) is committed with its exact resume file: fp32 weights, EMA and both
    Adam moments (16 bytes per parameter) must stay under 16 MB per file."""
    from configs.ve import mnist_ncsnpp_cpu
    config = mnist_ncsnpp_cpu.get_config()
    with torch.device('meta'):
        params = sum(p.numel() for p in models.create_model(config).parameters())
    assert params == 843_137 and 16 * params < 15.5e6


def test_model_a_auto_setting_is_the_measured_point():
    """configs/mnist_cpu_pds.py's default, auto_20it (the setting that reproduces Fig. 4 on Model A), is exactly the
    config the a_curves study measured as pds_auto_20it; the study's other points are overrides of the paper's
    Table 1 row, which stays one setting away."""
    from configs import mnist_cpu_pds
    from studies import model_a, spec
    s = model_a.a_curves()
    measured = spec.point_config(s, next(p for p in s.points if p.name == 'pds_auto_20it'))
    setting = mnist_cpu_pds.get_config('auto_20it')
    for section in ('sampling', 'pds', 'model', 'data'):
        mine, theirs = setting[section].to_dict(), measured[section].to_dict()
        mine.pop('setting', None), theirs.pop('setting', None)
        assert mine == theirs, section
    assert mnist_cpu_pds.get_config().to_dict() == setting.to_dict()
    table1 = spec.point_config(s, next(p for p in s.points if p.name == 'pds_table1_20it'))
    assert (table1.pds.freq, table1.pds.radius, table1.pds.lam, table1.sampling.step_lr) == ('radial', 0.2, 1.6, 2e-5)
    assert table1.to_dict() == mnist_cpu_pds.get_config('table1_20it').to_dict()
