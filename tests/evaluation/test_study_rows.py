"""Study results never touch the shipped files by default, and tables and plots never mix rows of different sample
counts, feature types or checkpoints in one series (and say which rows they used); the committed tables are
reproduced from the committed CSVs number for number."""
import csv
import hashlib
import os

import pytest

from evaluation import study as study_lib
from evaluation.plot import plot_results
from evaluation.results import CSV_COLUMNS, read_csv
from tests.evaluation.eval_helpers import ROOT, random_images, write_idx_images

SHIPPED_A = os.path.join(ROOT, 'results', 'mnist_cpu', 'study.csv')
SHIPPED_B = os.path.join(ROOT, 'results', 'model_b', 'study.csv')


def _sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    write_idx_images(str(tmp_path / 'data' / 'mnist' / 't10k-images-idx3-ubyte'), random_images(24, 28, 1, seed=5))
    monkeypatch.setenv('PDS_DATA', str(tmp_path / 'data'))
    monkeypatch.chdir(tmp_path)              # where a relative default would land
    return tmp_path


def test_a_study_without_csv_writes_under_its_out_folder_not_the_shipped_results(fake_data, capsys):
    root, before = fake_data, _sha(SHIPPED_A)
    assert study_lib.main(['a_map', '--samples', '4', '--only', 'g1.000_lr2e-05', '--out', str(root / 'out'),
                           '--fid_features', 'standin', '--fid_cache', str(root / 'cache'), '--no_progress']) == 0
    table = root / 'out' / 'mnist_cpu' / 'study.csv'
    assert [r['num_samples'] for r in read_csv(str(table))] == ['4']
    assert (root / 'out' / 'mnist_cpu' / 'grids' / 'a_map' / 'g1.000_lr2e-05.png').is_file()
    assert not (root / 'results').exists() and _sha(SHIPPED_A) == before
    assert f'results {table}' in capsys.readouterr().out


def test_a_study_point_that_another_run_is_working_in_is_refused(fake_data, capsys):
    from tests.runners.lock_helpers import hold_lock
    from utils.provenance import file_record
    root = fake_data
    study = study_lib.a_map(4)
    point = next(p for p in study.points if p.name == 'g1.000_lr2e-05')
    sha = file_record(os.path.join(ROOT, study.model['checkpoint']))['sha256']
    with hold_lock(study_lib._workdir(str(root / 'out'), study, sha, point)) as pid:
        code = study_lib.main(['a_map', '--samples', '4', '--only', point.name, '--out', str(root / 'out'),
                               '--fid_features', 'standin', '--fid_cache', str(root / 'cache'), '--no_progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f'is in use by another run (pid {pid} on host ' in err[0]
    assert not (root / 'out' / 'mnist_cpu' / 'study.csv').exists()


def _rows_of_one_point(tmp_path):
    """The shipped 1,000-sample Inception row of a_map's vanilla 2e-5 cell, then a later stand-in row
    of the same config and count (what a quick trial run appends)."""
    shipped = next(r for r in read_csv(SHIPPED_A) if r['label'] == 'vanilla, step_lr 2e-05')
    standin = dict(shipped, features='standin', fid='5.0', kid='0.5', kid_std='0.1', time='2099-01-01T00:00:00')
    path = tmp_path / 'mixed.csv'
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows([shipped, standin])
    return str(path), shipped


def test_summary_and_list_never_mix_feature_types(tmp_path, capsys):
    path, shipped = _rows_of_one_point(tmp_path)
    assert study_lib.main(['a_map', '--csv', path, '--summary']) == 0
    text = capsys.readouterr().out
    assert f"**{float(shipped['fid']):.1f} / " in text and '5.0' not in text
    assert 'Rows: inception features (clean), checkpoint sha256 4318fbb7a012, reference data:$PDS_DATA/mnist' in text
    assert study_lib.main(['a_map', '--csv', path, '--summary', '--fid_features', 'standin']) == 0
    text = capsys.readouterr().out
    assert '**5.0 / ' in text and 'Rows: standin features (clean)' in text
    assert study_lib.main(['a_map', '--csv', path, '--list', '--fid_features', 'inception']) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith('g1.000_lr2e-05')]
    assert listed[0].endswith(f"FID {float(shipped['fid']):.2f}")


def test_plot_series_never_mix_sample_counts_features_or_checkpoints(tmp_path):
    base = {k: '' for k in CSV_COLUMNS}
    base.update(model='M', label='vanilla', features='inception', fid_mode='clean', checkpoint_sha256='a' * 64)
    rows = [dict(base, iterations='10', num_samples='2000', fid='100'),
            dict(base, iterations='20', num_samples='2000', fid='50'),
            dict(base, iterations='10', num_samples='4', features='standin', fid='7'),       # a later trial row
            dict(base, iterations='10', num_samples='2000', checkpoint_sha256='b' * 64, fid='90')]
    path = tmp_path / 'r.csv'
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    series = plot_results(str(path), str(tmp_path / 'p.png'))
    assert series == {'M': {'vanilla, 2000 samples, inception, checkpoint aaaaaaaa': [(10, 100., 0.), (20, 50., 0.)],
                            'vanilla, 4 samples, standin, checkpoint aaaaaaaa': [(10, 7., 0.)],
                            'vanilla, 2000 samples, inception, checkpoint bbbbbbbb': [(10, 90., 0.)]}}
    one = plot_results(str(path), str(tmp_path / 'q.png'), only=('vanilla',), features='inception', checkpoint='aaaa')
    assert one == {'M': {'vanilla': [(10, 100., 0.), (20, 50., 0.)]}}


@pytest.mark.parametrize('results,names', [('mnist_cpu', ('a_map', 'a_curves', 'a_rivals')),
                                           ('model_b', ('b_curves', 'b_rivals'))])
def test_the_committed_tables_are_reproduced_from_the_committed_rows(results, names, capsys):
    folder = os.path.join(ROOT, 'results', results)
    for name in names:
        assert study_lib.main([name, '--csv', os.path.join(folder, 'study.csv'), '--summary']) == 0
        assert capsys.readouterr().out == open(os.path.join(folder, f'{name}.md')).read(), name
