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
* ``--compile``: a third path, new + ``torch.compile`` (inductor, C++ on the CPU) of the network (inference:
  ``load_score_model(compile=True)``, ``--compile`` of main.py) or of the training step (``training.compile``):
  its steady rate, its compile time (first call minus one steady call; much shorter once inductor's cache in the
  temp folder holds the kernels) and the img-NFE (images for training) after which compiling has paid for itself
  against new.
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


def inference(nf, batch, reps, compiled=False):
    """(old, new img-NFE/s, max rel diff new vs old); with ``compiled`` also (new compiled img-NFE/s, compile
    seconds, max rel diff compiled vs old), the same network on the same inputs."""
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

    def rel(out):
        return ((ref - out).abs().max() / ref.abs().max()).item()

    fast = torch.channels_last if score.channels_last else torch.contiguous_format
    score.net.to(memory_format=torch.contiguous_format)
    ref, t_old = old(), _time(old, reps)
    score.net.to(memory_format=fast)
    err = rel(new())
    t_new = _time(new, reps)
    if not compiled:
        return batch / t_old, batch / t_new, err
    score.net.compile()
    start = time.perf_counter()
    out = new()                                                  # compiles
    t_first = time.perf_counter() - start
    t_comp = _time(new, reps)
    return batch / t_old, batch / t_new, err, batch / t_comp, t_first - t_comp, rel(out)


def training(nf, batch, steps, compiled=False):
    """{'old', 'new'[, 'compiled']: img/s, '<name>_loss': first loss[, 'compile_s']} of Trainer.train_step."""
    rates = {}
    paths = (('old', reference_ops, False), ('new', contextlib.nullcontext, False))
    for name, ctx, comp in paths + ((('compiled', contextlib.nullcontext, True),) if compiled else ()):
        data = TensorDataset(torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
        config = _config(nf, batch)
        config.training.compile = comp
        with tempfile.TemporaryDirectory() as workdir, ctx():
            trainer = Trainer(config, workdir, data, progress=False)
            x = torch.stack([data[i][0] for i in range(batch)])
            losses = []

            def step():
                losses.append(trainer.train_step(x).loss.item())
                trainer.step += 1

            if comp:
                start = time.perf_counter()
                step()                                           # compiles the forward and the backward
                first = time.perf_counter() - start
            rates[name] = batch / _time(step, steps)
            if comp:
                rates['compile_s'] = first - batch / rates[name]
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
    parser.add_argument('--compile', action='store_true', help="today's path eager vs torch.compile'd")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'NCSN (CondRefineNetDilated) MNIST 28x28, CPU {torch.get_num_threads()} threads, torch {torch.__version__}',
          flush=True)
    for nf in args.nf:
        if args.compile:
            for batch in args.batches:
                old, new, _, comp, secs, err = inference(nf, batch, args.reps, compiled=True)
                per = 1 / new - 1 / comp
                even = f'{secs / per:,.0f} img-NFE' if per > 0 else 'never'
                print(f'nf {nf:3d} inference batch {batch:4d}: old {old:8.1f}  new {new:8.1f}  new + compile '
                      f'{comp:8.1f} img-NFE/s  x{new / old:.2f} / x{comp / old:.2f}  (compile {secs:.0f} s, pays off '
                      f'after {even}; max rel diff {err:.1e})', flush=True)
            if not args.no_train:
                r = training(nf, args.train_batch, args.train_steps, compiled=True)
                per = 1 / r['new'] - 1 / r['compiled']
                even = f'{r["compile_s"] / per:,.0f} images' if per > 0 else 'never'
                print(f'nf {nf:3d} training  batch {args.train_batch:4d}: old {r["old"]:8.1f}  new {r["new"]:8.1f}  '
                      f'new + compile {r["compiled"]:8.1f} img/s  x{r["new"] / r["old"]:.2f} / '
                      f'x{r["compiled"] / r["old"]:.2f}  (compile {r["compile_s"]:.0f} s, pays off after {even}; '
                      f'first loss {r["old_loss"]:.6g} / {r["new_loss"]:.6g} / {r["compiled_loss"]:.6g})', flush=True)
            continue
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
