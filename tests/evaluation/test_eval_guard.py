"""``--mode eval`` refuses what would silently mix or waste: samples of another dataset than the reference, a busy
workdir or sample folder, an unusable workdir (before any feature is computed); it recomputes a truncated reference
cache, names the reference split and size it computes, survives a truncated batch file of a scored workdir, and
writes eval.json 0644 like every other output."""
import os
import stat

import numpy as np
import pytest

from evaluation import features as features_lib
from evaluation.features import EvalError
from runners.evaluate import run_eval
from runners.sample import run_sample
from tests.evaluation.eval_helpers import dataset_config, random_images, write_idx_images
from tests.runners.lock_helpers import hold_lock
from tests.runners.runner_helpers import empirical_config, empirical_model


@pytest.fixture(scope='module')
def mnist_workdir(tmp_path_factory):
    """A finished sampling workdir of the MNIST model (exact score, 3 levels): 4 samples, 28 x 28 x 1."""
    config = empirical_config()
    work = str(tmp_path_factory.mktemp('samples') / 'run')
    run_sample(config, empirical_model(config), work, 4, 2, seed=0, progress=False)
    return work


def _eval(config, workdir, tmp_path, **kw):
    kw.setdefault('features', 'standin')
    kw.setdefault('fid_cache', str(tmp_path / 'cache'))
    kw.setdefault('progress', False)
    return run_eval(config, str(workdir), **kw)


def test_samples_of_another_dataset_than_the_reference_are_refused(mnist_workdir, tmp_path):
    ref = tmp_path / 'rgb32.npy'
    np.save(ref, random_images(8, 32, 3, seed=2))
    config = dataset_config(image_size=32, num_channels=3)            # the reference's dataset: TEST, 32 x 32 x 3
    with pytest.raises(EvalError) as err:
        _eval(config, tmp_path / 'out', tmp_path, sample_dir=mnist_workdir, ref=str(ref))
    msg = str(err.value)
    assert f"the samples in {mnist_workdir!r} are MNIST 28x28x1 (its settings.json)" in msg
    assert f"the reference data:{ref} is TEST 32x32x3" in msg and '--allow_mismatch' in msg
    assert not (tmp_path / 'out').exists()
    rec = _eval(config, tmp_path / 'out', tmp_path, sample_dir=mnist_workdir, ref=str(ref), allow_mismatch=True)
    assert rec['fid'] > 0 and 'MNIST 28x28x1' in rec['mismatch']


def test_eval_json_is_written_0644_like_every_other_output(tmp_path):
    from evaluation.results import write_json
    write_json(str(tmp_path / 'eval.json'), {'fid': 1.0})
    assert stat.S_IMODE(os.stat(tmp_path / 'eval.json').st_mode) == 0o644


def test_a_truncated_reference_cache_is_recomputed(tmp_path, capfd):
    from evaluation import reference
    data = tmp_path / 'ref.npy'
    np.save(data, random_images(8, 28, 1, seed=4))
    model, info = features_lib.build_extractor('standin', 'clean', 'cpu')
    config = dataset_config()
    kw = dict(cache_dir=str(tmp_path / 'cache'), progress=False)
    first = reference.dataset_reference(str(data), config, model, info, **kw)
    path = first.info['file']
    raw = open(path, 'rb').read()
    open(path, 'wb').write(raw[:len(raw) // 3])
    capfd.readouterr()
    again = reference.dataset_reference(str(data), config, model, info, **kw)
    assert np.array_equal(again.mu, first.mu) and again.info['cached'] is False
    assert f'cached reference statistics {path} cannot be read' in capfd.readouterr().err
    assert np.array_equal(reference.dataset_reference(str(data), config, model, info, **kw).mu, first.mu)


@pytest.mark.parametrize('kind', ['file', 'read_only'])
def test_an_unusable_workdir_is_refused_before_any_feature_is_computed(mnist_workdir, tmp_path, monkeypatch, kind):
    ref = tmp_path / 'ref.npy'
    np.save(ref, random_images(8, 28, 1, seed=4))
    out = tmp_path / 'out'
    if kind == 'file':
        out.write_text('x')
        expected = f"--workdir {str(out)!r} is a file; expected a folder"
    else:                               # a folder that cannot be written (root ignores chmod: refuse the writes)
        out.mkdir()
        real_open = os.open

        def no_write(path, flags, *a, **k):
            if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise PermissionError(13, 'Permission denied', str(path))
            return real_open(path, flags, *a, **k)
        monkeypatch.setattr(os, 'open', no_write)
        expected = f"cannot write in --workdir {str(out)!r} (Permission denied); expected a writable folder"
    built = []
    monkeypatch.setattr(features_lib, 'build_extractor', lambda *a, **k: built.append(1) or (_ for _ in ()).throw(
        AssertionError('features computed before the workdir was checked')))
    with pytest.raises(Exception) as err:
        _eval(empirical_config(), out, tmp_path, sample_dir=mnist_workdir, ref=str(ref))
    assert expected in str(err.value) and not built


def test_eval_into_a_busy_workdir_or_of_a_folder_being_sampled_is_refused(mnist_workdir, tmp_path):
    from utils.lock import WorkdirBusy
    ref = tmp_path / 'ref.npy'
    np.save(ref, random_images(8, 28, 1, seed=4))
    with hold_lock(tmp_path / 'out') as pid:
        with pytest.raises(WorkdirBusy, match=rf'--workdir .* is in use by another run \(pid {pid} on host '):
            _eval(empirical_config(), tmp_path / 'out', tmp_path, sample_dir=mnist_workdir, ref=str(ref))
    with hold_lock(mnist_workdir) as pid:
        with pytest.raises(WorkdirBusy, match=rf'--sample_dir .* is being written by another run \(pid {pid} on '):
            _eval(empirical_config(), tmp_path / 'out2', tmp_path, sample_dir=mnist_workdir, ref=str(ref))


def test_a_data_reference_defaults_to_the_test_split_and_is_announced(mnist_workdir, tmp_path, capsys):
    """``--data`` alone: MNIST's 10,000 test images (the reference of every result here), said before the work."""
    data = tmp_path / 'data' / 'mnist'
    write_idx_images(str(data / 't10k-images-idx3-ubyte'), random_images(24, 28, 1, seed=5))
    write_idx_images(str(data / 'train-images-idx3-ubyte'), random_images(40, 28, 1, seed=6))
    rec = _eval(empirical_config(), tmp_path / 'out', tmp_path, sample_dir=mnist_workdir, ref=f'data:{data}',
                ref_split=None, progress=True, fid_batch_size=8)
    assert rec['reference_info']['split'] == 'test' and rec['reference_info']['count'] == 24
    out = capsys.readouterr().out
    assert f"reference data:{data}: the test split, 24 images; computing their standin features once (cached in " in out
    assert 'about ' in out


def test_a_scored_workdir_with_a_truncated_batch_file_is_not_a_traceback(mnist_workdir, tmp_path, capfd):
    import shutil
    work = tmp_path / 'copy'
    shutil.copytree(mnist_workdir, work)
    path = work / 'batches' / 'batch_000001.npz'
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    ref = tmp_path / 'ref.npy'
    np.save(ref, random_images(8, 28, 1, seed=4))
    rec = _eval(empirical_config(), tmp_path / 'out', tmp_path, sample_dir=str(work), ref=str(ref))
    assert rec['num_samples'] == 4 and rec['sampling_seconds'] is None
    assert "batches/batch_000001.npz' cannot be read" in capfd.readouterr().err


def test_a_dead_leaves_reference_is_keyed_by_its_law_like_any_dataset(tmp_path):
    """``data:deadleaves`` is generated from config.data.deadleaves: a cached reference of another law (or count)
    is never reused for it."""
    from evaluation import reference
    model, info = features_lib.build_extractor('standin', 'clean', 'cpu')
    config = dataset_config(image_size=16, num_channels=1)
    config.data.dataset = 'DeadLeaves'
    config.data.deadleaves = dict(test_count=6)
    kw = dict(cache_dir=str(tmp_path / 'cache'), progress=False)
    first = reference.dataset_reference('deadleaves', config, model, info, split='test', **kw)
    assert len(first.feats) == 6 and first.info['provenance']['key']['path'] == 'deadleaves'
    config.data.deadleaves = dict(test_count=6, texture=0.2)             # another law, the same name and size
    with pytest.raises(EvalError, match='were made with other settings'):
        reference.dataset_reference('deadleaves', config, model, info, split='test', **kw)
