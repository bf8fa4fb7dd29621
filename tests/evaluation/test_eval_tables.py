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
            os.path.join(root, 'checkpoints'), '--stats_dir', os.path.join(root, 'stats'), '--fid_features',
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


def test_tables_quick_end_to_end(inputs):
    root, args = inputs
    text1 = _script('table1', args, root)
    rows = _cells(text1)
    assert rows[0] == ['Dataset', 'Resolution', 'Model', 'Iterations', 'r', 'λ', 'space?', 'FID vanilla', 'FID PDS']
    assert [r[3] for r in rows[1:]] == ['20', '126', '157', '210', '65', '81', '108']
    assert [r[5] for r in rows[1:]] == ['1.6'] * 4 + ['1.1'] * 3 and all(r[4] == '0.2H' for r in rows[1:])
    assert all(re.fullmatch(r'\d+\.\d', c) for r in rows[1:] for c in r[7:]), rows
    assert open(os.path.join(root, 'out', 'table1.md')).read().strip() in text1
    results = _results(root)
    assert len(results) == 14 and {r['num_samples'] for r in results} == {'4'}
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
    assert len(_results(root)) == 24
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
    assert len(_results(root)) == 26 and os.path.getmtime(shared) == mtime
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
