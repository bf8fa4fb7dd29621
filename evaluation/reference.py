"""Reference statistics for Clean-FID: clean-fid's precomputed ones by name, a local statistics file, or custom
statistics made once from a dataset and cached.

A reference is named by a string (``--fid_ref``):

=================================  ==============================================================================
``cleanfid:<name>/<split>/<res>``  clean-fid's precomputed Inception statistics, e.g. ``cleanfid:cifar10/train/32``,
                                   ``cleanfid:lsun_church/train/256``, ``cleanfid:ffhq/trainval70k/1024``: the file
                                   ``<name>_<mode>_<split>_<res>.npz`` from the cache folder or clean-fid's own
                                   ``stats/`` folder, else downloaded by URL the way clean-fid does (into the cache).
``<file>.npz``                     a local statistics file holding ``mu`` and ``sigma`` (clean-fid's downloaded files
                                   are such files; so are ours).  KID uses its ``feats`` (ours) or a sibling
                                   ``<stem>_kid.npz`` (clean-fid's layout) when there is one.
``data:<path>`` or ``<path>``      custom statistics of a dataset read by ``data.readers.open_dataset(path, config,
                                   split)`` (MNIST/Fashion-MNIST IDX, folders or zips of images, .npy/.npz arrays,
                                   ``deadleaves``), made once and cached as ``<cache>/<name>_<split>_<mode>_<res>
                                   [_<features>][_n<N>s<seed>].npz`` (mu, sigma, feats) with ``.json`` provenance
                                   beside it (a cache file that cannot be read is recomputed).  The split defaults to
                                   ``test`` where the dataset has one (MNIST-style IDX folders, dead leaves: the
                                   10,000 test images every result of docs/results.md uses), else ``train``.
(nothing)                          the precomputed statistics of the config's dataset and resolution when clean-fid has
                                   them (:data:`CLEANFID_PRECOMPUTED`); otherwise an error asks for a dataset.
=================================  ==============================================================================

The cache folder is ``--fid_cache``, else ``$PDS_FID_CACHE``, else ``~/.cache/pds/fid_stats``.
"""
import datetime
import hashlib
import json
import os
import sys
import urllib.error
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from evaluation.features import EvalError, _download, _need_cleanfid, cleanfid_version
from evaluation.metrics import dataset_features, features_in_parts, remove_parts, statistics
from utils.atomic import atomic_write, atomic_write_text
from utils.lock import one_at_a_time

CACHE_ENV = 'PDS_FID_CACHE'
STATS_FORMAT = 'PDS Clean-FID reference statistics v1'
CLEANFID_URL = 'https://www.cs.cmu.edu/~clean-fid/stats/'     # cleanfid.features.get_reference_statistics

# (config.data.dataset, config.data.category, config.data.image_size) -> clean-fid (name, split, res)
CLEANFID_PRECOMPUTED = {
    ('cifar10', '', 32): ('cifar10', 'train', 32),
    ('lsun', 'church_outdoor', 256): ('lsun_church', 'train', 256),
    ('ffhq', '', 1024): ('ffhq', 'trainval70k', 1024),
    ('ffhq', '', 256): ('ffhq', 'trainval70k', 256),
}


@dataclass
class Reference:
    """Statistics to compare samples with: ``mu`` (D,), ``sigma`` (D, D), ``feats`` (N, D) for KID or None."""
    mu: np.ndarray
    sigma: np.ndarray
    feats: Optional[np.ndarray]
    info: dict = field(default_factory=dict)

    @property
    def label(self):
        return self.info.get('label', '')


def default_cache_dir():
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'pds', 'fid_stats')


def data_key(config):
    """(dataset, category, resolution) of ``config.data``, lower-cased."""
    d = config.data
    return (str(d.dataset).lower(), str(d.get('category', '') or '').lower(), int(d.image_size))


_data_key = data_key
# Inception on a 2-core CPU (benchmarks/inception_cpu.py: 5.5-6.6 images/s): the estimate announced before a reference
# is computed there (a GPU is far faster; the per-batch progress lines then give the real figure)
CPU_INCEPTION_IMAGES_PER_S = 6.


def default_split(path, config):
    """The split of the dataset at ``path`` that a reference uses when none is named: 'test' where the dataset has one
    (an MNIST-style IDX folder holding t10k files, dead leaves: the 10,000 test images, the reference of every result
    in docs/results.md), else 'train' (the only split of a folder, zip or array of images)."""
    from data.readers import DataError, find_idx
    expanded = os.path.expandvars(os.path.expanduser(str(path)))
    if expanded.lower().split(':')[0] in ('deadleaves', 'dead_leaves') and not os.path.exists(expanded):
        return 'test'
    if os.path.isdir(expanded):
        try:
            find_idx(expanded, 'test', 'images', str(config.data.get('dataset', '')))
            return 'test'
        except DataError:
            return 'train'
    return 'train'


def reference_data(spec, config):
    """``(data key, channels, {'dataset': name, ...})`` of the images the reference ``spec`` describes (see
    :func:`data_key`), for the check that samples and reference are of one dataset; None when unknown (a statistics
    file without provenance)."""
    spec = spec or default_reference(config)
    if spec.startswith('cleanfid:'):
        name, _, res = _parse_cleanfid(spec)
        for key, (cname, _, cres) in CLEANFID_PRECOMPUTED.items():
            if cname == name and cres == res:
                return key, 3, {'dataset': key[0]}
        return (name, '', res), 3, {'dataset': name}
    if spec.startswith('data:') or not is_stats_file(spec):        # read with this config
        d = config.data
        return data_key(config), int(d.num_channels), {'dataset': str(d.dataset)}
    try:
        with open(spec[:-len('.npz')] + '.json') as f:
            data = json.load(f)['key']['data']
        return ((str(data['dataset']).lower(), str(data.get('category', '') or '').lower(), int(data['image_size'])),
                int(data['num_channels']), data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def default_reference(config):
    """``cleanfid:<name>/<split>/<res>`` for the config's dataset and resolution, or an EvalError."""
    key = _data_key(config)
    if key in CLEANFID_PRECOMPUTED:
        name, split, res = CLEANFID_PRECOMPUTED[key]
        return f'cleanfid:{name}/{split}/{res}'
    what = f'{config.data.dataset}' + (f' ({config.data.category})' if config.data.get('category') else '')
    raise EvalError(f'clean-fid has no precomputed statistics for {what} at {key[2]} x {key[2]}; give the real images '
                    'with --fid_ref=data:<path> (or --data=<path>): an MNIST IDX folder, a folder or .zip of images, '
                    'or a .npy/.npz array; their statistics are computed once and cached')


# ---------------------------------------------------------------------------------------------------------------
# clean-fid's precomputed statistics
# ---------------------------------------------------------------------------------------------------------------

def cleanfid_stats_dir():
    _need_cleanfid()
    import cleanfid
    return os.path.join(os.path.dirname(cleanfid.__file__), 'stats')


def _parse_cleanfid(spec):
    body = spec[len('cleanfid:'):]
    parts = body.split('/')
    if len(parts) != 3 or not parts[2].isdigit():
        raise EvalError(f'bad reference {spec!r}; expected cleanfid:<name>/<split>/<resolution>, e.g. '
                        'cleanfid:cifar10/train/32')
    return parts[0].lower(), parts[1].lower(), int(parts[2])


def cleanfid_reference(spec, mode, cache_dir, features_info):
    """clean-fid's precomputed statistics named by ``spec`` (see the module docstring)."""
    if features_info.get('kind') != 'inception':
        raise EvalError(f'{spec} holds Inception statistics; the {features_info.get("kind")} feature extractor needs '
                        'statistics of its own: give the real images with --fid_ref=data:<path>')
    name, split, res = _parse_cleanfid(spec)
    fname = f'{name}_{mode}_{split}_{res}.npz'.lower()
    places = [os.path.join(cache_dir, fname), os.path.join(cleanfid_stats_dir(), fname)]
    path = next((p for p in places if os.path.isfile(p)), None)
    if path is None:
        url = CLEANFID_URL + fname
        try:
            path = _download(url, places[0])
        except (OSError, urllib.error.URLError, ValueError) as e:
            raise EvalError(f'clean-fid statistics {fname} are not on this machine and downloading them from {url} '
                            f'failed ({type(e).__name__}: {e}). Get that file elsewhere and pass --fid_ref=<its path>, '
                            f'or put it in {cache_dir}') from None
    kid_name = fname[:-len('.npz')] + '_kid.npz'
    kid_places = [os.path.join(os.path.dirname(q), kid_name) for q in places]
    kid_path = next((p for p in kid_places if os.path.isfile(p)), None)
    stats = _load_npz(path, 'clean-fid statistics', 'delete that file to download it again')
    feats = _load_npz(kid_path, 'clean-fid KID features', 'delete that file')['feats'] if kid_path else None
    info = dict(kind='cleanfid', label=spec, name=name, split=split, resolution=res, file=path, kid_file=kid_path)
    return Reference(stats['mu'], stats['sigma'], feats, info)


def _load_npz(path, what, fix):
    """The arrays of an .npz, or one EvalError naming the file (a cut download, a damaged copy)."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 -- numpy raises BadZipFile, EOFError, ValueError, ... for a cut file
        raise EvalError(f'{what} {path} cannot be read ({type(e).__name__}: {e}); {fix}') from None


# ---------------------------------------------------------------------------------------------------------------
# A local statistics file
# ---------------------------------------------------------------------------------------------------------------

def is_stats_file(path):
    if not (os.path.isfile(path) and path.lower().endswith('.npz')):
        return False
    try:
        with np.load(path) as z:
            return 'mu' in z.files and 'sigma' in z.files
    except Exception:
        return False


def file_reference(path):
    """Statistics from a local .npz with ``mu``, ``sigma`` (and ``feats``, or a sibling ``<stem>_kid.npz``)."""
    with np.load(path) as z:
        mu, sigma = z['mu'], z['sigma']
        feats = z['feats'] if 'feats' in z.files else None
    kid_path = path[:-len('.npz')] + '_kid.npz'
    if feats is None and os.path.isfile(kid_path):
        feats = np.load(kid_path)['feats']
    info = dict(kind='file', label=os.path.basename(path), file=os.path.abspath(path))
    meta = path[:-len('.npz')] + '.json'
    if os.path.isfile(meta):
        with open(meta) as f:
            info['provenance'] = json.load(f)
    return Reference(mu, sigma, feats, info)


# ---------------------------------------------------------------------------------------------------------------
# Custom statistics of a dataset, cached
# ---------------------------------------------------------------------------------------------------------------

def _default_name(path):
    base = os.path.basename(os.path.normpath(os.path.expandvars(os.path.expanduser(str(path)))))
    for ext in ('.gz', '.zip', '.npz', '.npy'):
        if base.lower().endswith(ext):
            base = base[:-len(ext)]
    return ''.join(c if c.isalnum() or c in '-_' else '_' for c in base).lower() or 'data'


def custom_stem(name, split, mode, res, features_kind, num_images=None, seed=0):
    stem = f'{name}_{split}_{mode}_{res}'
    if features_kind != 'inception':
        stem += f'_{features_kind}'
    if num_images:
        stem += f'_n{num_images}s{seed}'
    return stem


def dataset_reference(path, config, model, features_info, mode='clean', cache_dir=None, split='train', name=None,
                      num_images=None, seed=0, batch_size=64, num_workers=0, device='cpu', progress=True,
                      skip_bad=False):
    """Custom statistics of the dataset at ``path``, read as ``config`` says (``open_dataset``, uncentred, at
    ``config.data.image_size``), computed once and cached with their provenance.  ``num_images``: at most that many
    images, a seeded random subset (``data.stats.subset_indices``) when the dataset holds more.  ``skip_bad``:
    unreadable images are left out with a warning (else the reader's DataError, naming the file).

    The features are computed in parts kept on disk (:data:`REF_PART_BATCHES`), so a killed run resumes where it
    stopped, and by one process at a time: a second process asking for the same statistics (two studies started
    together) waits for the first and reads its cache instead of computing them again."""
    cache_dir = cache_dir or default_cache_dir()
    split = split or default_split(path, config)
    res = int(config.data.image_size)
    name = name or _default_name(path)
    stem = custom_stem(name, split, mode, res, features_info['kind'], num_images, seed)
    npz, meta = os.path.join(cache_dir, stem + '.npz'), os.path.join(cache_dir, stem + '.json')
    d = config.data
    expanded = os.path.expandvars(os.path.expanduser(str(path)))
    generated = expanded.lower().split(':')[0] in ('deadleaves', 'dead_leaves') and not os.path.exists(expanded)
    want = dict(path=expanded if generated else os.path.abspath(expanded), split=split,
                num_images=num_images, seed=seed if num_images else None, mode=mode, resolution=res,
                features=features_info['kind'],
                data=dict(dataset=str(d.dataset), category=str(d.get('category', '') or ''), image_size=res,
                          num_channels=int(d.num_channels), crop=str(d.get('crop', 'none'))))
    if generated:            # a generated set is its law (config.data.deadleaves): a cache of another is not it
        law = d.get('deadleaves', None)
        want['data']['deadleaves'] = {k: law[k] for k in sorted(law)} if law else {}
    ref = _cached_reference(npz, meta, want, path, split, progress)
    if ref is not None:
        return ref
    # one process at a time: a second one asking for the same statistics waits, then reads the first one's cache
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise EvalError(f'cannot create the reference cache folder {cache_dir!r} ({e.strerror or e}); expected a '
                        'writable folder (--fid_cache or $PDS_FID_CACHE)') from None
    with one_at_a_time(os.path.join(cache_dir, stem + '.lock'), f'the reference features of data:{path}',
                       say=lambda line: print(line, file=sys.stderr, flush=True)):
        ref = _cached_reference(npz, meta, want, path, split, progress)
        if ref is not None:
            return ref
        return _compute_reference(path, config, model, features_info, mode, npz, meta, stem, want, name, split,
                                  num_images, seed, batch_size, num_workers, device, progress, skip_bad)


def _cached_reference(npz, meta, want, path, split, progress):
    """The cached statistics of ``want`` (a Reference), None when there are none or they cannot be read (they are
    then recomputed, never trusted); EvalError when the cache file of that name was made with other settings."""
    if not (os.path.isfile(npz) and os.path.isfile(meta)):
        return None
    try:
        with open(meta) as f:
            old = json.load(f)
        ref = file_reference(npz)
        old_key = old.get('key', {})
    except Exception as e:  # noqa: BLE001 -- a cut or damaged cache file is recomputed, never trusted
        print(f'note: cached reference statistics {os.path.abspath(npz)} cannot be read ({type(e).__name__}: '
              f'{e}); recomputing them', file=sys.stderr, flush=True)
        return None
    changed = [k for k in want if old_key.get(k) != want[k]]
    if changed:
        raise EvalError(f'cached reference statistics {npz} were made with other settings '
                        f'({", ".join(changed)} differ: {[old_key.get(k) for k in changed]} vs '
                        f'{[want[k] for k in changed]}); delete them, or use another --fid_cache folder')
    ref.info.update(kind='dataset', label=f'data:{path}', cached=True, split=split,
                    count=int(old.get('count', len(ref.feats) if ref.feats is not None else 0)))
    if progress:
        print(f'reference data:{path}: the {split} split, cached statistics of {ref.info["count"]} images '
              f'({os.path.abspath(npz)})', flush=True)
    return ref


# A reference's features are computed in parts of REF_PART_BATCHES feature batches (1,024 images at batch 64, about
# five minutes of Inception on 2 CPU cores), each kept on disk until the whole set is written: a killed run (60,000
# MNIST images are about 3 h there) resumes at the part where it stopped.  Parts start on batch boundaries, so every
# batch is the one a single pass would make and the features are the same.
REF_PART_BATCHES = 16


def _part_digest(want, features_info, batch_size, indices):
    """What a saved part must have been made with: the cache key, the extractor (its file's sha256), the batch size
    and the image indices."""
    h = hashlib.sha256(json.dumps(dict(want, extractor=features_info, batch_size=int(batch_size)),
                                  sort_keys=True, default=str).encode('utf-8'))
    h.update(np.asarray(indices, np.int64).tobytes())
    return h.hexdigest()


def _compute_reference(path, config, model, features_info, mode, npz, meta, stem, want, name, split, num_images,
                       seed, batch_size, num_workers, device, progress, skip_bad):
    from data.readers import open_dataset
    from data.stats import subset_indices
    ds = open_dataset(path, config, split=split, centered=False, skip_bad=skip_bad)
    indices = subset_indices(len(ds), min(num_images, len(ds)) if num_images else None, seed)   # at most N
    if progress:             # the plan, before what can take hours (60,000 MNIST images: about 3 h on 2 CPU cores)
        kind = features_info['kind']
        guess = ''
        if kind == 'inception' and torch.device(device).type == 'cpu':
            from utils.progress import duration
            guess = (f'; roughly {duration(len(indices) / CPU_INCEPTION_IMAGES_PER_S)} on a 2-core CPU (about '
                     f'{CPU_INCEPTION_IMAGES_PER_S:g} images/s)')
        print(f'reference data:{path}: the {split} split, {len(indices)} images; computing their {kind} features once '
              f'(cached in {os.path.abspath(os.path.dirname(npz))}){guess}', flush=True)
    start = datetime.datetime.now()
    indices = list(indices)
    digest = _part_digest(want, features_info, batch_size, indices)
    size = int(batch_size) * REF_PART_BATCHES

    def compute(first, last):
        return dataset_features(ds, model, mode, indices[first:last], batch_size=batch_size, num_workers=num_workers,
                                device=device, progress=progress, empty_ok=True,
                                description=f'reference {stem}: images {first + 1}-{last} of {len(indices)}')

    parts = [p for p in features_in_parts(len(indices), size, compute, npz, digest) if len(p)]
    if not parts:
        raise EvalError('no readable image in the reference dataset')
    feats = np.concatenate(parts)
    mu, sigma = statistics(feats)
    atomic_write(npz, lambda tmp: np.savez(tmp, mu=mu, sigma=sigma, feats=feats.astype(np.float32)))
    provenance = dict(format=STATS_FORMAT, key=want, name=name, dataset_path=str(path), count=len(feats),
                      skipped=len(indices) - len(feats),
                      dataset_size=len(ds), preprocessing=ds.describe(), feature_extractor=features_info,
                      feature_dims=int(feats.shape[1]), clean_fid=cleanfid_version(), torch=torch.__version__,
                      created=start.isoformat(timespec='seconds'),
                      seconds=round((datetime.datetime.now() - start).total_seconds(), 1))
    atomic_write_text(meta, json.dumps(provenance, indent=1, sort_keys=True))
    remove_parts(npz)
    return Reference(mu, sigma, feats, dict(kind='dataset', label=f'data:{path}', file=os.path.abspath(npz),
                                            provenance=provenance, cached=False, split=split, count=len(feats)))


def resolve_reference(spec, config, model, features_info, mode='clean', cache_dir=None, split=None,
                      num_images=None, seed=0, batch_size=64, num_workers=0, device='cpu', progress=True,
                      skip_bad=False):
    """The :class:`Reference` named by ``spec`` (module docstring), ``None`` meaning the config's default; ``split``
    None: :func:`default_split` of a dataset."""
    cache_dir = cache_dir or default_cache_dir()
    spec = spec or default_reference(config)
    if spec.startswith('cleanfid:'):
        return cleanfid_reference(spec, mode, cache_dir, features_info)
    if spec.startswith('data:'):
        path = spec[len('data:'):]
    elif is_stats_file(spec):
        return file_reference(spec)
    else:
        path = spec
    split = split or default_split(path, config)
    return dataset_reference(path, config, model, features_info, mode, cache_dir, split, num_images=num_images,
                             seed=seed, batch_size=batch_size, num_workers=num_workers, device=device,
                             progress=progress, skip_bad=skip_bad)
