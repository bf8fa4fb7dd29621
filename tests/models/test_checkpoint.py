"""Official checkpoint formats: round trips and one clear error per mismatch class."""
import pytest
import torch

import models
from configs import defaults
from models.checkpoint import CheckpointError, detect_format, load_score_model, official_object, resolve_path


def tiny(family):
    if family == 'ncsn':
        c = defaults.ncsn()
        c.data.image_size, c.data.num_channels = 28, 1
    elif family == 'ncsnv2':
        c = defaults.ncsnv2('ncsnv2_64')
        c.model.sigma_max, c.model.num_scales = 50., 12
    else:
        c = defaults.ve_ncsnpp()
        c.model.ch_mult, c.model.num_res_blocks, c.model.attn_resolutions = (1, 2), 1, (8,)
        c.data.image_size = 16
    c.model.nf = 8
    return c


def randomized(config, seed):
    torch.manual_seed(seed)
    net = models.create_model(config)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    return net


def save(obj, path):
    torch.save(obj, path)
    return str(path)


FORMATS = [('ncsn', 'ncsn'), ('ncsnv2', 'ncsnv2'), ('ncsnpp', 'score_sde')]


@pytest.mark.parametrize('family,fmt', FORMATS)
def test_round_trip_with_ema(tmp_path, family, fmt):
    config = tiny(family)
    net = randomized(config, 0)
    ema = [p.detach() + 1 for p in net.parameters() if p.requires_grad]
    path = save(official_object(fmt, net, step=7, ema_params=ema), tmp_path / 'c.pth')
    obj = torch.load(path, map_location='cpu', weights_only=True)
    assert detect_format(obj) == fmt
    assert all(k.startswith('module.') for k in (obj['model'] if fmt == 'score_sde' else obj[0]))
    for use_ema in (True, False):
        loaded = load_score_model(path, config, use_ema=use_ema).net
        expected = ema if (use_ema and family != 'ncsn') else [p for p in net.parameters() if p.requires_grad]
        got = [p for p in loaded.parameters() if p.requires_grad]
        assert all(torch.equal(a, b) for a, b in zip(got, expected))
    if family == 'ncsnpp':   # the Fourier W is not trainable and comes from the model dict
        assert torch.equal(loaded.state_dict()['all_modules.0.W'], net.state_dict()['all_modules.0.W'])


def test_run_folder_layouts(tmp_path):
    config = tiny('ncsnv2')
    net = randomized(config, 1)
    (tmp_path / 'checkpoints').mkdir()
    for k in (3, 12):
        save(official_object('ncsnv2', net, step=k), tmp_path / 'checkpoints' / f'checkpoint_{k}.pth')
    assert resolve_path(str(tmp_path)).endswith('checkpoint_12.pth')
    save(official_object('ncsnv2', net), tmp_path / 'checkpoint.pth')
    assert resolve_path(str(tmp_path)).endswith('checkpoint.pth')
    assert resolve_path(str(tmp_path / 'checkpoints'), ckpt_id=3).endswith('checkpoint_3.pth')
    with pytest.raises(CheckpointError, match='no checkpoint_5.pth'):
        resolve_path(str(tmp_path / 'checkpoints'), ckpt_id=5)
    with pytest.raises(CheckpointError, match='does not exist'):
        resolve_path(str(tmp_path / 'nope'))


def test_keys_without_module_prefix_load(tmp_path):
    config = tiny('ncsn')
    net = randomized(config, 2)
    path = save([net.state_dict(), {}], tmp_path / 'c.pth')
    assert torch.equal(load_score_model(path, config).net.end_conv.weight, net.end_conv.weight)


# ---- one test per mismatch class ------------------------------------------------------------

def test_wrong_family(tmp_path):
    path = save(official_object('score_sde', randomized(tiny('ncsnpp'), 0)), tmp_path / 'c.pth')
    with pytest.raises(CheckpointError, match="detected format 'score_sde'.*model.family='ncsnv2'.*cannot hold"):
        load_score_model(path, tiny('ncsnv2'))
    path = save(official_object('ncsnv2', randomized(tiny('ncsnv2'), 0)), tmp_path / 'd.pth')
    with pytest.raises(CheckpointError, match='holds a ncsnv2 network, the config builds a ncsn network'):
        load_score_model(path, tiny('ncsn'))


def test_unrecognised_layout(tmp_path):
    with pytest.raises(CheckpointError, match='unrecognised checkpoint layout: dict with keys'):
        load_score_model(save({'state_dict': {}}, tmp_path / 'c.pth'), tiny('ncsn'))


def test_missing_and_unexpected_keys(tmp_path):
    config = tiny('ncsnv2')
    obj = official_object('ncsnv2', randomized(config, 0))
    obj[0].pop('module.end_conv.bias')
    obj[0]['module.extra.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 missing keys \['end_conv.bias'\], 1 unexpected keys \['extra.weight'\]"):
        load_score_model(save(obj, tmp_path / 'c.pth'), config)


def test_shape_mismatch(tmp_path):
    small, big = tiny('ncsnpp'), tiny('ncsnpp')
    big.model.nf = 16
    path = save(official_object('score_sde', randomized(big, 0)), tmp_path / 'c.pth')
    with pytest.raises(CheckpointError, match=r"shape mismatch for '.*': model expects \(.*\), checkpoint has \(.*\)"):
        load_score_model(path, small)
    # the message names the config's size, the usual cause (a config of another width or resolution)
    with pytest.raises(CheckpointError) as err:
        load_score_model(path, small)
    assert str(err.value).endswith(f'; expected the config the checkpoint was trained with (this one has '
                                   f'data.image_size = {small.data.image_size}, data.num_channels = '
                                   f'{small.data.num_channels}, model.nf = {small.model.nf}, model.ch_mult = '
                                   f'{small.model.ch_mult!r}, model.num_res_blocks = {small.model.num_res_blocks}, '
                                   f'model.attn_resolutions = {small.model.attn_resolutions!r})')


def test_ema_list_length_mismatch(tmp_path):
    config = tiny('ncsnpp')
    obj = official_object('score_sde', randomized(config, 0))
    obj['ema']['shadow_params'] = obj['ema']['shadow_params'][:-1]
    with pytest.raises(CheckpointError, match='shadow_params has .* tensors, the model has .* trainable .*silently truncate'):
        load_score_model(save(obj, tmp_path / 'c.pth'), config)


def test_ema_shape_mismatch(tmp_path):
    config = tiny('ncsnpp')
    obj = official_object('score_sde', randomized(config, 0))
    obj['ema']['shadow_params'][3] = torch.zeros(2)
    with pytest.raises(CheckpointError, match='EMA shape mismatch'):
        load_score_model(save(obj, tmp_path / 'c.pth'), config)


def test_ema_dict_names_mismatch(tmp_path):
    config = tiny('ncsnv2')
    net = randomized(config, 0)
    obj = official_object('ncsnv2', net, ema_params=[p.detach() for p in net.parameters()])
    obj[4]['bogus'] = obj[4].pop('end_conv.weight')
    with pytest.raises(CheckpointError, match=r"EMA dict does not match .*\['end_conv.weight'\].*\['bogus'\]"):
        load_score_model(save(obj, tmp_path / 'c.pth'), config)
