"""evaluation/study.py: the resumable measurement studies on Model A (run here on a tiny budget, with the shipped
checkpoint, the stand-in features and a fake MNIST test split), the one-axis reading of Eq. 20's two directions,
the per-workdir feature cache and the portable results rows."""
import csv
import os

import numpy as np
import pytest
import torch

from tests.evaluation.eval_helpers import random_images, write_idx_images
from evaluation import study as study_lib


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    write_idx_images(str(tmp_path / 'data' / 'mnist' / 't10k-images-idx3-ubyte'), random_images(24, 28, 1, seed=5))
    monkeypatch.setenv('PDS_DATA', str(tmp_path / 'data'))
    return tmp_path


def _args(root, *more):
    return ['a_map', '--samples', '4', '--csv', str(root / 'study.csv'), '--out', str(root / 'out'),
            '--fid_features', 'standin', '--fid_cache', str(root / 'cache'), '--no_progress', *more]


def test_map_points_run_once_and_resume_without_duplicates(fake_data, capsys):
    root = fake_data
    only = 'g1.000_lr2e-05,g1.600_lr2e-05,g0.625_lr2e-05'
    assert study_lib.main(_args(root, '--only', only)) == 0
    rows = list(csv.DictReader(open(root / 'study.csv')))
    assert [(r['label'], r['pds'], r['pds_lam'], r['step_lr'], r['iterations'], r['num_samples']) for r in rows] == [
        ('vanilla, step_lr 2e-05', 'False', '', '2e-05', '20', '4'),
        ('direct λ=1.6, step_lr 2e-05', 'True', '1.6', '2e-05', '20', '4'),
        ('inverse λ=1.6, step_lr 2e-05', 'True', '1.6', '2e-05', '20', '4')]
    assert rows[0]['config'] == 'configs/mnist_cpu_pds.py:table1_20it --pds=false --config.sampling.step_lr=2e-05'
    assert all(r['kid_std'] and float(r['kid_std']) > 0 for r in rows)
    assert all(not os.path.isabs(r['workdir']) or str(root) in r['workdir'] for r in rows)
    assert all('$PDS_DATA' in r['reference'] for r in rows), rows[0]['reference']
    # PDS changed the samples (the same seeds): the FIDs differ
    assert len({r['fid'] for r in rows}) == 3
    grids = sorted(os.listdir(root / 'grids' / 'a_map'))      # each point's grid, beside the CSV
    assert grids == ['g0.625_lr2e-05.png', 'g1.000_lr2e-05.png', 'g1.600_lr2e-05.png']
    capsys.readouterr()
    assert study_lib.main(_args(root, '--only', only)) == 0                 # rerun: nothing new
    assert '3 of 3 points done; 0 to run' in capsys.readouterr().out
    assert len(list(csv.DictReader(open(root / 'study.csv')))) == 3
    assert study_lib.main(_args(root, '--list')) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 30 and sum('to do' in line for line in listed) == 27
    assert study_lib.main(_args(root, '--plot', str(root / 'map.png'))) == 0 and os.path.getsize(root / 'map.png')


def test_unknown_point_is_one_line(fake_data, capsys):
    assert study_lib.main(_args(fake_data, '--only', 'nope')) == 2
    assert "a_map has no points ['nope']" in capsys.readouterr().err


def test_inverse_lambda_is_direct_one_over_lambda():
    """Eq. 20's two readings are one axis: 'inverse' with lambda builds exactly the operator of 'direct' 1/lambda."""
    from configs import mnist_cpu_pds
    from preconditioning.operator import from_config
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    outs = []
    for direction, lam in (('inverse', 1.6), ('direct', 1 / 1.6)):
        config = mnist_cpu_pds.get_config('table1_20it')
        config.pds.radial_direction, config.pds.lam = direction, lam
        op = from_config(config.pds, (1, 28, 28))
        outs.append((op.noise(x), op.drift(x)))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(outs[0][0], x, atol=1e-3)


def test_curves_use_the_issue_sample_counts():
    s = study_lib.a_curves()
    counts = {p.name: p.num_samples for p in s.points}
    assert counts['vanilla_100it'] == 2000 and counts['pds_auto_200it'] == 500 and len(s.points) == 21
    assert dict(s.points[0].overrides)['sampling.n_steps_each'] == 1


def test_eval_keeps_features_and_reuses_them(tiny_checkpoint, fake_mnist, tmp_path, monkeypatch):
    from evaluation import metrics
    from runners.evaluate import run_eval
    from tests.evaluation.eval_helpers import mnist_config
    config = mnist_config(n_steps_each=1)
    kw = dict(checkpoint=tiny_checkpoint, num_samples=4, batch_size=4, ref=fake_mnist, features='standin',
              fid_cache=str(tmp_path / 'cache'), progress=False)
    first = run_eval(config, str(tmp_path / 'w'), **kw)
    assert first['features_file'] and os.path.isfile(first['features_file'])

    def fail(*a, **k):
        raise AssertionError('features recomputed')
    monkeypatch.setattr(metrics, 'files_features', fail)
    again = run_eval(config, str(tmp_path / 'w'), **kw)
    assert again['fid'] == first['fid'] and again['kid'] == first['kid']
    with open(first['features_file'], 'wb') as f:        # a damaged cache is recomputed, never trusted
        f.write(b'junk')
    monkeypatch.undo()
    assert run_eval(config, str(tmp_path / 'w'), **kw)['fid'] == first['fid']


def test_kid_subsets_mean_is_clean_fids_kid():
    from evaluation.metrics import kid_from_feats, kid_subsets
    rng = np.random.RandomState(1)
    a, b = rng.randn(300, 16), rng.randn(250, 16) * 1.1 + 0.1
    mean, std = kid_subsets(a, b, seed=3)
    assert mean == pytest.approx(kid_from_feats(a, b, seed=3), rel=1e-12)
    assert 0 < std < mean
    same, same_std = kid_subsets(a[:150], a[150:], seed=0, max_subset_size=50)
    assert abs(same) < 3 * same_std            # same distribution: KID 0 within its spread


def test_results_rows_are_portable(tmp_path, monkeypatch):
    from evaluation.results import portable
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('PDS_DATA', str(tmp_path / 'data'))
    assert portable(f'data:{tmp_path}/data/mnist') == 'data:$PDS_DATA/mnist'
    assert portable(str(tmp_path / 'runs' / 'a')) == os.path.join('runs', 'a')
    assert portable(os.path.expanduser('~/x/y')) == os.path.join('~', 'x', 'y')
    assert portable(3.5) == 3.5 and portable('vanilla') == 'vanilla'


def test_a_diverging_point_is_recorded_once_as_infinite(fake_data):
    root = fake_data
    s = study_lib.Study('t', study_lib.MODEL_A, (study_lib.Point('huge_step', 'vanilla', (
        ('pds.enabled', False), ('sampling.step_lr', 1.0)), 4),))
    logs = []
    kw = dict(features='standin', fid_cache=str(root / 'cache'), progress=False, log=logs.append)
    rows = study_lib.run_study(s, str(root / 's.csv'), str(root / 'out'), **kw)
    assert len(rows) == 1 and rows[0]['fid'] == 'inf' and rows[0]['step_lr'] == '1.0' and 'diverged' in logs[-1]
    assert study_lib.run_study(s, str(root / 's.csv'), str(root / 'out'), **kw) == rows     # not tried again
    assert '1 of 1 points done' in logs[-1]


def test_iterations_to_match_interpolates_in_log_iterations():
    curve = [(10, 300.), (20, 200.), (50, 100.), (100, 50.)]
    assert study_lib.iterations_to_match(curve, 100.) == pytest.approx(50.)
    assert study_lib.iterations_to_match(curve, 150.) == pytest.approx(np.exp((np.log(20) + np.log(50)) / 2))
    assert study_lib.iterations_to_match(curve, 400.) == 10.
    assert study_lib.iterations_to_match(curve, 10.) is None
    assert study_lib.iterations_to_match([(10, float('inf')), (20, 80.)], 90.) == 20.


def test_summary_names_the_speed_up():
    s = study_lib.a_curves()
    rows = []
    fids = {'vanilla': {10: 300., 20: 200., 50: 100.}, 'PDS auto': {10: 120., 20: 100.}}
    for p in s.points:
        its = dict(p.overrides)['sampling.n_steps_each'] * 10
        if its in fids.get(p.label, {}):
            rows.append(dict(config=study_lib.config_name(s, p), iterations=str(its), fid=str(fids[p.label][its]),
                             kid='0.1', kid_std='0.01', num_samples=str(p.num_samples)))
    table1 = next(p for p in s.points if p.name == 'pds_table1_20it')
    rows.append(dict(config=study_lib.config_name(s, table1), iterations='20', fid='250.', kid='0.1', kid_std='0.01',
                     num_samples=str(table1.num_samples)))
    auto = next(p for p in s.points if p.name == 'pds_auto_50it')        # another sample count: another point
    rows.append(dict(config=study_lib.config_name(s, auto), iterations='50', fid='1.', kid='0.1', kid_std='0.01',
                     num_samples='7'))
    text = study_lib.summary(s, rows)
    assert '| vanilla | 300.0<br>0.100 ± 0.010 | 200.0<br>0.100 ± 0.010 | 100.0<br>0.100 ± 0.010 |' in text
    assert 'vanilla needs about 50 iterations (2.5x) to reach the FID of PDS auto at 20 iterations (100.0)' in text
    assert '(250.0) in 20 iterations or fewer: no speed-up' in text
    assert '| PDS auto | 120.0<br>0.100 ± 0.010 | 100.0<br>0.100 ± 0.010 | — |' in text


def test_map_summary_is_gain_by_step_with_the_best_in_bold():
    s = study_lib.a_map()
    fids = {'g1.000_lr0.0001': 120., 'g1.000_lr2e-05': 440., 'g1.600_lr0.0001': 124., 'g0.400_lr0.0005': float('inf')}
    rows = [dict(config=study_lib.config_name(s, p), fid=str(fids[p.name]), kid='0.1', kid_std='0.01',
                 num_samples='1000') for p in s.points if p.name in fids]
    # a row of another study in the same CSV (2,000 samples) is neither a cell nor counted in the caption
    rows.append(dict(config='configs/mnist_cpu_pds.py:table1_20it', fid='50.0', kid='0.1', kid_std='0.01',
                     num_samples='2000'))
    lines = study_lib.map_summary(s, rows).splitlines()
    assert lines[0].startswith('| high-frequency gain | step_lr 1e-05 | step_lr 2e-05 | step_lr 5e-05 |')
    assert [ln.split(' |')[0] for ln in lines[2:7]] == ['| vanilla', '| direct λ=1.6', '| direct λ=2.5',
                                                       '| inverse λ=1.6', '| inverse λ=2.5']
    assert lines[2] == '| vanilla | — | 440.0 / 0.100 ± 0.010 | — | **120.0 / 0.100 ± 0.010** | — | — |'
    assert lines[6].endswith('| diverged |') and '; 1000 samples per cell' in lines[-3]
    assert lines[-1].startswith('Rows: ')                                  # which rows the table was made of
    assert study_lib._cell_counts(study_lib._map_cells(s, rows)) == '1000'  # the heat map's title uses the same


def test_rivals_summary_orders_by_nfe_and_names_the_best_per_budget():
    s = study_lib.b_rivals()
    vals = {'vanilla_10it': ('20', 90.), 'vanilla_50it': ('100', 30.), 'edm_5': ('9', 60.), 'edm_10': ('19', 40.),
            'rk45_0.01': ('37.5', 35.), 'ggf_0.1': ('', 20.), 'edm_25': ('49', float('inf'))}
    rows = [dict(config=study_lib.config_name(s, p), nfe=vals[p.name][0], fid=str(vals[p.name][1]), kid='0.05',
                 kid_std='0.002', num_samples=str(p.num_samples)) for p in s.points if p.name in vals]
    odd = next(p for p in s.points if p.name == 'edm_50')             # another sample count: reported apart
    rows.append(dict(config=study_lib.config_name(s, odd), nfe='99', fid='1.', kid='', num_samples='7'))
    lines = study_lib.rivals_summary(s, rows).splitlines()
    assert lines[2] == '| vanilla | vanilla_10it | 20 | 90.0 | 0.050 ± 0.002 | 2000 |'
    body = [ln.split(' | ')[1] for ln in lines[2:] if ln.startswith('| ') and ' | ' in ln]
    assert body == ['vanilla_10it', 'vanilla_50it', 'edm_5', 'edm_10', 'edm_25', 'rk45_0.01', 'ggf_0.1']
    assert '| PF-ODE RK45 | rk45_0.01 | 37.5 | 35.0 |' in lines[7] and '| diverged |' in lines[6]
    assert '| ? | 20.0 |' in lines[8]                                    # NFE unknown: never counted in a budget
    assert '- at most 10 NFE (2000 samples): best EDM Heun (edm_5, NFE 9): FID 60.0' in lines
    assert '- at most 20 NFE (2000 samples): best EDM Heun (edm_10, NFE 19): FID 40.0' in lines
    assert '- at most 50 NFE (2000 samples): best PF-ODE RK45 (rk45_0.01, NFE 37.5): FID 35.0' in lines
    assert '- at most 100 NFE (2000 samples): best vanilla (vanilla_50it, NFE 100): FID 30.0' in lines
    assert not any('7 samples' in ln for ln in lines)                  # edm_50 at 7 samples is not this point


def test_rivals_run_at_the_stated_budgets_on_the_models_levels():
    import sampling
    from sampling.edm import sigma_schedule
    s = study_lib.a_rivals()
    nfe = {p.name: sampling.iterations(study_lib.point_config(s, p))[1] for p in s.points}
    assert [nfe[f'vanilla_{i}it'] for i in (10, 20, 50, 100)] == [10, 20, 50, 100]
    assert (nfe['ode_euler_10'], nfe['edm_4'], nfe['edm_10'], nfe['edm_stochastic_10']) == (10, 7, 19, 19)
    assert [nfe[f'heun_pds{k}'] for k in (1, 3, 9)] == [28, 46, 100]
    config = study_lib.point_config(s, next(p for p in s.points if p.name == 'edm_10'))
    levels = sigma_schedule('geometric', config.model.sigma_min, config.model.sigma_max, 10)[:10]
    trained = np.geomspace(config.model.sigma_max, config.model.sigma_min, config.model.num_scales)
    np.testing.assert_allclose(np.asarray(levels, dtype=np.float64), trained, rtol=1e-5)   # the trained levels
    assert not study_lib.point_config(s, next(p for p in s.points if p.name == 'edm_10')).pds.enabled
    assert study_lib.point_config(s, next(p for p in s.points if p.name == 'heun_pds3')).pds.enabled


def test_model_b_studies_run_at_the_stated_budgets():
    """Model B's points build valid configs whose iterations / NFE are what the tables will say: PC N steps =
    2N NFE on the PDS command line's grid, the statistics filter at Table 2's alphas, PDS only in a corrector."""
    import sampling
    from sampling import sde as sde_lib
    curves, rivals = study_lib.b_curves(), study_lib.b_rivals()
    for s in (curves, rivals):
        assert s.model['config'] == 'mnist_ncsnpp_cpu_pds' and s.model['results'].endswith('model_b')
    cfg = {p.name: study_lib.point_config(curves, p) for p in curves.points}
    for its in study_lib.CURVE_ITERATIONS:
        assert sampling.iterations(cfg[f'vanilla_{its}it']) == (its, 2 * its)
        assert sde_lib.from_config(cfg[f'pds_a5_{its}it']).N == its
        assert not cfg[f'vanilla_{its}it'].pds.enabled
        assert (cfg[f'pds_a5_{its}it'].pds.freq, cfg[f'pds_a5_{its}it'].pds.alpha) == ('stats', 5.)
        assert cfg[f'pds_a10_{its}it'].pds.alpha == 10. and cfg[f'pds_auto_{its}it'].pds.freq == 'auto'
    assert {p.num_samples for p in curves.points if '1000it' in p.name} == {500}
    from preconditioning.operator import MarginalPredictor
    for its in (50, 100, 200):
        marg = cfg[f'pds_a5_marg_{its}it']
        assert (marg.pds.alpha, marg.pds.predictor_drift, sde_lib.from_config(marg).N) == (5., 'marginal', its)
        assert isinstance(sampling.preconditioner(marg, (1, 28, 28)), MarginalPredictor)
    rc = {p.name: study_lib.point_config(rivals, p) for p in rivals.points}
    nfe = {k: sampling.iterations(c)[1] for k, c in rc.items()}
    assert (nfe['edm_5'], nfe['edm_stochastic_25'], nfe['ode_euler_20'], nfe['heun_pds3']) == (9, 49, 20, 46)
    assert nfe['edm_stochastic_100'] == 199                                 # beside PC at 100 iterations (NFE 200)
    assert nfe['rk45_0.001'] is None and rc['rk45_0.001'].sampling.ode_rtol == 1e-3       # adaptive: counted later
    assert rc['ggf_0.02'].sampling.adaptive_reltol == 0.02 and rc['ggf_0.02'].sampling.method == 'adaptive_sde'
    assert [k for k, c in rc.items() if c.pds.enabled and c.sampling.method != 'pc'] == ['heun_pds1', 'heun_pds3']
    assert {p.num_samples for p in rivals.points} == {2000}


def test_list_works_before_the_model_exists(tmp_path, capsys):
    assert study_lib.main(['b_curves', '--list', '--checkpoint', str(tmp_path / 'none.pth')]) == 0
    out = capsys.readouterr().out
    assert 'not found: nothing is done yet' in out and 'pds_auto_1000it' in out and out.count('to do') == 40
    assert study_lib.main(['b_curves', '--summary', '--checkpoint', str(tmp_path / 'none.pth')]) == 2
    assert 'not found' in capsys.readouterr().err


def test_stale_samples_of_a_point_are_set_aside_not_mixed(fake_data, capsys):
    """A point's folder holding samples made with other settings (here: a config default that has changed since,
    written into its settings.json) is moved aside with a message, and the point is sampled afresh."""
    import json
    root = fake_data
    only = ['--only', 'g1.000_lr2e-05']
    assert study_lib.main(_args(root, *only)) == 0
    work = next((root / 'out' / 'a_map').glob('*/g1.000_lr2e-05'))
    settings = json.loads((work / 'settings.json').read_text())
    settings['config']['sampling']['s_tmax'] = 1.0
    (work / 'settings.json').write_text(json.dumps(settings))
    args = _args(root, *only)
    args[args.index('--samples') + 1] = '6'
    assert study_lib.main(args) == 0
    out = capsys.readouterr().out
    assert 'sampling.s_tmax: 1.0 -> 50.0' in out and f'moved to {work}.stale1' in out
    assert os.path.isdir(f'{work}.stale1') and json.loads((work / 'settings.json').read_text())['num_samples'] == 6
    rows = list(csv.DictReader(open(root / 'study.csv')))
    assert [r['num_samples'] for r in rows] == ['4', '6']


def test_kid_keeps_the_precision_of_its_standard_deviation():
    assert study_lib._kid_text(0.6731, 0.0028) == '0.673 ± 0.003'
    assert study_lib._kid_text('0.0042244', '0.0006507') == '0.0042 ± 0.0007'     # was '0.004 ± 0.001'
    assert study_lib._kid_text(0.00159, 0.000365) == '0.0016 ± 0.0004'
    assert study_lib._kid_text(0.1, '') == '0.100 ± 0.000'                      # no std in the row


def test_sample_only_then_score_is_the_same_run(fake_data, monkeypatch, capsys):
    """--sample_only draws a point's batches (e.g. on a GPU machine) and scores nothing; the study run afterwards
    finds them done and samples nothing: its row equals that of a run that sampled itself (same seeds and noise)."""
    root, only = fake_data, 'g1.600_lr2e-05'
    assert study_lib.main(_args(root, '--only', only, '--sample_only')) == 0
    assert not os.path.exists(root / 'study.csv')
    assert 'samples drawn on cpu' in capsys.readouterr().out
    import shutil
    import runners.sample as sample_lib
    # what comes back from the machine that sampled: settings.json and batches/ only (the PNGs are rewritten)
    point = next((root / 'out' / 'a_map').iterdir()) / only
    shutil.rmtree(point / 'samples')
    os.remove(point / 'grid.png')

    def fail(*a, **k):
        raise AssertionError('sampled again')
    with monkeypatch.context() as m:
        m.setattr(sample_lib.sampling, 'sample', fail)
        assert study_lib.main(_args(root, '--only', only)) == 0
    first = list(csv.DictReader(open(root / 'study.csv')))
    assert first[0]['device'] == 'cpu'
    other = root / 'other'
    other.mkdir()
    assert study_lib.main(_args(other, '--only', only)) == 0
    again = list(csv.DictReader(open(other / 'study.csv')))
    assert len(first) == len(again) == 1 and first[0]['fid'] == again[0]['fid'] and first[0]['kid'] == again[0]['kid']


def test_the_row_names_the_device_that_sampled():
    from runners.evaluate import _devices
    assert _devices('cpu', {'device': 'cuda'}) == 'cuda (sampling), cpu (features)'
    assert _devices('cpu', {'device': 'cpu'}) == _devices('cpu', None) == 'cpu'
