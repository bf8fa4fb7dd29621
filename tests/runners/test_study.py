"""runners/study.py: the engine of the measurement studies, run here on a tiny budget (the shipped checkpoint, the
stand-in features, a fake MNIST test split): resumable without duplicates, diverging points recorded once, stale
samples set aside, --sample_only then scoring, the default CSV under --out (never the committed results), the workdir
lock; and on the committed results: every point of every existing study is still done (its name, config, sample count
and rows unchanged), under the results folders' new names and the former ones."""
import csv
import json
import os

import pytest

from evaluation.results import read_csv
from runners import study as engine
from studies import model_a, spec
from tests.evaluation.eval_helpers import ROOT, random_images, write_idx_images

SHIPPED_A = os.path.join(ROOT, 'results', 'model_a', 'study.csv')


def _sha(path):
    import hashlib
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    write_idx_images(str(tmp_path / 'data' / 'mnist' / 't10k-images-idx3-ubyte'), random_images(24, 28, 1, seed=5))
    monkeypatch.setenv('PDS_DATA', str(tmp_path / 'data'))
    monkeypatch.chdir(tmp_path)              # where a relative default would land
    return tmp_path


def _args(root, *more):
    return ['a_map', '--samples', '4', '--csv', str(root / 'study.csv'), '--out', str(root / 'out'),
            '--fid_features', 'standin', '--fid_cache', str(root / 'cache'), '--no_progress', *more]


@pytest.mark.slow
def test_map_points_run_once_and_resume_without_duplicates(fake_data, capsys):
    root = fake_data
    only = 'g1.000_lr2e-05,g1.600_lr2e-05,g0.625_lr2e-05'
    assert engine.main(_args(root, '--only', only)) == 0
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
    assert engine.main(_args(root, '--only', only)) == 0                 # rerun: nothing new
    assert '3 of 3 points done; 0 to run' in capsys.readouterr().out
    assert len(list(csv.DictReader(open(root / 'study.csv')))) == 3
    assert engine.main(_args(root, '--list')) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 30 and sum('to do' in line for line in listed) == 27
    # at another sample count the three are to do, and --list says where they were measured (the resolution table
    # counts such a row; the FID is the row's)
    assert engine.main(_args(root, '--list', '--samples', '6')) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if not line.startswith('(')}
    fid = {r['config']: float(r['fid']) for r in rows}
    assert f"to do (measured at 4 samples: FID {fid[rows[0]['config']]:.2f})" in listed['g1.000_lr2e-05']
    assert sum('measured at 4 samples' in line for line in listed.values()) == 3
    assert listed['g2.500_lr2e-05'].endswith('to do')
    assert engine.main(_args(root, '--plot', str(root / 'map.png'))) == 0 and os.path.getsize(root / 'map.png')


def test_unknown_point_is_one_line(fake_data, capsys):
    assert engine.main(_args(fake_data, '--only', 'nope')) == 2
    assert "a_map has no points ['nope']" in capsys.readouterr().err


def test_a_diverging_point_is_recorded_once_as_infinite(fake_data):
    root = fake_data
    s = spec.Study('t', model_a.MODEL_A, (spec.Point('huge_step', 'vanilla', (
        ('pds.enabled', False), ('sampling.step_lr', 1.0)), 4),))
    logs = []
    kw = dict(features='standin', fid_cache=str(root / 'cache'), progress=False, log=logs.append)
    rows = engine.run_study(s, str(root / 's.csv'), str(root / 'out'), **kw)
    assert len(rows) == 1 and rows[0]['fid'] == 'inf' and rows[0]['step_lr'] == '1.0' and 'diverged' in logs[-1]
    assert engine.run_study(s, str(root / 's.csv'), str(root / 'out'), **kw) == rows     # not tried again
    assert '1 of 1 points done' in logs[-1]


def test_list_works_before_the_model_exists(tmp_path, capsys):
    assert engine.main(['b_curves', '--list', '--checkpoint', str(tmp_path / 'none.pth')]) == 0
    out = capsys.readouterr().out
    assert 'not found: nothing is done yet' in out and 'pds_auto_1000it' in out and out.count('to do') == 40
    assert engine.main(['b_curves', '--summary', '--checkpoint', str(tmp_path / 'none.pth')]) == 2
    assert 'not found' in capsys.readouterr().err


@pytest.mark.slow
def test_stale_samples_of_a_point_are_set_aside_not_mixed(fake_data, capsys):
    """A point's folder holding samples made with other settings (here: a config default that has changed since,
    written into its settings.json) is moved aside with a message, and the point is sampled afresh."""
    import json
    root = fake_data
    only = ['--only', 'g1.000_lr2e-05']
    assert engine.main(_args(root, *only)) == 0
    work = next((root / 'out' / 'a_map').glob('*/g1.000_lr2e-05'))
    settings = json.loads((work / 'settings.json').read_text())
    settings['config']['sampling']['s_tmax'] = 1.0
    (work / 'settings.json').write_text(json.dumps(settings))
    args = _args(root, *only)
    args[args.index('--samples') + 1] = '6'
    assert engine.main(args) == 0
    out = capsys.readouterr().out
    assert 'sampling.s_tmax: 1.0 -> 50.0' in out and f'moved to {work}.stale1' in out
    assert os.path.isdir(f'{work}.stale1') and json.loads((work / 'settings.json').read_text())['num_samples'] == 6
    rows = list(csv.DictReader(open(root / 'study.csv')))
    assert [r['num_samples'] for r in rows] == ['4', '6']


@pytest.mark.slow
def test_sample_only_then_score_is_the_same_run(fake_data, monkeypatch, capsys):
    """--sample_only draws a point's batches (e.g. on a GPU machine) and scores nothing; the study run afterwards
    finds them done and samples nothing: its row equals that of a run that sampled itself (same seeds and noise)."""
    root, only = fake_data, 'g1.600_lr2e-05'
    assert engine.main(_args(root, '--only', only, '--sample_only')) == 0
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
        assert engine.main(_args(root, '--only', only)) == 0
    first = list(csv.DictReader(open(root / 'study.csv')))
    assert first[0]['device'] == 'cpu'
    other = root / 'other'
    other.mkdir()
    assert engine.main(_args(other, '--only', only)) == 0
    again = list(csv.DictReader(open(other / 'study.csv')))
    assert len(first) == len(again) == 1 and first[0]['fid'] == again[0]['fid'] and first[0]['kid'] == again[0]['kid']


def test_a_study_without_csv_writes_under_its_out_folder_not_the_shipped_results(fake_data, capsys):
    root, before = fake_data, _sha(SHIPPED_A)
    assert engine.main(['a_map', '--samples', '4', '--only', 'g1.000_lr2e-05', '--out', str(root / 'out'),
                           '--fid_features', 'standin', '--fid_cache', str(root / 'cache'), '--no_progress']) == 0
    table = root / 'out' / 'model_a' / 'study.csv'
    assert [r['num_samples'] for r in read_csv(str(table))] == ['4']
    assert (root / 'out' / 'model_a' / 'grids' / 'a_map' / 'g1.000_lr2e-05.png').is_file()
    assert not (root / 'results').exists() and _sha(SHIPPED_A) == before
    assert f'results {table}' in capsys.readouterr().out


def test_a_study_point_that_another_run_is_working_in_is_refused(fake_data, capsys):
    from tests.runners.lock_helpers import hold_lock
    from utils.provenance import file_record
    root = fake_data
    study = model_a.a_map(4)
    point = next(p for p in study.points if p.name == 'g1.000_lr2e-05')
    sha = file_record(os.path.join(ROOT, study.model['checkpoint']))['sha256']
    with hold_lock(engine._workdir(str(root / 'out'), study, sha, point)) as pid:
        code = engine.main(['a_map', '--samples', '4', '--only', point.name, '--out', str(root / 'out'),
                               '--fid_features', 'standin', '--fid_cache', str(root / 'cache'), '--no_progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f'is in use by another run (pid {pid} on host ' in err[0]
    assert not (root / 'out' / 'model_a' / 'study.csv').exists()


# --- the committed results: every existing study still finds all its points done, and its tables unchanged ---------

# the existing studies, their point counts and where their committed rows are (results/<model>)
EXISTING = {'a_curves': 21, 'a_map': 30, 'a_rivals': 35, 'b_curves': 40, 'b_rivals': 47}
# points defined but not measured yet (none: every point of these studies has its row); a study listed here may
# leave those points pending, nothing else may
PENDING = {}


@pytest.mark.parametrize('name', sorted(EXISTING))
def test_every_point_of_the_existing_studies_is_done_in_the_committed_rows(name, capsys):
    """The engine's own done-check finds every point of every existing study in the committed CSV (same point
    names, configs, sample counts, checkpoint and features as when the rows were made), and the committed table is
    the one --summary regenerates from those rows, byte for byte."""
    from utils.provenance import file_record
    study = engine.STUDIES[name]()
    assert len(study.points) == EXISTING[name] and len({p.name for p in study.points}) == EXISTING[name]
    folder = os.path.join(ROOT, study.model['results'])
    csv_path = os.path.join(folder, 'study.csv')
    sha = file_record(os.path.join(ROOT, study.model['checkpoint']))['sha256']
    pending = {p.name for p in engine.pending(study, csv_path, sha)}
    assert pending <= PENDING.get(name, set()), sorted(pending - PENDING.get(name, set()))
    rows = engine.done_rows(csv_path, sha)
    for p in (p for p in study.points if p.name not in pending):           # made in the workdir the engine gives it (by this study or one sharing the point)
        row = rows[(spec.config_name(study, p), p.num_samples)]
        assert row['label'] == p.label
        assert any(row['workdir'] == engine._workdir(os.path.join('runs', 'study'), engine.STUDIES[other](), sha, p)
                   for other in EXISTING), (p.name, row['workdir'])
    assert engine.main([name, '--csv', csv_path, '--summary']) == 0
    assert capsys.readouterr().out == open(os.path.join(folder, f'{name}.md'), encoding='utf-8').read()


@pytest.mark.slow
def test_the_study_command_keeps_its_name(tmp_path):
    """``python -m evaluation.study`` (the shim) runs the engine: the same list as ``python -m runners.study``."""
    import subprocess
    import sys
    cmd = ['a_curves', '--list', '--csv', os.path.join('results', 'model_a', 'study.csv')]
    outs = [subprocess.run([sys.executable, '-m', module, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
            for module in ('evaluation.study', 'runners.study')]
    assert [o.returncode for o in outs] == [0, 0], outs[0].stderr[-2000:]
    assert outs[0].stdout == outs[1].stdout and outs[0].stdout.count(' FID ') == 21 and 'to do' not in outs[0].stdout


def test_the_former_results_folders_still_work(tmp_path, monkeypatch, capsys):
    """results/mnist_cpu and results/h200 are now results/model_a and results/gpu: a command naming the former
    folder reads (and writes) the new one, with a note; an untracked default CSV under the former name is found."""
    monkeypatch.chdir(ROOT)
    assert engine.main(['a_map', '--csv', os.path.join('results', 'mnist_cpu', 'study.csv'), '--summary']) == 0
    out, err = capsys.readouterr()
    assert out == open(os.path.join(ROOT, 'results', 'model_a', 'a_map.md'), encoding='utf-8').read()
    assert 'note: results/mnist_cpu is now results/model_a' in err
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'results' / 'model_a').mkdir(parents=True)
    assert engine.current_path('results/mnist_cpu/map_20it.png') == os.path.join('results', 'model_a', 'map_20it.png')
    assert engine.current_path(str(tmp_path / 'results' / 'h200' / 'x.log')) == str(tmp_path / 'results' / 'h200' /
                                                                                    'x.log')   # no results/gpu here
    (tmp_path / 'results' / 'mnist_cpu').mkdir()                 # the former folder exists: it is used as named
    assert engine.current_path('results/mnist_cpu/study.csv') == 'results/mnist_cpu/study.csv'
    study = model_a.a_map()
    assert engine.default_csv(study, 'out') == os.path.join('out', 'model_a', 'study.csv')
    (tmp_path / 'out' / 'mnist_cpu').mkdir(parents=True)
    (tmp_path / 'out' / 'mnist_cpu' / 'study.csv').write_text('')
    capsys.readouterr()
    assert engine.default_csv(study, 'out') == os.path.join('out', 'mnist_cpu', 'study.csv')
    assert 'note: using out/mnist_cpu/study.csv' in capsys.readouterr().err
    (tmp_path / 'out' / 'model_a').mkdir()
    (tmp_path / 'out' / 'model_a' / 'study.csv').write_text('')
    assert engine.default_csv(study, 'out') == os.path.join('out', 'model_a', 'study.csv')


# --- Model C32 (studies/model_c.py): one tiny end-to-end run with the shipped checkpoint ----------------------------

def test_c32_points_sample_with_the_shipped_checkpoint_and_feed_the_spectrum_check(tmp_path, capsys):
    """c32_curves' vanilla and automatic-PDS points at 10 iterations (NFE 20), 4 samples each, drawn by the engine
    with the shipped C32 checkpoint into a tmp --out (--sample_only: scoring needs the Inception features of the
    10,000 held-out dead leaves); then the spectrum check reads the point's workdir and finds the held-out images
    of its config's law.  About 4 s here under load."""
    import json
    import numpy as np
    from evaluation import spectrum
    from utils.provenance import file_record
    out = tmp_path / 'out'
    only = 'vanilla_10it,pds_auto_10it'
    assert engine.main(['c32_curves', '--samples', '4', '--only', only, '--sample_only', '--out', str(out),
                        '--no_progress']) == 0
    logs = capsys.readouterr().out
    assert '[1/2] vanilla_10it: 4 samples drawn on cpu' in logs and '[2/2] pds_auto_10it: 4 samples' in logs
    study = engine.STUDIES['c32_curves'](4)
    sha = file_record(os.path.join(ROOT, study.model['checkpoint']))['sha256']
    images = {}
    for p in study.points:
        work = engine._workdir(str(out), study, sha, p)
        assert os.path.isdir(work) == (p.name in only.split(','))
        if os.path.isdir(work):
            images[p.name], _ = spectrum.read_images(work)
            config = json.load(open(os.path.join(work, 'settings.json')))['config']
            assert (config['data']['image_size'], config['pds']['enabled']) == (32, p.name != 'vanilla_10it')
    assert images['vanilla_10it'].shape == (4, 32, 32, 3) and images['vanilla_10it'].dtype == np.uint8
    assert not np.array_equal(images['vanilla_10it'], images['pds_auto_10it'])   # same seeds, PDS changed them
    assert not (tmp_path / 'out' / 'model_c32' / 'study.csv').exists()              # nothing scored
    work = engine._workdir(str(out), study, sha, next(p for p in study.points if p.name == 'vanilla_10it'))
    code = spectrum.main([work, '--ref', 'deadleaves:200', '--json', str(tmp_path / 's.json')])
    r = json.loads((tmp_path / 's.json').read_text())
    assert code == (0 if r['passed'] else 1) and (r['n_samples'], r['n_reference'], len(r['bands'])) == (4, 200, 7)
    assert "seed 1 (test), 200 images (the law of the samples' config)" in r['reference_source']


# --- Model D (studies/model_d.py): tiny end-to-end runs with a random-weights checkpoint ----------------------------

def _random_model_d(tmp_path):
    """A random-weights DDPM++ of Model D's config (configs/vp/mnist_ddpmpp_cpu.py) in score_sde's format."""
    import torch
    import models
    from configs.vp import mnist_ddpmpp_cpu
    from models.checkpoint import save_checkpoint
    config = mnist_ddpmpp_cpu.get_config()
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'ddpmpp_random.pth')
    save_checkpoint(ckpt, models.create_model(config), config)
    return ckpt


def _sample_model_d(tmp_path, ckpt, only):
    return engine.main(['d_curves', '--samples', '4', '--only', ','.join(only), '--sample_only', '--out',
                        str(tmp_path / 'out'), '--checkpoint', ckpt, '--no_progress'])


def test_model_d_points_sample_with_a_checkpoint_given_on_the_command_line(tmp_path, capsys):
    """Model D is not trained yet: a random-weights DDPM++ given by --checkpoint runs d_curves' PC points at 10
    iterations through the engine (--sample_only, 4 samples each): vanilla (Euler-Maruyama, no corrector), the
    marginal PDS form (b) and automatic PDS for VP (d); the workdirs are named by that checkpoint's hash, hold
    28 x 28 grey images and the point's config, and PDS changed the samples (the same seeds).  About 3 s here under
    load."""
    import json
    import numpy as np
    from evaluation import spectrum
    from utils.provenance import file_record
    ckpt = _random_model_d(tmp_path)
    only = ['vanilla_10it', 'pds_a5_marg_10it', 'pds_auto_10it']
    assert _sample_model_d(tmp_path, ckpt, only) == 0
    logs = capsys.readouterr().out
    assert all(f'[{i + 1}/3] {name}: 4 samples drawn on cpu' in logs for i, name in enumerate(only)), logs
    study = engine.STUDIES['d_curves'](4)
    sha = file_record(ckpt)['sha256']
    images = {}
    for p in study.points:
        work = engine._workdir(str(tmp_path / 'out'), study, sha, p)
        assert os.path.isdir(work) == (p.name in only)
        if os.path.isdir(work):
            images[p.name], _ = spectrum.read_images(work)
            saved = json.load(open(os.path.join(work, 'settings.json')))['config']
            assert (saved['training']['sde'], saved['sampling']['method'], saved['pds']['enabled']) == (
                'vpsde', 'pc', p.name != 'vanilla_10it')
    assert images['vanilla_10it'].shape == (4, 28, 28, 1) and images['vanilla_10it'].dtype == np.uint8
    assert all(not np.array_equal(images['vanilla_10it'], images[k]) for k in only[1:])
    assert not (tmp_path / 'out' / 'model_d' / 'study.csv').exists()                 # nothing scored


def test_model_d_ddpm_points_sample_with_a_checkpoint_given_on_the_command_line(tmp_path, capsys):
    """d_curves' DDPM points (vanilla and the official PDS form) at 10 steps of the chain, as the PC ones above."""
    ckpt = _random_model_d(tmp_path)
    code = _sample_model_d(tmp_path, ckpt, ['ddpm_10it', 'ddpm_pds_a5_10it'])
    assert code == 0, capsys.readouterr().err


def test_an_unset_reference_variable_is_named(tmp_path, monkeypatch):
    """A study whose reference names an unset environment variable says which one, in one line."""
    monkeypatch.delenv('PDS_DATA', raising=False)
    with pytest.raises(Exception) as err:
        engine.run_study(engine.STUDIES['b_curves'](), str(tmp_path / 'x.csv'), str(tmp_path / 'out'))
    assert 'needs the environment variable PDS_DATA' in str(err.value) and '\n' not in str(err.value)


@pytest.mark.slow
def test_a_point_reuses_the_first_samples_of_the_same_draws_in_another_study(fake_data, monkeypatch):
    """A point whose images another study of the same checkpoint has drawn already (same config, seed and batch
    size, more samples: a rivals study's 500-sample PC point beside the curves' 2,000-sample run) is seeded from that
    folder and only scored: no sampler call, the same row as a run that sampled its own 4 samples (also under an
    --out whose name holds glob characters).  A point of another config, or the same one at another batch size,
    samples afresh."""
    import runners.sample as sample_lib
    root = fake_data
    vanilla = (('pds.enabled', False),)
    out = str(root / 'out [a]*')
    kw = dict(features='standin', fid_cache=str(root / 'cache'), progress=False)
    big = spec.Study('curves', model_a.MODEL_A, (spec.Point('v', 'vanilla', vanilla, 6),), batch_size=2)
    small = spec.Study('rivals', model_a.MODEL_A, (spec.Point('v_small', 'vanilla', vanilla, 4),), batch_size=2)
    engine.run_study(big, str(root / 'a.csv'), out, **kw)
    calls, sample = [], sample_lib.sampling.sample
    monkeypatch.setattr(sample_lib.sampling, 'sample', lambda *a, **k: calls.append(1) or sample(*a, **k))
    logs = []
    reused = engine.run_study(small, str(root / 'a.csv'), out, log=logs.append, **kw)
    assert calls == [] and any('are the same draws' in line for line in logs), logs
    work = next((root / 'out [a]*' / 'rivals').glob('*/v_small'))
    assert sorted(os.listdir(work / 'batches')) == ['batch_000000.npz', 'batch_000001.npz']
    assert len(os.listdir(work / 'samples')) == 4
    fresh = engine.run_study(small, str(root / 'b.csv'), str(root / 'fresh'), **kw)
    assert len(calls) == 2                                    # two batches of 2, sampled
    assert reused[0]['num_samples'] == '4' and (reused[0]['fid'], reused[0]['kid']) == (fresh[0]['fid'], fresh[0]['kid'])
    # other draws: another config (PDS on), or another batch size, are not seeded
    calls.clear()
    other = spec.Study('other', model_a.MODEL_A, (spec.Point('p', 'pds', (('pds.enabled', True),), 4),), batch_size=2)
    engine.run_study(other, str(root / 'a.csv'), out, **kw)
    batch4 = spec.Study('batch4', model_a.MODEL_A, (spec.Point('v4', 'vanilla', vanilla, 4),), batch_size=4)
    engine.run_study(batch4, str(root / 'c.csv'), out, **kw)      # its own CSV: a.csv has the row
    assert len(calls) == 3


def test_seed_workdir_refuses_other_settings_and_missing_batches(tmp_path):
    """runners.sample.seed_workdir: nothing is written unless the source holds the very batches these settings draw."""
    import json
    from runners.sample import seed_workdir
    import ml_collections
    config = ml_collections.ConfigDict(dict(sampling=dict(method='ald', step_lr=2e-5), seed=7))
    src = tmp_path / 'src'
    (src / 'batches').mkdir(parents=True)
    (src / 'samples').mkdir()
    settings = dict(config=config.to_dict(), seed=7, batch_size=2, num_samples=6, use_ema=True, noise_device='cpu',
                    inputs={})
    (src / 'settings.json').write_text(json.dumps(settings))
    for b in range(3):
        (src / 'batches' / f'batch_{b:06d}.npz').write_bytes(b'x')
    for i in range(6):
        (src / 'samples' / f'{i}.png').write_bytes(b'p')
    assert not seed_workdir(str(tmp_path / 'w1'), str(src), config, 8, 2, 4)              # another seed
    assert not seed_workdir(str(tmp_path / 'w2'), str(src), config, 7, 3, 4)              # another batch size
    assert not seed_workdir(str(tmp_path / 'w3'), str(src), config, 7, 2, 8)              # more than it holds
    changed = ml_collections.ConfigDict(dict(sampling=dict(method='ald', step_lr=1e-5), seed=7))
    assert not seed_workdir(str(tmp_path / 'w4'), str(src), changed, 7, 2, 4)             # another config
    os.remove(src / 'batches' / 'batch_000001.npz')
    assert not seed_workdir(str(tmp_path / 'w5'), str(src), config, 7, 2, 4)              # a batch missing
    assert not any((tmp_path / f'w{k}').exists() or (tmp_path / f'w{k}.seeding').exists() for k in range(1, 6))
    assert seed_workdir(str(tmp_path / 'w6'), str(src), config, 7, 2, 2)                  # batch 0 is enough for 2
    written = json.loads((tmp_path / 'w6' / 'settings.json').read_text())
    assert written['num_samples'] == 2 and written['seeded_from'] == str(src)
    assert sorted(os.listdir(tmp_path / 'w6' / 'samples')) == ['0.png', '1.png']
    assert not seed_workdir(str(tmp_path / 'w6'), str(src), config, 7, 2, 2)              # exists: left alone


@pytest.mark.slow
def test_a_study_at_bf16_has_its_own_rows_and_workdirs_beside_fp32(fake_data, capsys):
    """--precision bf16 (models/speed.py) through the study engine: the point's row names the precision in its config
    (so fp32 and bf16 rows never merge, and --summary / --list at one precision show only its rows), it samples into
    <point>.bf16 (the fp32 folder is neither reused nor set aside), its images are the fp32 ones up to bf16
    rounding, and a rerun finds it done.  A bad precision is one line."""
    import numpy as np
    root = fake_data
    point = 'g1.000_lr2e-05'
    assert engine.main(_args(root, '--only', point)) == 0
    assert engine.main(_args(root, '--only', point, '--precision', 'bf16')) == 0
    rows = list(csv.DictReader(open(root / 'study.csv')))
    fp32_name = 'configs/mnist_cpu_pds.py:table1_20it --pds=false --config.sampling.step_lr=2e-05'
    assert [r['config'] for r in rows] == [fp32_name, fp32_name + ' --precision=bf16']
    work = next((root / 'out' / 'a_map').glob('*/'))
    assert sorted(os.listdir(work)) == [point, point + '.bf16']
    settings = json.load(open(work / (point + '.bf16') / 'settings.json'))
    assert settings['precision'] == 'bf16' and 'seeded_from' not in settings
    a = np.load(work / point / 'batches' / 'batch_000000.npz')
    b = np.load(work / (point + '.bf16') / 'batches' / 'batch_000000.npz')
    key = a.files[0]                                          # uint8 images
    diff = np.abs(a[key].astype(int) - b[key].astype(int))
    assert not np.array_equal(a[key], b[key]) and diff.mean() < 2, diff.mean()
    assert sorted(os.listdir(root / 'grids' / 'a_map')) == [point + '.bf16.png', point + '.png']
    capsys.readouterr()
    assert engine.main(_args(root, '--only', point, '--precision', 'bf16')) == 0
    assert '1 of 1 points done; 0 to run' in capsys.readouterr().out
    for precision, done in (('fp32', fp32_name), ('bf16', fp32_name + ' --precision=bf16')):
        assert engine.main(_args(root, '--list', '--precision', precision)) == 0
        listed = [line for line in capsys.readouterr().out.splitlines() if 'FID' in line]
        assert len(listed) == 1 and listed[0].startswith(point)
    assert engine.main(_args(root, '--list', '--precision', 'bf16', '--bf16_min_sigma', '0.1')) == 0
    assert 'FID' not in capsys.readouterr().out
    assert engine.main(_args(root, '--precision', 'fp16')) == 2
    assert capsys.readouterr().err.strip() == "error: --precision 'fp16': expected one of fp32, tf32, bf16"


def test_seed_workdir_keeps_precisions_apart(tmp_path):
    """A folder drawn at bf16 never seeds an fp32 workdir, nor an fp32 one a bf16 workdir; the same precision does."""
    import json
    import ml_collections
    from runners.sample import SETTINGS, batch_path, seed_workdir
    config = ml_collections.ConfigDict(dict(sampling=dict(method='ald', step_lr=2e-5), seed=7))
    for precision in ('fp32', 'bf16'):
        src = tmp_path / f'src_{precision}'
        os.makedirs(src / 'batches')
        settings = dict(config=config.to_dict(), seed=7, batch_size=2, use_ema=True, noise_device='cpu',
                        num_samples=2)
        if precision != 'fp32':
            settings['precision'] = precision
        (src / SETTINGS).write_text(json.dumps(settings))
        open(batch_path(str(src), 0), 'wb').write(b'x')
    for run in ('fp32', 'bf16'):
        for source in ('fp32', 'bf16'):
            work = str(tmp_path / f'{run}_from_{source}')
            seeded = seed_workdir(work, str(tmp_path / f'src_{source}'), config, 7, 2, 2, precision=run)
            assert seeded == (run == source) and os.path.isdir(work) == seeded, (run, source)


@pytest.mark.parametrize('extra,message', [
    (['--samples', '0'], "error: --samples 0: expected an integer >= 1 (samples per point; leave it out for the "
                         "study's own counts)"),
    (['--csv', '{root}'], "error: --csv '{root}' is a folder; expected a CSV file (e.g. '{root}/results.csv')"),
    (['--csv', '{root}/other.csv'], "error: --csv '{root}/other.csv' has other columns (['a', 'b']...); expected a "
                                    "results file of this project or a new path"),
    (['--csv', '{root}/other.csv/x.csv'], "error: --csv '{root}/other.csv/x.csv': cannot create its folder (a part "
                                          "of it is a file); expected a writable path"),
])
def test_bad_counts_and_results_paths_are_one_line_before_any_sampling(fake_data, capsys, extra, message):
    """--samples 0 ran the study's own counts (1,000 samples a point) instead; a --csv that is a folder, another
    file or below a file ended in a traceback at the first row, after the point's sampling."""
    root = fake_data
    (root / 'other.csv').write_text('a,b\n1,2\n')
    args = _args(root, '--only', 'g1.000_lr2e-05', *[e.format(root=root) for e in extra])   # the last flag wins
    assert engine.main(args) == 2
    assert capsys.readouterr().err.strip() == message.format(root=root)
    assert not (root / 'out').exists()


def test_list_shows_how_far_an_unfinished_point_got(fake_data, capsys):
    """--list: a point killed part way says how many of its batches are sampled (a rerun samples only the rest), one
    with every batch sampled says only its features are left."""
    root = fake_data
    sha = _sha(os.path.join(ROOT, model_a.MODEL_A['checkpoint']))
    for name, done in (('g1.000_lr2e-05', 1), ('g1.600_lr2e-05', 2)):
        d = root / 'out' / 'a_map' / sha[:8] / name
        os.makedirs(d / 'batches')
        (d / 'settings.json').write_text(json.dumps({'batch_size': 2, 'num_samples': 4}))
        for b in range(done):
            (d / 'batches' / f'batch_{b:06d}.npz').write_bytes(b'')
    assert engine.main(_args(root, '--list')) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert listed['g1.000_lr2e-05'].endswith('to do (1 of 2 batches sampled)')
    assert listed['g1.600_lr2e-05'].endswith('to do (sampled; features to do)')
    assert listed['g0.625_lr2e-05'].endswith('to do')


@pytest.mark.slow
def test_reference_only_makes_the_file_the_study_then_finds(fake_data, capsys):
    """--reference_only computes the study's reference features and nothing else (no samples, no rows); the study
    run after it finds that file by the same key instead of computing it again."""
    root = fake_data
    assert engine.main(_args(root, '--reference_only')) == 0
    assert 'are in the cache' in capsys.readouterr().out
    made = {f: os.path.getmtime(root / 'cache' / f) for f in os.listdir(root / 'cache') if f.endswith('.npz')}
    assert len(made) == 1 and not (root / 'out').exists() and not (root / 'study.csv').exists()
    assert engine.main(_args(root, '--only', 'g1.000_lr2e-05')) == 0
    assert {f: os.path.getmtime(root / 'cache' / f) for f in os.listdir(root / 'cache') if f.endswith('.npz')} == made
    assert len(list(csv.DictReader(open(root / 'study.csv')))) == 1
    capsys.readouterr()
    assert engine.main(_args(root, '--reference_only', '--sample_only')) == 2
    assert capsys.readouterr().err.strip() == ('error: --reference_only and --sample_only together would do nothing; '
                                               'expected one of them')
