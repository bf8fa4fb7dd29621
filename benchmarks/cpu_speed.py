"""CPU speed of the NCSN MNIST network: the reference path (the code before the CPU work) vs today's, one run.

    python benchmarks/cpu_speed.py                      # nf 16 and 32, inference and training
    python benchmarks/cpu_speed.py --nf 16 --batches 25 50 100 --train-batch 128

Both paths run the same weights on the same inputs in the same process, alternating, so the ratio is
meaningful on a shared machine even when the absolute figures drift between runs.

* inference: img-NFE/s of ``score(x, sigma)`` (one network evaluation per image).  old = the reference ops
  (``models.refinenet.reference_ops``: InstanceNorm++ in several passes, ELU, AvgPool2d, slice pooling, identity
  resizes) on NCHW tensors under ``torch.no_grad``; new = the fused ops, channels-last, under
  ``torch.inference_mode`` (what ``ScoreModel`` and the samplers use on the CPU).
* training: img/s of :meth:`training.train.Trainer.train_step` (draws, forward, backward, Adam), reference ops
  vs fused ops.
Outputs of both paths are compared (max relative error) so a speed-up can never come from a wrong result.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time

import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import models  # noqa: E402
from configs.ncsn import mnist  # noqa: E402
from models.refinenet import reference_ops  # noqa: E402
from models.score import ScoreModel  # noqa: E402
from training.train import Trainer  # noqa: E402


def _config(nf, batch=128):
    config = mnist.get_config()
    config.device = 'cpu'
    config.model.nf = nf
    config.training.batch_size = batch
    return config


def _time(fn, reps):
    fn()                                   # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def inference(nf, batch, reps):
    torch.manual_seed(0)
    config = _config(nf)
    score = ScoreModel(models.create_model(config), config)
    x = torch.rand(batch, 1, 28, 28)
    sigma = torch.full((batch,), 0.3)

    def old():
        with reference_ops(), torch.no_grad():
            return score.net(x, score.sigma_to_index(sigma))

    def new():
        with torch.inference_mode():
            return score(x, sigma)

    fast = torch.channels_last if score.channels_last else torch.contiguous_format
    score.net.to(memory_format=torch.contiguous_format)
    ref, t_old = old(), _time(old, reps)
    score.net.to(memory_format=fast)
    err = ((ref - new()).abs().max() / ref.abs().max()).item()
    t_new = _time(new, reps)
    return batch / t_old, batch / t_new, err


def training(nf, batch, steps):
    rates = {}
    for name, ctx in (('old', reference_ops), ('new', contextlib.nullcontext)):
        data = TensorDataset(torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
        with tempfile.TemporaryDirectory() as workdir, ctx():
            trainer = Trainer(_config(nf, batch), workdir, data, progress=False)
            x = torch.stack([data[i][0] for i in range(batch)])
            losses = []

            def step():
                losses.append(trainer.train_step(x).loss.item())
                trainer.step += 1

            rates[name] = batch / _time(step, steps)
            rates[name + '_loss'] = losses[0]
            trainer.close()
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nf', type=int, nargs='+', default=[16, 32])
    parser.add_argument('--batches', type=int, nargs='+', default=[25, 50, 100, 200], help='inference batch sizes')
    parser.add_argument('--reps', type=int, default=5, help='timed inference calls per batch size')
    parser.add_argument('--train-batch', type=int, default=128)
    parser.add_argument('--train-steps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = torch default)')
    parser.add_argument('--no-train', action='store_true')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'NCSN (CondRefineNetDilated) MNIST 28x28, CPU {torch.get_num_threads()} threads, torch {torch.__version__}',
          flush=True)
    for nf in args.nf:
        for batch in args.batches:
            old, new, err = inference(nf, batch, args.reps)
            print(f'nf {nf:3d} inference batch {batch:4d}: old {old:8.1f}  new {new:8.1f} img-NFE/s  '
                  f'x{new / old:.2f}  (max rel diff {err:.1e})', flush=True)
        if not args.no_train:
            r = training(nf, args.train_batch, args.train_steps)
            print(f'nf {nf:3d} training  batch {args.train_batch:4d}: old {r["old"]:8.1f}  new {r["new"]:8.1f} img/s      '
                  f'x{r["new"] / r["old"]:.2f}  (first loss {r["old_loss"]:.6g} vs {r["new_loss"]:.6g})', flush=True)


if __name__ == '__main__':
    main()
