"""Is there ill-conditioning for PDS to remove?  The learned score's curvature per frequency, against the Gaussian
model that the PDS filters (and automatic PDS) assume.

    python -m evaluation.curvature --config configs/mnist_cpu_pds.py \\
        --checkpoint checkpoints/ncsn_mnist_cpu/checkpoint.pth --data $PDS_DATA/mnist

A preconditioner speeds Langevin / reverse-diffusion sampling up only where the log-density is curved unevenly
across directions: a step size safe for the sharpest direction is then too small for the flattest.  PDS bets that
the directions are the 2-D DFT frequencies and that the curvature follows the data's power spectrum: for a
Gaussian with per-frequency variance P_k, -Hess log p_sigma is diagonal in the DFT with c_k = 1 / (P_k + sigma^2),
soft at the (high-power) low frequencies, sharp (1 / sigma^2) at the empty high ones.  Whether a *learned* score
behaves so is measured here, at the points the sampler must reach: x = x_0 + sigma z, x_0 test images.

Estimator.  For the score's Jacobian J at x (by central finite differences, two network evaluations per probe),
and a real white-noise probe v (V = DFT v, orthonormal), the DFT-diagonal of J is

    c_k = - E[Re(conj(V_k) (DFT J v)_k)] / E[|V_k|^2]

(the cross term between k and -k vanishes for white v), averaged over images, probes and noise draws.  For a
score that is linear and diagonal in the DFT (an exact Gaussian) it is exact, whatever the number of probes; for
any other score it is the DFT-diagonal of the mean Jacobian, with Monte-Carlo error.  Reported per noise level
and radial frequency band (cycles per pixel): the median of c_k sigma^2, learned and as the Gaussian model (from
``--mode stats``' spectrum) predicts.  c sigma^2 = 1 is the curvature of pure noise, the sharpest any data can
have (Tweedie: -Hess log p_sigma = (I - Cov[x_0 | x] / sigma^2) / sigma^2); a frequency filter can help only
where c_k differs between frequencies.  NFE: 2 x probes x images per level.
"""
import argparse
import sys

import numpy as np
import torch

BANDS = (0., .05, .15, .3, .5, .75)        # radial frequency |f| in cycles per pixel (|f| <= sqrt(2) / 2)


def curvature(score, x0, sigma, probes=4, generator=None, rel_eps=1e-2):
    """DFT-diagonal of -d score / dx at ``x0 + sigma z`` (``x0``: (B, C, H, W)), averaged over the B images and
    ``probes`` white-noise probes per image: (C, H, W) float64 on the unshifted DFT grid.  Finite differences of
    step ``rel_eps * sigma`` (central)."""
    x0 = torch.as_tensor(x0, dtype=torch.float32)
    x = x0 + sigma * torch.randn(x0.shape, generator=generator)
    s = torch.full((x0.shape[0],), float(sigma))
    h = rel_eps * float(sigma)
    num = np.zeros(x0.shape[1:], np.float64)
    den = np.zeros(x0.shape[1:], np.float64)
    with torch.inference_mode():
        for _ in range(probes):
            v = torch.randn(x0.shape, generator=generator)
            jv = (score(x + h * v, s).double() - score(x - h * v, s).double()) / (2 * h)
            V = torch.fft.fft2(v.double(), norm='ortho')
            JV = torch.fft.fft2(jv, norm='ortho')
            num += (V.conj() * JV).real.sum(0).numpy()
            den += V.abs().pow(2).sum(0).numpy()
    return -num / den


def radial_bands(shape, edges=BANDS):
    """Boolean masks (one per band [edges[i], edges[i+1])) of the unshifted DFT grid of ``shape`` (..., H, W)."""
    h, w = shape[-2:]
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing='ij')
    r = np.broadcast_to(np.sqrt(fx ** 2 + fy ** 2), shape)
    return [(r >= lo) & (r < hi) for lo, hi in zip(edges[:-1], edges[1:])]


def band_medians(c, sigma, masks):
    """Median of c sigma^2 in each band (nan for an empty band)."""
    return [float(np.median(c[m] * sigma ** 2)) if m.any() else float('nan') for m in masks]


def measure(score, x0, sigmas, power, probes=4, seed=0, log=None):
    """{'sigmas', 'learned' (L, C, H, W), 'gaussian' (L, C, H, W)}: the learned curvature at each level and the
    Gaussian model's 1 / (P + sigma^2) for the per-frequency variance ``power`` (C, H, W)."""
    g = torch.Generator().manual_seed(seed)
    learned, gaussian = [], []
    for sigma in sigmas:
        learned.append(curvature(score, x0, float(sigma), probes, g))
        gaussian.append(1. / (power + float(sigma) ** 2))
        if log:
            log(f'sigma {float(sigma):.4g}: done')
    return dict(sigmas=np.asarray(sigmas, np.float64), learned=np.stack(learned), gaussian=np.stack(gaussian))


def report(result, edges=BANDS):
    """Markdown: per level, per band, the median of c sigma^2, learned / Gaussian model; then the spread."""
    masks = radial_bands(result['learned'].shape[1:], edges)
    names = [f'{lo:g}-{hi:g}' for lo, hi in zip(edges[:-1], edges[1:])]
    lines = ['| sigma | ' + ' | '.join(f'|f| {n}' for n in names) + ' |', '|' + '---|' * (len(names) + 1)]
    for sigma, c, cg in zip(result['sigmas'], result['learned'], result['gaussian']):
        learned, model = band_medians(c, sigma, masks), band_medians(cg, sigma, masks)
        lines.append(f'| {sigma:.3g} | ' + ' | '.join(f'{a:.2f} / {b:.3f}' for a, b in zip(learned, model)) + ' |')
    s2 = result['sigmas'][:, None, None, None] ** 2
    lo, hi = np.percentile(result['learned'] * s2, [5, 95])
    glo, ghi = np.percentile(result['gaussian'] * s2, [5, 95])
    lines += ['', 'Median of c sigma^2 per radial band (cycles per pixel): learned / Gaussian model (1 / (P + sigma^2)). '
              '1 = the curvature of pure noise.',
              f'Over all frequencies and levels (5th-95th percentile): learned {lo:.2f} .. {hi:.2f}, '
              f'Gaussian model {glo:.3g} .. {ghi:.3g}.']
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True, help='the sampling config (model, data, pds.freq_path / spectrum_path)')
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--data', required=True, help='the dataset (as --mode stats takes it); its test split is used')
    p.add_argument('--split', default='test')
    p.add_argument('--num_images', type=int, default=32)
    p.add_argument('--probes', type=int, default=4, help='white-noise probes per image and level')
    p.add_argument('--levels', type=int, default=10, help='noise levels, geometric from sigma_max to sigma_min')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--save', default='', help='write the arrays (sigmas, learned, gaussian) to this .npz')
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)
    from configs import load_file
    from data.readers import DataError, open_dataset
    from models.checkpoint import load_score_model
    from models.score import geometric_sigmas
    from preconditioning import FilterError, auto
    from sampling import spectrum_path
    try:
        if args.num_images < 1 or args.probes < 1 or args.levels < 1:
            raise ValueError('--num_images, --probes and --levels must be at least 1')
        config = load_file(args.config)
        config.device = args.device
        shape = (config.data.num_channels, config.data.image_size, config.data.image_size)
        spec = auto.Spectrum.load(spectrum_path(config), shape)
        ds = open_dataset(args.data, config, split=args.split)
        if len(ds) < args.num_images:
            raise ValueError(f'{args.data!r} ({args.split}) holds {len(ds)} images; --num_images is {args.num_images}')
        x0 = torch.stack([ds[i] for i in range(args.num_images)])
        score = load_score_model(args.checkpoint, config, device=args.device)
        sigmas = geometric_sigmas(config.model.sigma_max, config.model.sigma_min, args.levels)
        result = measure(score, x0, sigmas, spec.P, args.probes, args.seed)
    except (DataError, FilterError, ValueError, FileNotFoundError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'{args.checkpoint}: {args.num_images} {args.split} images x {args.probes} probes per level, '
          f'{2 * args.num_images * args.probes * args.levels} NFE')
    print(report(result), end='')
    if args.save:               # with what made it: the checkpoint's sha256 and the command's settings
        import json
        from evaluation.results import portable
        from utils.atomic import atomic_write
        from utils.provenance import file_record
        meta = dict(checkpoint_sha256=file_record(args.checkpoint)['sha256'], config=portable(args.config),
                    data=portable(args.data), split=args.split,
                    num_images=args.num_images, probes=args.probes, seed=args.seed, device=args.device,
                    torch=torch.__version__)
        atomic_write(args.save, lambda tmp: np.savez(tmp, **result, meta=np.array(json.dumps(meta, sort_keys=True))))
        print(f'wrote {args.save}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
