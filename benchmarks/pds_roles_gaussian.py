"""Where PDS's effect on the PC sampler comes from, on the exact score of a Gaussian with the data's spectrum.

    python benchmarks/pds_roles_gaussian.py                      # MNIST statistics, Model B's VE schedule

The PC sampler (reverse-diffusion predictor + one Langevin corrector step, score_sde's snr rule) preconditions
three kinds of update: the prior draw, the corrector and the predictor.  Supp. Theorem 1 covers the corrector only
(each corrector step leaves p_sigma invariant for any invertible M); the prior and the predictor are
preconditioned beyond it.  For a Gaussian that is diagonal in the DFT (per-frequency variance P_k and mean from
``--mode stats``' ``*_spectrum.npy``) the final per-frequency mean error and variance of the discretised sampler
are exact (the moment recursion of ``preconditioning/auto.py``, tested against the real sampler), so each part's
share is computed, not sampled: the statistics filter (Eq. 22, ``*_freq.npy``, ``--alpha``) in every update
(the official code), in the corrector only (``pds.apply_to = 'corrector'``), in the prior and predictor only, in
every update with the marginal-preserving predictor drift (I + M M^T) / 2 (``pds.predictor_drift = 'marginal'``),
the same with the vanilla prior draw (not a config option: whether the preconditioned prior matters), and
automatic PDS.  Metric: mean over frequencies of KL(N(m_k, V_k) || N(0, P_k)) (0 = the data's law exactly).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from preconditioning import auto, normalised_inverse  # noqa: E402
from sampling.sde import VESDE  # noqa: E402

ROLES = (('vanilla', lambda table: None, 'official'),
         ('PDS, every update (official)', lambda table: lambda i, role: table, 'official'),
         ('PDS, corrector only (Theorem 1)', lambda table: lambda i, role: table if role == 'corrector' else None,
          'official'),
         ('PDS, prior + predictor only', lambda table: lambda i, role: None if role == 'corrector' else table,
          'official'),
         ('PDS, marginal predictor (I + M M^T) / 2', lambda table: lambda i, role: table, 'marginal'),
         ('PDS, marginal predictor, vanilla prior', lambda table: lambda i, role: None if role == 'prior' else table,
          'marginal'))


def role_errors(spec, table, iterations, sigma_min, sigma_max, snr=0.16, num_scales=1000, with_auto=True):
    """{row name: [KL at each of ``iterations``]} for the PC sampler with N = iterations (eps = 1e-5 num_scales / N,
    the ``speed_up`` convention of the study scripts)."""
    rows = {name: [] for name, _, _ in ROLES}
    if with_auto:
        rows['PDS auto'] = []
    for n in iterations:
        sde, eps = VESDE(sigma_min, sigma_max, n), 1e-5 * num_scales / n
        for name, filters, drift in ROLES:
            rows[name].append(auto.kl(*auto.pc_moments(spec, sde, eps, snr, 1, filters(table), predictor_drift=drift),
                                      spec.P))
        if with_auto:
            schedule = auto.AutoPC(spec, sde, eps, snr, 1)
            rows['PDS auto'].append(auto.kl(*auto.pc_moments(spec, sde, eps, snr, 1, schedule.filter), spec.P))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--spectrum', default='assets/stats/mnist_spectrum.npy')
    parser.add_argument('--freq', default='assets/stats/mnist_freq.npy')
    parser.add_argument('--alpha', type=float, default=5.)
    parser.add_argument('--sigma_min', type=float, default=0.01)
    parser.add_argument('--sigma_max', type=float, default=17.)
    parser.add_argument('--snr', type=float, default=0.16)
    parser.add_argument('--iterations', type=int, nargs='+', default=[10, 20, 50, 100, 200, 500, 1000])
    args = parser.parse_args()
    table = np.load(args.freq)
    spec = auto.Spectrum.load(args.spectrum, table.shape)
    table = normalised_inverse(table, args.alpha).double().numpy()
    print(f'{args.spectrum}: PC sampler, sigma {args.sigma_max:g} -> {args.sigma_min:g}, snr {args.snr:g}, '
          f'statistics filter alpha {args.alpha:g} (gain {table.min():.3f} .. {table.max():.3f}); mean KL per '
          'frequency to the data law (lower is better; in brackets: / vanilla)')
    print('| sampler | ' + ' | '.join(f'{n} it' for n in args.iterations) + ' |')
    print('|---|' + '---|' * len(args.iterations))
    rows = role_errors(spec, table, args.iterations, args.sigma_min, args.sigma_max, args.snr)
    base = rows['vanilla']
    for name, values in rows.items():
        cells = [f'{v:.2e}' + ('' if name == 'vanilla' else f' ({v / b:.2f})') for v, b in zip(values, base)]
        print(f'| {name} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
    main()
