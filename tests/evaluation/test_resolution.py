"""evaluation/resolution.py: the speed-up-against-resolution table.  Its interpolation against hand-computed values,
a learned row built from rows written here (so the speed-up, the best sampler and the pending cells are checked
against known numbers), and its exact-Gaussian rows against the benchmark's own table (docs/resolution.md, 2a)."""
import json
import math
import os

import numpy as np
import pytest

from evaluation import resolution as res
from evaluation.results import append_csv
from studies import STUDIES
from studies.spec import config_name
from tests.evaluation.eval_helpers import ROOT


def test_vanilla_equivalent_interpolates_and_says_when_it_is_a_bound():
    curve = {10: 100., 100: 1.}
    # log-log: half way in log value is half way in log N
    assert res.vanilla_equivalent(curve, 10.)[0] == pytest.approx(math.sqrt(1000.))
    # linear in the metric (FID): half way in value is half way in log N
    assert res.vanilla_equivalent(curve, 50.5, log_metric=False)[0] == pytest.approx(math.sqrt(1000.))
    assert res.vanilla_equivalent(curve, 200.) == (10., '<')
    assert res.vanilla_equivalent(curve, .5) == (100., '>')
    # a rise after the best does not count: the running best is used
    assert res.vanilla_equivalent({10: 100., 50: 5., 100: 20.}, 10.)[1] == ''
    assert res.vanilla_equivalent({10: 100., 50: 5., 100: 20.}, 10.)[0] < 50


def test_speedup_text():
    curve = {10: 400., 50: 200., 100: 20.}
    ratio, text = res.speedup(curve, 110., 50, log_metric=False)           # half way between 50 and 100
    assert ratio == pytest.approx(math.sqrt(5000.) / 50) and text.startswith('1.4x (71 it)')
    assert res.speedup(curve, 300., 50, log_metric=False)[1] == '0.45x (22 it)'   # worse than vanilla at 50
    assert res.speedup(curve, 500., 50, log_metric=False)[1] == '< 0.2x'   # vanilla at 10 already better
    assert res.speedup(curve, 10., 50, log_metric=False)[1] == '> 2x †'    # never reached: a bound


def test_band_spread():
    c = np.full((1, 16, 16), .5)
    assert res.band_spread(c) == pytest.approx(1.)
    fy, fx = np.meshgrid(np.fft.fftfreq(16), np.fft.fftfreq(16), indexing='ij')
    c = np.where(np.hypot(fx, fy) < .05, .01, .8)[None]                  # the lowest band soft, the others sharp
    assert res.band_spread(c) == pytest.approx(80.)


def test_power_law_has_the_pixel_variance():
    P = res.power_law(32)
    assert P.sum() / 32 ** 2 == pytest.approx(1 / 12.)
    assert P[0, 1] == pytest.approx(4 * P[0, 2])


def _row(study, point, fid, nfe, sha, its, kid=None):
    # KID defaults to FID / 1000: the two agree unless a test says otherwise
    return dict(config=config_name(study, point), num_samples=point.num_samples, checkpoint_sha256=sha, fid=fid,
                kid=fid / 1000 if kid is None else kid, kid_std=0.001, features='inception', iterations=its, nfe=nfe,
                device='cpu', label=point.label)


def _fake_model(root, curves):
    """(sha256, study CSV path) of a stand-in checkpoint file where ``curves`` looks for its model under ``root``."""
    import hashlib
    ckpt = root / curves.model['checkpoint']
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b'a checkpoint')
    return hashlib.sha256(b'a checkpoint').hexdigest(), str(root / curves.model['results'] / 'study.csv')


def test_learned_row_from_known_rows(tmp_path):
    curves, rivals = STUDIES['b_curves'](), STUDIES['b_rivals']()
    root = tmp_path
    sha, csv_path = _fake_model(root, curves)
    vanilla_fid = {10: 400., 20: 390., 50: 200., 100: 20., 200: 18., 500: 17., 1000: 16.}
    by_name = {p.name: p for p in curves.points}
    for its, fid in vanilla_fid.items():
        append_csv(csv_path, _row(curves, by_name[f'vanilla_{its}it'], fid, 2 * its, sha, its))
    append_csv(csv_path, _row(curves, by_name['pds_a5_50it'], 110., 100, sha, 50))    # vanilla: sqrt(5000) it
    append_csv(csv_path, _row(curves, by_name['pds_a5_100it'], 30., 200, sha, 100))   # vanilla better at 100
    for p in rivals.points:
        if p.name == 'edm_stochastic_25':
            append_csv(csv_path, _row(rivals, p, 12., 49, sha, 25))
    append_csv(csv_path, _row(curves, by_name['pds_auto_50it'], 5., 100, '0' * 64, 50))  # another checkpoint's
    row = res.learned_row('Model B', 28, 'b_curves', 'b_rivals', 'PDS stats α=5 (Table 2, 100 it)',
                          'results/model_b/curvature.npz', root=str(root))
    assert 'pending' not in row
    assert row['ratios'][('pds', 50)] == pytest.approx(math.sqrt(5000.) / 50)
    assert row['cells'][('pds', 100)].startswith('0.') and row['ratios'][('pds', 100)] < 1
    assert row['cells'][('auto', 50)] == 'pending'                  # only another checkpoint's row
    # the shared PC points (vanilla 10 / 20 / 50, PDS alpha 5 at 50) and EDM stochastic: a rivals study part way
    done = 5
    assert row['cells'][('best', 50)] == f'EDM stochastic (49) ({done} of {len(rivals.points)} points so far)'
    assert row['cells']['curvature'] == 'pending'
    assert sha[:12] in row['source'] and 'cpu' in row['source']
    text = res.table([row])
    assert '| Model B | 28 | 1.4x (71 it) |' in text


def test_learned_speed_up_is_read_in_kid_not_in_fid_across_sample_counts(tmp_path):
    """Vanilla's points beyond 100 iterations have 500 samples, PDS's at 100 have 2,000: FID's bias (larger at 500)
    would make vanilla look worse there and the speed-up larger.  The cell follows KID, unbiased at any count."""
    curves = STUDIES['b_curves']()
    root = tmp_path
    sha, csv_path = _fake_model(root, curves)
    by_name = {p.name: p for p in curves.points}
    assert by_name['vanilla_200it'].num_samples < by_name['pds_a5_100it'].num_samples      # what this test is about
    # (iterations, FID, KID): vanilla's 500-sample FID at 200 it reads no better than PDS's 2,000-sample 52, its KID
    # reaches PDS's 0.069 half way in log N between 100 and 200 iterations
    for its, fid, kid in ((50, 250., .39), (100, 56., .075), (200, 54., .063), (500, 53., .05)):
        append_csv(csv_path, _row(curves, by_name[f'vanilla_{its}it'], fid, 2 * its, sha, its, kid=kid))
    append_csv(csv_path, _row(curves, by_name['pds_a5_100it'], 52., 200, sha, 100, kid=.069))
    row = res.learned_row('Model B', 28, 'b_curves', 'b_rivals', 'PDS stats α=5 (Table 2, 100 it)',
                          'results/model_b/curvature.npz', root=str(root))
    assert row['ratios'][('pds', 100)] == pytest.approx(math.sqrt(2.))            # FID would say > 5x (never reached)
    assert row['cells'][('pds', 100)] == '1.4x (141 it)'
    assert row['source'].startswith('KID vs')


def test_a_speed_up_across_an_unmeasured_vanilla_point_says_its_bounds(tmp_path):
    """Vanilla measured at 50 and 200 iterations only (100 not run yet): PDS at 50 lands between, and the log-N
    interpolation (here 3.2x) is a guess across the gap, since vanilla can jump from noise to clean within it.  The
    cell says the bounds the measured points give (1-4x); once vanilla 100 is in, the plain reading returns."""
    curves = STUDIES['b_curves']()
    sha, csv_path = _fake_model(tmp_path, curves)
    by_name = {p.name: p for p in curves.points}
    for its, kid in ((50, .5), (200, .2)):
        append_csv(csv_path, _row(curves, by_name[f'vanilla_{its}it'], 1000 * kid, 2 * its, sha, its, kid=kid))
    append_csv(csv_path, _row(curves, by_name['pds_a5_50it'], 250., 100, sha, 50, kid=.25))
    args = ('Model B', 28, 'b_curves', 'b_rivals', 'PDS stats α=5 (Table 2, 100 it)', 'results/model_b/curvature.npz')
    row = res.learned_row(*args, root=str(tmp_path))
    assert row['cells'][('pds', 50)] == '3.2x (159 it) [1-4x until vanilla 100 it is run]'
    append_csv(csv_path, _row(curves, by_name['vanilla_100it'], 240., 200, sha, 100, kid=.24))
    row = res.learned_row(*args, root=str(tmp_path))
    assert row['cells'][('pds', 50)] == '1.9x (97 it)'             # vanilla at 100 is already as good: under 2x


def test_learned_row_pending_without_a_checkpoint(tmp_path):
    row = res.learned_row(*res.LEARNED[3], root=str(tmp_path))
    assert row['pending'].startswith('not trained yet')
    assert '| pending | not trained yet' in res.table([row])


def test_curvature_spread_reads_a_saved_measurement(tmp_path):
    sig = np.array([1., .01])
    fy, fx = np.meshgrid(np.fft.fftfreq(8), np.fft.fftfreq(8), indexing='ij')
    soft = np.where(np.hypot(fx, fy) < .05, .1, .9)[None]
    learned = np.stack([np.ones((1, 8, 8)), soft / .01 ** 2])
    path = tmp_path / 'c.npz'
    np.savez(path, sigmas=sig, learned=learned, gaussian=learned * 2, meta=np.array(json.dumps({'a': 1})))
    lo, g, s, meta = res.curvature_spread(str(path))
    assert (lo, g, s, meta) == (pytest.approx(9.), pytest.approx(9.), .01, {'a': 1})


@pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, 'results', 'resolution', 'gaussian.json')),
                    reason='results/resolution/gaussian.json not in this checkout')
def test_gaussian_rows_match_the_benchmarks_table():
    """The committed benchmark's speed-ups at KL 0.01 (results/resolution/gaussian.md: alpha 5 1.75 at 32 px, 2.05
    at 256 px; auto 2.32 and 2.60), recomputed by this module from its JSON."""
    rows = {r['side']: r for r in res.gaussian_rows(os.path.join(ROOT, 'results', 'resolution', 'gaussian.json'))}
    assert rows[32]['ratios'][('pds', 50)] == pytest.approx(1.75, abs=.006)
    assert rows[256]['ratios'][('pds', 50)] == pytest.approx(2.05, abs=.006)
    assert rows[32]['ratios'][('auto', 50)] == pytest.approx(2.32, abs=.006)
    assert rows[256]['ratios'][('auto', 50)] == pytest.approx(2.60, abs=.006)


def test_committed_table_is_the_committed_results():
    """results/resolution/speedup.md is what ``python -m evaluation.resolution`` makes of the committed rows, curvature
    files and benchmarks (so it cannot go stale silently), and docs/resolution.md quotes it as it is."""
    md = os.path.join(ROOT, 'results', 'resolution', 'speedup.md')
    with open(md) as f:
        committed = f.read()
    assert committed == res.table(res.all_rows())
    with open(os.path.join(ROOT, 'docs', 'resolution.md')) as f:
        docs = f.read()
    table_lines = [line for line in committed.splitlines() if line.startswith('|')]
    assert table_lines and '\n'.join(table_lines) in docs


def test_best_sampler_cells_name_the_iterations_not_the_paper_row_a_filter_comes_from():
    from evaluation.resolution import _sampler_name
    assert _sampler_name('PDS stats α=5 (Table 2, 100 it)', 'pc:reverse_diffusion+langevin', '50') == \
        'PDS stats α=5, 50 it'
    assert _sampler_name('PDS auto', 'ald:ncsnv1', '100') == 'PDS auto, 100 it'
    assert _sampler_name('EDM stochastic', 'edm_stochastic:karras', '25') == 'EDM stochastic'
    assert _sampler_name('DPM-Solver++ 2M SDE', 'dpmpp_2m_sde', '20') == 'DPM-Solver++ 2M SDE'


def test_best_sampler_is_ranked_in_kid_across_sample_counts_and_names_the_ties():
    """A 2,000-sample point at NFE 50 against a 500-sample one at NFE 200: ranked by KID (unbiased in the count),
    whatever the count; samplers within one combined standard deviation are named after the best, the closest first;
    the same sampler at another NFE is not a tie; exact rows (std 0) have none."""
    from evaluation.resolution import _best_cells
    done = [('DPM-Solver++ 2M SDE', 50, .265, .003), ('vanilla, 100 it', 200, .268, .003),
            ('EDM stochastic', 49, .287, .003), ('DPM-Solver++ 2M SDE', 100, .266, .003),
            ('PDS auto, 50 it', 100, .280, .003), ('vanilla, 20 it', 40, float('nan'), .003)]
    cells = _best_cells(done, budgets=(40, 50, 100, 200))
    assert cells == {40: '—', 50: 'DPM-Solver++ 2M SDE (50)', 100: 'DPM-Solver++ 2M SDE (50)',
                     200: 'DPM-Solver++ 2M SDE (50) ≈ vanilla, 100 it (200)'}
    assert _best_cells([('a', 10, .1, 0.), ('b', 10, .1, 0.)], budgets=(10,)) == {10: 'a (10)'}


def test_best_sampler_counts_a_rivals_point_measured_at_another_sample_count(tmp_path):
    """C64's NFE-200 cell: the rivals study plans PDS alpha 5 at 100 PC iterations on 500 samples, and the curves
    study has measured the same setting on 2,000.  The cells rank by KID (unbiased in the count), so that row counts;
    a row at the rivals study's own count still wins over another count of the same point."""
    curves, rivals = STUDIES['c64_curves'](), STUDIES['c64_rivals']()
    sha, csv_path = _fake_model(tmp_path, curves)
    by_curves = {p.name: p for p in curves.points}
    by_rivals = {p.name: p for p in rivals.points}
    assert by_rivals['pds_a5_100it'].num_samples == 500 and by_curves['pds_a5_100it'].num_samples == 2000
    append_csv(csv_path, dict(_row(curves, by_curves['pds_a5_100it'], 156., 200, sha, 100, kid=.238),
                              sampler='pc:reverse_diffusion+langevin'))
    append_csv(csv_path, _row(rivals, by_rivals['dpmpp_2m_sde_50'], 173.8, 50, sha, 50, kid=.265))
    append_csv(csv_path, _row(rivals, by_rivals['vanilla_100it'], 190., 200, sha, 100, kid=.267))   # its own 500
    append_csv(csv_path, _row(curves, by_curves['vanilla_100it'], 177., 200, sha, 100, kid=.200))   # 2,000: not used
    row = res.learned_row('Model C64', 64, 'c64_curves', 'c64_rivals', 'PDS stats α=5 (Table 2, 100 it)',
                          'results/model_c64/curvature.npz', root=str(tmp_path))
    assert row['cells'][('best', 200)] == f'PDS stats α=5, 100 it (200) (3 of {len(rivals.points)} points so far)'
    assert row['cells'][('best', 100)].startswith('DPM-Solver++ 2M SDE (50)')
