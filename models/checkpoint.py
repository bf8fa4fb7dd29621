"""Official checkpoint formats: detect, load (with EMA exactly as the official restore), save.

=========  ==============================================================  ===========================
format     layout (``torch.save`` of ...)                                   EMA
=========  ==============================================================  ===========================
ncsn       ``[state_dict, optimizer]``  (ermongroup/ncsn)                   none
ncsnv2     ``[state_dict, optimizer, epoch, step(, ema_shadow)]``           dict name -> tensor, no ``module.``
score_sde  ``dict(model, ema, optimizer, step)``  (score_sde / PDS)         ``ema['shadow_params']``: list over the
                                                                            trainable params, in order (no Fourier W)
=========  ==============================================================  ===========================

Model keys carry DataParallel's ``module.`` prefix; it is stripped (keys without it load too).
Every mismatch raises :class:`CheckpointError` naming the detected format and the config used.
"""
import os

import torch

import models
from models.score import ScoreModel
from utils.atomic import atomic_write

FORMATS = ('ncsn', 'ncsnv2', 'score_sde')
# Which checkpoint formats can hold which model family (NCSNv2's ncsn_original.yml saves an NCSN in ncsnv2 format).
_FAMILY_FORMATS = {'ncsn': ('ncsn', 'ncsnv2'), 'ncsnv2': ('ncsnv2',), 'ncsnpp': ('score_sde',)}
# Official file names inside a run folder, most specific first.
_FOLDER_CANDIDATES = ('checkpoint.pth', 'checkpoints/checkpoint.pth', 'checkpoints-meta/checkpoint.pth')


class CheckpointError(ValueError):
    """A checkpoint that does not fit the config; the message says what was expected."""


def detect_format(obj):
    """'ncsn' | 'ncsnv2' | 'score_sde' from the container's shape; CheckpointError otherwise."""
    if isinstance(obj, dict) and 'model' in obj and 'ema' in obj:
        return 'score_sde'
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], dict):
        if len(obj) == 2:
            return 'ncsn'
        if len(obj) in (4, 5) and isinstance(obj[2], int) and isinstance(obj[3], int):
            return 'ncsnv2'
    what = f'dict with keys {sorted(obj)[:8]}' if isinstance(obj, dict) else f'{type(obj).__name__} of length {len(obj)}' \
        if isinstance(obj, (list, tuple)) else type(obj).__name__
    raise CheckpointError(
        f'unrecognised checkpoint layout: {what}; expected an official NCSN [state_dict, optimizer], '
        f'NCSNv2 [state_dict, optimizer, epoch, step, ema] or score_sde dict(model, ema, optimizer, step)')


def resolve_path(path, ckpt_id=None):
    """A checkpoint file, or an official run folder: ``checkpoint_<ckpt_id>.pth`` if asked for (NCSNv2's
    ``sampling.ckpt_id``), else ``checkpoint.pth``, ``checkpoints/checkpoint.pth``, else the highest
    ``checkpoint_<k>.pth`` inside it or inside its ``checkpoints/``."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise CheckpointError(f'checkpoint {path!r} does not exist')
    if ckpt_id is not None:
        wanted = os.path.join(path, f'checkpoint_{ckpt_id}.pth')
        if not os.path.isfile(wanted):
            raise CheckpointError(f'folder {path!r} has no checkpoint_{ckpt_id}.pth (sampling.ckpt_id); '
                                  'pass a checkpoint file itself to use another one')
        return wanted
    for name in _FOLDER_CANDIDATES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    for folder in (path, os.path.join(path, 'checkpoints')):
        numbered = []
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            stem = name[len('checkpoint_'):-len('.pth')] if name.startswith('checkpoint_') and name.endswith('.pth') else ''
            if stem.isdigit():
                numbered.append((int(stem), name))
        if numbered:
            return os.path.join(folder, max(numbered)[1])
    raise CheckpointError(f'no checkpoint.pth or checkpoint_<k>.pth in folder {path!r}')


def _strip(state_dict):
    return {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state_dict.items()}


def _network_kind(keys):
    if any(k.startswith('all_modules.') for k in keys):
        return 'ncsnpp'
    if 'normalizer.embed.weight' in keys:
        return 'ncsn'
    if 'normalizer.alpha' in keys:
        return 'ncsnv2'
    return 'unknown'


def load_into(net, obj, config, use_ema=True, source='checkpoint'):
    """Copy an already-``torch.load``-ed official checkpoint into ``net``; returns the detected format."""
    fmt = detect_format(obj)
    family, name = config.model.family, config.model.name
    where = f'{source} (detected format {fmt!r}, config model.family={family!r}, model.name={name!r})'

    def fail(msg):
        raise CheckpointError(f'{where}: {msg}')

    if fmt not in _FAMILY_FORMATS.get(family, ()):
        fail(f'a {fmt} checkpoint cannot hold a {family} model; expected format(s) {_FAMILY_FORMATS.get(family)}')
    state = _strip(obj['model'] if fmt == 'score_sde' else obj[0])
    kind = _network_kind(state)
    if kind != family:
        fail(f'the checkpoint holds a {kind} network, the config builds a {family} network')

    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        fail(f'{len(missing)} missing keys {missing[:10]}, {len(unexpected)} unexpected keys {unexpected[:10]}')
    for k, v in own.items():
        if state[k].shape != v.shape:
            fail(f'shape mismatch for {k!r}: model expects {tuple(v.shape)}, checkpoint has {tuple(state[k].shape)}')
    # Keep our float32 noise-level buffer: the official float64 one makes discrete NCSN++ return float64.
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})

    trainable = [(k, p) for k, p in net.named_parameters() if p.requires_grad]
    if use_ema and fmt == 'ncsnv2' and len(obj) == 5:
        shadow = obj[4]
        names = [k for k, _ in trainable]
        lost, extra = [k for k in names if k not in shadow], [k for k in shadow if k not in names]
        if lost or extra:
            fail(f'EMA dict does not match the trainable parameters: {len(lost)} missing {lost[:10]}, '
                 f'{len(extra)} unexpected {extra[:10]}')
        _copy_ema(fail, trainable, [shadow[k] for k in names])
    elif use_ema and fmt == 'score_sde':
        shadow = obj['ema'].get('shadow_params') if isinstance(obj['ema'], dict) else None
        if shadow is None:
            fail("ema has no 'shadow_params' list")
        if len(shadow) != len(trainable):
            fail(f'EMA shadow_params has {len(shadow)} tensors, the model has {len(trainable)} trainable parameters '
                 '(the official loader would silently truncate)')
        _copy_ema(fail, trainable, shadow)
    return fmt


def _copy_ema(fail, trainable, tensors):
    for (k, p), t in zip(trainable, tensors):
        if t.shape != p.shape:
            fail(f'EMA shape mismatch for {k!r}: model expects {tuple(p.shape)}, EMA has {tuple(t.shape)}')
    with torch.no_grad():
        for (_, p), t in zip(trainable, tensors):
            p.copy_(t)


def load_score_model(path, config, use_ema=True, device='cpu'):
    """Build the network of ``config``, load an official checkpoint file or run folder into it, and
    return a :class:`ScoreModel` in eval mode on ``device``.  (``model.family = 'empirical'``: ``path``
    is an image array and the exact score of that set is returned, see ``models/empirical.py``.)"""
    if config.model.family == 'empirical':   # no network: the exact score of an image set (models/empirical.py)
        from models.empirical import EmpiricalScore
        return EmpiricalScore.from_file(path, config).to(device)
    path = resolve_path(path, config.sampling.get('ckpt_id'))
    obj = torch.load(path, map_location='cpu', weights_only=True)
    net = models.create_model(config)
    load_into(net, obj, config, use_ema=use_ema, source=path)
    return ScoreModel(net.to(device).eval(), config)


def atomic_save(obj, path):
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def official_object(fmt, net, optimizer_state=None, step=0, epoch=0, ema_params=None, ema_decay=0.999,
                    ema_num_updates=0):
    """The object the official code saves (``ema_params``: tensors in trainable-parameter order, or None)."""
    state = {'module.' + k: v for k, v in net.state_dict().items()}
    optimizer_state = optimizer_state if optimizer_state is not None else {'state': {}, 'param_groups': []}
    trainable = [k for k, p in net.named_parameters() if p.requires_grad]
    if fmt == 'ncsn':
        return [state, optimizer_state]
    if fmt == 'ncsnv2':
        obj = [state, optimizer_state, int(epoch), int(step)]
        if ema_params is not None:
            obj.append({k: t.detach().clone() for k, t in zip(trainable, ema_params)})
        return obj
    if fmt == 'score_sde':
        ema_params = ema_params if ema_params is not None else [p for p in net.parameters() if p.requires_grad]
        ema = {'decay': float(ema_decay), 'num_updates': int(ema_num_updates),
               'shadow_params': [t.detach().clone() for t in ema_params]}
        return {'optimizer': optimizer_state, 'model': state, 'ema': ema, 'step': int(step)}
    raise ValueError(f'unknown checkpoint format {fmt!r}; expected one of {FORMATS}')


def default_format(config):
    """The official format of the family: ncsn -> 'ncsn', ncsnv2 -> 'ncsnv2', ncsnpp -> 'score_sde'."""
    return {'ncsn': 'ncsn', 'ncsnv2': 'ncsnv2', 'ncsnpp': 'score_sde'}[config.model.family]


def save_checkpoint(path, net, config, fmt=None, **kwargs):
    """Save ``net`` atomically in the official format of its family (see :func:`official_object`)."""
    atomic_save(official_object(fmt or default_format(config), net, **kwargs), path)
