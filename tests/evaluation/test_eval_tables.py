"""scripts/table{1,2,3}.sh --quick end to end on tiny random-weight models (8 x 8, nf 4) with the stand-in
features, fake PDS filters and fake reference images: every row sampled vanilla and PDS at the row's iterations and
scored, the tables printed in the paper's layout, shared runs done once; missing inputs listed before anything runs.
The three shell scripts run as they are (subprocesses); the missing-inputs check runs the same code in-process."""
import csv
import os
import re
import subprocess
import sys

import pytest

from tests.evaluation.eval_helpers import ONE_THREAD, ROOT, TINY_SETS, make_table_inputs

sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import tables  # noqa: E402


def _cells(markdown):
    return [[c.strip() for c in line.strip().strip('|').split('|')] for line in markdown.splitlines()
            if line.startswith('|') and not line.startswith('|---')]


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tables'))
    refs = make_table_inputs(root)
    args = ['--quick', '--num_samples', '4', '--out', os.path.join(root, 'out'), '--checkpoints',
            os.path.join(root, 'checkpoints'), '--shipped', os.path.join(root, 'checkpoints'), '--stats_dir', os.path.join(root, 'stats'), '--fid_features',
            'standin', '--fid_cache', os.path.join(root, 'cache'), '--device', 'cpu', '--no_progress', *refs]
    for s in TINY_SETS:
        args += ['--set', s]
    return root, args


def _results(root):
    return list(csv.DictReader(open(os.path.join(root, 'out', 'results.csv'))))


def _script(table, args, cwd):
    out = subprocess.run(['bash', os.path.join(ROOT, 'scripts', f'{table}.sh'), *args], capture_output=True,
                         text=True, timeout=900, cwd=cwd, env=dict(os.environ, **ONE_THREAD))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_tables_quick_end_to_end(inputs):
    root, args = inputs
    text1 = _script('table1', args, root)
    rows = _cells(text1)
    assert rows[0] == ['Dataset', 'Resolution', 'Model', 'Iterations', 'r', 'λ', 'space?', 'FID vanilla', 'FID PDS']
    assert [r[3] for r in rows[1:]] == ['20', '20', '126', '157', '210', '65', '81', '108']
    assert [r[5] for r in rows[1:]] == ['1.6'] * 5 + ['1.1'] * 3 and all(r[4] == '0.2H' for r in rows[1:])
    assert rows[2][:3] == ['MNIST (ours)', '28 × 28', 'NCSN ngf 16, CPU']
    assert all(re.fullmatch(r'\d+\.\d', c) for r in rows[1:] for c in r[7:]), rows
    assert open(os.path.join(root, 'out', 'table1.md')).read().strip() in text1
    results = _results(root)
    assert len(results) == 16 and {r['num_samples'] for r in results} == {'4'}
    assert {r['label'] for r in results} == {'vanilla', 'PDS'}
    by_config = {r['config']: r for r in results}
    for key in tables.TABLES['table1']:
        run = tables.RUNS[key]
        vanilla, pds = by_config[tables.config_name(run, False)], by_config[tables.config_name(run, True)]
        assert vanilla['pds'] == 'False' and pds['pds'] == 'True'
        assert vanilla['iterations'] == pds['iterations'] and vanilla['nfe'] == pds['nfe']
        assert vanilla['num_levels'] == pds['num_levels'] and vanilla['n_steps_each'] == pds['n_steps_each']

    rows = _cells(_script('table2', args, root))
    assert [r[2] for r in rows[1:]] == ['100', '200', '166', '166', '66']
    assert [r[3] for r in rows[1:]] == ['5', '10', '5', '5', '5'] and [r[4] for r in rows[1:]] == ['×'] * 4 + ['✓']
    assert all(re.fullmatch(r'\d+\.\d', c) for r in rows[1:] for c in r[5:]), rows
    assert len(_results(root)) == 26
    speed = {r['config']: r for r in _results(root)}
    assert speed['configs/cifar10_pds.py:table2_200it --pds=false']['speed_up'] == '5.0'

    shared = os.path.join(root, 'out', 'ncsnpp_church256_166it', 'pds', 'eval.json')
    mtime = os.path.getmtime(shared)
    rows = {r[0]: r[1:] for r in _cells(_script('table3', args, root))}
    assert rows['Iterations'] == ['156', '108', '166', '166', '66']
    assert rows['Vanilla / PDS (paper)'] == ['217.9 / **65.7**', '67.2 / **43.8**', '393.7 / **16.9**',
                                             '393.3 / **15.0**', '463.2 / **61.2**']
    assert all(re.fullmatch(r'\d+\.\d / \*\*\d+\.\d\*\*', c) for c in rows['Vanilla / PDS (ours)'])
    # only the church 96 @ 156 run is new: the others are Table 1's and Table 2's runs, reused as they are
    assert len(_results(root)) == 28 and os.path.getmtime(shared) == mtime
    tower = [r for r in _results(root) if 'tower_pds.py:table1_108it' in r['config']]
    assert len(tower) == 2
    assert rows['Vanilla / PDS (ours)'][1] == (f"{float(tower[0]['fid']):.1f} / **{float(tower[1]['fid']):.1f}**")


def test_missing_inputs_are_listed_before_anything_runs(tmp_path, capsys):
    code = tables.main(['table2', '--quick', '--checkpoints', str(tmp_path / 'none'), '--stats_dir',
                        str(tmp_path / 'stats'), '--out', str(tmp_path / 'out'), '--ref', 'cifar10=data:/no/where'])
    err = capsys.readouterr().err
    assert code == 2 and 'table2 cannot start, missing' in err
    for folder in ('cifar10_ncsnpp_deep_continuous', 'bedroom_ncsnpp_continuous', 'church_ncsnpp_continuous',
                   'ffhq_1024_ncsnpp_continuous'):
        assert f've{os.sep}{folder}' in err
    for name in ('cifar10_freq', 'bedroom_freq', 'church_freq', 'ffhq_freq', 'ffhq_space'):
        assert f'{name}.npy' in err
    assert 'reference cifar10' in err and 'reference bedroom256' in err and 'PDS_LSUN' in err
    assert not os.path.exists(tmp_path / 'out')


@pytest.mark.slow
def test_shipped_mnist_row_runs_with_the_shipped_checkpoint(tmp_path):
    """The Table 1 row of Model A (checkpoints/ncsn_mnist_cpu, shipped) runs here as it is, on a tiny budget: the
    real checkpoint at 28 x 28, vanilla and PDS at 20 iterations; the reference is the test split of an IDX folder."""
    from tests.evaluation.eval_helpers import random_images, write_idx_images
    ref = tmp_path / 'mnist'
    write_idx_images(str(ref / 't10k-images-idx3-ubyte'), random_images(16, 28, 1, seed=3))
    out = tmp_path / 'out'
    args = ['--rows', 'ncsn_mnist_cpu_20it', '--num_samples', '4', '--batch_size', '4', '--fid_features', 'standin',
            '--fid_cache', str(tmp_path / 'cache'), '--ref', f'mnist_test=data:{ref}', '--out', str(out),
            '--device', 'cpu', '--no_progress']
    text = _script('table1', args, str(tmp_path))
    row = next(r for r in _cells(text) if r[0] == 'MNIST (ours)')
    assert row[3] == '20' and re.fullmatch(r'\d+\.\d', row[7]) and re.fullmatch(r'\d+\.\d', row[8]), row
    rows = list(csv.DictReader(open(out / 'results.csv')))
    assert [(r['label'], r['iterations'], r['nfe'], r['num_samples']) for r in rows] == [
        ('vanilla', '20', '20', '4'), ('PDS', '20', '20', '4')]
    assert all(r['checkpoint_file'].endswith(os.path.join('ncsn_mnist_cpu', 'checkpoint.pth')) for r in rows)
    rerun = _script('table1', args, str(tmp_path))
    assert row == next(r for r in _cells(rerun) if r[0] == 'MNIST (ours)')
    assert len(list(csv.DictReader(open(out / 'results.csv')))) == 2       # reused, not scored again


def test_missing_official_checkpoints_point_at_the_shipped_rows(tmp_path, capsys):
    code = tables.main(['table1', '--checkpoints', str(tmp_path / 'none'), '--out', str(tmp_path / 'out'),
                        '--ref', 'mnist=data:/no/where', '--ref', f'mnist_test=data:{tmp_path}',
                        '--ref', f'church96=data:{tmp_path}', '--ref', f'tower128=data:{tmp_path}'])
    err = capsys.readouterr().err
    assert code == 2 and f'ncsn{os.sep}mnist' in err and 'ncsn_mnist_cpu' not in err.split('(the rows')[0]
    assert '--rows ncsn_mnist_cpu_20it' in err
