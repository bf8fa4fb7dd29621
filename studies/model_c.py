"""Models C32 / C64 / C128: the dead-leaves NCSN++ (issue 28) at 32, 64 and 128 px, the PC sampler on its VE SDE
without and with PDS, and the rival samplers; FID / KID against the 10,000 held-out dead leaves of that size (the
test split, seed 1, generated from the config's ``data.deadleaves``: ``data:deadleaves``).  Rows:
``results/model_c<size>/study.csv`` (``bash results/model_c<size>/run_studies.sh``, i.e.
``scripts/model_c_studies.sh <size>``).

One builder per study, parametrised by the size (:data:`SIZES`: config, checkpoint, score_sde's default N, batch):

* ``c<size>_quality``: the quality bar, vanilla PC at score_sde's default N (1000; 2000 at 128 px, the config's
  ``num_scales``) with one Langevin step at the config's snr (0.16), 500 samples.  The same point (config and count)
  as the curves' vanilla at N, so one row serves both.  The spectrum half of the bar is
  ``python -m evaluation.spectrum`` on its samples.
* ``c<size>_curves``: PC iterations 10 .. 1000 (and 2000 at 128 px; most informative first, :func:`curves`): vanilla, the statistics filter at Table 2's
  alphas 5 and 10 (``assets/stats/deadleaves<size>_freq.npy``, the configs' ``pds.freq_path``), automatic PDS (the
  spectrum beside it, ``deadleaves<size>_spectrum.npy``) and alpha 10 with the marginal predictor drift; 2,000
  samples per point up to 100 iterations, 500 beyond (as Model B's b_curves).
* ``c<size>_rivals``: EDM Heun and EDM stochastic (n steps: NFE 2n - 1), DPM-Solver++ 2M / 2M SDE / 3M SDE (NFE =
  steps) at NFE about 10, 20, 50, 100 and 200, beside the curves' PC points at NFE 20, 40 and 100 (the same points:
  their rows are shared) and PC at 100 iterations (NFE 200) again at 500 samples; 2,000 samples per point up to
  NFE 100, 500 beyond.  Its table names the best sampler within NFE 10, 20, 50, 100 and 200.

PC: N predictor steps = num_scales / speed_up (the PDS command line's convention, which also sets the smallest time
eps = 1e-5 speed_up); NFE = 2N (one reverse-diffusion step + one Langevin step each).  The 128 px statistics files
(``assets/stats/deadleaves128_*``) are not made yet: its PDS points refuse to build until ``--mode stats`` writes them.
"""
import os

from studies.model_b import _dpmpp_points
from studies.spec import CURVE_ITERATIONS, Point, Study, model

# size -> the model: config module, checkpoint (C32: shipped; C64: the CPU fallback of its config (nf 16), trained on
# the CPU since no GPU was lent, issue 28; C128: not trained yet, named after its config as C32's is), score_sde's
# default N (the config's model.num_scales) and the batch size of its sampling
SIZES = {
    32: dict(config='ve/deadleaves32_ncsnpp_cpu', checkpoint=('ncsnpp_deadleaves32_cpu', 'checkpoint.pth'),
             num_scales=1000, batch_size=100),
    64: dict(config='ve/deadleaves64_ncsnpp:cpu', checkpoint=('ncsnpp_deadleaves64_cpu', 'checkpoint.pth'),
             num_scales=1000, batch_size=250),
    128: dict(config='ve/deadleaves128_ncsnpp', checkpoint=('ncsnpp_deadleaves128', 'checkpoint.pth'),
              num_scales=2000, batch_size=250),
}
QUALITY_SAMPLES = 500
RIVAL_BUDGETS = (10, 20, 50, 100, 200)
# NFE budget -> the PC iterations beside the rivals there (NFE 2N: 20, 40, 100, 200); at NFE 200 (100 iterations) at
# the rivals' 500 samples, another point than the curves' 2,000-sample one
PC_AT_BUDGET = {20: 10, 50: 20, 100: 50, 200: 100}
# the curves' first points: PDS at these iterations is what the speed-up-against-resolution table compares
PRIORITY_ITERATIONS = (50, 100)

# Model B's PC series and labels (plots and tables read alike), and alpha 10 with the marginal predictor drift; the
# dead-leaves configs have PDS off (pds.freq 'stats' on their assets/stats file), so each series states pds.enabled
PC_SERIES = (('vanilla', 'vanilla', (('pds.enabled', False),)),
             ('pds_a5', 'PDS stats α=5 (Table 2, 100 it)', (('pds.enabled', True), ('pds.alpha', 5.))),
             ('pds_a10', 'PDS stats α=10 (Table 2, 200 it)', (('pds.enabled', True), ('pds.alpha', 10.))),
             ('pds_auto', 'PDS auto', (('pds.enabled', True), ('pds.freq', 'auto'))),
             ('pds_a10_marg', 'PDS stats α=10, marginal predictor',
              (('pds.enabled', True), ('pds.alpha', 10.), ('pds.predictor_drift', 'marginal'))))


def model_c(size):
    """The model of Model C<size>: its config, checkpoint, the held-out dead leaves and results/model_c<size>."""
    s = SIZES[size]
    return model(s['config'], os.path.join('checkpoints', *s['checkpoint']), os.path.join('results', f'model_c{size}'),
                 ref='data:deadleaves')


def iterations(size):
    """The PC iterations of the curves at ``size``: 10 .. 1000, and score_sde's N where it is more (2000)."""
    n = SIZES[size]['num_scales']
    return CURVE_ITERATIONS + ((n,) if n not in CURVE_ITERATIONS else ())


def _speed_up(size, its):
    return SIZES[size]['num_scales'] / its


def _pc_points(size, its_list, count, series=PC_SERIES):
    return [Point(f'{key}_{its}it', label, over + (('sampling.speed_up', _speed_up(size, its)),), count(its))
            for its in its_list for key, label, over in series]


def quality(size, samples=None):
    """The quality bar: vanilla PC at score_sde's N, 500 samples (module docstring)."""
    n = SIZES[size]['num_scales']
    return Study(f'c{size}_quality', model_c(size),
                 tuple(_pc_points(size, (n,), lambda its: samples or QUALITY_SAMPLES, PC_SERIES[:1])),
                 batch_size=SIZES[size]['batch_size'])


def curves(size, samples=None):
    """Five PC series against iterations, most informative first (on 2 CPU cores the whole study takes days, and a
    run stopped part way should have answered the most): every series at 50 and 100 iterations (the speed-up
    columns of the resolution table), vanilla beyond (what they are matched against), then 10 and 20 iterations,
    then the PDS series beyond 100.  The order changes no point (names, configs, counts): rows are found as before."""
    count = lambda its: samples or (2000 if its <= 100 else 500)  # noqa: E731
    its_all = iterations(size)
    beyond = tuple(i for i in its_all if i > 100)
    points = (_pc_points(size, PRIORITY_ITERATIONS, count)
              + _pc_points(size, beyond, count, PC_SERIES[:1])
              + _pc_points(size, tuple(i for i in its_all if i < min(PRIORITY_ITERATIONS)), count)
              + _pc_points(size, beyond, count, PC_SERIES[1:]))
    return Study(f'c{size}_curves', model_c(size), tuple(points), batch_size=SIZES[size]['batch_size'])


def rivals(size, samples=None):
    """Ordered by NFE budget (cheapest first); within one: EDM Heun, EDM stochastic, DPM-Solver++, PC."""
    count = lambda nfe: samples or (2000 if nfe <= 100 else 500)  # noqa: E731
    off = (('pds.enabled', False),)
    points = []
    for steps, nfe in ((5, 10), (10, 20), (25, 50), (50, 100), (100, 200)):    # EDM: NFE 2 steps - 1
        points += [Point(f'edm_{steps}', 'EDM Heun', off + (('sampling.method', 'edm'), ('sampling.num_steps', steps)),
                         count(nfe)),
                   Point(f'edm_stochastic_{steps}', 'EDM stochastic',
                         off + (('sampling.method', 'edm_stochastic'), ('sampling.num_steps', steps)), count(nfe))]
        points += _dpmpp_points(off, count(nfe), (nfe,))
        if nfe in PC_AT_BUDGET:    # PC at NFE 2N within this budget: at NFE <= 100 the curves' points (their rows)
            points += _pc_points(size, (PC_AT_BUDGET[nfe],), lambda its: count(nfe))
    return Study(f'c{size}_rivals', model_c(size), tuple(points), batch_size=SIZES[size]['batch_size'],
                 table='rivals', budgets=RIVAL_BUDGETS)


def _bind(build, size):
    def study(samples=None):
        return build(size, samples)
    study.__name__ = f'c{size}_{build.__name__}'
    study.__doc__ = f'{build.__name__} of Model C{size} (studies/model_c.py).'
    return study


STUDIES = {f'c{size}_{build.__name__}': _bind(build, size) for size in SIZES for build in (quality, curves, rivals)}
