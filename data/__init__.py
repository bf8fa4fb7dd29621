"""Dataset readers (no TensorFlow, no LMDB) and the PDS dataset statistics (supp. Eq. 21-22 inputs).

* ``open_dataset(path, config, split='train', skip_bad=False)``: folder / zip of images, .npy/.npz arrays,
  MNIST-style IDX files -> map-style Dataset of float32 (C, S, S) tensors after the config's preprocessing.
* ``make_loader(dataset, batch_size, num_workers=...)``: a DataLoader over it.
* ``compute_stats`` / ``run_stats`` / ``plot_stats``: the frequency (mean power spectrum) and space (second moment)
  statistics as fudan-zvg/PDS mask_gen_demo.py computes them, saved as ``<name>_{freq,space}.npy`` + JSON.
"""
from .readers import (BadItem, DataError, DataWarning, ImageDataset, collate_images, make_loader,  # noqa: F401
                      open_dataset)
from .stats import compute_stats, plot_stats, run_stats, stats_paths, subset_indices  # noqa: F401
