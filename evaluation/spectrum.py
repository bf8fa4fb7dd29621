"""The quality bar's spectrum check (issue 28): is the samples' radially averaged power spectrum within a tolerance
(default 10 %) of the held-out data's in every frequency band?

    python -m evaluation.spectrum runs/study/c32_quality/<sha8>/vanilla_1000it            # against held-out leaves
    python -m evaluation.spectrum <samples> [--ref deadleaves | deadleaves:<count> | <path>] [--tol 0.1]
                                  [--json out.json] [--png out.png]

Samples: a ``--mode sample`` / study workdir (its ``batches/batch_*.npz``, the uint8 images the sampler wrote), an
``.npz`` / ``.npy`` array (uint8 in [0, 255] or float in [0, 1]; (N, H, W, C), (N, C, H, W) or (N, H, W)), or a
folder or ``.zip`` of images.  Reference (``--ref``): by default ``deadleaves``, the held-out dead leaves of the
samples' size and channels: the test split (seed 1, ``test_count`` images, 10,000 by default) of the law in the
workdir's ``settings.json`` (``config.data.deadleaves``), or of ``data/deadleaves.py``'s default law for an array or
folder (the law every dead-leaves config uses); ``deadleaves:<count>`` takes the first ``count`` of them; any other
value is read as the samples are.  Samples and reference must have the same size and channels.

Spectra: ``data.deadleaves.radial_power`` for both (the mean over images and channels of |orthonormal DFT(x - mean
image)|^2 of values in [0, 1], averaged over the rings of integer radius k = 1 .. S/2).

Bands: half-octave bands of ring radius k from the lowest nonzero frequency (k = 1, f = 1/S cycles per pixel) to
Nyquist (k = S/2, f = 1/2).  Their lower edges are round(2^(j/2)), j = 0, 1, 2, ..., without repeats and below S/2
(1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, ...); a band holds the rings from its edge to the next edge minus one,
and the last band runs to k = S/2.  So 32 px has 7 bands (k = 1 | 2 | 3 | 4-5 | 6-7 | 8-10 | 11-16), 64 px 9
(... | 11-15 | 16-22 | 23-32) and 128 px 11 (... | 23-31 | 32-44 | 45-64).  A band's power is the mean of the ring
powers P(k) over its rings (each ring one weight); its ratio is samples / reference.  The check passes when
max |ratio - 1| over the bands is at most the tolerance.  The sampling noise of a ratio is largest in the lowest
band (a few large leaves dominate it): measured here, 500 images of another seed against the 10,000 test images of
32 px were within 1-5 % there and within 1.5 % in the other bands; 2,000 images within 2 %.

Also reported: the log-log slope of both spectra (``data.deadleaves.spectrum_slope``, f from 2/S to 0.25), and the
k = 0 term the rings leave out: the variance across images of each image's mean (per channel, averaged), samples
over reference (:func:`mean_colour_variance`).  A colour cast or a spread of brightness shows there and nowhere in
the bands; it is reported, not checked (the issue's bar is the ring spectrum; with a few large leaves dominating an
image's mean, its sampling noise is larger than the bands').
Output: a table on stdout, ``--json`` (per band: rings, frequencies, both powers, the ratio; the counts, slopes,
tolerance, pass; the ring spectra), ``--png`` (both spectra, log-log, and the ratio per ring and band).
Exit status: 0 pass, 1 fail, 2 bad input (one line).
"""
import argparse
import glob
import json
import math
import os
import sys

import numpy as np

from data.deadleaves import radial_power, spectrum_slope

TOLERANCE = 0.10            # issue 28's quality bar: within 10 % at every band


class SpectrumError(ValueError):
    """Bad input to the spectrum check (one line: what was wrong and what was expected)."""


# ---------------------------------------------------------------------------------------------------------------
# Bands and the comparison

def band_edges(size):
    """The lower edges of the half-octave bands of ring radius k at image side ``size``: round(2^(j/2)) for j = 0,
    1, ..., without repeats, below size / 2 (module docstring)."""
    half, edges, j = size // 2, [], 0
    while True:
        e = int(math.floor(2 ** (j / 2) + 0.5))
        if e >= half:
            return edges
        if not edges or e != edges[-1]:
            edges.append(e)
        j += 1


def bands(size):
    """[(k_lo, k_hi), ...]: the rings (inclusive) of each band at image side ``size``; they cover k = 1 .. S/2."""
    if size < 4:
        raise SpectrumError(f'images of side {size}: expected at least 4 pixels (two frequency rings)')
    edges = band_edges(size)
    return [(lo, hi - 1) for lo, hi in zip(edges, edges[1:])] + [(edges[-1], size // 2)]


def band_power(P, size):
    """The mean ring power over each band's rings (``P``: radial_power's, rings k = 1 .. S/2)."""
    P = np.asarray(P, dtype=np.float64)
    return np.array([P[lo - 1:hi].mean() for lo, hi in bands(size)])


def compare(samples, reference, tol=TOLERANCE):
    """The spectrum check of image arrays ``samples`` and ``reference`` ((N, S, S[, C]), uint8 or float in [0, 1]):
    a dict with the per-band numbers, the worst band, both slopes and ``passed`` (module docstring)."""
    samples, reference = np.asarray(samples), np.asarray(reference)
    for name, x in (('samples', samples), ('reference', reference)):
        if x.ndim not in (3, 4) or x.shape[1] != x.shape[2]:
            raise SpectrumError(f'{name} have shape {tuple(x.shape)}; expected square images (N, S, S[, C])')
        if len(x) < 2:
            raise SpectrumError(f'{name}: {len(x)} image; expected at least 2 (the mean image is subtracted)')
    if samples.shape[1:] != reference.shape[1:]:
        raise SpectrumError(f'samples are {_shape(samples)} and the reference is {_shape(reference)}; expected the '
                            'same size and channels')
    if not (tol > 0 and math.isfinite(tol)):
        raise SpectrumError(f'tolerance {tol}; expected a positive number (0.1: within 10 %)')
    size = samples.shape[1]
    f, Ps = radial_power(samples)
    _, Pr = radial_power(reference)
    bs, br = band_power(Ps, size), band_power(Pr, size)
    ratio = bs / br
    dev = np.abs(ratio - 1)
    rows = [dict(band=i + 1, k_lo=lo, k_hi=hi, rings=hi - lo + 1, f_lo=lo / size, f_hi=hi / size,
                 P_samples=float(bs[i]), P_reference=float(br[i]), ratio=float(ratio[i]), deviation=float(dev[i]),
                 passed=bool(dev[i] <= tol)) for i, (lo, hi) in enumerate(bands(size))]
    worst = int(np.argmax(dev))
    dc_s, dc_r = mean_colour_variance(samples), mean_colour_variance(reference)
    return dict(size=size, channels=1 if samples.ndim == 3 else int(samples.shape[3]), n_samples=len(samples),
                dc_samples=dc_s, dc_reference=dc_r, dc_ratio=dc_s / dc_r if dc_r > 0 else float('nan'),
                n_reference=len(reference), tolerance=float(tol), bands=rows, max_deviation=float(dev[worst]),
                worst_band=worst + 1, passed=bool(dev.max() <= tol), slope_band=[2 / size, 0.25],
                slope_samples=spectrum_slope(f, Ps), slope_reference=spectrum_slope(f, Pr),
                f=f.tolist(), P_samples=Ps.tolist(), P_reference=Pr.tolist())


def mean_colour_variance(images):
    """The variance across images of each image's mean value, averaged over channels (values in [0, 1]): the k = 0
    (DC) term that the ring spectrum leaves out (its rings start at k = 1, after the mean image is subtracted).  It is
    what a colour cast or a brightness spread shows as: every image's own mean colour too far from the others'."""
    arr = np.asarray(images)
    x = arr.astype(np.float64) / 255 if arr.dtype == np.uint8 else arr.astype(np.float64)
    means = x.mean(axis=(1, 2)) if x.ndim == 4 else x.mean(axis=(1, 2))[:, None]
    return float(means.var(axis=0, ddof=1).mean())


def _shape(x):
    c = 1 if x.ndim == 3 else x.shape[3]
    return f'{len(x)} images of {x.shape[1]} x {x.shape[2]} x {c}'


# ---------------------------------------------------------------------------------------------------------------
# Reading samples and the reference

def _nhwc(arr, layout, what):
    """(N, H, W[, C]) of an array stored NHWC, NCHW or NHW (``layout``); float arrays must be in [0, 1]."""
    arr = np.asarray(arr)
    if layout == 'NCHW':
        arr = arr.transpose(0, 2, 3, 1)
    if arr.dtype.kind == 'f':
        lo, hi = float(arr.min()), float(arr.max())
        if not (lo >= 0 and hi <= 1):
            raise SpectrumError(f'{what} holds floats in [{lo:g}, {hi:g}]; expected uint8 in [0, 255] or float in '
                                '[0, 1]')
    elif arr.dtype != np.uint8:
        raise SpectrumError(f'{what} has dtype {arr.dtype}; expected uint8 in [0, 255] or float in [0, 1]')
    return arr


def is_workdir(path):
    return os.path.isdir(os.path.join(path, 'batches'))


def workdir_data(path):
    """``config.data`` of a sample workdir's settings.json (a dict), or None."""
    try:
        with open(os.path.join(path, 'settings.json')) as f:
            return json.load(f)['config']['data']
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_images(path):
    """(images (N, S, S[, C]) uint8 or float, one-line description) of a sample workdir, an array file, or a folder
    or zip of images."""
    if not os.path.exists(path):
        raise SpectrumError(f"'{path}' does not exist; expected a sample workdir (batches/batch_*.npz), an .npz / "
                            '.npy array, or a folder or .zip of images')
    if is_workdir(path):
        files = sorted(glob.glob(os.path.join(glob.escape(path), 'batches', 'batch_*.npz')))
        if not files:
            raise SpectrumError(f"'{path}' has no finished batch (batches/batch_*.npz): nothing sampled yet")
        parts = []
        for name in files:
            try:
                with np.load(name, allow_pickle=False) as z:
                    parts.append(z['images'])
            except Exception as e:  # noqa: BLE001 -- a cut file: BadZipFile, EOFError, KeyError, ...
                raise SpectrumError(f"'{name}' cannot be read ({type(e).__name__}: {e})") from None
        if len({p.shape[1:] for p in parts}) > 1:
            raise SpectrumError(f"'{path}': its batches hold images of different shapes "
                                f'{sorted({p.shape[1:] for p in parts})}')
        return np.concatenate(parts), f'sample workdir {path} ({len(files)} batches)'
    low = path.lower()
    if os.path.isfile(path) and low.endswith(('.npz', '.npy')):
        from data.arrays import ArraySource
        from data.common import DataError
        try:
            src = ArraySource(path)
        except DataError as e:
            raise SpectrumError(str(e)) from None
        return _nhwc(src.arr, src.layout, src.what), src.what
    if os.path.isdir(path) or (os.path.isfile(path) and low.endswith('.zip')):
        from data.common import DataError, Unreadable
        from data.image_files import FolderSource, ZipSource
        try:
            src = FolderSource(path) if os.path.isdir(path) else ZipSource(path)
            images = []
            for i in range(len(src)):
                img = src.load(i)
                img = img.convert('L' if img.mode in ('L', 'LA', 'I', 'I;16', 'F', '1') else 'RGB')
                images.append(np.asarray(img))
        except (DataError, Unreadable) as e:
            raise SpectrumError(f"'{path}': {e}") from None
        if len({im.shape for im in images}) > 1:
            raise SpectrumError(f"'{path}' holds images of different shapes {sorted({im.shape for im in images})}")
        return np.stack(images), src.describe() + f' ({path})'
    raise SpectrumError(f"'{path}': expected a sample workdir (batches/batch_*.npz), an .npz / .npy array, or a "
                        'folder or .zip of images')


def is_deadleaves_spec(spec):
    return str(spec).lower().split(':')[0] in ('deadleaves', 'dead_leaves') and not os.path.exists(spec)


def deadleaves_reference(spec, size, channels, data=None):
    """(images, description) of the held-out dead leaves ``spec`` ('deadleaves' or 'deadleaves:<count>') at
    ``size`` x ``size`` x ``channels``: the test split of the law ``data`` (a config's ``data`` dict) describes,
    else of the default law (``data.deadleaves.DeadLeaves``)."""
    import ml_collections
    from data.arrays import DeadLeavesSource
    from data.common import DataError
    data = dict(data or {})
    if data and str(data.get('dataset', '')).lower() not in ('deadleaves', 'dead_leaves'):
        raise SpectrumError(f"the samples' config has dataset {data.get('dataset')!r}, not dead leaves; give the "
                            'held-out images of their dataset with --ref')
    if data and (int(data.get('image_size', size)) != size or int(data.get('num_channels', channels)) != channels):
        raise SpectrumError(f"the samples are {size} x {size} x {channels} but their config says "
                            f"{data.get('image_size')} x {data.get('image_size')} x {data.get('num_channels')}")
    config = ml_collections.ConfigDict(dict(data=dict(dataset='DeadLeaves', image_size=size, num_channels=channels,
                                                      deadleaves=dict(data.get('deadleaves') or {}))))
    try:
        src = DeadLeavesSource(spec, config, 'test')
    except DataError as e:
        raise SpectrumError(str(e)) from None
    law = 'the law of the samples\' config' if data else 'the default law'
    return src.arr, f'held-out {src.describe()} ({law})'


def load(samples_path, ref='deadleaves'):
    """(samples, reference, their descriptions) for :func:`compare`."""
    samples, what = read_images(samples_path)
    if samples.ndim not in (3, 4) or samples.shape[1] != samples.shape[2]:
        raise SpectrumError(f"'{samples_path}' holds images of shape {tuple(samples.shape[1:])}; expected square ones")
    if is_deadleaves_spec(ref):
        size, channels = samples.shape[1], 1 if samples.ndim == 3 else samples.shape[3]
        data = workdir_data(samples_path) if is_workdir(samples_path) else None
        reference, ref_what = deadleaves_reference(ref, size, channels, data)
    else:
        reference, ref_what = read_images(ref)
    return samples, reference, what, ref_what


# ---------------------------------------------------------------------------------------------------------------
# Reports

def table(result, samples='samples', reference='reference'):
    """The check as a one-screen text table."""
    r = result
    lines = [f"samples:   {samples}: {r['n_samples']} images, {r['size']} x {r['size']} x {r['channels']}",
             f"reference: {reference}: {r['n_reference']} images",
             '',
             'band  rings   f (cycles/px)   P samples    P reference  ratio   |ratio-1|',
             ]
    for b in r['bands']:
        rings = f"{b['k_lo']}" if b['k_lo'] == b['k_hi'] else f"{b['k_lo']}-{b['k_hi']}"
        lines.append(f"{b['band']:4d}  {rings:6s}  {b['f_lo']:.3f}-{b['f_hi']:.3f}     {b['P_samples']:.4e}   "
                     f"{b['P_reference']:.4e}   {b['ratio']:.3f}   {b['deviation']:.3f}  "
                     f"{'ok' if b['passed'] else 'FAIL'}")
    lo, hi = r['slope_band']
    lines += ['',
              f"spectrum slope (log-log, f {lo:.3g}-{hi:g}): samples {r['slope_samples']:.2f}, reference "
              f"{r['slope_reference']:.2f}",
              f"mean colour (k = 0, not in the check): variance of each image's mean over the images, samples "
              f"{r['dc_samples']:.3e}, reference {r['dc_reference']:.3e}, ratio {r['dc_ratio']:.2f}",
              f"max |ratio - 1| = {r['max_deviation']:.3f} (band {r['worst_band']}); tolerance {r['tolerance']:g}: "
              f"{'PASS' if r['passed'] else 'FAIL'} ({sum(not b['passed'] for b in r['bands'])} of "
              f"{len(r['bands'])} bands outside)"]
    return '\n'.join(lines) + '\n'


def plot(result, out_png, title=''):
    """Both spectra (log-log) and the ratio samples / reference per ring, with the band ratios and the tolerance."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    r = result
    f, Ps, Pr = np.array(r['f']), np.array(r['P_samples']), np.array(r['P_reference'])
    fig, (a, b) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw=dict(height_ratios=(2, 1)))
    a.loglog(f, Pr, 'k-', label=f"reference ({r['n_reference']}; slope {r['slope_reference']:.2f})")
    a.loglog(f, Ps, 'C1--', label=f"samples ({r['n_samples']}; slope {r['slope_samples']:.2f})")
    a.set_ylabel('radial power')
    a.legend(fontsize=8)
    a.set_title(title or f"spectrum check, {r['size']} px: {'PASS' if r['passed'] else 'FAIL'}", fontsize=9)
    b.semilogx(f, Ps / Pr, '.', color='0.6', ms=3, label='per ring')
    size = r['size']
    for band in r['bands']:                 # each band across its rings' half-ring margins
        b.plot([(band['k_lo'] - .5) / size, (band['k_hi'] + .5) / size], [band['ratio']] * 2, '-', lw=2,
               color='C2' if band['passed'] else 'C3')
    tol = r['tolerance']
    b.axhspan(1 - tol, 1 + tol, color='C2', alpha=0.12, label=f'±{tol:g}')
    b.axhline(1, color='k', lw=0.6)
    b.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    b.set_xlabel('frequency (cycles / pixel)')
    b.set_ylabel('samples / reference')
    b.set_title('bars: band ratios (green: within the tolerance, red: outside)', fontsize=8)
    b.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m evaluation.spectrum', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('samples', help='a sample workdir, an .npz / .npy array, or a folder or .zip of images')
    p.add_argument('--ref', default='deadleaves', help="'deadleaves' (default: the held-out test split of the "
                   "samples' law), 'deadleaves:<count>', or images read as the samples are")
    p.add_argument('--tol', type=float, default=TOLERANCE, help='the largest |ratio - 1| of a band (default 0.1)')
    p.add_argument('--json', default='', help='write the numbers here')
    p.add_argument('--png', default='', help='draw both spectra and the ratio here')
    args = p.parse_args(argv)
    try:
        samples, reference, what, ref_what = load(args.samples, args.ref)
        result = compare(samples, reference, args.tol)
    except SpectrumError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    result.update(samples=args.samples, samples_source=what, reference=args.ref, reference_source=ref_what,
                  command='python -m evaluation.spectrum ' + ' '.join(sys.argv[1:] if argv is None else argv))
    print(table(result, what, ref_what), end='')
    if args.json:
        from utils.atomic import atomic_write_text
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        atomic_write_text(args.json, json.dumps(result, indent=1))
    if args.png:
        plot(result, args.png)
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
