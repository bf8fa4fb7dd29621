"""Files that are not readable checkpoints, and checkpoints that would run code: one CheckpointError naming the file,
what was found and what was expected (never torch's traceback, never advice to drop weights_only)."""
import os
import subprocess
import sys

import pytest
import torch

import models
from configs import defaults
from models.checkpoint import CheckpointError, load_score_model, official_object

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_config():
    c = defaults.ncsn()
    c.data.image_size, c.data.num_channels, c.model.nf = 28, 1, 4
    return c


@pytest.fixture(scope='module')
def good_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp('ok') / 'checkpoint.pth'
    torch.save(official_object('ncsn', models.create_model(tiny_config())), path)
    return path.read_bytes()


class RunsCode:
    """Unpickling this would call os.makedirs(marker): a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def bad_file(tmp_path, kind, good_bytes):
    path = tmp_path / f'{kind}.pth'
    if kind == 'truncated':
        path.write_bytes(good_bytes[:len(good_bytes) // 2])
    elif kind == 'random':
        path.write_bytes(os.urandom(5000))
    elif kind == 'text':
        path.write_text('<html>404 Not Found</html>\n')
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'code':
        torch.save([{'w': RunsCode(str(tmp_path / 'ran'))}, {}], path)
    return str(path)


@pytest.mark.parametrize('kind,found', [
    ('truncated', 'is a truncated or damaged torch.save zip archive'),
    ('random', 'holds unrecognised bytes'),
    ('text', "holds text ('<html>404 Not Found</html>'...), not a torch.save file"),
    ('empty', 'is empty'),
    ('code', 'was refused for safety: loading it would run code (os.makedirs)'),
])
def test_unreadable_checkpoint_is_one_clear_error(tmp_path, good_bytes, kind, found):
    path = bad_file(tmp_path, kind, good_bytes)
    with pytest.raises(CheckpointError) as err:
        load_score_model(path, tiny_config())
    msg = str(err.value)
    assert msg.startswith(f'checkpoint {path!r} (') and found in msg
    assert 'expected' in msg and 'weights_only=False' not in msg and '\n' not in msg
    assert not (tmp_path / 'ran').exists()               # the code was never run


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['random', 'code'])
def test_unreadable_checkpoint_on_the_command_line(tmp_path, good_bytes, kind):
    path, work = bad_file(tmp_path, kind, good_bytes), str(tmp_path / 'run')
    out = subprocess.run([sys.executable, 'main.py', '--config', 'configs/mnist_pds.py', '--mode', 'sample',
                          '--config.model.nf=4', '--checkpoint', path, '--workdir', work, '--num_samples', '2'],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1 and lines[0].startswith(f'error: checkpoint {path!r}'), out.stderr
    assert 'weights_only=False' not in out.stderr
    assert not os.path.exists(work) and not (tmp_path / 'ran').exists()


def test_loaded_model_carries_the_file_it_came_from(tmp_path, good_bytes):
    import hashlib
    folder = tmp_path / 'run' / 'checkpoints'
    folder.mkdir(parents=True)
    (folder / 'checkpoint_5.pth').write_bytes(good_bytes)
    model = load_score_model(str(tmp_path / 'run'), tiny_config())
    assert model.source == {'path': str(folder / 'checkpoint_5.pth'), 'size': len(good_bytes),
                            'sha256': hashlib.sha256(good_bytes).hexdigest()}


def test_unreadable_empirical_image_set(tmp_path):
    from configs import mnist_empirical_pds
    config = mnist_empirical_pds.get_config()
    path = tmp_path / 'images.npz'
    path.write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(CheckpointError, match=r"image set .*images.npz' is not a readable .npz/.npy array"):
        load_score_model(str(path), config)
