"""Model B's network on a 2-core CPU: NCSN++ variants (block type, FIR, width, depth) side by side in one run, to
choose configs/ve/mnist_ncsnpp_cpu.py.

    python benchmarks/ncsnpp_cpu_configs.py                      # all variants
    python benchmarks/ncsnpp_cpu_configs.py --variants base biggan_fir --batch 100 --train-batch 64
    python benchmarks/ncsnpp_cpu_configs.py --config configs/ve/deadleaves32_ncsnpp_cpu.py --variants base nf32 ...

For each variant: parameters, sampling speed (img-NFE/s of ``score(x, sigma)`` under ``torch.inference_mode`` at
``--batch``) and training speed (img/s of ``Trainer.train_step``: draws, forward, backward, Adam, EMA at
``--train-batch``).  Variants run one after another in one process (name one twice to see the drift): compare
ratios within one run, absolute figures drift between runs.  The base variant is the shipped config; every other
one changes the listed fields.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
import time

import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import models  # noqa: E402
from configs.ve import mnist_ncsnpp_cpu  # noqa: E402
from models.score import ScoreModel  # noqa: E402
from training.train import Trainer  # noqa: E402

VARIANTS = {
    'base': {},
    'biggan': dict(resblock_type='biggan'),
    'ddpm_fir': dict(fir=True),
    'biggan_fir': dict(resblock_type='biggan', fir=True),
    'residual_input': dict(progressive_input='residual'),
    'nf16': dict(nf=16),
    'nf32': dict(nf=32),
    'nf64': dict(nf=64),
    'two_blocks': dict(num_res_blocks=2),
    'no_attention': dict(attn_resolutions=()),
    'nf24': dict(nf=24),
    'four_levels': dict(ch_mult=(1, 2, 2, 2)),
}
CONFIG = None


def _config(changes, batch):
    config = CONFIG.get_config() if CONFIG else mnist_ncsnpp_cpu.get_config()
    config.device = 'cpu'
    config.training.batch_size = batch
    for k, v in changes.items():
        config.model[k] = v
    return config


def _time(fn, reps):
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def measure(changes, batch, train_batch, reps, steps):
    torch.manual_seed(0)
    config = _config(changes, train_batch)
    net = models.create_model(config)
    params = sum(p.numel() for p in net.parameters())
    score = ScoreModel(net, config)
    shape = (config.data.num_channels, config.data.image_size, config.data.image_size)
    x = torch.rand(batch, *shape)
    sigma = torch.full((batch,), 0.3)

    def infer():
        with torch.inference_mode():
            return score(x, sigma)
    nfe_rate = batch / _time(infer, reps)
    data = TensorDataset(torch.rand(train_batch, *shape, generator=torch.Generator().manual_seed(0)))
    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(config, workdir, data, progress=False)
        xb = torch.stack([data[i][0] for i in range(train_batch)])

        def step():
            trainer.train_step(xb)
            trainer.step += 1
        train_rate = train_batch / _time(step, steps)
        trainer.close()
    return params, nfe_rate, train_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--batch', type=int, default=100)
    parser.add_argument('--train-batch', type=int, default=64)
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--config', default='', help='base config file (default: Model B, configs/ve/mnist_ncsnpp_cpu.py)')
    args = parser.parse_args()
    global CONFIG
    if args.config:
        spec = importlib.util.spec_from_file_location('base_config', args.config)
        CONFIG = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(CONFIG)
    print(f'NCSN++ {args.config or "MNIST 28x28"} variants, CPU {torch.get_num_threads()} threads, torch {torch.__version__}; '
          f'inference batch {args.batch}, training batch {args.train_batch}', flush=True)
    for name in args.variants:
        params, nfe, train = measure(VARIANTS[name], args.batch, args.train_batch, args.reps, args.steps)
        change = ', '.join(f'{k}={v}' for k, v in VARIANTS[name].items()) or 'the shipped config'
        print(f'{name:15s} {params / 1e6:6.2f} M params  sampling {nfe:8.1f} img-NFE/s  training {train:7.1f} img/s'
              f'  ({change})', flush=True)


if __name__ == '__main__':
    main()
