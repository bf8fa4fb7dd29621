"""Training speed (it/s) of the NCSN MNIST model (configs/ncsn/mnist.py: nf 64, batch 128, 28x28).

    python benchmarks/train_bench.py --device cpu --steps 5
    python benchmarks/train_bench.py --device cuda --steps 50 --variants baseline channels_last bf16 compile all

Times :meth:`training.train.Trainer.train_step` (augmentation + draws, forward, backward, Adam, EMA when on)
on one in-memory batch, after a few warm-up steps, for each speed-option variant (config.training.
channels_last / bf16 / compile).  The options only act on CUDA; on the CPU the variants are skipped.
"""
import argparse
import os
import sys
import tempfile
import time

import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs.ncsn import mnist  # noqa: E402
from training.train import Trainer  # noqa: E402

OPTIONS = ('channels_last', 'bf16', 'compile')
VARIANTS = {'baseline': (), 'channels_last': ('channels_last',), 'bf16': ('bf16',), 'compile': ('compile',),
            'all': OPTIONS}


def bench(variant, args, device):
    config = mnist.get_config()
    config.device = device.type
    config.model.nf = args.nf
    config.training.batch_size = args.batch
    for opt in OPTIONS:
        config.training[opt] = opt in VARIANTS[variant]
    data = TensorDataset(torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(config, workdir, data, progress=False)
        x = torch.stack([data[i][0] for i in range(args.batch)]).to(device)

        def step():
            trainer.train_step(x)
            trainer.step += 1

        for _ in range(args.warmup):
            step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        loss = trainer.train_step(x).loss.item()    # syncs
        elapsed = time.perf_counter() - start
        trainer.close()
    return (args.steps + 1) / elapsed, loss


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='auto', help="'auto' | 'cpu' | 'cuda'")
    parser.add_argument('--steps', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first (compile, cuDNN autotune)')
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--nf', type=int, default=64)
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = torch default)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available()
                          else 'cpu' if args.device == 'auto' else args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f'NCSN MNIST nf {args.nf}, batch {args.batch}, 28x28 on {name} (torch {torch.__version__}); '
          f'{args.warmup} warm-up + {args.steps} timed steps')
    variants = args.variants if device.type == 'cuda' else ['baseline']
    if device.type != 'cuda' and variants != args.variants:
        print('(speed options act on CUDA only: CPU runs the baseline)')
    base = None
    for variant in variants:
        rate, loss = bench(variant, args, device)
        base = base or rate
        print(f'{variant:>14}: {rate:8.3f} it/s  {rate * args.batch:9.1f} img/s  x{rate / base:.2f}  (loss {loss:.4g})')


if __name__ == '__main__':
    main()
