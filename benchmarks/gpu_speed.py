"""The speed switches of models/speed.py side by side on a GPU (issue 33 part 3), in one run with a hard time budget.

    python benchmarks/gpu_speed.py --log results/gpu/gpu_speed.log          # a GPU: all it can in --budget_s (360)
    python benchmarks/gpu_speed.py --models ncsnpp256 --configs baseline all # a subset
    python benchmarks/gpu_speed.py --tiny                                    # any machine: every path, tiny shapes

**Sampling rows**: one sampler step of an official architecture with random weights at full size (score_sde's VE
NCSN++ ``cifar10_ncsnpp_deep_continuous`` at 32 px, batch 128 and 512; ``bedroom_ncsnpp_continuous`` at 256 px,
batch 16 and 64; ``ffhq_ncsnpp_continuous`` at 1024 px, batch 2 and 8: a PC step, Langevin corrector + reverse
diffusion = 2 NFE; the NCSNv2 church RefineNet at 96 px, batch 96: one annealed Langevin step, 1 NFE), with PDS on
(the Eq. 20 radial filter, so the FFTs are timed too) and the noise drawn on the GPU (``--noise_device device``).
The step is the one ``--mode sample`` runs (sampling/graphs.py's factored step: eager, or captured with
``--cuda_graphs``).  Weights are N(0, 0.02) (the official init makes denormals).

Configurations (each switch alone, then together):

* ``baseline``: eager fp32 with PyTorch's defaults, as the official code runs (cuDNN TF32 convolutions on, matmul
  TF32 off);
* ``fp32``: ``--precision fp32`` (strict: TF32 off everywhere, what the fixtures check);
* ``tf32``, ``bf16``, ``channels_last`` (``--channels_last on``), ``compile`` (``--compile``), ``max_autotune``
  (``--compile --compile_mode max-autotune``), ``cuda_graphs`` (``--cuda_graphs``);
* ``all``: bf16 + channels-last + compile + CUDA graphs; ``all_tf32``: the same with tf32 instead of bf16 (the
  fallback where bf16 is not neutral).

Printed per row: img-NFE/s (images x network evaluations per second), the ratio to the baseline of the same model
and batch, ms per step, peak GPU memory, achieved TFLOP/s (the network's FLOPs counted once with
``torch.utils.flop_counter`` at batch 1, times img-NFE/s) and its share of the bf16 dense peak (``--peak_tflops``,
790 for an H200), and the first step's seconds (compile / capture) as a note.  Then a summary against the issue's
targets (>= 5x the baseline at 256 and 1024 px, >= 3x at 32 px) and, if time is left, where the time of one step
goes (torch.profiler's top operations of the eager bf16 + channels-last step at 256 px).

**Training rows**: ``Trainer.train_step`` it/s of configs/ve/mnist_ncsnpp_cpu.py (Model B) and
configs/ve/deadleaves32_ncsnpp_cpu.py (C32) at their batch of 64 on random images: eager fp32 (PyTorch's defaults)
against bf16 + compile.

**Budget**: cells run in priority order (the cheap single switches of every model first, then 'all', training,
compile alone, the second batch sizes, max-autotune); a cell whose estimated cost (compile cells: the measured
compile time of the run so far, else 60 s) does not fit in what is left of ``--budget_s`` is skipped with a line, and
an alarm stops a cell that runs past the budget.  A cell that fails (out of memory, a capture error) prints one line
and the run goes on.

``--tiny``: tiny versions of the same architectures (benchmarks/tiny_models.py) at batch 2 and 4 on the CPU (or the
given device): every path in seconds (``--compile_backend eager`` skips code generation; the CI test uses it);
CUDA graphs run their factored steps eagerly off CUDA (noted in the row).
"""
import argparse
import contextlib
import dataclasses
import gc
import importlib
import math
import os
import signal
import sys
import tempfile
import time
import warnings

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import tiny_models  # noqa: E402
from models import speed as speed_lib  # noqa: E402

H200_BF16_TFLOPS = 790.


@dataclasses.dataclass(frozen=True)
class Model:
    key: str
    module: str
    size: int
    batches: tuple
    sampler: str                       # 'pc' or 'ald'
    tiny: dict = dataclasses.field(default_factory=dict)

    def config(self, tiny=False):
        config = importlib.import_module(self.module).get_config()
        if tiny:
            if config.model.family == 'ncsnpp':
                tiny_models.shrink_ncsnpp(config, **self.tiny)
            else:
                tiny_models.shrink_refinenet(config, **self.tiny)
        config.pds.enabled, config.pds.freq, config.pds.space = True, 'radial', False
        config.pds.freq_path = config.pds.space_path = ''
        return config


MODELS = (
    Model('ncsnpp32', 'configs.ve.cifar10_ncsnpp_deep_continuous', 32, (128, 512), 'pc', dict(size=16, nf=8)),
    Model('ncsnpp256', 'configs.ve.bedroom_ncsnpp_continuous', 256, (16, 64), 'pc', dict(size=16, nf=8)),
    Model('ncsnpp1024', 'configs.ve.ffhq_ncsnpp_continuous', 1024, (2, 8), 'pc', dict(size=16, nf=8)),
    Model('ncsnv2_church96', 'configs.ncsnv2.church', 96, (96,), 'ald', dict(size=16, nf=4)),
)
TINY_BATCHES = (2,)

# name -> (Speed fields, description); 'baseline' runs with PyTorch's default TF32 flags
CONFIGS = {
    'baseline': (dict(), "eager fp32, PyTorch's default flags (cuDNN TF32 on, matmul TF32 off)"),
    'fp32': (dict(precision='fp32'), 'strict fp32 (TF32 off)'),
    'tf32': (dict(precision='tf32'), 'TF32 matmuls and convolutions'),
    'bf16': (dict(precision='bf16'), 'bf16 autocast of the network'),
    'channels_last': (dict(channels_last='on'), 'channels-last'),
    'compile': (dict(compile=True), 'torch.compile (default mode)'),
    'max_autotune': (dict(compile=True, compile_mode='max-autotune'), 'torch.compile max-autotune'),
    'cuda_graphs': (dict(cuda_graphs=True), 'CUDA graph of the whole step'),
    'all': (dict(precision='bf16', channels_last='on', compile=True, cuda_graphs=True),
            'bf16 + channels-last + compile + CUDA graphs'),
    'all_tf32': (dict(precision='tf32', channels_last='on', compile=True, cuda_graphs=True),
                 'tf32 + channels-last + compile + CUDA graphs'),
}
TRAIN_MODELS = (('model_b', 'configs.ve.mnist_ncsnpp_cpu'), ('c32', 'configs.ve.deadleaves32_ncsnpp_cpu'))
TRAIN_CONFIGS = {'baseline': dict(), 'bf16+compile': dict(precision='bf16', compile=True)}
COMPILE_ESTIMATE_S = 60.


def plan(models, configs, train, tiny):
    """The cells in priority order: ('sample', model, batch, config) and ('train', name, module, config)."""
    cells, first = [], {m.key: (TINY_BATCHES if tiny else m.batches)[0] for m in models}
    seconds = {m.key: (TINY_BATCHES if tiny else m.batches)[1:] for m in models}

    def add(phase_configs, batches_of, order=None):
        for m in sorted(models, key=lambda m: order.index(m.key) if order and m.key in order else 0):
            for b in batches_of(m):
                for c in phase_configs:
                    cell = ('sample', m, b, c)
                    if c in configs and cell not in cells:
                        cells.append(cell)
    add(('baseline', 'fp32', 'tf32', 'bf16', 'channels_last', 'cuda_graphs'), lambda m: (first[m.key],))
    big_first = ['ncsnpp256', 'ncsnpp1024', 'ncsnpp32', 'ncsnv2_church96']       # the 5x targets first
    add(('all',), lambda m: (first[m.key],), big_first)
    if train:
        for name, module in TRAIN_MODELS:
            for c in TRAIN_CONFIGS:
                cells.append(('train', name, module, c))
    add(('compile',), lambda m: (first[m.key],), big_first)
    add(('baseline', 'all'), lambda m: seconds[m.key])
    add(('all_tf32',), lambda m: (first[m.key],))
    add(('max_autotune',), lambda m: (first[m.key],) if m.size == 256 or tiny else ())
    add(tuple(configs), lambda m: (first[m.key],) + tuple(seconds[m.key]))      # anything asked for and not placed
    return cells


class _Budget(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds):
    """Raise _Budget in the main thread after ``seconds`` (a cell that runs past the budget)."""
    if seconds <= 0 or not hasattr(signal, 'SIGALRM'):
        yield
        return

    def ring(*_):
        raise _Budget()
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def flags_of(config_name, precision, device):
    """The TF32 flags of a cell: PyTorch's defaults for the baseline, else the precision's (models/speed.py)."""
    if config_name != 'baseline' or device.type != 'cuda':
        with speed_lib.backend(precision, device):
            yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _random_weights(score, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in score.net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return score


def build_score(config, device):
    import models
    from models.score import ScoreModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = models.create_model(config)
    score = ScoreModel(net.to(device).eval(), config)
    return _random_weights(score)


def count_flops(config, device):
    """FLOPs of one network evaluation of one image (torch.utils.flop_counter, eager fp32, batch 1)."""
    from torch.utils.flop_counter import FlopCounterMode
    score = build_score(config, device)
    shape = (1, config.data.num_channels, config.data.image_size, config.data.image_size)
    x = torch.randn(shape, device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        score(x, float(config.model.sigma_max))
    del score
    return counter.get_total_flops()


def make_steps(model, config, score, batch, device, capture):
    """The factored sampler step of ``model`` (sampling/graphs.py) with its inputs loaded for a mid-run step."""
    import sampling
    from sampling import graphs
    shape = (batch, config.data.num_channels, config.data.image_size, config.data.image_size)
    P = sampling.preconditioner(config, shape[1:], device)
    gen = torch.Generator(device=device).manual_seed(0)
    randn, _ = sampling.noise_source(gen, shape, device)
    s = config.sampling
    if model.sampler == 'pc':
        sde = sampling.sde_lib.from_config(config)
        steps = graphs.PCSteps(score, sde, shape, s.predictor, s.corrector, s.snr, s.n_steps_each, P, device, capture)
        steps.x.copy_(randn() * float(config.model.sigma_max) * 0.1)
        ts = torch.linspace(sde.T, sampling.sde_lib.sampling_eps(config), sde.N, device=device)
        t = ts[len(ts) // 2]

        def one():
            steps.load(t, randn)
            return steps.advance()
        return one, steps.nfe
    sigmas = sampling.ald_sigmas(config)
    steps = graphs.ALDSteps(score, shape, s.ald_variant, P, device, capture)
    steps.x.copy_(torch.rand(shape, device=device))
    sigma = float(sigmas[len(sigmas) // 2])
    step = float(s.step_lr * (sigma / sigmas[-1]) ** 2)

    def one():
        steps.load(sigma, step, math.sqrt(2 * step), randn)
        return steps.advance()
    return one, steps.nfe


def time_steps(one, device, warmup, min_seconds, max_steps):
    """(first call seconds, seconds per step) after ``warmup`` calls, over at least ``min_seconds`` or max_steps."""
    start = time.perf_counter()
    with torch.inference_mode():
        one()
        sync(device)
        first = time.perf_counter() - start
        for _ in range(warmup - 1):
            one()
        sync(device)
        n, start = 0, time.perf_counter()
        while n < max_steps and (n < 2 or time.perf_counter() - start < min_seconds):
            one()
            n += 1
            if n in (2, 5, 10) or n % 10 == 0:
                sync(device)
        sync(device)
    return first, (time.perf_counter() - start) / n


def sampling_cell(model, batch, name, args, device, flops_cache):
    fields, _ = CONFIGS[name]
    speed = speed_lib.Speed(compile_backend=args.compile_backend, **fields)
    config = model.config(args.tiny)
    if model.key not in flops_cache:
        flops_cache[model.key] = count_flops(config, device)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    note = ''
    with flags_of(name, speed.precision, device):
        score = build_score(config, device)
        speed_lib.apply(score, speed)
        capture = speed.cuda_graphs and device.type == 'cuda'
        if speed.cuda_graphs and not capture:
            note = 'graphs: eager (no CUDA)'
        one, nfe = make_steps(model, config, score, batch, device, capture)
        first, per_step = time_steps(one, device, args.warmup, args.min_seconds, args.max_steps)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else None
    rate = batch * nfe / per_step
    tflops = flops_cache[model.key] * rate / 1e12
    return dict(rate=rate, ms=per_step * 1e3, peak=peak, tflops=tflops, first=first, note=note,
                compiled=speed.compile)


def training_cell(module, name, args, device):
    """it/s of Trainer.train_step on random images at the config's batch."""
    from torch.utils.data import TensorDataset
    from training.train import Trainer
    config = importlib.import_module(module).get_config()
    if args.tiny:
        tiny_models.shrink_ncsnpp(config, size=8, nf=8, levels=2)
        config.training.batch_size = 4
    config.device = device.type
    fields = TRAIN_CONFIGS[name]
    config.training.precision = fields.get('precision', 'fp32')
    config.training.compile = fields.get('compile', False)
    config.training.compile_backend = args.compile_backend
    c, size, batch = config.data.num_channels, config.data.image_size, config.training.batch_size
    data = TensorDataset(torch.rand(batch, c, size, size, generator=torch.Generator().manual_seed(0)))
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as workdir, \
            flags_of('baseline' if name == 'baseline' else name, config.training.precision, device):
        trainer = Trainer(config, workdir, data, progress=False)
        x = torch.stack([data[i][0] for i in range(batch)]).to(device)

        def one():
            trainer.train_step(x)
            trainer.step += 1
        start = time.perf_counter()
        one()
        sync(device)
        first = time.perf_counter() - start
        for _ in range(args.warmup - 1):
            one()
        sync(device)
        n, start = 0, time.perf_counter()
        while n < args.max_steps and (n < 2 or time.perf_counter() - start < args.min_seconds):
            one()
            n += 1
        sync(device)
        per_step = (time.perf_counter() - start) / n
        trainer.close()
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else None
    return dict(its=1 / per_step, img=batch / per_step, peak=peak, first=first, batch=batch,
                compiled=bool(fields.get('compile')))


def _cleanup(device, compiled):
    gc.collect()
    if compiled:
        torch._dynamo.reset()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def profile_step(args, device, say):
    """torch.profiler's top operations of one eager bf16 + channels-last PC step at 256 px (tiny: the tiny model)."""
    from torch.profiler import ProfilerActivity, profile
    model = next(m for m in MODELS if m.key == 'ncsnpp256')
    config = model.config(args.tiny)
    batch = (TINY_BATCHES if args.tiny else model.batches)[0]
    with speed_lib.backend('bf16', device):
        score = speed_lib.apply(build_score(config, device), speed_lib.Speed(precision='bf16', channels_last='on'))
        one, _ = make_steps(model, config, score, batch, device, False)
        with torch.inference_mode():
            one()
            one()
            sync(device)
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
            with profile(activities=acts) as prof:
                for _ in range(3):
                    one()
                sync(device)
    key = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    say(f'\nwhere the time of one eager bf16 + channels-last PC step goes ({model.key}, batch {batch}; 3 steps):')
    say(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=48))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='auto', help="'auto' (cuda if present, else cpu), 'cuda', 'cpu'")
    p.add_argument('--budget_s', type=float, default=360., help='hard time budget of the whole run (seconds)')
    p.add_argument('--models', nargs='+', default=[m.key for m in MODELS], choices=[m.key for m in MODELS])
    p.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument('--no_train', action='store_true', help='skip the training rows')
    p.add_argument('--no_profile', action='store_true', help='skip the profile of one step')
    p.add_argument('--tiny', action='store_true', help='tiny shapes (any device): every path in seconds')
    p.add_argument('--compile_backend', default='inductor', choices=('inductor', 'aot_eager', 'eager'),
                   help="torch.compile backend (tests: 'eager', no code generation)")
    p.add_argument('--warmup', type=int, default=None, help='untimed calls first (compile, capture, autotune; '
                   'default 3, --tiny 1)')
    p.add_argument('--min_seconds', type=float, default=None, help='time each cell over at least this long (default '
                   '1, --tiny 0)')
    p.add_argument('--max_steps', type=int, default=None, help='... or this many steps (default 50, --tiny 2)')
    p.add_argument('--peak_tflops', type=float, default=H200_BF16_TFLOPS,
                   help='the GPU\'s dense bf16 peak, TFLOP/s (H200: 790)')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch\'s default)')
    p.add_argument('--log', default=None, help='also write the output to this file')
    args = p.parse_args(argv)
    started = time.time()
    for name, full, tiny in (('warmup', 3, 1), ('min_seconds', 1., 0.), ('max_steps', 50, 2)):
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else full)
    if args.threads:
        torch.set_num_threads(args.threads)
    # FIR taps made from NumPy inside a traced network (models/fir.py) warn once per layer under torch.compile
    warnings.filterwarnings('ignore', message='To copy construct from a tensor')
    warnings.filterwarnings('ignore', message='Dynamo detected a call to a `functools.lru_cache`')
    device = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available()
                          else 'cpu' if args.device == 'auto' else args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('error: --device cuda: no CUDA GPU here; expected --device cpu (or auto) with --tiny')
    if device.type != 'cuda' and not args.tiny:
        raise SystemExit(f'error: the full-size benchmark needs a CUDA GPU (this is {device.type}); expected --tiny to '
                         'run every path on tiny shapes here')
    log = open(args.log, 'w') if args.log else None

    def say(text=''):
        print(text, flush=True)
        if log:
            log.write(text + '\n')
            log.flush()

    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    say(f'benchmarks/gpu_speed.py{" --tiny" if args.tiny else ""} on {name}, torch {torch.__version__}, '
        f'{time.strftime("%Y-%m-%d %H:%M")}; budget {args.budget_s:.0f} s; bf16 peak {args.peak_tflops:g} TFLOP/s')
    say('configurations: ' + '; '.join(f'{k} = {v[1]}' for k, v in CONFIGS.items() if k in args.configs))
    models = [m for m in MODELS if m.key in args.models]
    cells = plan(models, args.configs, not args.no_train, args.tiny)
    header = (f'{"model":<16} {"px":>5} {"batch":>5} {"config":<13} {"img-NFE/s":>10} {"x base":>7} {"ms/step":>9} '
              f'{"peak GiB":>8} {"TFLOP/s":>8} {"% peak":>7}  note')
    say('\nsampling (one sampler step: PC = 2 NFE, annealed Langevin = 1 NFE; PDS radial filter on; noise on the '
        'device)')
    say(header)
    base, flops_cache, compile_cost, results, train_base = {}, {}, [], [], {}
    trained_header = False
    for cell in cells:
        left = args.budget_s - (time.time() - started)
        kind = cell[0]
        compiled = (kind == 'sample' and CONFIGS[cell[3]][0].get('compile')) or \
            (kind == 'train' and TRAIN_CONFIGS[cell[3]].get('compile'))
        estimate = (max(compile_cost) if compile_cost else COMPILE_ESTIMATE_S) if compiled and not args.tiny else 5.
        if kind == 'train' and not trained_header:
            say('\ntraining (Trainer.train_step on random images at the config\'s batch)')
            say(f'{"config":<44} {"batch":>5} {"switches":<13} {"it/s":>8} {"img/s":>9} {"x base":>7} {"peak GiB":>8}'
                '  note')
            trained_header = True
        label = (f'{cell[1].key} {cell[2]} {cell[3]}' if kind == 'sample' else f'{cell[2]} {cell[3]}')
        if estimate > left:
            say(f'  skipped (budget: about {estimate:.0f} s needed, {max(left, 0):.0f} s left): {label}')
            continue
        try:
            with alarm(left):
                if kind == 'sample':
                    _, m, b, c = cell
                    r = sampling_cell(m, b, c, args, device, flops_cache)
                else:
                    _, tname, module, c = cell
                    r = training_cell(module, c, args, device)
        except _Budget:
            say(f'  stopped (the budget ran out during the cell): {label}')
            _cleanup(device, True)
            break
        except Exception as e:  # noqa: BLE001 -- a failed cell (OOM, capture error) is a row, not the end
            text = ' '.join(str(e).split())[:200]
            say(f'  failed ({type(e).__name__}: {text}): {label}')
            _cleanup(device, True)
            continue
        if r['compiled'] and not args.tiny:
            compile_cost.append(r['first'] * 1.3 + 10)
        _cleanup(device, r['compiled'])
        peak = '-' if r['peak'] is None else f'{r["peak"]:.2f}'
        if kind == 'sample':
            key = (m.key, b)
            if c == 'baseline':
                base[key] = r['rate']
            ratio = f'{r["rate"] / base[key]:.2f}' if key in base else '-'
            pct = f'{100 * r["tflops"] / args.peak_tflops:.1f}' if device.type == 'cuda' else '-'
            note = f'first step {r["first"]:.1f} s' + (f'; {r["note"]}' if r['note'] else '')
            say(f'{m.key:<16} {config_size(m, args):>5} {b:>5} {c:<13} {r["rate"]:>10.1f} {ratio:>7} '
                f'{r["ms"]:>9.2f} {peak:>8} {r["tflops"]:>8.2f} {pct:>7}  {note}')
            results.append((m, b, c, r))
        else:
            if c == 'baseline':
                train_base[tname] = r['its']
            ratio = f'{r["its"] / train_base[tname]:.2f}' if tname in train_base else '-'
            say(f'{module:<44} {r["batch"]:>5} {c:<13} {r["its"]:>8.2f} {r["img"]:>9.1f} {ratio:>7} {peak:>8}'
                f'  first step {r["first"]:.1f} s')
    summary(results, base, args, say)
    left = args.budget_s - (time.time() - started)
    if not args.no_profile and 'ncsnpp256' in args.models and left > (5 if args.tiny else 25):
        try:
            with alarm(left):
                profile_step(args, device, say)
        except _Budget:
            say('profile stopped: the budget ran out')
        except Exception as e:  # noqa: BLE001
            say(f'profile failed ({type(e).__name__}: {" ".join(str(e).split())[:200]})')
    say(f'\ntotal {time.time() - started:.0f} s of the {args.budget_s:.0f} s budget')
    if log:
        log.close()


def config_size(model, args):
    return model.tiny.get('size', 16) if args.tiny else model.size


def summary(results, base, args, say):
    """The best configuration per model and batch against the issue's targets."""
    if not results:
        return
    say('\nsummary: the fastest configuration per model and batch against the baseline (target: >= 5x at 256 and '
        '1024 px, >= 3x at 32 px; the issue counts only switches shown neutral)')
    best = {}
    for m, b, c, r in results:
        key = (m.key, b)
        if key not in best or r['rate'] > best[key][1]['rate']:
            best[key] = (c, r, m)
    for (key, b), (c, r, m) in best.items():
        if (key, b) not in base:
            say(f'  {key} batch {b}: best {c} {r["rate"]:.1f} img-NFE/s (no baseline row)')
            continue
        ratio = r['rate'] / base[(key, b)]
        target = 3. if m.size <= 32 else 5. if m.size >= 256 else None      # the issue sets none at 96 px
        mark = '' if target is None else (' meets' if ratio >= target else ' below') + f' the {target:g}x target'
        say(f'  {key} batch {b}: best {c}, x{ratio:.2f}{mark}')



if __name__ == '__main__':
    main()
