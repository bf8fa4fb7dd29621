"""Speed switches (issue 33), in one place: ``--mode sample``, ``--mode eval`` and ``--mode train`` apply them through
this module, and so does the study engine (``python -m evaluation.study``, ``runners/study.py``), with the same
flags (``benchmarks/gpu_speed.py`` and ``benchmarks/precision_neutrality.py`` too).  Every switch is off by
default, and on the CPU the default path is the code without this module, bit for bit (the fixture tests run it).
On CUDA the default fp32 now turns cuDNN's TF32 convolutions off (PyTorch's default has them on), as the CUDA
fixture tests always did: a run that wants the old speed says ``--precision tf32``.  (Callers of
``runners.evaluate.run_eval`` / ``runners.sample.run_sample`` that pass no ``speed`` leave the flags as they find
them.)

=========================  ==========================================================================================
switch                     what it does
=========================  ==========================================================================================
``--precision fp32``       the default: float32 everywhere; on CUDA with TF32 off for matmuls *and* cuDNN
                           convolutions (PyTorch turns cuDNN's on by default; the fixtures pass only without it)
``--precision tf32``       CUDA: TF32 matmuls and cuDNN convolutions (inputs rounded to 10 mantissa bits, float32
                           accumulation).  The CPU: nothing changes (the flags are CUDA's; bit-identical to fp32)
``--precision bf16``       the network's forward pass under ``torch.autocast(bfloat16)`` (CUDA and CPU), its output
                           cast back to float32 (``models.score.ScoreModel._net``); the sampler state, the PDS FFTs,
                           the noise, the loss and the EMA stay float32.  Training: the loss under autocast, as the
                           older ``training.bf16`` switch did (which now means ``training.precision = 'bf16'``)
``--bf16_min_sigma S``     with bf16: network calls at noise levels below S run in float32.  Why: bf16 keeps 8
                           mantissa bits, so the network's input and activations lose ~0.2 % of the signal, which at
                           sigma 0.01 is a fifth of the noise the score must find; the bf16 score's relative error
                           grows from 0.3-0.5 % at sigma >= 0.3 to ~10 % at 0.01 on Models A and B
                           (benchmarks/precision_neutrality.py --per_sigma).  0 (default): bf16 at every level
``--channels_last auto``   channels-last memory format where it was measured faster: the RefineNets (NCSN, NCSNv2)
                           on the CPU (benchmarks/cpu_speed.py); ``on`` / ``off`` force it for any network on any
                           device (NCSN++ and the RefineNets on CUDA: measure with benchmarks/gpu_speed.py)
``--compile``              ``torch.compile`` of the network (inductor; on the CPU it needs a C++ compiler);
                           ``--compile_mode default | max-autotune`` (with ``--cuda_graphs``, max-autotune without
                           inductor's own CUDA graphs: the whole step is captured instead)
``--cuda_graphs``          capture a whole fixed-shape sampler step in a CUDA graph and replay it every step
                           (``sampling/graphs.py``: PC on the VE SDE, annealed Langevin, EDM / Euler); the noise is
                           drawn by the run's generator into static buffers before each replay, so the samples are
                           the eager run's, draw for draw.  On the CPU: skipped with one line (eager sampling)
``--batch_size auto``      the largest power of two whose sampler step fits in 85 % of the free GPU memory, found by
                           a short probe of the network (:func:`probe_batch`); a workdir that already holds finished
                           batches keeps its recorded batch size (the images depend on it).  CUDA only
=========================  ==========================================================================================

A run records its switches (``settings.json``: ``speed``); a workdir sampled at one precision refuses to be resumed at
another (``runners/sample.py``: ``precision`` is a compared setting; tf32 and bf16 change the images, compile and
graphs only by float rounding).

Study engine (``python -m evaluation.study``): the same flags (no ``--batch_size auto``: a study's batch size is part
of its points' draws).  tf32 and bf16 change the images, so a study at another precision is another set of points
(``studies.spec.at_precision``): their rows' config ends in ``--precision=bf16`` and they sample into
``<point>.bf16``, beside the fp32 points, never reusing nor setting aside the fp32 folders; ``--summary``, ``--list``
and ``--plot`` with ``--precision bf16`` show those rows.  Compile, channels-last and CUDA graphs change the images
only by float rounding and share the fp32 points' rows and folders.
"""
import contextlib
import dataclasses
import math
import sys

import torch

PRECISIONS = ('fp32', 'tf32', 'bf16')
CHANNELS_LAST = ('auto', 'on', 'off')
COMPILE_MODES = ('default', 'max-autotune')
AUTO = 'auto'                   # --batch_size auto
PROBE_HEADROOM = 0.85           # auto batch: the step may use this fraction of the GPU memory free at the probe
PROBE_CAP = 4096                # auto batch: never above this


class SpeedError(ValueError):
    """A speed switch that cannot act here (one line: what was wrong and what was expected)."""


@dataclasses.dataclass(frozen=True)
class Speed:
    """The speed switches of one run (module docstring).  ``compile_backend`` is not a flag: the tests and the tiny
    benchmark modes use 'eager' (dynamo's tracing only, no code generation) to stay fast."""
    precision: str = 'fp32'
    channels_last: str = 'auto'
    compile: bool = False
    compile_mode: str = 'default'
    cuda_graphs: bool = False
    bf16_min_sigma: float = 0.
    compile_backend: str = 'inductor'

    def __post_init__(self):
        for name, allowed in (('precision', PRECISIONS), ('channels_last', CHANNELS_LAST),
                              ('compile_mode', COMPILE_MODES)):
            if getattr(self, name) not in allowed:
                raise SpeedError(f'--{name} {getattr(self, name)!r}: expected one of {", ".join(allowed)}')
        s = self.bf16_min_sigma
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 or not math.isfinite(s):
            raise SpeedError(f'--bf16_min_sigma {s!r}: expected a noise level >= 0 (0: bf16 at every level)')
        if s > 0 and self.precision != 'bf16':
            raise SpeedError(f'--bf16_min_sigma {s:g} acts on bf16 only; expected --precision bf16 with it')
        if s > 0 and self.cuda_graphs:
            raise SpeedError(f'--bf16_min_sigma {s:g} with --cuda_graphs: a captured step cannot switch precision '
                             'from level to level; expected one of the two')

    @property
    def autocast_dtype(self):
        return torch.bfloat16 if self.precision == 'bf16' else None

    def record(self):
        """The switches as recorded in settings.json / eval.json (all of them, plain values)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k not in ('compile_backend', 'bf16_min_sigma')}
        if self.bf16_min_sigma:
            out['bf16_min_sigma'] = self.bf16_min_sigma
        if self.compile and self.compile_backend != 'inductor':
            out['compile_backend'] = self.compile_backend
        return out

    def label(self):
        """'fp32', 'bf16+compile', 'tf32+channels_last+cuda_graphs', ... (for logs and benchmark rows)."""
        parts = [self.precision + (f'(fp32 below sigma {self.bf16_min_sigma:g})' if self.bf16_min_sigma else '')]
        if self.channels_last != 'auto':
            parts.append(f'channels_last={self.channels_last}')
        if self.compile:
            parts.append('compile' if self.compile_mode == 'default' else f'compile:{self.compile_mode}')
        if self.cuda_graphs:
            parts.append('cuda_graphs')
        return '+'.join(parts)


DEFAULT = Speed()


def from_flags(flags):
    """The :class:`Speed` of main.py's flags (absent attributes: the defaults; ``--precision`` unset = fp32)."""
    return Speed(precision=getattr(flags, 'precision', None) or 'fp32',
                 channels_last=getattr(flags, 'channels_last', None) or 'auto',
                 compile=bool(getattr(flags, 'compile', False)),
                 compile_mode=getattr(flags, 'compile_mode', None) or 'default',
                 cuda_graphs=bool(getattr(flags, 'cuda_graphs', False)),
                 bf16_min_sigma=float(getattr(flags, 'bf16_min_sigma', 0.) or 0.))


# -- precision: the TF32 flags -------------------------------------------------------------------------------------

@contextlib.contextmanager
def backend(precision, device=None):
    """While the block runs, CUDA's TF32 flags as ``precision`` wants them: on for 'tf32', off otherwise (strict fp32;
    bf16's autocast decides its own matmuls).  Restored afterwards.  A CPU ``device`` leaves them alone (they steer
    CUDA kernels only; tf32 on the CPU is a no-op)."""
    if precision not in PRECISIONS:
        raise SpeedError(f'--precision {precision!r}: expected one of {", ".join(PRECISIONS)}')
    if device is not None and torch.device(device).type != 'cuda':
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    on = precision == 'tf32'
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


# -- the score model ------------------------------------------------------------------------------------------------

def _is_network_model(score):
    from models.score import ScoreModel
    return isinstance(score, ScoreModel)


def set_channels_last(score, mode):
    """``mode`` 'auto' keeps the model's own rule (RefineNets on the CPU), 'on' / 'off' force channels-last."""
    if mode == 'auto':
        return score
    on = mode == 'on'
    score.channels_last = on
    score.net.to(memory_format=torch.channels_last if on else torch.contiguous_format)
    return score


def compile_network(score, speed):
    """``torch.compile`` the network in place with ``speed.compile_mode`` (max-autotune without inductor's CUDA
    graphs when the whole step is captured by ``--cuda_graphs``)."""
    mode = None if speed.compile_mode == 'default' else speed.compile_mode
    if mode == 'max-autotune' and speed.cuda_graphs:
        mode = 'max-autotune-no-cudagraphs'
    kwargs = {'backend': speed.compile_backend}
    if speed.compile_backend == 'inductor' and mode is not None:
        kwargs['mode'] = mode
    score.net.compile(**kwargs)
    return score


def apply(score, speed, compile=True):
    """Apply ``speed``'s layout, precision and (with ``compile``) torch.compile to a ScoreModel, in place; returns it.
    A score without a network (the exact empirical score) takes only the default switches."""
    if not _is_network_model(score):
        asked = [f for f, on in (('--precision bf16', speed.precision == 'bf16'), ('--compile', speed.compile),
                                 ('--channels_last on', speed.channels_last == 'on')) if on]
        if asked:
            raise SpeedError(f'{", ".join(asked)}: this model ({type(score).__name__}) has no network to speed up; '
                             'expected a network checkpoint (NCSN, NCSNv2, NCSN++, DDPM)')
        return score
    set_channels_last(score, speed.channels_last)
    score.autocast_dtype = speed.autocast_dtype
    score.autocast_min_sigma = float(speed.bf16_min_sigma)
    if compile and speed.compile:
        compile_network(score, speed)
    return score


def graphs_wanted(speed, device, say=True):
    """Whether this run captures CUDA graphs: ``--cuda_graphs`` on a CUDA device.  Elsewhere one note line (the run
    samples eagerly: the same numbers)."""
    if not speed.cuda_graphs:
        return False
    if torch.device(device).type == 'cuda':
        return True
    if say:
        print(f'note: --cuda_graphs needs a CUDA device; on {torch.device(device).type} the sampler steps run eagerly '
              '(the same samples)', file=sys.stderr, flush=True)
    return False


# -- --batch_size auto ----------------------------------------------------------------------------------------------

def largest_fitting_power_of_two(fits, cap):
    """The largest power of two b <= ``cap`` with ``fits(b)``, doubling from 1 and stopping at the first that does not
    fit; 0 when even 1 does not."""
    best, b = 0, 1
    while b <= cap:
        if not fits(b):
            break
        best, b = b, b * 2
    return best


def probe_cap(num_samples):
    """Auto batches never exceed the power of two at or above the sample count (nor PROBE_CAP)."""
    return min(PROBE_CAP, 1 << max(0, math.ceil(math.log2(max(1, int(num_samples or 1))))))


def probe_batch(score, config, device, speed=DEFAULT, num_samples=None, P=None, headroom=PROBE_HEADROOM):
    """``--batch_size auto``: the largest power of two whose sampler step fits in ``headroom`` of the GPU memory free
    now: one network call at batch b (and the PDS drift on its output), its peak allocation (doubled under
    ``--cuda_graphs``: a captured graph keeps its intermediates) plus 12 images of float32 per sample for the sampler
    state, x_mean, the noise buffers and the FFT's complex planes.  Call it before torch.compile (a probe of many
    shapes would compile each)."""
    device = torch.device(device)
    if device.type != 'cuda':
        raise SpeedError(f'--batch_size auto: needs a CUDA device (it probes GPU memory), this run is on '
                         f'{device.type}; expected a number, e.g. --batch_size 64 (the config says '
                         f'{int(config.sampling.batch_size)})')
    shape = (int(config.data.num_channels), int(config.data.image_size), int(config.data.image_size))
    sigma = float(config.model.get('sigma_max', 1.) if config.training.get('sde', 'vesde') == 'vesde' else 1.)
    torch.cuda.empty_cache()
    free0, _ = torch.cuda.mem_get_info(device)
    image_bytes = 4 * shape[0] * shape[1] * shape[2]

    def fits(b):
        x = out = None
        try:
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            x = torch.randn((b,) + shape, device=device)
            with torch.inference_mode():
                out = score(x, sigma)
                if P is not None and not getattr(P, 'is_identity', False):
                    out = P.at_step(0, 'corrector').drift(out)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            del x, out
            torch.cuda.empty_cache()
        need = peak * (2 if speed.cuda_graphs else 1) + 12 * b * image_bytes
        return need <= headroom * free0

    best = largest_fitting_power_of_two(fits, probe_cap(num_samples))
    if best < 1:
        raise SpeedError(f'--batch_size auto: not even one sample fits in the {free0 / 2 ** 30:.1f} GiB free on '
                         f'{device}; expected a GPU with more free memory (or --precision bf16)')
    return best


def prepare(score, speed, config, device, num_samples, batch_size, recorded=None, P=None, say=True):
    """Everything a sampling run does with its switches before the first batch: layout and precision, the batch size
    of ``--batch_size auto`` (``recorded``, the batch size of a workdir's finished batches, when there is one: the
    images depend on it; else the probe), then torch.compile.  Returns ``(score, batch_size)``."""
    apply(score, speed, compile=False)
    if batch_size == AUTO:
        if recorded is not None:
            batch_size = recorded
            how = 'the batch size of the finished batches in the workdir'
        else:
            batch_size = probe_batch(score, config, device, speed, num_samples, P)
            how = f'the largest power of two that fits on {torch.device(device)}'
        if say:
            print(f'note: --batch_size auto: {batch_size} ({how})', file=sys.stderr, flush=True)
    if speed.compile:
        compile_network(score, speed)
    return score, batch_size


def is_auto(batch_size):
    return isinstance(batch_size, str) and batch_size == AUTO


# -- training ---------------------------------------------------------------------------------------------------------

def training_switches(tr, device):
    """The switches of ``config.training`` on ``device``: ``precision`` ('fp32' | 'tf32' | 'bf16'; the older
    ``training.bf16 = True`` means 'bf16'), ``channels_last`` (CUDA only, as before), ``compile`` and
    ``compile_mode`` / ``compile_backend``.  Returns the dict the Trainer keeps as ``speed`` and a list of the
    switches ignored on this device."""
    precision = str(tr.get('precision', '') or ('bf16' if tr.get('bf16', False) else 'fp32'))
    if precision not in PRECISIONS:
        raise SpeedError(f'training.precision = {precision!r}: expected one of {", ".join(PRECISIONS)}')
    if tr.get('bf16', False) and precision != 'bf16':
        raise SpeedError(f"training.bf16 = True and training.precision = {precision!r} disagree; expected "
                         "training.precision = 'bf16' (or training.bf16 = False)")
    mode = str(tr.get('compile_mode', 'default'))
    if mode not in COMPILE_MODES:
        raise SpeedError(f'training.compile_mode = {mode!r}: expected one of {", ".join(COMPILE_MODES)}')
    on_cuda = torch.device(device).type == 'cuda'
    ignored = ['channels_last'] if tr.get('channels_last', False) and not on_cuda else []
    return {'channels_last': bool(tr.get('channels_last', False)) and on_cuda, 'bf16': precision == 'bf16',
            'compile': bool(tr.get('compile', False)), 'precision': precision, 'compile_mode': mode,
            'compile_backend': str(tr.get('compile_backend', 'inductor'))}, ignored


def training_compile(model, switches):
    """torch.compile of the training model (forward and backward) as ``switches`` say."""
    kwargs = {'backend': switches['compile_backend']}
    if switches['compile_backend'] == 'inductor' and switches['compile_mode'] != 'default':
        kwargs['mode'] = switches['compile_mode']
    return torch.compile(model, **kwargs)


def training_autocast(switches, device):
    """The context of the training forward pass: bf16 autocast on the device, or nothing."""
    if switches['bf16']:
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
