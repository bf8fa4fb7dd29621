"""The training loop learns, logs, and applies the official optimisation and data settings."""
import csv
import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from training import run_train
from training.train import _BatchStream, _optimize, Trainer
from train_helpers import blobs, tiny_ncsn, tiny_ncsnv2


@pytest.mark.slow
def test_tiny_ncsnv2_loss_drops(tmp_path):
    config = tiny_ncsnv2(size=16, nf=8, batch=16, steps=120)
    config.optim.lr = 1e-3
    config.data.random_flip = False
    result = run_train(config, str(tmp_path), blobs(256, 16), progress=False)
    losses = [row[1] for row in result['history']]
    assert len(losses) == 120
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.5 * first, (first, last)


def test_log_file(tmp_path):
    config = tiny_ncsn(steps=6, log_freq=3)
    result = run_train(config, str(tmp_path), blobs(16), progress=False)
    with open(tmp_path / 'train_log.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ['step', 'loss', 'lr', 'it_per_s'] and len(rows[0]) == 14
    assert rows[0][4] == 'loss_sigma_1_0.631' and rows[0][-1] == 'loss_sigma_0.01585_0.01'
    assert [int(r[0]) for r in rows[1:]] == [3, 6]
    for r in result['history']:                                 # the overall mean lies within the bucket means
        buckets = [v for v in r[4:] if not math.isnan(v)]
        assert float(r[2]) == 1e-3 and buckets and min(buckets) <= r[1] <= max(buckets)
    assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == ['checkpoint_6.pth']


def test_optimize_warmup_and_clip():
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=1.)

    class Optim:
        lr, warmup, grad_clip = 2., 4, 1.
    p.grad = torch.tensor([3., 0., 4., 0.])                     # norm 5 -> clipped to 1
    _optimize(opt, [p], 0, Optim)                               # step 0: lr 0 (official warm-up)
    assert opt.param_groups[0]['lr'] == 0. and torch.equal(p.detach(), torch.zeros(4))
    p.grad = torch.tensor([3., 0., 4., 0.])
    _optimize(opt, [p], 2, Optim)                               # lr = 2 * 2/4 = 1, grad = (0.6, 0, 0.8, 0)
    torch.testing.assert_close(p.detach(), torch.tensor([-0.6, 0., -0.8, 0.]))
    Optim.grad_clip, Optim.warmup = -1., 0
    opt.param_groups[0]['lr'] = 0.5
    p.grad = torch.tensor([3., 0., 4., 0.])
    _optimize(opt, [p], 2, Optim)                               # no clipping, lr untouched
    torch.testing.assert_close(p.detach(), torch.tensor([-2.1, 0., -2.8, 0.]))


def test_augmentation(tmp_path):
    config = tiny_ncsn(size=8, batch=64)
    config.data.uniform_dequantization, config.data.random_flip, config.data.centered = True, True, False
    run = Trainer(config, str(tmp_path), blobs(4), 0, False)
    x = torch.zeros(64, 1, 8, 8)
    x[..., 0] = 1.                                             # left column white
    out, draws = run._augment_and_draw(x)
    flipped = out[..., -1].mean((1, 2)) > 0.5
    assert 10 < int(flipped.sum()) < 54                         # about half flipped
    kept = torch.where(flipped.view(-1, 1, 1, 1), out.flip(-1), out)
    assert torch.all(kept[..., 1:] >= 0) and torch.all(kept[..., 1:] < 1 / 256)   # x*255/256 + U/256
    assert torch.all(kept[..., 0] >= 255 / 256) and torch.all(kept[..., 0] < 1)
    assert draws['labels'].shape == (64,) and draws['z'].shape == (64, 1, 8, 8)
    config.data.uniform_dequantization, config.data.random_flip, config.data.centered = False, False, True
    run = Trainer(config, str(tmp_path / 'b'), blobs(4), 0, False)
    assert torch.equal(run._augment_and_draw(x)[0], 2 * x - 1)


def test_data_order():
    full = iter(_BatchStream(10, 4, seed=1, consumed=0, rank=0, world=1))
    batches = [next(full) for _ in range(5)]                    # 20 samples = two epochs
    assert sorted(sum(batches[:2], []) + batches[2][:2]) == list(range(10))
    assert sorted(batches[2][2:] + sum(batches[3:], [])) == list(range(10))
    assert sum(batches[:2], []) + batches[2][:2] != batches[2][2:] + sum(batches[3:], [])   # new order per epoch
    resumed = iter(_BatchStream(10, 4, seed=1, consumed=8, rank=0, world=1))
    assert [next(resumed) for _ in range(3)] == batches[2:]
    shards = [iter(_BatchStream(10, 4, seed=1, consumed=0, rank=r, world=2)) for r in (0, 1)]
    assert next(shards[0]) + next(shards[1]) == batches[0]


def test_rejects_bad_inputs(tmp_path):
    config = tiny_ncsn(size=8)
    with pytest.raises(ValueError, match='shape'):
        run_train(config, str(tmp_path), TensorDataset(torch.rand(8, 1, 16, 16)), progress=False)
    config.training.batch_size = 3
    config.optim.optimizer = 'SGD'
    with pytest.raises(ValueError, match='Adam'):
        run_train(config, str(tmp_path), blobs(8), progress=False)


def test_dataset_path(tmp_path):
    readers = pytest.importorskip('data.readers')
    images = (np.asarray(blobs(12).tensors[0])[:, 0] * 255).round().astype(np.uint8)     # (N, H, W) uint8
    np.save(tmp_path / 'train.npy', images)
    config = tiny_ncsn(steps=2)
    config.data.centered = True            # the loop centres; the reader must hand over [0, 1] images
    assert float(readers.open_dataset(str(tmp_path / 'train.npy'), config, centered=False)[0].min()) >= 0
    result = run_train(config, str(tmp_path / 'run'), str(tmp_path / 'train.npy'), progress=False)
    assert result['step'] == 2 and (tmp_path / 'run' / 'checkpoints' / 'checkpoint_2.pth').is_file()


def test_compile_is_used_on_the_cpu(tmp_path):
    """training.compile = True compiles the training forward on the CPU too (it used to be ignored there); the
    speed and the equal losses are measured by benchmarks/cpu_speed.py --compile, not here (a compile takes
    minutes)."""
    config = tiny_ncsn()
    config.training.compile = True
    data = TensorDataset(torch.rand(8, 1, 8, 8))
    trainer = Trainer(config, str(tmp_path), data, progress=False)
    assert trainer.speed['compile'] and isinstance(trainer.model, torch._dynamo.eval_frame.OptimizedModule)
    trainer.close()
    config.training.compile = False
    plain = Trainer(config, str(tmp_path / 'plain'), data, progress=False)
    assert plain.model is plain.net
    plain.close()
