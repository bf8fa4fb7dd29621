"""``--mode eval --sample_dir``: only a folder of one image size is scored, eval.json goes to --workdir (never into the
evaluated folder), iterations / NFE are reported only when the folder's settings.json records them, and unreadable
images (samples or reference) are one line naming the file, or skipped with --skip_bad."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from evaluation.features import EvalError
from runners.evaluate import run_eval
from tests.evaluation.eval_helpers import TINY, mnist_config, random_images, run_main


def write_pngs(folder, n, size=28, seed=0, start=0):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(random_images(n, size, 1, seed=seed)):
        Image.fromarray(img).save(os.path.join(folder, f'{start + i}.png'))
    return folder


def truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])         # header intact, pixels cut: fails only when decoded


def score(folder, tmp_path, fake_mnist, **kw):
    return run_eval(mnist_config(), str(tmp_path / 'out'), sample_dir=folder, features='standin', ref=fake_mnist,
                    fid_cache=str(tmp_path / 'cache'), progress=False, **kw)


def test_mixed_image_sizes_are_refused_naming_one_file_of_each(tmp_path, fake_mnist):
    folder = write_pngs(str(tmp_path / 'imgs'), 6)
    write_pngs(folder, 2, size=20, seed=3, start=6)
    with pytest.raises(EvalError) as err:
        score(folder, tmp_path, fake_mnist)
    msg = str(err.value)
    assert 'have 2 different sizes' in msg and "0.png' is 28x28" in msg and "6.png' is 20x20" in msg
    assert 'expected images of one size' in msg
    assert not os.path.exists(tmp_path / 'out' / 'eval.json')


def test_plain_folder_iterations_are_unknown_and_eval_json_goes_to_workdir(tmp_path, fake_mnist):
    from evaluation.results import read_csv
    folder = write_pngs(str(tmp_path / 'imgs'), 6)
    table = str(tmp_path / 'r.csv')
    rec = score(folder, tmp_path, fake_mnist, results_csv=table)
    assert rec['iterations'] is None and rec['nfe'] is None and rec['sampler'] == '' and rec['checkpoint_sha256'] == ''
    assert os.path.isfile(tmp_path / 'out' / 'eval.json') and sorted(os.listdir(folder)) == sorted(
        f'{i}.png' for i in range(6))
    row = read_csv(table)[0]
    assert row['iterations'] == '' and row['nfe'] == '' and row['num_samples'] == '6'


def test_workdir_inside_the_image_folder_is_refused(tmp_path, fake_mnist):
    folder = write_pngs(str(tmp_path / 'imgs'), 4)
    with pytest.raises(EvalError, match='lies in the --sample_dir'):
        run_eval(mnist_config(), folder, sample_dir=folder, features='standin', ref=fake_mnist,
                 fid_cache=str(tmp_path / 'cache'), progress=False)
    assert sorted(os.listdir(folder)) == sorted(f'{i}.png' for i in range(4))


@pytest.mark.slow
def test_sample_dir_needs_a_workdir_on_the_command_line(tmp_path, fake_mnist):
    folder = write_pngs(str(tmp_path / 'imgs'), 4)
    out = run_main('--config', 'configs/mnist_pds.py', '--mode', 'eval', *TINY, '--fid_features', 'standin',
                   '--sample_dir', folder, '--data', fake_mnist)
    assert out.returncode != 0 and out.stderr.strip() == 'error: --mode eval needs --workdir'
    assert sorted(os.listdir(folder)) == sorted(f'{i}.png' for i in range(4))


@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_corrupt_sample_image_names_the_file_or_is_skipped(tmp_path, fake_mnist, damage):
    folder = write_pngs(str(tmp_path / 'imgs'), 6)
    bad = os.path.join(folder, '4.png')
    if damage == 'garbage':
        open(bad, 'wb').write(b'not a png at all')
    else:
        truncate(bad)
    with pytest.raises(EvalError) as err:
        score(folder, tmp_path, fake_mnist)
    assert f"cannot read image '{bad}'" in str(err.value) and '--skip_bad' in str(err.value)
    assert not os.path.exists(tmp_path / 'out' / 'eval.json')
    with pytest.warns(UserWarning, match='skipping unreadable image'):
        rec = score(folder, tmp_path, fake_mnist, skip_bad=True)
    assert rec['num_samples'] == 5 and rec['skipped'] == [bad]


@pytest.mark.slow
def test_corrupt_png_on_the_command_line_is_one_line(tmp_path, fake_mnist):
    folder = write_pngs(str(tmp_path / 'imgs'), 4)
    truncate(os.path.join(folder, '2.png'))
    out = run_main('--config', 'configs/mnist_pds.py', '--mode', 'eval', *TINY, '--fid_features', 'standin',
                   '--sample_dir', folder, '--data', fake_mnist, '--workdir', str(tmp_path / 'out'),
                   '--fid_cache', str(tmp_path / 'cache'), '--workers', '1')
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and 'Traceback' not in out.stderr, out.stderr[-3000:]
    assert lines[-1].startswith('error: cannot read image') and '2.png' in lines[-1]
    assert not os.path.exists(tmp_path / 'out' / 'eval.json')


def test_corrupt_reference_image_with_loader_workers(tmp_path):
    """A data: reference folder with a broken PNG, read by a DataLoader worker: the reader's line, or skipped."""
    from data.readers import DataError
    from evaluation import features as features_lib
    from evaluation.reference import dataset_reference
    from tests.evaluation.eval_helpers import dataset_config
    folder = write_pngs(str(tmp_path / 'ref'), 12)
    truncate(os.path.join(folder, '7.png'))
    model, info = features_lib.build_extractor('standin', 'clean', 'cpu')
    config = dataset_config()
    with pytest.raises(DataError) as err:
        dataset_reference(folder, config, model, info, cache_dir=str(tmp_path / 'c1'), num_workers=1, batch_size=4,
                          progress=False)
    assert "cannot read image '" in str(err.value) and '7.png' in str(err.value)
    assert 'Traceback' not in str(err.value) and 'worker' not in str(err.value)
    ref = dataset_reference(folder, config, model, info, cache_dir=str(tmp_path / 'c2'), num_workers=1,
                            batch_size=4, progress=False, skip_bad=True)
    assert len(ref.feats) == 11
    meta = json.load(open(ref.info['file'][:-len('.npz')] + '.json'))
    assert meta['count'] == 11 and meta['skipped'] == 1


def test_sampling_workdir_reports_its_recorded_iterations(tmp_path, tiny_checkpoint, fake_mnist):
    config = mnist_config(num_levels=2, n_steps_each=1)
    config.eval.num_samples, config.eval.batch_size = 2, 2
    work = str(tmp_path / 'run')
    run_eval(config, work, checkpoint=tiny_checkpoint, features='standin', ref=fake_mnist,
             fid_cache=str(tmp_path / 'cache'), progress=False)
    rec = run_eval(mnist_config(), str(tmp_path / 'out'), sample_dir=work, features='standin', ref=fake_mnist,
                   fid_cache=str(tmp_path / 'cache'), progress=False)
    assert rec['iterations'] == 2 and rec['nfe'] == 2 and rec['checkpoint_file'] == tiny_checkpoint
    assert not os.path.exists(os.path.join(work, 'samples', 'eval.json'))
    assert np.isfinite(rec['fid'])
