"""Training: the official objectives (:mod:`training.losses`), EMA (:mod:`training.ema`) and the resumable,
multi-process training loop (:func:`training.train.run_train`)."""
from training.train import run_train  # noqa: F401
