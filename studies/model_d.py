"""Model D: the small DDPM++ of ``checkpoints/ddpmpp_mnist_cpu`` (configs/vp/mnist_ddpmpp_cpu.py: Model B's network on
score_sde's continuous VP SDE, centred MNIST; issue 31 part 3), its VP samplers without and with every PDS form of
issue 31 part 2, and the rival samplers; FID / KID against the 10,000 MNIST test images (``$PDS_DATA/mnist``).
Rows: ``results/model_d/study.csv`` (``bash results/model_d/run_studies.sh``), of the finished checkpoint (15,001
steps, sha256 618693ca5cc3; its model card).

The points are overrides of the model's own config (``vp/mnist_ddpmpp_cpu``: the official VP PC sampler of
score_sde's continuous VP configs, predictor 'euler_maruyama', corrector 'none', sampling eps 1e-3, N = 1000; PDS off,
its statistics filter ``assets/stats/mnist_freq.npy``), so each PDS series states ``pds.enabled``.

* ``d_quality``: the quality bar at the full default schedule, 500 samples each: vanilla PC at N = 1000 (Euler-Maruyama,
  no corrector) and DDPM ancestral sampling on all 1000 steps of the chain (Ho et al.'s sigma^2 = beta).  The same
  points (configs and counts) as the curves' at 1000 iterations, so one row serves both.
* ``d_curves``: iterations 10 .. 1000; 2,000 samples per point up to 100 iterations, 500 beyond.  On the PC sampler:
  vanilla; (a) the official PDS form carried over (drift M M^T, noise M; statistics filter at Table 2's alphas 5 and
  10); (b) the marginal-preserving predictor drift (I + M M^T) / 2 (alpha 5 and 10; prior N(0, I)); (d) automatic PDS
  for VP (``pds.freq = 'auto'``, the moment recursion on ``assets/stats/mnist_spectrum.npy``).  (c) the preconditioned
  Langevin corrector alone (``pds.apply_to = 'corrector'``, alpha 5) needs a corrector, which the config's sampler
  has not: that series and a vanilla one beside it run PC with corrector 'langevin' (score_sde's VP Langevin, snr
  0.16, one step per level: NFE 2N), from 20 iterations (at N = 10 the chain's largest beta is beta_max / N = 2 > 1
  and VP's Langevin step is refused: sampling/pc.py).  Then DDPM ancestral sampling on evenly spread subsequences of
  the 1000-step chain, vanilla, with the official PDS form and with the marginal one (alpha 5).
* ``d_first``: a subset of ``d_rivals`` run before the others, so that the answer to §7's question comes in
  hours, not days: at NFE 20, 50 and 100, vanilla PC, PDS (a) and (b) at alpha 5, DDPM, DDIM, DPM-Solver++ 2M SDE and
  EDM stochastic, and at NFE 20 vanilla PC, (b) and (a) again at score_sde's eps = 1e-3, and vanilla and (b) there
  with the denoiser as the last step (26 points; their rows are the full studies' rows).
* ``d_rivals``: DDIM (eta 0) at 10 .. 200 steps, the probability-flow ODE (score_sde's RK45 at tolerances 1e-2, 1e-3,
  1e-5, Model B's rk45 points), EDM Heun and EDM stochastic (n steps: NFE 2n - 1) and DPM-Solver++ 2M / 2M SDE / 3M
  SDE (NFE = steps, at 200 too: the best sampler up to NFE 100) on the Karras grid over EDM's sigma view of the VP SDE
  (sigma(1e-3) = 0.0105 .. sigma(1) = 152.2), beside the curves' one-evaluation-per-step points (PC Euler-Maruyama and
  DDPM, every form, NFE = N) and the PC + Langevin points at NFE 40 and 100 (the same points: their rows are shared),
  and PC vanilla, (a) and (b) at alpha 5 with score_sde's own eps = 1e-3 at every N (``sampling.num_steps``; below),
  vanilla and (b) also with the denoiser as the last step (``sampling.last_step``).  2,000 samples per point up to NFE
  100, 500 beyond; RK45 counts by its expected NFE (1e-2, 1e-3: 2,000, as Model B's; 1e-5: 500, Model B's took NFE
  579).  Its table names the best sampler within NFE 10, 20, 50, 100 and 200.

PC: N predictor steps = 1000 / speed_up (the PDS command line's convention, as Models B and C and the config's
PDS_SETTINGS rows; on VP it also sets the smallest time eps = 1e-3 speed_up: 0.1 at 10 iterations, 1e-3 at 1000);
NFE = N (Euler-Maruyama, no corrector) or 2N (with the Langevin corrector).  The rivals' budgets also run PC at
N = NFE with eps = 1e-3 (``sampling.num_steps`` = N, speed_up 1: what score_sde's VP sampler does at any N), labels
"..., eps 1e-3": the speed_up rule's larger eps leaves a residual noise that the chain samplers do not carry.
DDPM / DDIM: ``sampling.num_steps`` chain indices spread evenly over 0..999 with both ends (sampling/ddpm.py),
NFE = steps.

DDPM / DDIM on this continuous model run on its own chain, alpha_bar(t_j) at t_j = (j + 1) / N
(``models.sde.VPTimeChain``), so the top level is sigma(1) = 152.2 and no point asks the model beyond its range.
"""
import os

from studies.model_b import _dpmpp_points
from studies.spec import CURVE_ITERATIONS, Point, Study, model

MODEL_D = model('vp/mnist_ddpmpp_cpu', os.path.join('checkpoints', 'ddpmpp_mnist_cpu', 'checkpoint.pth'),
                os.path.join('results', 'model_d'))
NUM_SCALES = 1000                 # score_sde's default N (the config's model.num_scales)
BATCH_SIZE = 50                   # Model B's (the same network)
QUALITY_SAMPLES = 500
RIVAL_BUDGETS = (10, 20, 50, 100, 200)
EDM_STEPS = {10: 5, 20: 10, 50: 25, 100: 50, 200: 100}      # NFE budget -> EDM steps (NFE 2 steps - 1)
# NFE budget -> the PC + Langevin iterations (NFE 2N) beside the rivals there: 20 (NFE 40) and 50 (NFE 100), the
# curves' points at 2,000 samples; 100 (NFE 200) is a 2,000-sample curves point but a 500-sample rival: left out
CORRECTOR_AT_BUDGET = {50: 20, 100: 50}

ON = (('pds.enabled', True),)
OFF = (('pds.enabled', False),)
LANGEVIN = (('sampling.corrector', 'langevin'),)

# the config's PC sampler (Euler-Maruyama, no corrector): (point name prefix, series label, overrides); Model B's
# labels where the series is Model B's, so the models' tables and plots read alike
PC_SERIES = (('vanilla', 'vanilla', OFF),
             ('pds_a5', 'PDS stats α=5 (Table 2, 100 it)', ON + (('pds.alpha', 5.),)),
             ('pds_a10', 'PDS stats α=10 (Table 2, 200 it)', ON + (('pds.alpha', 10.),)),
             ('pds_a5_marg', 'PDS stats α=5, marginal predictor',
              ON + (('pds.alpha', 5.), ('pds.predictor_drift', 'marginal'))),
             ('pds_a10_marg', 'PDS stats α=10, marginal predictor',
              ON + (('pds.alpha', 10.), ('pds.predictor_drift', 'marginal'))),
             ('pds_auto', 'PDS auto', ON + (('pds.freq', 'auto'),)))
# the same PC sampler at score_sde's own smallest time eps = 1e-3 at every N (``sampling.num_steps`` = N, speed_up 1),
# what a VP user runs: the PDS command line's eps = 1e-3 speed_up (PC_SERIES) ends at t = 0.05 at 20 iterations, a
# residual noise of std 0.17 (centred units) that DDPM / DDIM (lowest level t = 1e-3) do not carry; the exact
# Gaussian of benchmarks/resolution_vp.py puts vanilla PC at 20 steps 18x below DDIM's KL with eps 1e-3 and 2.4x
# above it with the speed_up rule (32 px, 1/f^2 law), so the learned model is measured both ways
PC_FIXED_EPS_SERIES = (('vanilla_eps3', 'vanilla, eps 1e-3', OFF),
                       ('pds_a5_eps3', 'PDS stats α=5, eps 1e-3', ON + (('pds.alpha', 5.),)),
                       ('pds_a5_marg_eps3', 'PDS stats α=5, marginal predictor, eps 1e-3',
                        ON + (('pds.alpha', 5.), ('pds.predictor_drift', 'marginal'))))
# the same at eps 1e-3 with the last step replaced by the denoiser (``sampling.last_step = 'denoiser'``: Tweedie's
# E[x_0 | x] from the score at t = eps, the same NFE; not the official sampler): does the PC sampler's small-N loss
# on VP come from its last step alone?
DENOISER = (('sampling.last_step', 'denoiser'),)
PC_DENOISER_SERIES = (('vanilla_eps3_den', 'vanilla, eps 1e-3, denoiser last step', OFF + DENOISER),
                      ('pds_a5_marg_eps3_den', 'PDS stats α=5, marginal predictor, eps 1e-3, denoiser last step',
                       ON + DENOISER + (('pds.alpha', 5.), ('pds.predictor_drift', 'marginal'))))
# (c): the PC sampler with score_sde's VP Langevin corrector added (the config has none), vanilla beside PDS in it
CORRECTOR_SERIES = (('langevin', 'vanilla, PC + Langevin corrector', OFF + LANGEVIN),
                    ('pds_a5_corr', 'PDS stats α=5, corrector only (PC + Langevin corrector)',
                     ON + LANGEVIN + (('pds.alpha', 5.), ('pds.apply_to', 'corrector'))))
CORRECTOR_ITERATIONS = CURVE_ITERATIONS[1:]       # 20 .. 1000: VP's Langevin step is refused at N = 10 (beta 2 > 1)
# DDPM ancestral sampling on the chain, vanilla and with PDS in its steps (official and marginal forms; 'auto' and
# apply_to 'corrector' are refused on 'ddpm': no schedule derived for it, no corrector step)
DDPM = (('sampling.method', 'ddpm'),)
DDPM_SERIES = (('ddpm', 'DDPM ancestral', OFF + DDPM),
               ('ddpm_pds_a5', 'DDPM + PDS stats α=5', ON + DDPM + (('pds.alpha', 5.),)),
               ('ddpm_pds_a5_marg', 'DDPM + PDS stats α=5, marginal',
                ON + DDPM + (('pds.alpha', 5.), ('pds.predictor_drift', 'marginal'))))


def _count(rule_value, samples):
    return samples or (2000 if rule_value <= 100 else 500)


def _pc_points(its_list, count, series=PC_SERIES):
    """The PC ``series`` at each of ``its_list`` (N = 1000 / speed_up predictor steps); ``count(its)`` samples."""
    return [Point(f'{key}_{its}it', label, over + (('sampling.speed_up', NUM_SCALES / its),), count(its))
            for its in its_list for key, label, over in series]


def _chain_points(its_list, count, series=DDPM_SERIES):
    """``series`` at ``sampling.num_steps`` = each of ``its_list``: the chain samplers' (ddpm) steps of the 1000-step
    chain, or PC's N predictor steps at the config's eps = 1e-3 (speed_up 1; PC_FIXED_EPS_SERIES)."""
    return [Point(f'{key}_{its}it', label, over + (('sampling.num_steps', its),), count(its))
            for its in its_list for key, label, over in series]


def _curve_points(its, samples=None):
    """Every curves point at ``its`` iterations, in the order the curves run them: PC, PC + Langevin, DDPM."""
    count = lambda i: _count(i, samples)  # noqa: E731
    points = _pc_points((its,), count)
    if its in CORRECTOR_ITERATIONS:
        points += _pc_points((its,), count, CORRECTOR_SERIES)
    return points + _chain_points((its,), count)


def d_quality(samples=None):
    """The quality bar: vanilla PC at N = 1000 and DDPM ancestral on the 1000-step chain, 500 samples each."""
    count = lambda its: samples or QUALITY_SAMPLES  # noqa: E731
    return Study('d_quality', MODEL_D, tuple(_pc_points((NUM_SCALES,), count, PC_SERIES[:1])
                                            + _chain_points((NUM_SCALES,), count, DDPM_SERIES[:1])),
                 batch_size=BATCH_SIZE)


def d_curves(samples=None):
    """Eleven series against iterations (module docstring), ordered by iterations (cheapest first), then series."""
    return Study('d_curves', MODEL_D, tuple(p for its in CURVE_ITERATIONS for p in _curve_points(its, samples)),
                 batch_size=BATCH_SIZE)


def d_rivals(samples=None):
    """Ordered by NFE budget (cheapest first); within one: DDIM, EDM Heun, EDM stochastic, DPM-Solver++, then the
    curves' points of that NFE; last the adaptive RK45 (its NFE is known after the run), loosest tolerance first."""
    count = lambda nfe: _count(nfe, samples)  # noqa: E731
    points = []
    for nfe in RIVAL_BUDGETS:
        n = count(nfe)
        points.append(Point(f'ddim_{nfe}', 'DDIM (η=0)', OFF + (('sampling.method', 'ddim'),
                                                                ('sampling.ddim_eta', 0.),
                                                                ('sampling.num_steps', nfe)), n))
        steps = EDM_STEPS[nfe]
        points += [Point(f'edm_{steps}', 'EDM Heun', OFF + (('sampling.method', 'edm'), ('sampling.num_steps', steps)),
                         n),
                   Point(f'edm_stochastic_{steps}', 'EDM stochastic',
                         OFF + (('sampling.method', 'edm_stochastic'), ('sampling.num_steps', steps)), n)]
        points += _dpmpp_points(OFF, n, (nfe,))
        # the curves' points at this NFE (their rows): one evaluation per step (PC Euler-Maruyama, DDPM) at N = NFE,
        # PC + Langevin (NFE 2N) where its N is a curves point and the count agrees (NFE 40 and 100)
        points += _pc_points((nfe,), lambda its: n) + _chain_points((nfe,), lambda its: n)
        points += _chain_points((nfe,), lambda its: n, PC_FIXED_EPS_SERIES + PC_DENOISER_SERIES)
        if nfe in CORRECTOR_AT_BUDGET:
            points += _pc_points((CORRECTOR_AT_BUDGET[nfe],), lambda its: n, CORRECTOR_SERIES)
    for tol, n in ((1e-2, 2000), (1e-3, 2000), (1e-5, 500)):
        points.append(Point(f'rk45_{tol:g}', 'PF-ODE RK45', OFF + (
            ('sampling.method', 'ode'), ('sampling.ode_rtol', tol), ('sampling.ode_atol', tol)), samples or n))
    return Study('d_rivals', MODEL_D, tuple(points), batch_size=BATCH_SIZE, table='rivals', budgets=RIVAL_BUDGETS)


# d_first: the points that answer §7's question, run before the full studies (module docstring)
FIRST_BUDGETS = (20, 50, 100)
FIRST_POINTS = ('vanilla_{n}it', 'pds_a5_{n}it', 'pds_a5_marg_{n}it', 'ddpm_{n}it', 'ddim_{n}', 'dpmpp_2m_sde_{n}',
                'edm_stochastic_{e}')
# PC at eps 1e-3 only at NFE 20 here: vanilla there gave FID 331.5 (against 143.8 at the speed_up rule's eps): the
# last Euler-Maruyama step from t = 1e-3 has gain beta(eps) / (N (1 - alpha_bar(eps))) = 55 on a score of curvature
# ~1 / sigma^2 (Model D's, measured), where a step is stable below 2 (docs/vp.md); at N = 50 / 100 it is still 22 / 11,
# so those points wait for d_rivals
FIRST_EPS3 = ('vanilla_eps3_{n}it', 'pds_a5_marg_eps3_{n}it', 'pds_a5_eps3_{n}it', 'vanilla_eps3_den_{n}it',
              'pds_a5_marg_eps3_den_{n}it')
FIRST_EPS3_BUDGETS = (20,)


def d_first(samples=None):
    """§7's answer first: at NFE 20, 50 and 100, vanilla PC, PDS forms (a) and (b) at alpha 5, DDPM ancestral,
    DDIM, DPM-Solver++ 2M SDE and EDM stochastic (n steps: NFE 2n - 1).  The very points of d_rivals (the same
    names, overrides and counts), so their rows serve d_curves and d_rivals, which then skip them."""
    rivals = {p.name: p for p in d_rivals(samples).points}
    names = [f.format(n=n, e=EDM_STEPS[n]) for n in FIRST_BUDGETS
             for f in FIRST_POINTS + (FIRST_EPS3 if n in FIRST_EPS3_BUDGETS else ())]
    return Study('d_first', MODEL_D, tuple(rivals[name] for name in names), batch_size=BATCH_SIZE, table='rivals',
                 budgets=FIRST_BUDGETS)


STUDIES = {'d_quality': d_quality, 'd_curves': d_curves, 'd_rivals': d_rivals, 'd_first': d_first}
