"""Checkpoints written by training are the official objects and load through models.checkpoint."""
import pytest
import torch

from models.checkpoint import detect_format, load_score_model
from training import run_train
from train_helpers import HAS_NCSNPP, blobs, tiny_ncsn, tiny_ncsnpp, tiny_ncsnv2, trainable


def _train(config, workdir):
    result = run_train(config, str(workdir), blobs(8, config.data.image_size), progress=False)
    path = workdir / 'checkpoints' / 'checkpoint_4.pth'
    assert sorted(p.name for p in path.parent.iterdir()) == ['checkpoint_2.pth', 'checkpoint_4.pth']
    return result, path, torch.load(path, map_location='cpu', weights_only=True)


def _params(score_model):
    return [p.detach() for p in score_model.net.parameters() if p.requires_grad]


def _same(a, b):
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _check_scores(config, result, score_model):
    """The loaded model computes the same score as the trained network (in eval mode)."""
    net = result['net'].eval()
    x, labels = torch.rand(2, 1, config.data.image_size, config.data.image_size), torch.tensor([0, 3])
    with torch.no_grad():
        if config.model.family == 'ncsnpp' and config.training.continuous:
            sig = score_model.sigmas[labels.numpy()]
            torch.testing.assert_close(score_model(x, torch.tensor(sig, dtype=torch.float32)),
                                       net(x, torch.tensor(sig, dtype=torch.float32)))
        else:
            torch.testing.assert_close(score_model(x, labels=labels), net(x, labels))


def test_ncsn_checkpoint(tmp_path):
    config = tiny_ncsn(snapshot_freq=2)
    result, path, obj = _train(config, tmp_path)
    assert isinstance(obj, list) and len(obj) == 2 and detect_format(obj) == 'ncsn'
    assert all(k.startswith('module.') for k in obj[0]) and obj[1]['state']      # Adam state saved
    model = load_score_model(path, config)
    _same(_params(model), trainable(result['net']))
    _check_scores(config, result, model)
    _same(_params(load_score_model(str(tmp_path), config)), trainable(result['net']))   # run folder -> newest


def test_ncsnv2_checkpoint(tmp_path):
    config = tiny_ncsnv2(snapshot_freq=2)
    result, path, obj = _train(config, tmp_path)
    assert isinstance(obj, list) and len(obj) == 5 and obj[3] == 4 and obj[2] == 2     # 16 samples / 8 = epoch 2
    assert list(obj[4]) == [k for k, p in result['net'].named_parameters() if p.requires_grad]
    _same(_params(load_score_model(path, config)), result['ema'].shadow_params)
    raw = load_score_model(path, config, use_ema=False)
    _same(_params(raw), trainable(result['net']))
    _check_scores(config, result, raw)
    assert not all(torch.equal(a, b) for a, b in zip(result['ema'].shadow_params, trainable(result['net'])))


@pytest.mark.skipif(not HAS_NCSNPP, reason='models/ncsnpp.py not available')
@pytest.mark.parametrize('continuous', [True, False])
def test_ncsnpp_checkpoint(tmp_path, continuous):
    config = tiny_ncsnpp(continuous=continuous, snapshot_freq=2)
    result, path, obj = _train(config, tmp_path)
    assert isinstance(obj, dict) and sorted(obj) == ['ema', 'model', 'optimizer', 'step'] and obj['step'] == 4
    assert obj['ema']['num_updates'] == 4 and obj['ema']['decay'] == config.model.ema_rate
    n_trainable = sum(p.requires_grad for p in result['net'].parameters())
    assert len(obj['ema']['shadow_params']) == n_trainable
    _same(_params(load_score_model(path, config)), result['ema'].shadow_params)
    raw = load_score_model(path, config, use_ema=False)
    _same(_params(raw), trainable(result['net']))
    _check_scores(config, result, raw)
