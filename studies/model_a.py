"""Model A: the NCSN of ``checkpoints/ncsn_mnist_cpu`` (ngf 16, trained on this project's CPU), annealed Langevin on
its 10 noise levels; FID / KID against the 10,000 MNIST test images (``$PDS_DATA/mnist``).  Rows:
``results/model_a/study.csv`` (``bash results/model_a/run_studies.sh``).

* ``a_curves``: FID / KID against iterations 10 .. 1000 (10 levels x 1 .. 100 steps, the official step_lr 2e-5) for
  vanilla, PDS with the Table 1 filter (r = 0.2H, lambda = 1.6, 'direct') and automatic PDS (``pds.freq = 'auto'``);
  2,000 samples per point up to 100 iterations, 500 beyond.
* ``a_map``: FID at 20 iterations over the high-frequency gain g x step_lr, 1,000 samples per cell.  Eq. 20's two
  readings are one axis (``studies.spec.gain_overrides``): g > 1 is 'direct' lambda = g, g < 1 is 'inverse'
  lambda = 1 / g, and g = 1 is vanilla.
* ``a_rivals``: the rival samplers at the same NFE (2,000 samples per point): annealed Langevin (vanilla, PDS Table
  1, PDS auto) at 10 / 20 / 50 / 100, Euler and EDM Heun on the probability-flow ODE, EDM's stochastic sampler, and
  Heun + k Langevin corrector steps per level, without and with PDS in the corrector (supp. Theorem 1), all on the
  model's own 10 geometric levels (NCSN v1 is trained only there).  The adaptive solvers (scipy RK45, Gotta Go Fast)
  need a score continuous in sigma: they are in Model B's ``b_rivals``.
"""
import os

from studies.model_b import _dpmpp_points
from studies.spec import CURVE_ITERATIONS, Point, Study, gain_label, gain_overrides, model

# Model A's points are overrides of the paper's Table 1 row (not of the config's default, automatic PDS)
MODEL_A = model('mnist_cpu_pds:table1_20it', os.path.join('checkpoints', 'ncsn_mnist_cpu', 'checkpoint.pth'),
                os.path.join('results', 'model_a'))
MAP_GAINS = (1.0, 1.6, 1 / 1.6, 2.5, 1 / 2.5)
MAP_STEPS = (2e-5, 1e-4, 5e-4, 5e-5, 2e-4, 1e-5)

# annealed Langevin on Model A's 10 levels: (point name prefix, series label, overrides of
# configs/mnist_cpu_pds.py:table1_20it)
ALD_SERIES = (('vanilla', 'vanilla', (('pds.enabled', False),)),
              ('pds_table1', 'PDS Table 1 (r=0.2H, λ=1.6)', ()),
              ('pds_auto', 'PDS auto', (('pds.freq', 'auto'),)))


def _ald_points(iterations, samples):
    """The ALD_SERIES points at each of ``iterations`` (10 levels x its / 10 steps); ``samples(its)`` per point."""
    return [Point(f'{key}_{its}it', label, over + (('sampling.n_steps_each', its // 10),), samples(its))
            for its in iterations for key, label, over in ALD_SERIES]


def a_curves(samples=None):
    return Study('a_curves', MODEL_A, tuple(_ald_points(CURVE_ITERATIONS,
                                                        lambda its: samples or (2000 if its <= 100 else 500))))


def a_map(samples=None):
    # coarse first: three step sizes x (vanilla, lambda 1.6 both ways), then lambda 2.5 both ways, then the finer steps
    coarse, fine = MAP_STEPS[:3], MAP_STEPS[3:]
    order = [(s, g) for s in coarse for g in MAP_GAINS[:3]] + [(s, g) for s in coarse for g in MAP_GAINS[3:]] + \
        [(s, g) for s in fine for g in MAP_GAINS]
    points = [Point(f'g{gain:.3f}_lr{step:g}', f'{gain_label(gain)}, step_lr {step:g}',
                    gain_overrides(gain) + (('sampling.step_lr', step),), samples or 1000, cell=(gain, step))
              for step, gain in order]
    return Study('a_map', MODEL_A, tuple(points), table='map')


def a_rivals(samples=None):
    """The rival samplers on Model A at the budgets of the curves, on the model's own 10 noise levels (geometric
    1 -> 0.01: NCSN v1 is trained only there, between them its score is the nearest level's); DPM-Solver++ 2M /
    2M SDE / 3M SDE at NFE 10, 20, 50 and 100 on the same geometric grid."""
    n = samples or 2000
    off = (('pds.enabled', False),)
    edm = (('sampling.schedule', 'geometric'),)
    points = _ald_points((10, 20, 50, 100), lambda its: n)     # shared with a_curves (the same rows)
    for method, label, ns in (('ode_euler', 'Euler (PF-ODE)', (10,)), ('edm', 'EDM Heun', (4, 10)),
                              ('edm_stochastic', 'EDM stochastic', (4, 10))):
        for steps in ns:
            points.append(Point(f'{method}_{steps}', label, off + edm + (('sampling.method', method),
                                                                         ('sampling.num_steps', steps)), n))
    for k in (1, 3, 9):                             # Heun on the 10 levels + k corrector steps after each
        corr = edm + (('sampling.method', 'edm'), ('sampling.num_steps', 10), ('sampling.step_corrector', 'langevin'),
                      ('sampling.n_steps_each', k))
        points += [Point(f'heun_langevin{k}', 'Heun + Langevin corrector', off + corr, n),
                   Point(f'heun_pds{k}', 'Heun + PDS corrector (r=0.2H, λ=1.6)', corr, n)]
    points += _dpmpp_points(off + edm, n)
    return Study('a_rivals', MODEL_A, tuple(points), table='rivals')


STUDIES = {'a_curves': a_curves, 'a_map': a_map, 'a_rivals': a_rivals}
