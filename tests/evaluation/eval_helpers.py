"""Helpers of the evaluation tests: a tiny random-weight NCSN checkpoint (MNIST config), small fake datasets,
and the tiny models / statistics / references the table scripts need.  Everything uses the stand-in features."""
import os
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

TINY = ['--config.model.nf=4']
# --set values of the table scripts for tiny models: 8 x 8 images, nf 4, one NCSN++ level without attention
TINY_SIZE = 8
TINY_SETS = ['model.nf=4', f'data.image_size={TINY_SIZE}', 'model.ch_mult=(1,)', 'model.num_res_blocks=1',
             'model.attn_resolutions=()']


# Subprocesses run single-threaded: tiny models gain nothing from threads, and OpenMP / OpenBLAS threads slow down
# by 100x when another process shares the two cores.  (torchrun sets OMP_NUM_THREADS=1 itself.)
ONE_THREAD = {'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}


def run_main(*args, env=None, timeout=600):
    cmd = [sys.executable, os.path.join(ROOT, 'main.py'), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **ONE_THREAD, **(env or {})))


def mnist_config(**sampling):
    from configs import mnist_pds
    config = mnist_pds.get_config()
    config.model.nf = 4
    for k, v in sampling.items():
        config.sampling[k] = v
    return config


def make_tiny_checkpoint(path):
    """A random-weight NCSN (nf 4) in the official ncsn format, for configs/mnist_pds.py + --config.model.nf=4."""
    import models
    from models.checkpoint import save_checkpoint
    config = mnist_config()
    torch.manual_seed(0)
    save_checkpoint(path, models.create_model(config), config)
    return path


def random_images(n, size, channels, seed=0, low=0, high=256):
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return rng.integers(low, high, size=shape, dtype=np.uint8)


def dataset_config(image_size=28, num_channels=1):
    from configs.defaults import ncsn
    config = ncsn()
    config.data.dataset, config.data.image_size, config.data.num_channels = 'TEST', image_size, num_channels
    return config


def make_table_inputs(root, sets=TINY_SETS):
    """Tiny random-weight checkpoints for every run of scripts/tables.py (official folder layout), fake PDS
    statistics filters and fake reference datasets, under ``root``.  Returns the --ref arguments."""
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    import tables
    import models
    from models.checkpoint import save_checkpoint
    parsed = tables.parse_sets(sets)
    done = set()
    for run in tables.RUNS.values():
        if run.checkpoint in done:
            continue
        done.add(run.checkpoint)
        config = tables.build_config(run, True, parsed)
        if config.model.family == 'ncsnpp':
            config.model.init_scale = 1.     # the official 0 gives denormal activations: slow on CPU
        torch.manual_seed(len(done))
        ckpt_id = config.sampling.get('ckpt_id')
        name = f'checkpoint_{ckpt_id}.pth' if ckpt_id else 'checkpoint.pth'
        save_checkpoint(os.path.join(root, 'checkpoints', run.checkpoint, name), models.create_model(config), config)
    stats = os.path.join(root, 'stats')
    os.makedirs(stats, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in ('cifar10_freq', 'bedroom_freq', 'church_freq', 'ffhq_freq', 'ffhq_space'):
        np.save(os.path.join(stats, f'{name}.npy'),
                rng.uniform(0.5, 3., size=(3, TINY_SIZE, TINY_SIZE)).astype(np.float32))
    refs = []
    data = os.path.join(root, 'data')
    os.makedirs(data, exist_ok=True)
    for i, name in enumerate(tables.REFERENCES):
        images = random_images(48, 16, 1 if name.startswith('mnist') else 3, seed=10 + i)
        if tables.REF_SPLIT.get(name, 'train') != 'train':      # a split of an IDX folder, as MNIST's test set
            path = os.path.join(data, name)
            write_idx_images(os.path.join(path, f'{IDX_PREFIX[tables.REF_SPLIT[name]]}-images-idx3-ubyte'), images)
        else:
            path = os.path.join(data, f'{name}.npy')
            np.save(path, images)
        refs += ['--ref', f'{name}=data:{path}']
    return refs


IDX_PREFIX = {'train': 'train', 'test': 't10k'}


def write_idx_images(path, images):
    """An MNIST IDX images file (magic 0x00000803, big-endian int32 sizes, uint8 pixels) of (N, H, W) uint8."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(np.array([0x803, *images.shape], dtype='>i4').tobytes())
        f.write(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
