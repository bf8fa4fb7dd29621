"""EMA: the two official update rules step by step, copy/store/restore, and the official exports."""
import pytest
import torch
from torch import nn

from models.checkpoint import official_object
from training.ema import EMA, ema_rule
from train_helpers import tiny_ncsn, tiny_ncsnpp, tiny_ncsnv2


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1., 2.]))
        self.frozen = nn.Parameter(torch.tensor([7.]), requires_grad=False)    # like NCSN++'s Fourier W
        self.b = nn.Parameter(torch.tensor([[0.5]]))


def _walk(net, ema, values):
    for v in values:
        with torch.no_grad():
            net.a.fill_(v)
            net.b.fill_(-v)
        ema.update(net)


def test_score_sde_rule_warms_up():
    net = Tiny()
    ema = EMA(net, 0.999, 'score_sde')
    shadow_a, shadow_b = torch.tensor([1., 2.], dtype=torch.float64), torch.tensor([[0.5]], dtype=torch.float64)
    for n, v in enumerate([3., -1., 10., 4.], start=1):
        _walk(net, ema, [v])
        d = min(0.999, (1 + n) / (10 + n))          # n counts this update (2/11 on the first)
        shadow_a = d * shadow_a + (1 - d) * v
        shadow_b = d * shadow_b + (1 - d) * -v
    assert ema.num_updates == 4 and len(ema.shadow_params) == 2      # the frozen param is not tracked
    torch.testing.assert_close(ema.shadow_params[0], shadow_a.float())
    torch.testing.assert_close(ema.shadow_params[1], shadow_b.float())


def test_ncsnv2_rule_is_plain():
    net = Tiny()
    ema = EMA(net, 0.9, 'ncsnv2')
    shadow = torch.tensor([1., 2.], dtype=torch.float64)
    for v in [3., -1., 10.]:
        _walk(net, ema, [v])
        shadow = 0.1 * v + 0.9 * shadow
    torch.testing.assert_close(ema.shadow_params[0], shadow.float())


def test_copy_store_restore():
    net = Tiny()
    ema = EMA(net, 0.5, 'ncsnv2')
    _walk(net, ema, [3.])
    ema.store(net)
    ema.copy_to(net)
    assert torch.equal(net.a.detach(), torch.tensor([2., 2.5])) and net.frozen.item() == 7.
    ema.restore(net)
    assert torch.equal(net.a.detach(), torch.tensor([3., 3.]))
    with pytest.raises(RuntimeError):
        ema.restore(net)


def test_official_exports():
    net = Tiny()
    v2 = EMA(net, 0.9, 'ncsnv2').official()
    assert list(v2) == ['a', 'b']                     # name -> tensor, no 'module.', trainable only
    sde = EMA(net, 0.999, 'score_sde')
    _walk(net, sde, [1., 2.])
    state = sde.official()
    assert state['num_updates'] == 2 and state['decay'] == 0.999 and len(state['shadow_params']) == 2
    obj = official_object('score_sde', net, ema_params=sde.shadow_params, ema_num_updates=sde.num_updates)
    assert obj['ema']['num_updates'] == 2
    assert torch.equal(obj['ema']['shadow_params'][0], sde.shadow_params[0])
    other = EMA(Tiny(), 0.1, 'score_sde')
    other.load_state_dict(state)
    assert other.num_updates == 2 and torch.equal(other.shadow_params[1], sde.shadow_params[1])


def test_rule_per_family():
    assert ema_rule(tiny_ncsn()) is None                # NCSN v1: model.ema False
    assert ema_rule(tiny_ncsnv2()) == 'ncsnv2'
    assert ema_rule(tiny_ncsnpp()) == 'score_sde'
