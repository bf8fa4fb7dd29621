"""Resuming: a run in pieces (or killed and rerun) ends bit-identical to an uninterrupted run."""
import csv

import pytest
import torch

from training import run_train
from train_helpers import HAS_NCSNPP, blobs, tiny_ncsnpp, tiny_ncsnv2, trainable


def _state(result):
    ema = result['ema']
    return trainable(result['net']), ([s.clone() for s in ema.shadow_params] if ema else []), \
        (ema.num_updates if ema else 0)


def _assert_identical(a, b):
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        assert torch.equal(x, y)
    assert a[2] == b[2]


def _log_rows(workdir):
    with open(workdir / 'train_log.csv') as f:
        rows = list(csv.reader(f))
    return [r[:3] + r[4:] for r in rows]            # all but the wall-clock it/s column


class Crash(RuntimeError):
    pass


class CrashingData(torch.utils.data.Dataset):
    """Raises after ``fail_after`` reads: a kill in the middle of a run."""

    def __init__(self, base, fail_after):
        self.base, self.left = base, fail_after

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise Crash('killed')
        return self.base[i]


def _ncsnv2_config():
    # Flips and dequantisation on, so the generator state must be restored too; log windows cross snapshots.
    config = tiny_ncsnv2(steps=8, log_freq=3, snapshot_freq=2)
    config.data.uniform_dequantization = True
    return config


def test_resume_in_pieces_is_bit_identical(tmp_path):
    data = blobs(10)                                # 4 samples a step: batches cross epoch ends
    full = _state(run_train(_ncsnv2_config(), str(tmp_path / 'a'), data, progress=False))
    first = run_train(_ncsnv2_config(), str(tmp_path / 'b'), data, progress=False, max_steps=5)
    assert first['step'] == 5
    resumed = run_train(_ncsnv2_config(), str(tmp_path / 'b'), data, progress=False)
    assert resumed['step'] == 8
    _assert_identical(full, _state(resumed))
    assert _log_rows(tmp_path / 'a') == _log_rows(tmp_path / 'b')
    again = run_train(_ncsnv2_config(), str(tmp_path / 'b'), data, progress=False)     # nothing left to do
    assert again['step'] == 8
    _assert_identical(full, _state(again))


def test_killed_run_reruns_to_the_same_result(tmp_path):
    data = blobs(10)
    full = _state(run_train(_ncsnv2_config(), str(tmp_path / 'a'), data, progress=False))
    with pytest.raises(Crash):                      # dies while loading step 6 (after the snapshot at 4)
        run_train(_ncsnv2_config(), str(tmp_path / 'b'), CrashingData(data, 4 * 5 + 1 + 2), progress=False)
    latest = torch.load(tmp_path / 'b' / 'checkpoints-meta' / 'latest.pth', weights_only=True)
    assert latest['step'] == 4 and latest['consumed'] == 16 and latest['epoch'] == 1 and latest['offset'] == 6
    assert int(_log_rows(tmp_path / 'b')[-1][0]) == 3
    assert not list((tmp_path / 'b' / 'checkpoints-meta').glob('.tmp-*'))
    resumed = run_train(_ncsnv2_config(), str(tmp_path / 'b'), data, progress=False)
    _assert_identical(full, _state(resumed))
    assert _log_rows(tmp_path / 'a') == _log_rows(tmp_path / 'b')


@pytest.mark.skipif(not HAS_NCSNPP, reason='models/ncsnpp.py not available')
def test_resume_ncsnpp_with_dropout_and_warmup(tmp_path):
    def config():
        c = tiny_ncsnpp(steps=6, snapshot_freq=3)
        c.model.dropout = 0.1                       # global RNG, reseeded per step
        c.optim.grad_clip = 1.
        return c
    data = blobs(8)
    full = _state(run_train(config(), str(tmp_path / 'a'), data, progress=False))
    run_train(config(), str(tmp_path / 'b'), data, progress=False, max_steps=3)
    resumed = _state(run_train(config(), str(tmp_path / 'b'), data, progress=False))
    _assert_identical(full, resumed)
    assert resumed[2] == 6                          # score_sde EMA counter restored


def test_loader_workers_do_not_change_the_result(tmp_path):
    data = blobs(10)
    one = _state(run_train(_ncsnv2_config(), str(tmp_path / 'a'), data, progress=False, max_steps=4))
    two = _state(run_train(_ncsnv2_config(), str(tmp_path / 'b'), data, num_workers=2, progress=False, max_steps=4))
    _assert_identical(one, two)
