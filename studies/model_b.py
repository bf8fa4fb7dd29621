"""Model B: the NCSN++ of ``checkpoints/ncsnpp_mnist_cpu`` (nf 28, trained on this project's CPU), the PC sampler
on its VE SDE and the rival samplers; FID / KID against the 10,000 MNIST test images (``$PDS_DATA/mnist``).  Rows:
``results/model_b/study.csv`` (``bash results/model_b/run_studies.sh``).

PC: N predictor steps = 1000 / speed_up (the PDS command line's convention, which also sets the smallest time
eps = 1e-5 speed_up); NFE = 2N (one reverse-diffusion step + one Langevin step each).
"""
import os

from studies.spec import CURVE_ITERATIONS, Point, Study, model

MODEL_B = model('mnist_ncsnpp_cpu_pds', os.path.join('checkpoints', 'ncsnpp_mnist_cpu', 'checkpoint.pth'),
                os.path.join('results', 'model_b'))

PC_SERIES = (('vanilla', 'vanilla', (('pds.enabled', False),)),
             ('pds_a5', 'PDS stats α=5 (Table 2, 100 it)', (('pds.alpha', 5.),)),
             ('pds_a10', 'PDS stats α=10 (Table 2, 200 it)', (('pds.alpha', 10.),)),
             ('pds_auto', 'PDS auto', (('pds.freq', 'auto'),)))


def _pc_points(iterations, samples):
    return [Point(f'{key}_{its}it', label, over + (('sampling.speed_up', 1000 / its),), samples(its))
            for its in iterations for key, label, over in PC_SERIES]


def b_curves(samples=None):
    """FID / KID against PC iterations 10 .. 1000 on Model B: vanilla, the statistics filter at Table 2's two
    alphas, automatic PDS; 2,000 samples per point up to 100 iterations, 500 beyond.  Then alpha 5 in the Langevin
    corrector only (``pds.apply_to = 'corrector'``, what supp. Theorem 1 covers) at 50, 100 and 500 iterations:
    whether PDS's effect comes from the corrector or from preconditioning the predictor.  Last, alpha 5 (50 to 1000
    iterations) and alpha 10 (100 to 1000) with the predictor drift that keeps the reverse SDE's marginals
    (``pds.predictor_drift = 'marginal'``, (I + M M^T) / 2): whether the official predictor's loss at 100-200 is its
    drift leaving the reverse SDE."""
    count = lambda its: samples or (2000 if its <= 100 else 500)  # noqa: E731
    corrector_only = [Point(f'pds_a5_corr_{its}it', 'PDS stats α=5, corrector only',
                            (('pds.alpha', 5.), ('pds.apply_to', 'corrector'), ('sampling.speed_up', 1000 / its)),
                            count(its)) for its in (50, 100, 500)]
    marginal = [Point(f'pds_a5_marg_{its}it', 'PDS stats α=5, marginal predictor',
                      (('pds.alpha', 5.), ('pds.predictor_drift', 'marginal'), ('sampling.speed_up', 1000 / its)),
                      count(its)) for its in (100, 200, 50, 500, 1000)]
    marginal += [Point(f'pds_a10_marg_{its}it', 'PDS stats α=10, marginal predictor',
                       (('pds.alpha', 10.), ('pds.predictor_drift', 'marginal'), ('sampling.speed_up', 1000 / its)),
                       count(its)) for its in (100, 200, 500, 1000)]
    return Study('b_curves', MODEL_B, tuple(_pc_points(CURVE_ITERATIONS, count) + corrector_only + marginal),
                 batch_size=50)


DPMPP_SERIES = (('dpmpp_2m', 'DPM-Solver++ 2M'), ('dpmpp_2m_sde', 'DPM-Solver++ 2M SDE'),
                ('dpmpp_3m_sde', 'DPM-Solver++ 3M SDE'))


def _dpmpp_points(over, n, nfes=(10, 20, 50, 100)):
    """DPM-Solver++ (issue 30) on the same grid as the EDM points: one network call per step, so NFE = steps."""
    return [Point(f'{method}_{nfe}', label, over + (('sampling.method', method), ('sampling.num_steps', nfe)), n)
            for nfe in nfes for method, label in DPMPP_SERIES]


def b_rivals(samples=None):
    """The rival samplers on Model B at NFE about 10 .. 100 (2,000 samples per point): PC (shared with b_curves),
    EDM Heun and EDM stochastic (the latter also at NFE 199, beside PC's best at NFE 200) on the Karras grid
    (rho 7, sigma 17 -> 0.01), Euler on the same grid, score_sde's RK45 probability-flow ODE and Gotta Go Fast at
    three tolerances each (their NFE is what they used), and Heun + k Langevin corrector steps per level without
    and with PDS in the corrector (statistics filter, alpha 5); DPM-Solver++ 2M / 2M SDE / 3M SDE at NFE 10, 20, 50
    and 100 on the Karras grid."""
    n = samples or 2000
    off = (('pds.enabled', False),)
    points = _pc_points((10, 20, 50), lambda its: n)
    for steps in (5, 10, 25, 50):
        points.append(Point(f'edm_{steps}', 'EDM Heun', off + (('sampling.method', 'edm'),
                                                               ('sampling.num_steps', steps)), n))
    for steps in (5, 10, 25, 50, 100):             # 100 steps = NFE 199: beside PC at 100 iterations (NFE 200)
        points.append(Point(f'edm_stochastic_{steps}', 'EDM stochastic',
                            off + (('sampling.method', 'edm_stochastic'), ('sampling.num_steps', steps)), n))
    for steps in (10, 20, 50, 100):
        points.append(Point(f'ode_euler_{steps}', 'Euler (PF-ODE)', off + (('sampling.method', 'ode_euler'),
                                                                           ('sampling.num_steps', steps)), n))
    for tol in (1e-2, 1e-3, 1e-5):
        points.append(Point(f'rk45_{tol:g}', 'PF-ODE RK45', off + (('sampling.method', 'ode'), ('sampling.ode_rtol', tol),
                                                                   ('sampling.ode_atol', tol)), n))
    for rel in (0.1, 0.05, 0.02):
        points.append(Point(f'ggf_{rel:g}', 'Gotta Go Fast', off + (('sampling.method', 'adaptive_sde'),
                                                                    ('sampling.adaptive_reltol', rel)), n))
    for k in (1, 3):                                # Heun on 10 Karras levels + k corrector steps after each
        corr = (('sampling.method', 'edm'), ('sampling.num_steps', 10), ('sampling.step_corrector', 'langevin'),
                ('sampling.n_steps_each', k))
        points += [Point(f'heun_langevin{k}', 'Heun + Langevin corrector', off + corr, n),
                   Point(f'heun_pds{k}', 'Heun + PDS corrector (stats, α=5)', corr, n)]
    points += _dpmpp_points(off, n)
    return Study('b_rivals', MODEL_B, tuple(points), batch_size=50, table='rivals')


STUDIES = {'b_curves': b_curves, 'b_rivals': b_rivals}
