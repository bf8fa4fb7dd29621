"""``main.py --mode eval`` end to end on a tiny random NCSN with the stand-in features: records, resume, an existing
folder, errors, the defaults, and the plot."""
import csv
import json
import os

import numpy as np
import pytest

from evaluation.features import EvalError
from evaluation.results import CSV_COLUMNS
from tests.evaluation.eval_helpers import TINY, mnist_config, run_main

EVAL = ['--config', 'configs/mnist_pds.py', '--mode', 'eval', *TINY, '--fid_features', 'standin', '--device', 'cpu']


@pytest.mark.slow
def test_eval_end_to_end_resume_and_sample_dir(tiny_checkpoint, fake_mnist, tmp_path):
    work, cache, table = str(tmp_path / 'run'), str(tmp_path / 'cache'), str(tmp_path / 'results.csv')
    common = [*EVAL, '--checkpoint', tiny_checkpoint, '--workdir', work, '--num_samples', '12', '--batch_size', '4',
              '--data', fake_mnist, '--fid_cache', cache, '--results_csv', table]
    out = run_main(*common)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'FID ' in out.stdout and 'KID ' in out.stdout
    rec = json.load(open(os.path.join(work, 'eval.json')))
    assert sorted(os.listdir(os.path.join(work, 'samples'))) == sorted(f'{i}.png' for i in range(12))
    assert rec['num_samples'] == 12 and rec['iterations'] == 20 and rec['nfe'] == 20 and rec['pds'] is True
    assert rec['pds_setting'] == 'table1_20it' and rec['pds_radius'] == 0.2 and rec['pds_lam'] == 1.6
    assert rec['features'] == 'standin' and rec['fid_mode'] == 'clean'
    assert rec['config'] == 'configs/mnist_pds.py --config.model.nf=4'
    assert rec['fid'] > 0 and rec['kid'] is not None and rec['reference'] == f'data:{fake_mnist}'
    assert rec['sampler'] == 'ald:ncsn' and rec['device'] == 'cpu' and rec['sampling_seconds'] > 0
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 1 and tuple(rows[0]) == CSV_COLUMNS and float(rows[0]['fid']) == pytest.approx(rec['fid'])

    # interrupted sampling: a batch lost -> eval redoes exactly that batch and gets the same FID
    os.remove(os.path.join(work, 'batches', 'batch_000001.npz'))
    os.remove(os.path.join(work, 'samples', '5.png'))
    mtime0 = os.path.getmtime(os.path.join(work, 'samples', '0.png'))
    out = run_main(*common)
    assert out.returncode == 0, out.stderr[-3000:]
    again = json.load(open(os.path.join(work, 'eval.json')))
    assert again['fid'] == rec['fid'] and again['kid'] == rec['kid']
    assert os.path.getmtime(os.path.join(work, 'samples', '0.png')) == mtime0
    assert len(list(csv.DictReader(open(table)))) == 2

    # the same samples as an existing folder: the workdir (read by index) and its plain samples/ folder
    from runners.evaluate import run_eval
    config = mnist_config()
    os.remove(os.path.join(work, 'eval.json'))
    for k, folder in enumerate((work, os.path.join(work, 'samples'))):
        out_dir = str(tmp_path / f'score{k}')
        rec2 = run_eval(config, out_dir, sample_dir=folder, features='standin', ref=fake_mnist, fid_cache=cache,
                        progress=False)
        assert rec2['fid'] == pytest.approx(rec['fid'], abs=1e-9) and rec2['num_samples'] == 12
        assert json.load(open(os.path.join(out_dir, 'eval.json')))['fid'] == rec2['fid']
        assert not os.path.exists(os.path.join(folder, 'eval.json'))       # nothing written into the input
    with pytest.raises(EvalError, match='fewer than the 13 asked for'):
        run_eval(config, str(tmp_path / 'score2'), sample_dir=os.path.join(work, 'samples'), num_samples=13,
                 features='standin', ref=fake_mnist, fid_cache=cache, progress=False)


@pytest.mark.slow
def test_eval_errors_are_one_line(tiny_checkpoint, tmp_path):
    # MNIST has no clean-fid statistics: the error asks for the images, before any sampling
    out = run_main(*EVAL, '--checkpoint', tiny_checkpoint, '--workdir', str(tmp_path / 'w'), '--num_samples', '2')
    assert out.returncode != 0 and 'no precomputed statistics' in out.stderr and 'Traceback' not in out.stderr
    assert not os.path.exists(tmp_path / 'w' / 'samples')


def test_defaults_follow_config_eval(tiny_checkpoint, fake_mnist, tmp_path):
    """num_samples / batch_size default to config.eval (50,000 in the paper's configs), seed to config.seed."""
    from configs import mnist_pds
    from runners.evaluate import run_eval
    assert mnist_pds.get_config().eval.num_samples == 50000
    config = mnist_config(num_levels=2, n_steps_each=1)
    config.eval.num_samples, config.eval.batch_size, config.seed = 5, 2, 7
    rec = run_eval(config, str(tmp_path / 'w'), checkpoint=tiny_checkpoint, features='standin',
                   ref=f'data:{fake_mnist}', fid_cache=str(tmp_path / 'c'), progress=False)
    settings = json.load(open(tmp_path / 'w' / 'settings.json'))
    assert rec['num_samples'] == 5 and settings['batch_size'] == 2 and settings['seed'] == 7
    assert rec['iterations'] == 2 and sorted(os.listdir(tmp_path / 'w' / 'batches'))[-1] == 'batch_000002.npz'


def test_plot_fid_against_iterations(tmp_path):
    from evaluation import plot
    from evaluation.results import append_csv
    table = str(tmp_path / 'r.csv')
    for its, pds, fid in [(20, False, 80.), (20, True, 30.), (40, False, 50.), (40, True, 25.), (40, True, 20.)]:
        append_csv(table, dict(model='ncsn:ncsn MNIST 28px', iterations=its, pds=pds, fid=fid))
    append_csv(table, dict(model='ncsnv2:ncsnv2_128 LSUN/tower 128px', iterations=65, pds=True, fid=40.))
    series = plot._series(list(csv.DictReader(open(table))), 'fid')
    assert series['ncsn:ncsn MNIST 28px'] == {'vanilla': [(20, 80., 0.), (40, 50., 0.)],
                                              'PDS': [(20, 30., 0.), (40, 20., 0.)]}
    append_csv(table, dict(model='ncsn:ncsn MNIST 28px', iterations=20, nfe=39, pds=False, fid=60., kid=.05,
                           kid_std=.01, label='edm'))
    rows = list(csv.DictReader(open(table)))
    assert plot._series(rows, 'kid')['ncsn:ncsn MNIST 28px'] == {'edm': [(20, .05, .01)]}
    assert plot._series(rows, 'fid', x='nfe') == {'ncsn:ncsn MNIST 28px': {'edm': [(39, 60., 0.)]}}
    assert set(plot._series(rows, 'fid', only=('edm', 'PDS'))['ncsn:ncsn MNIST 28px']) == {'edm', 'PDS'}
    assert plot.main([table, str(tmp_path / 'fid.png')]) == 0
    from PIL import Image
    img = np.asarray(Image.open(tmp_path / 'fid.png').convert('L'))
    assert img.shape[1] > 600 and img.std() > 10        # two panels drawn
    assert plot.main([str(tmp_path / 'nope.csv'), str(tmp_path / 'x.png')]) == 2


def test_plot_names_the_labels_when_none_asked_for_is_there(tmp_path, capsys):
    """--only with a mistyped label said 'has no rows with a fid value', as if the CSV were empty."""
    from evaluation import plot
    from evaluation.results import append_csv
    table = str(tmp_path / 'r.csv')
    append_csv(table, dict(model='m', iterations=20, pds=False, fid=80.))
    append_csv(table, dict(model='m', iterations=20, pds=True, fid=30., label='PDS auto'))
    assert plot.main([table, str(tmp_path / 'x.png'), '--only', 'PDS  auto;vanila']) == 2
    assert capsys.readouterr().err.strip() == (f"error: {table!r} has no rows labelled 'PDS  auto; vanila' (--only "
                                               "takes ';'-separated labels); its labels: PDS auto; vanilla")
    assert not (tmp_path / 'x.png').exists()
    assert plot.main([table, str(tmp_path / 'x.png'), '--only', 'vanilla;not yet run']) == 0   # one is there


def test_plot_gives_every_series_its_own_style_and_draws_a_log_y_axis(tmp_path):
    """A rivals plot has a dozen series: none may share a colour with another (or with vanilla / PDS)."""
    import matplotlib.colors
    from evaluation import plot
    from evaluation.results import append_csv
    for n in (3, 12, 18):
        labels = ['vanilla', 'PDS'] + [f'sampler {i}' for i in range(n)]
        style = plot._styles(labels)
        colours = [tuple(np.round(matplotlib.colors.to_rgb(style[k]['color']), 4)) for k in labels]
        assert len(set(colours)) == len(labels), n
        assert style['vanilla']['linestyle'] == '--' and style['PDS']['color'] == 'tab:red'
    table = str(tmp_path / 'r.csv')
    for i in range(6):
        append_csv(table, dict(model='m', iterations=10, nfe=10 * (i + 1), pds=False, fid=10. ** (i / 2),
                               label=f'sampler {i}'))
    out = tmp_path / 'nfe.png'
    assert plot.main([table, str(out), '--x', 'nfe', '--logy']) == 0
    from PIL import Image
    wide = np.asarray(Image.open(out).convert('L'))
    assert wide.shape[1] > 800                                    # six series: the legend beside the axes


def test_adaptive_solver_nfe_is_recorded_from_its_batches(tiny_checkpoint, fake_mnist, tmp_path):
    """RK45's NFE is known only after it ran: the record holds the sample-weighted mean of the batches' counts."""
    from runners.evaluate import run_eval
    config = mnist_config(method='ode', ode_rtol=1e-2, ode_atol=1e-2)
    config.pds.enabled = False
    work = tmp_path / 'w'
    rec = run_eval(config, str(work), checkpoint=tiny_checkpoint, num_samples=5, batch_size=2, features='standin',
                   ref=f'data:{fake_mnist}', fid_cache=str(tmp_path / 'c'), progress=False)
    counts = [int(np.load(work / 'batches' / f'batch_{b:06d}.npz')['nfe']) for b in range(3)]
    assert rec['iterations'] is None and min(counts) > 2
    assert rec['nfe'] == pytest.approx(round((2 * counts[0] + 2 * counts[1] + counts[2]) / 5, 1))


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


def test_features_killed_midway_resume_at_their_part(tiny_checkpoint, fake_mnist, tmp_path, monkeypatch):
    """The features of a sampling workdir are computed in parts kept on disk (runners.evaluate.PART_BATCHES feature
    batches each): a run killed in its second part keeps the first, the rerun computes only the rest, and the
    result is the uninterrupted run's to the bit; the parts are removed once the whole set is saved."""
    import glob
    from evaluation import metrics
    from runners import evaluate
    from runners.evaluate import run_eval
    monkeypatch.setattr(evaluate, 'PART_BATCHES', 2)          # parts of 2 x 2 images: 3 parts for 10 samples
    config = mnist_config(n_steps_each=1)
    kw = dict(checkpoint=tiny_checkpoint, num_samples=10, batch_size=5, ref=fake_mnist, features='standin',
              fid_cache=str(tmp_path / 'cache'), progress=False, fid_batch_size=2)
    whole = run_eval(config, str(tmp_path / 'whole'), **kw)
    calls, real = [], metrics.files_features

    class Killed(BaseException):                                 # as a Ctrl-C / SIGTERM: not an Exception
        pass

    def killed_in_part_two(files, *a, **k):
        calls.append(len(files))
        if calls == [4, 4]:                                      # the first run, in its second part
            raise Killed
        return real(files, *a, **k)
    monkeypatch.setattr(metrics, 'files_features', killed_in_part_two)
    with pytest.raises(Killed):
        run_eval(config, str(tmp_path / 'w'), **kw)
    assert len(glob.glob(str(tmp_path / 'w' / 'features' / '*.part*.npz'))) == 1
    calls.clear()
    again = run_eval(config, str(tmp_path / 'w'), **kw)
    assert calls == [4, 2]                                      # parts 2 and 3 only
    assert (again['fid'], again['kid']) == (whole['fid'], whole['kid'])
    assert np.array_equal(np.load(again['features_file'])['feats'], np.load(whole['features_file'])['feats'])
    assert glob.glob(str(tmp_path / 'w' / 'features' / '*.part*.npz')) == []


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


def test_the_row_names_the_device_that_sampled():
    from runners.evaluate import _devices
    assert _devices('cpu', {'device': 'cuda'}) == 'cuda (sampling), cpu (features)'
    assert _devices('cpu', {'device': 'cpu'}) == _devices('cpu', None) == 'cpu'
