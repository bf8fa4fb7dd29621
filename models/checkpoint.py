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
Every mismatch raises :class:`CheckpointError` naming the detected format and the config used; so does a file
that is not a readable checkpoint (empty, truncated, text, random bytes) and one that would need code execution to
load (``torch.load(weights_only=True)`` refuses it; we never retry without that safety).
"""
import os
import pickletools
import warnings
import zipfile

import torch

import models
from models.score import ScoreModel
from utils import provenance
from utils.atomic import atomic_write

FORMATS = ('ncsn', 'ncsnv2', 'score_sde')
# Which checkpoint formats can hold which model family (NCSNv2's ncsn_original.yml saves an NCSN in ncsnv2 format).
_FAMILY_FORMATS = {'ncsn': ('ncsn', 'ncsnv2'), 'ncsnv2': ('ncsnv2',), 'ncsnpp': ('score_sde',), 'ddpm': ('score_sde',)}
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
        # score_sde's DDPM network resamples in modules of their own (only a Conv_0); the official NCSN++ configs
        # resample inside BigGAN ResNet blocks (an NCSN++ with resblock_type 'ddpm' looks like DDPM here)
        if 'all_modules.0.W' not in keys and _has_plain_resampler(keys):
            return 'ddpm'
        return 'ncsnpp'
    if 'normalizer.embed.weight' in keys:
        return 'ncsn'
    if 'normalizer.alpha' in keys:
        return 'ncsnv2'
    return 'unknown'


def _has_plain_resampler(keys):
    """A module holding only ``Conv_0`` (DDPM's Upsample / Downsample); NCSN++'s BigGAN blocks resample inside
    their ResNets."""
    subkeys = {}
    for k in keys:
        parts = k.split('.')
        if parts[0] == 'all_modules' and len(parts) >= 3:
            subkeys.setdefault(parts[1], set()).add(parts[2])
    return any(v == {'Conv_0'} for v in subkeys.values())


def describe_network(keys):
    """The network a state_dict holds, in words, with the noise process it implies where the keys tell."""
    kind = _network_kind(keys)
    if kind == 'ddpm':
        return "a DDPM network (score_sde 'ddpm': a VP / DDPM model)"
    if kind == 'ncsnpp':
        if 'all_modules.0.W' in keys:
            return 'an NCSN++ with a Fourier time embedding (continuous VE NCSN++, score_sde configs/ve/*_continuous)'
        return ('an NCSN++ with a positional time embedding (DDPM++ / NCSN++ for the VP SDE, or the discrete VE '
                'NCSN++ of configs/ve/cifar10_ncsnpp.py)')
    return {'ncsn': 'an NCSN (v1) RefineNet (VE)', 'ncsnv2': 'an NCSNv2 RefineNet (VE)'}.get(kind, 'an unknown network')


def _describe_config(config):
    m, sde = config.model, config.training.get('sde', 'vesde')
    process = {'vesde': 'VE', 'vpsde': 'VP'}.get(sde, sde)
    if m.family == 'ncsnpp':
        return f"an NCSN++ with a {m.get('embedding_type', 'fourier')} time embedding for the {process} SDE"
    return f'a {m.family} network for the {process} SDE'


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
    own = net.state_dict()
    vp_involved = 'ddpm' in (kind, family) or config.training.get('sde', 'vesde') == 'vpsde'
    if kind != family and not (family == 'ncsnpp' and kind == 'ddpm' and _network_kind(own) == 'ddpm'):
        fail(f'the checkpoint holds a {kind} network, the config builds a {family} network' +
             (f' ({describe_network(state)}; the config: {_describe_config(config)})' if vp_involved else ''))
    holds = f'the checkpoint holds {describe_network(state)}, the config builds {_describe_config(config)}: ' \
        if vp_involved or family == 'ncsnpp' else ''
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        fail(f'{holds}{len(missing)} missing keys {missing[:10]}, {len(unexpected)} unexpected keys {unexpected[:10]}'
             f'{_size_hint(config)}')
    for k, v in own.items():
        if state[k].shape != v.shape:
            fail(f'{holds}shape mismatch for {k!r}: model expects {tuple(v.shape)}, checkpoint has '
                 f'{tuple(state[k].shape)}{_size_hint(config)}')
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


def _size_hint(config):
    """The config's size fields, for a checkpoint of the same kind of network whose keys or shapes differ: the
    usual cause is a config of another resolution or width than the checkpoint was trained with."""
    m = config.model
    fields = [('data.image_size', config.data.get('image_size')), ('data.num_channels', config.data.get('num_channels'))]
    fields += [(f'model.{k}', m.get(k)) for k in ('ngf', 'nf', 'ch_mult', 'num_res_blocks', 'attn_resolutions')
               if m.get(k) is not None]
    return ('; expected the config the checkpoint was trained with (this one has '
            + ', '.join(f'{k} = {v!r}' for k, v in fields) + ')')


def _copy_ema(fail, trainable, tensors):
    for (k, p), t in zip(trainable, tensors):
        if t.shape != p.shape:
            fail(f'EMA shape mismatch for {k!r}: model expects {tuple(p.shape)}, EMA has {tuple(t.shape)}')
    with torch.no_grad():
        for (_, p), t in zip(trainable, tensors):
            p.copy_(t)


_EXPECTED = 'expected a torch.save file (an official checkpoint.pth / checkpoint_<k>.pth)'
# Globals the checkpoints of the three official codebases use; anything else is reported as code to run.
_SAFE_MODULES = ('torch', 'collections', '_codecs', 'numpy')


def _pickle_globals(data):
    """The ``module.name`` globals a pickle stream references, read with pickletools (nothing is executed).
    Returns (globals, complete): complete is False when the stream is damaged or ends early."""
    found, strings = [], []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == 'GLOBAL':
                found.append(str(arg).replace(' ', '.'))
            elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                found.append(f'{strings[-2]}.{strings[-1]}')
            elif op.name == 'INST':
                found.append(str(arg).replace(' ', '.'))
            if isinstance(arg, str) and ('UNICODE' in op.name or 'STRING' in op.name):
                strings.append(arg)
            if op.name == 'STOP':
                return found, True
    except Exception:  # noqa: BLE001 -- a damaged stream: pickletools raises ValueError and others
        return found, False
    return found, False


def _diagnose(path, err):
    """What a file that torch.load(weights_only=True) could not read holds, in words (never executes it)."""
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        head = f.read(4096)
    where = f'checkpoint {path!r} ({size} bytes)'
    if size == 0:
        return f'{where} is empty; {_EXPECTED}'
    pickled = None
    if head.startswith(b'PK\x03\x04'):
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith('data.pkl')]
                if not names:
                    return f'{where} is a zip archive without a data.pkl: not a torch.save file; {_EXPECTED}'
                pickled = zf.read(names[0])
        except zipfile.BadZipFile:
            return (f'{where} is a truncated or damaged torch.save zip archive (its zip directory cannot be read); '
                    f'{_EXPECTED} -- copy or download it again')
        except (OSError, EOFError, RuntimeError) as e:
            return (f'{where} is a truncated or damaged torch.save zip archive ({type(e).__name__}: {e}); '
                    f'{_EXPECTED} -- copy or download it again')
    elif head[:1] == b'\x80':                # a pickle (the legacy torch.save format starts with one)
        with open(path, 'rb') as f:
            pickled = f.read()
    if pickled is not None:
        names, complete = _pickle_globals(pickled)
        unsafe = sorted({n for n in names if n.split('.')[0] not in _SAFE_MODULES})
        text = str(err)
        if unsafe or 'GLOBAL' in text or 'global' in text:
            what = ', '.join(unsafe[:5]) or text.split('GLOBAL', 1)[-1].split('\n')[0].strip() or 'unknown globals'
            return (f'{where} was refused for safety: loading it would run code ({what}), which '
                    'torch.load(weights_only=True) does not allow; expected a checkpoint of tensors, dicts and lists '
                    'as the official code saves (re-save its state_dict with torch.save from code you trust)')
        if not complete or isinstance(err, EOFError) or 'EOF' in text:
            return (f'{where} is a truncated or damaged pickle ({type(err).__name__}); {_EXPECTED} -- copy or '
                    'download it again')
        return f'{where} could not be read ({type(err).__name__}: {text.splitlines()[0] if text else ""}); {_EXPECTED}'
    try:
        sample = head[:200].decode('utf-8')
        if sample and all(c.isprintable() or c in '\r\n\t' for c in sample):
            first = sample.splitlines()[0][:60] if sample.strip() else ''
            return f'{where} holds text ({first!r}...), not a torch.save file; {_EXPECTED}'
    except UnicodeDecodeError:
        pass
    return f'{where} holds unrecognised bytes (starting {head[:8].hex(" ")}); {_EXPECTED}'


def load_checkpoint_file(path):
    """``torch.load(path, weights_only=True)`` and the file's provenance record (path, size, sha256 of the bytes
    loaded: both through one handle).  An unreadable file is one :class:`CheckpointError` saying what it holds."""
    try:
        f = open(path, 'rb')
    except OSError as e:
        raise CheckpointError(f'cannot open checkpoint {path!r} ({e.strerror or e}); {_EXPECTED}') from None
    with f:
        record = provenance.record_of_handle(f, path)
        try:
            with warnings.catch_warnings():   # the weights-only unpickler's note on pickle protocols is noise here
                warnings.filterwarnings('ignore', message='Detected pickle protocol')
                obj = torch.load(f, map_location='cpu', weights_only=True)
        except Exception as err:  # noqa: BLE001 -- torch raises RuntimeError, UnpicklingError, EOFError, KeyError...
            raise CheckpointError(_diagnose(path, err)) from None
    return obj, record


def load_score_model(path, config, use_ema=True, device='cpu', compile=False):
    """Build the network of ``config``, load an official checkpoint file or run folder into it, and
    return a :class:`ScoreModel` in eval mode on ``device``.  (``model.family = 'empirical'``: ``path``
    is an image array and the exact score of that set is returned, see ``models/empirical.py``.)

    The returned model's ``source`` attribute is the provenance record of the file actually read (a run folder
    resolved to its file): ``{'path', 'size', 'sha256'}`` (see ``utils/provenance.py``).

    ``compile``: ``torch.compile`` the network (inductor; on the CPU it generates C++, so it needs a C++ compiler).
    The outputs agree with the eager network to about 1e-6 relative.  Measured on the CPU (benchmarks/cpu_speed.py
    --compile): the NCSN RefineNets run about 1.4x faster after a compile of about a minute (seconds once
    inductor's cache in the temp folder holds it), NCSN++ no faster (its time is in convolutions already)."""
    if config.model.family == 'empirical':   # no network: the exact score of an image set (models/empirical.py)
        from models.empirical import EmpiricalScore
        if not os.path.isfile(path):
            raise CheckpointError(f'image set {path!r} (model.data of the empirical model) does not exist; expected '
                                  'an .npz (key images) or .npy of uint8 NHWC images')
        with open(path, 'rb') as f:
            record = provenance.record_of_handle(f, path)
            try:
                model = EmpiricalScore.from_file(f, config, name=path)
            except (ValueError, CheckpointError):
                raise
            except Exception as e:  # noqa: BLE001 -- numpy raises OSError, BadZipFile, pickle errors...
                raise CheckpointError(f'image set {path!r} is not a readable .npz/.npy array ({type(e).__name__}: '
                                      f'{e}); expected an .npz (key images) or .npy of uint8 NHWC images') from None
        model.source = record
        return model.to(device)
    path = resolve_path(path, config.sampling.get('ckpt_id'))
    obj, record = load_checkpoint_file(path)
    net = models.create_model(config)
    load_into(net, obj, config, use_ema=use_ema, source=path)
    model = ScoreModel(net.to(device).eval(), config)
    model.source = record
    if compile:
        model.net.compile()
    return model


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
    """The official format of the family: ncsn -> 'ncsn', ncsnv2 -> 'ncsnv2', ncsnpp and ddpm -> 'score_sde'."""
    return {'ncsn': 'ncsn', 'ncsnv2': 'ncsnv2', 'ncsnpp': 'score_sde', 'ddpm': 'score_sde'}[config.model.family]


def save_checkpoint(path, net, config, fmt=None, **kwargs):
    """Save ``net`` atomically in the official format of its family (see :func:`official_object`)."""
    atomic_save(official_object(fmt or default_format(config), net, **kwargs), path)
