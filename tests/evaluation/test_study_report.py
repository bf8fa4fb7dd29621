"""evaluation/study_report.py: the studies' tables and plots.  They never mix rows of different sample counts,
feature types or checkpoints in one series (and say which rows they used), and the committed tables are reproduced
from the committed CSVs byte for byte."""
import csv
import os

import numpy as np
import pytest

from evaluation import study_report as report
from evaluation.plot import plot_results
from evaluation.results import CSV_COLUMNS, read_csv
from runners import study as engine
from studies import model_a, model_b, spec
from tests.evaluation.eval_helpers import ROOT

SHIPPED_A = os.path.join(ROOT, 'results', 'model_a', 'study.csv')


def test_iterations_to_match_interpolates_in_log_iterations():
    curve = [(10, 300.), (20, 200.), (50, 100.), (100, 50.)]
    assert report.iterations_to_match(curve, 100.) == pytest.approx(50.)
    assert report.iterations_to_match(curve, 150.) == pytest.approx(np.exp((np.log(20) + np.log(50)) / 2))
    assert report.iterations_to_match(curve, 400.) == 10.
    assert report.iterations_to_match(curve, 10.) is None
    assert report.iterations_to_match([(10, float('inf')), (20, 80.)], 90.) == 20.


def test_summary_names_the_speed_up():
    s = model_a.a_curves()
    rows = []
    fids = {'vanilla': {10: 300., 20: 200., 50: 100.}, 'PDS auto': {10: 120., 20: 100.}}
    for p in s.points:
        its = dict(p.overrides)['sampling.n_steps_each'] * 10
        if its in fids.get(p.label, {}):
            rows.append(dict(config=spec.config_name(s, p), iterations=str(its), fid=str(fids[p.label][its]),
                             kid='0.1', kid_std='0.01', num_samples=str(p.num_samples)))
    table1 = next(p for p in s.points if p.name == 'pds_table1_20it')
    rows.append(dict(config=spec.config_name(s, table1), iterations='20', fid='250.', kid='0.1', kid_std='0.01',
                     num_samples=str(table1.num_samples)))
    auto = next(p for p in s.points if p.name == 'pds_auto_50it')        # another sample count: another point
    rows.append(dict(config=spec.config_name(s, auto), iterations='50', fid='1.', kid='0.1', kid_std='0.01',
                     num_samples='7'))
    text = report.summary(s, rows)
    assert '| vanilla | 300.0<br>0.100 ± 0.010 | 200.0<br>0.100 ± 0.010 | 100.0<br>0.100 ± 0.010 |' in text
    assert 'vanilla needs about 50 iterations (2.5x) to reach the FID of PDS auto at 20 iterations (100.0)' in text
    assert '(250.0) in 20 iterations or fewer: no speed-up' in text
    assert '| PDS auto | 120.0<br>0.100 ± 0.010 | 100.0<br>0.100 ± 0.010 | — |' in text


def test_map_summary_is_gain_by_step_with_the_best_in_bold():
    s = model_a.a_map()
    fids = {'g1.000_lr0.0001': 120., 'g1.000_lr2e-05': 440., 'g1.600_lr0.0001': 124., 'g0.400_lr0.0005': float('inf')}
    rows = [dict(config=spec.config_name(s, p), fid=str(fids[p.name]), kid='0.1', kid_std='0.01',
                 num_samples='1000') for p in s.points if p.name in fids]
    # a row of another study in the same CSV (2,000 samples) is neither a cell nor counted in the caption
    rows.append(dict(config='configs/mnist_cpu_pds.py:table1_20it', fid='50.0', kid='0.1', kid_std='0.01',
                     num_samples='2000'))
    lines = report.map_summary(s, rows).splitlines()
    assert lines[0].startswith('| high-frequency gain | step_lr 1e-05 | step_lr 2e-05 | step_lr 5e-05 |')
    assert [ln.split(' |')[0] for ln in lines[2:7]] == ['| vanilla', '| direct λ=1.6', '| direct λ=2.5',
                                                       '| inverse λ=1.6', '| inverse λ=2.5']
    assert lines[2] == '| vanilla | — | 440.0 / 0.100 ± 0.010 | — | **120.0 / 0.100 ± 0.010** | — | — |'
    assert lines[6].endswith('| diverged |') and '; 1000 samples per cell' in lines[-3]
    assert lines[-1].startswith('Rows: ')                                  # which rows the table was made of
    assert report._cell_counts(report._map_cells(s, rows)) == '1000'  # the heat map's title uses the same


def test_rivals_summary_orders_by_nfe_and_names_the_best_per_budget():
    s = model_b.b_rivals()
    vals = {'vanilla_10it': ('20', 90.), 'vanilla_50it': ('100', 30.), 'edm_5': ('9', 60.), 'edm_10': ('19', 40.),
            'rk45_0.01': ('37.5', 35.), 'ggf_0.1': ('', 20.), 'edm_25': ('49', float('inf'))}
    rows = [dict(config=spec.config_name(s, p), nfe=vals[p.name][0], fid=str(vals[p.name][1]), kid='0.05',
                 kid_std='0.002', num_samples=str(p.num_samples)) for p in s.points if p.name in vals]
    odd = next(p for p in s.points if p.name == 'edm_50')             # another sample count: reported apart
    rows.append(dict(config=spec.config_name(s, odd), nfe='99', fid='1.', kid='', num_samples='7'))
    lines = report.rivals_summary(s, rows).splitlines()
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


def test_kid_keeps_the_precision_of_its_standard_deviation():
    assert report.kid_text(0.6731, 0.0028) == '0.673 ± 0.003'
    assert report.kid_text('0.0042244', '0.0006507') == '0.0042 ± 0.0007'     # was '0.004 ± 0.001'
    assert report.kid_text(0.00159, 0.000365) == '0.0016 ± 0.0004'
    assert report.kid_text(0.1, '') == '0.100 ± 0.000'                      # no std in the row


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
    assert engine.main(['a_map', '--csv', path, '--summary']) == 0
    text = capsys.readouterr().out
    assert f"**{float(shipped['fid']):.1f} / " in text and '5.0' not in text
    assert 'Rows: inception features (clean), checkpoint sha256 4318fbb7a012, reference data:$PDS_DATA/mnist' in text
    assert engine.main(['a_map', '--csv', path, '--summary', '--fid_features', 'standin']) == 0
    text = capsys.readouterr().out
    assert '**5.0 / ' in text and 'Rows: standin features (clean)' in text
    assert engine.main(['a_map', '--csv', path, '--list', '--fid_features', 'inception']) == 0
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


def test_a_study_with_none_of_its_points_done_says_so_instead_of_an_empty_table():
    """The rows of one model's CSV serve several studies: a study none of whose points is among them (C32's quality
    point before it ran, beside the curves' rows) is one line, not a table with no columns."""
    from studies import model_c
    curves, quality = model_c.STUDIES['c32_curves'](None), model_c.STUDIES['c32_quality'](None)
    pt = next(p for p in curves.points if p.name == 'vanilla_50it')
    rows = [dict(config=spec.config_name(curves, pt), iterations='50', fid='249.9', kid='0.393', kid_std='0.003',
                 num_samples=str(pt.num_samples), features='inception', fid_mode='clean', checkpoint_sha256='e9' * 32,
                 reference='data:deadleaves')]
    assert report.report(quality, rows) == 'Rows: none done yet.\n'
    assert '| vanilla | 249.9<br>0.393 ± 0.003 |' in report.report(curves, rows)
