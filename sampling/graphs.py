"""Whole sampler steps as CUDA graphs (``--cuda_graphs``, models/speed.py): capture one fixed-shape step once, replay
it every step.

On a GPU a sampler step is hundreds of small kernels (the network's layers, the corrector's norms, the PDS FFTs), and
at small images or batches the launches, not the arithmetic, set the pace.  A CUDA graph launches them all at once.

The steps are factored into functions of static buffers (``_Step``): the state x, one buffer per noise draw of the
step, and the step's scalars (t, sigma, step sizes) as 0-d device tensors.  Before each replay the buffers are
filled outside the graph: the noise by the run's own generator, in the eager sampler's order (a step's draws do not
depend on x, so drawing them before the step gives the same numbers), the scalars with exactly the float32 (float64
for a RefineNet's sigma) values that the eager kernels get from their Python floats.  So a graphed run draws what the
eager one draws and computes the same kernels on the same numbers: the samples are the eager sampler's, draw for draw
(tests/sampling/test_graphs.py: bit-identical on the CPU with ``capture=False``; on CUDA ``torch.equal``).

Captured:

* ``pc`` (VE): the corrector's ``n_steps_each`` Langevin steps and the predictor, one graph (t is a buffer);
* ``ald``: one Langevin step (sigma, step size and noise scale are buffers); the final denoising call runs eagerly;
* ``edm`` / ``edm_stochastic`` / ``ode_euler``: one step, two graphs (with and without the S_churn noise); the last
  step (to sigma = 0: one evaluation) runs eagerly.

Not captured (refused with one line): the VP samplers, DDPM / DDIM, DPM-Solver++, the adaptive solvers, an EDM step
corrector, and a per-step preconditioner (``pds.freq = 'auto'``: its tables change every step).

``capture=False`` runs the same factored steps eagerly (CPU tests; the benchmark's eager rows).

The captured steps of the last run are kept (one entry: the score model, preconditioner, shape, device and sampler
settings): the next batch of a run replays them without capturing again (:func:`clear_cache` frees them).
"""
import json
import math

import numpy as np
import torch

from preconditioning import Identity
from sampling import sde as sde_lib
from sampling.pc import CORRECTORS, PREDICTORS, _lookup

SUPPORTED = ('pc', 'ald', 'edm', 'edm_stochastic', 'ode_euler')
WARMUP = 2          # eager runs on a side stream before a capture (cuDNN / cuFFT plans, compiled kernels, FIR caches)


class GraphsUnsupported(ValueError):
    """A sampler setting whose step cannot be captured (one line: what and what to do)."""


def check(config, P=None):
    """GraphsUnsupported unless ``config``'s sampler (and the preconditioner ``P``) can be captured."""
    s = config.sampling
    hint = 'expected one of sampling.method ' + ', '.join(SUPPORTED) + ' (VE), or run without --cuda_graphs'
    if config.training.get('sde', 'vesde') != 'vesde':
        raise GraphsUnsupported(f"--cuda_graphs: training.sde = {config.training.get('sde')!r} is not captured (the "
                                f'VP samplers are not factored yet); {hint}')
    if s.method not in SUPPORTED:
        raise GraphsUnsupported(f'--cuda_graphs: sampling.method = {s.method!r} is not captured; {hint}')
    if s.method == 'pc' and s.get('probability_flow', False):
        raise GraphsUnsupported('--cuda_graphs: sampling.probability_flow has no VE form; expected it False')
    if s.method in ('edm', 'edm_stochastic', 'ode_euler') and s.get('step_corrector', 'none') != 'none':
        raise GraphsUnsupported(f'--cuda_graphs: sampling.step_corrector = {s.step_corrector!r} after an EDM step is '
                                "not captured; expected 'none', or run without --cuda_graphs")
    if P is not None and per_step(P):
        raise GraphsUnsupported("--cuda_graphs: pds.freq = 'auto' changes the filter at every step, which one captured "
                                "step cannot hold; expected a fixed filter ('radial', 'stats', 'none')")


def per_step(P):
    """Whether ``P`` changes its operator from step to step (the schedule-aware ``pds.freq = 'auto'``)."""
    from preconditioning.auto import ScheduledPreconditioner
    inner = getattr(P, 'P', P)
    return isinstance(P, ScheduledPreconditioner) or isinstance(inner, ScheduledPreconditioner)


class _Step:
    """``fn()`` over static buffers: called eagerly (``capture=False``), or captured in a CUDA graph at the first call
    (after WARMUP eager runs on a side stream, which read the buffers and write nothing they read) and replayed."""

    def __init__(self, fn, capture):
        self.fn, self.capture, self.graph, self.out = fn, capture, None, None

    def __call__(self):
        if not self.capture:
            return self.fn()
        if self.graph is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP):
                    self.fn()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = self.fn()
        self.graph.replay()
        return self.out


def _scalar(device, dtype=torch.float32):
    return torch.zeros((), dtype=dtype, device=device)


_CACHE = {}


def clear_cache():
    """Forget the kept steps (and free their graphs' memory once nothing else holds them)."""
    _CACHE.clear()


def _cached(kind, config, score, P, shape, device, capture, make):
    """The steps object of the previous call with the same inputs (captured runs only), else ``make()``."""
    if not capture:
        return make()
    key = (kind, id(score), id(P), tuple(shape), str(device),
           json.dumps([config.sampling.to_dict(), config.model.to_dict()], sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = make()
    return _CACHE[key]


def _check_capture(capture, device):
    if capture and torch.device(device).type != 'cuda':
        raise GraphsUnsupported(f'--cuda_graphs: capture needs a CUDA device, got {torch.device(device)}; expected '
                                '--device cuda (the CPU runs the steps eagerly)')


def device_sde(sde, device):
    """``sde`` with its constants on ``device``, so that a captured step copies nothing from the host: the discrete
    grid, and the diffusion's sqrt(2 log(sigma_max / sigma_min)) (the same float32 value the eager step makes)."""
    sde.discrete_sigmas = sde.discrete_sigmas.to(device)
    root = torch.sqrt(torch.tensor(2 * (np.log(sde.sigma_max) - np.log(sde.sigma_min)), device=device))
    sigma = sde.sigma
    sde.diffusion = lambda t: sigma(t) * root
    return sde


# -- PC (VE) ----------------------------------------------------------------------------------------------------------

class PCSteps:
    """score_sde's VE predictor-corrector step (sampling/pc.py) on static buffers: ``x``, ``t`` (B,), and one noise
    buffer per draw of the step (the corrector's n_steps, then the predictor's)."""

    def __init__(self, score, sde, shape, predictor='reverse_diffusion', corrector='langevin', snr=0.16, n_steps=1,
                 P=Identity(), device='cpu', capture=False):
        _check_capture(capture, device)
        if getattr(sde, 'kind', 've') == 'vp':
            raise GraphsUnsupported('--cuda_graphs: the VP PC updates are not captured; expected a VE model')
        predictor_fn = _lookup(PREDICTORS, predictor, 'predictor')
        corrector_fn = _lookup(CORRECTORS, corrector, 'corrector')
        self.sde, self.shape, self.device = device_sde(sde, device), tuple(shape), device
        self.n_draws = (n_steps if corrector != 'none' else 0) + (1 if predictor != 'none' else 0)
        self.nfe = (n_steps if corrector != 'none' else 0) + (1 if predictor != 'none' else 0)
        self.x = torch.zeros(self.shape, device=device)
        self.t = torch.zeros(self.shape[0], device=device)
        self.z = [torch.zeros(self.shape, device=device) for _ in range(self.n_draws)]
        Pc, Pp = P.at_step(0, 'corrector'), P.at_step(0, 'predictor')

        def step():
            buffers = iter(self.z)

            def draw():
                return next(buffers)
            x, x_mean, _ = corrector_fn(score, self.sde, self.x, self.t, draw, Pc, snr=snr, n_steps=n_steps)
            x, x_mean, _ = predictor_fn(score, self.sde, x, self.t, draw, Pp)
            return x, x_mean
        self.step = _Step(step, capture)

    def load(self, t, draw):
        """The inputs of the step at time ``t`` (a 0-d tensor of the eager loop's linspace): t as the eager loop
        makes it, the step's draws from the generator."""
        self.t.copy_(torch.ones(self.shape[0], device=self.device) * t)
        for z in self.z:
            z.copy_(draw())

    def advance(self):
        """Run the loaded step; the state moves on.  Returns (x, x_mean) (views of the step's outputs)."""
        x, x_mean = self.step()
        self.x.copy_(x)
        return self.x, x_mean

    def run(self, x, draw, ts, noise_removal=True, callback=None):
        """The PC loop of ``pc_sampler`` from the prior ``x`` over the times ``ts``.  Returns (x, nfe)."""
        self.x.copy_(x)
        x_mean = self.x
        for i, t in enumerate(ts):
            self.load(t, draw)
            x, x_mean = self.advance()
            if callback is not None:
                callback(i, float(self.sde.sigma(t)), x_mean)
        return (x_mean if noise_removal else self.x).clone(), self.nfe * len(ts)


def run_pc(config, score, shape, randn, P, device, callback, capture):
    s = config.sampling
    sde = sde_lib.from_config(config)
    steps = _cached('pc', config, score, P, shape, device, capture,
                    lambda: PCSteps(score, sde_lib.from_config(config), shape, s.predictor, s.corrector, s.snr,
                                    s.n_steps_each, P, device, capture))
    x = P.at_step(0, 'prior').noise(randn()) * sde.sigma_max
    ts = torch.linspace(sde.T, sde_lib.sampling_eps(config), sde.N, device=device)
    return steps.run(x, randn, ts, s.noise_removal, callback)


# -- annealed Langevin ------------------------------------------------------------------------------------------------

class ALDSteps:
    """One step of annealed Langevin dynamics (sampling/langevin.py) on static buffers: x, one noise buffer, and the
    level's sigma (float64: the RefineNets' level index is computed in float64), step size and noise scale."""

    def __init__(self, score, shape, variant='ncsnv2', P=Identity(), device='cpu', capture=False):
        _check_capture(capture, device)
        if variant not in ('ncsn', 'ncsnv2'):
            raise ValueError(f"annealed Langevin variant must be 'ncsn' or 'ncsnv2', got {variant!r}")
        self.shape, self.device, self.variant, self.P = tuple(shape), device, variant, P
        self.x = torch.zeros(self.shape, device=device)
        self.z = torch.zeros(self.shape, device=device)
        self.sigma = _scalar(device, torch.float64)
        self.step_size, self.noise_scale = _scalar(device), _scalar(device)
        Pc = P.at_step(0, 'corrector')

        def step():
            if variant == 'ncsn':
                noise = Pc.noise(self.z) * self.noise_scale
                return self.x + self.step_size * Pc.drift(score(self.x, self.sigma)) + noise
            grad = Pc.drift(score(self.x, self.sigma))
            return self.x + self.step_size * grad + Pc.noise(self.z) * self.noise_scale
        self.step = _Step(step, capture)
        self.nfe = 1

    def load(self, sigma, step, noise_scale, draw):
        self.sigma.fill_(sigma)
        self.step_size.fill_(step)
        self.noise_scale.fill_(noise_scale)
        self.z.copy_(draw())

    def advance(self):
        self.x.copy_(self.step())
        return self.x

    def run(self, x, sigmas, draw, step_lr, n_steps_each, denoise=True, callback=None, score=None):
        """``annealed_langevin`` from ``x`` over the descending levels ``sigmas`` (the same float arithmetic per
        level); the final denoising call (``score``) runs eagerly.  Returns (x, nfe)."""
        self.x.copy_(x)
        nfe = 0
        for c, sigma in enumerate(sigmas):
            step = step_lr * (sigma / sigmas[-1]) ** 2
            noise_scale = float(np.sqrt(step * 2))
            step = float(step)
            for _ in range(n_steps_each):
                self.load(float(sigma), step, noise_scale, draw)
                self.advance()
                nfe += 1
                if callback is not None:
                    callback(nfe - 1, float(sigma), self.x)
        x = self.x.clone()
        if denoise:
            x = x + float(sigmas[-1] ** 2) * self.P.at_step(len(sigmas) - 1, 'denoise').drift(
                score(x, float(sigmas[-1])))
            nfe += 1
        return x, nfe


def run_ald(config, score, shape, randn, rand, P, device, callback, capture):
    from sampling import ald_sigmas
    s = config.sampling
    steps = _cached('ald', config, score, P, shape, device, capture,
                    lambda: ALDSteps(score, shape, s.ald_variant, P, device, capture))
    x = rand().to(device)
    return steps.run(x, ald_sigmas(config), randn, s.step_lr, s.n_steps_each, s.denoise, callback, score)


# -- EDM (Algorithm 1 / 2) and Euler --------------------------------------------------------------------------------

class EDMSteps:
    """One step of ``sample_edm`` (sampling/edm.py) on static buffers: x, the churn noise, and the step's scalars
    -t_hat, -t_next, h = t_next - t_hat and the churn scale sqrt(t_hat^2 - t_cur^2) S_noise (float32, each the value
    the eager step's Python float becomes in a kernel) and the score's t_hat, t_next (float64, as the floats).
    Graphs: (churn?, second evaluation?)."""

    def __init__(self, score, shape, heun=True, device='cpu', capture=False):
        _check_capture(capture, device)
        self.score, self.shape, self.device, self.heun, self.capture = score, tuple(shape), device, heun, capture
        self.x = torch.zeros(self.shape, device=device)
        self.z = torch.zeros(self.shape, device=device)
        self.c = {k: _scalar(device) for k in ('neg_t_hat', 'neg_t_next', 'h', 'churn')}
        # the score's sigma in float64: a RefineNet's level index is computed from it in float64, as from the float
        self.c.update({k: _scalar(device, torch.float64) for k in ('t_hat', 't_next')})
        self.steps = {}

    def _fn(self, churn, second):
        c, score = self.c, self.score

        def step():
            x = self.x
            if churn:
                x = x + c['churn'] * self.z
            d = c['neg_t_hat'] * score(x, c['t_hat'])
            x_next = x + c['h'] * d
            if second:
                d_prime = c['neg_t_next'] * score(x_next, c['t_next'])
                x_next = x + c['h'] * (0.5 * d + 0.5 * d_prime)
            return x_next
        return step

    def advance(self, t_cur, t_next, gamma, s_noise, draw):
        """One step from t_cur to t_next with churn gamma (the eager step's floats).  Returns (x, nfe)."""
        t_hat = t_cur + gamma * t_cur
        churn, second = gamma > 0, self.heun and t_next != 0
        if churn:
            self.c['churn'].fill_(math.sqrt(t_hat ** 2 - t_cur ** 2) * s_noise)
            self.z.copy_(draw())
        for k, v in (('t_hat', t_hat), ('neg_t_hat', -t_hat), ('t_next', t_next), ('neg_t_next', -t_next),
                     ('h', t_next - t_hat)):
            self.c[k].fill_(v)
        if t_next == 0:                 # the last step: once per run, eagerly
            out = self._fn(churn, second)()
        else:
            key = (churn, second)
            if key not in self.steps:
                self.steps[key] = _Step(self._fn(churn, second), self.capture)
            out = self.steps[key]()
        self.x.copy_(out)
        return self.x, 1 + int(second)

    def run(self, x, sigmas, draw, s_churn=0., s_tmin=0., s_tmax=float('inf'), s_noise=1., callback=None):
        """``sample_edm`` from the prior ``x`` over ``sigmas`` (t_0 > ... > t_N = 0).  Returns (x, nfe)."""
        self.x.copy_(x)
        n, nfe = len(sigmas) - 1, 0
        for i in range(n):
            t_cur, t_next = float(sigmas[i]), float(sigmas[i + 1])
            gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= t_cur <= s_tmax else 0.
            x, k = self.advance(t_cur, t_next, gamma, s_noise, draw)
            nfe += k
            if callback is not None:
                callback(i, t_next, x)
        return self.x.clone(), nfe


def run_edm(config, score, shape, randn, P, device, callback, capture, heun=True, stochastic=False):
    from sampling import _step_corrector, rival_sigmas
    s = config.sampling
    sigmas = rival_sigmas(config)
    _step_corrector(config, score, randn, P)          # PDS without a step corrector: the eager sampler's refusal
    steps = _cached(f'edm{heun}', config, score, P, shape, device, capture,
                    lambda: EDMSteps(score, shape, heun, device, capture))
    x = randn() * float(sigmas[0])
    churn = dict(s_churn=s.s_churn, s_tmin=s.s_tmin, s_tmax=s.s_tmax, s_noise=s.s_noise) if stochastic else {}
    return steps.run(x, sigmas, randn, callback=callback, **churn)


def sample(config, score, shape, randn, rand, P, device='cpu', callback=None, capture=True):
    """``sampling.sample``'s run of ``config`` with captured steps (``capture=False``: the factored steps eagerly).
    Returns ``(x, nfe)``, the eager sampler's result draw for draw."""
    check(config, P)
    method = config.sampling.method
    if method == 'pc':
        return run_pc(config, score, shape, randn, P, device, callback, capture)
    if method == 'ald':
        return run_ald(config, score, shape, randn, rand, P, device, callback, capture)
    return run_edm(config, score, shape, randn, P, device, callback, capture, heun=method != 'ode_euler',
                      stochastic=method == 'edm_stochastic')
