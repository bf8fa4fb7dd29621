"""scripts/pack_samples.py: a sample-only run's points travel back within the device tool's limits (files, bytes per
file, bytes in all), whole or not at all, costliest first, and unpack into workdirs that the study then finds done;
bad or conflicting input gets one line and writes nothing.  scripts/device_tree.py: what a device call carries."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ps = _load('pack_samples')


def _point(root, rel, num_samples, batch_size, nfe, side=16, finished=None, seed=0):
    """A sampling workdir as runners/sample.py writes it: settings.json, batches/batch_<b>.npz (incompressible
    random images, so sizes are predictable), samples/<i>.png stand-ins."""
    d = os.path.join(root, *rel.split('/'))
    os.makedirs(os.path.join(d, 'batches'))
    os.makedirs(os.path.join(d, 'samples'))
    with open(os.path.join(d, 'settings.json'), 'w') as f:
        json.dump(dict(batch_size=batch_size, num_samples=num_samples, nfe=nfe, seed=seed), f)
    rng = np.random.default_rng(seed)
    n_batches = -(-num_samples // batch_size)
    for b in range(n_batches if finished is None else finished):
        k = min(batch_size, num_samples - b * batch_size)
        np.savez(os.path.join(d, 'batches', f'batch_{b:06d}.npz'),
                 images=rng.integers(0, 256, (k, side, side, 3), dtype=np.uint8),
                 samples=rng.standard_normal((k, 3, side, side)).astype(np.float32),
                 indices=np.arange(b * batch_size, b * batch_size + k), nfe=nfe, seconds=1.5 * (b + 1))
    return d


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_points_travel_whole_within_the_limits_costliest_first_and_unpack_to_the_same_batches(tmp_path):
    src, out, dest = tmp_path / 'src', tmp_path / 'out', tmp_path / 'dest'
    # 16 px RGB: 768 bytes an image, random so deflate cannot shrink it; a 40-image batch is ~31 kB
    big = _point(src, 'st/abc/long', 120, 40, nfe=1000)                 # 3 batches, ~92 kB; cost 120,000
    _point(src, 'st/abc/mid', 80, 40, nfe=100, seed=1)            # 2 batches, ~62 kB; cost 8,000
    small = _point(src, 'st/abc/short', 40, 40, nfe=10, seed=2)         # 1 batch, ~31 kB; cost 400
    _point(src, 'st/abc/half', 80, 40, nfe=2000, finished=1, seed=3)    # unfinished: never travels
    log = []
    # two files of 70 kB: 'long' spans both (2 + 1 batches), 'mid' no longer fits whole, 'short' does
    packed, left = ps.pack(str(src), str(out), max_files=2, max_bytes=10 ** 6, file_bytes=70_000, log=log.append)
    assert packed == ['st/abc/long', 'st/abc/short']
    assert set(left) == {'st/abc/mid', 'st/abc/half'}
    assert left['st/abc/half'].startswith('unfinished (1 of 2 batches)') and left['st/abc/mid'].startswith('no room')
    zips = sorted(os.listdir(out))
    assert zips == ['samples_0.zip', 'samples_1.zip']
    assert all(os.path.getsize(out / z) <= 70_000 for z in zips)

    # one zip alone holds only part of 'long': refused, nothing written
    with pytest.raises(ps.PackError, match="point 'st/abc/long': 2 of 3 batches in the files given"):
        ps.unpack([str(out / 'samples_0.zip')], str(dest))
    assert not dest.exists()

    assert ps.unpack([str(out)], str(dest), log=log.append) == ['st/abc/long', 'st/abc/short']
    for rel, d in (('st/abc/long', big), ('st/abc/short', small)):
        for name in sorted(os.listdir(os.path.join(d, 'batches'))):
            before, after = _arrays(os.path.join(d, 'batches', name)), _arrays(dest / rel / 'batches' / name)
            assert set(after) == {'images', 'indices', 'nfe', 'seconds'}       # the raw floats stay behind
            assert all(np.array_equal(before[k], after[k]) for k in after)
        assert (dest / rel / 'settings.json').read_bytes() == open(os.path.join(d, 'settings.json'), 'rb').read()
    assert not (dest / 'st' / 'abc' / 'mid').exists()
    # again: the same points are there already, and the source (with its raw samples) counts as the same too
    assert ps.unpack([str(out)], str(dest)) == []
    assert ps.unpack([str(out)], str(src)) == []
    # a second pack into the same folder would sit beside the first one's files: refused
    with pytest.raises(ps.PackError, match='already holds samples_0.zip, samples_1.zip of an earlier pack'):
        ps.pack(str(src), str(out), log=log.append)


def test_unpack_refuses_other_finished_batches_and_clears_stale_images_of_unfinished_ones(tmp_path):
    src, out = tmp_path / 'src', tmp_path / 'out'
    _point(src, 's/p', 80, 40, nfe=50)
    ps.pack(str(src), str(out), log=lambda *_: None)
    # a point here with other finished batches (same name, sampled on this machine with another seed): refused
    other = tmp_path / 'other'
    _point(other, 's/p', 80, 40, nfe=50, seed=7)
    before = sorted((p, os.path.getmtime(p)) for p in map(str, (other / 's' / 'p' / 'batches').iterdir()))
    with pytest.raises(ps.PackError, match='already holds 2 finished batches that differ'):
        ps.unpack([str(out)], str(other))
    assert sorted((p, os.path.getmtime(p)) for p in map(str, (other / 's' / 'p' / 'batches').iterdir())) == before
    # a point here with no finished batch (a CPU run cut short): its images go, the packed point comes in
    cut = tmp_path / 'cut'
    d = _point(cut, 's/p', 80, 40, nfe=50, finished=0, seed=9)
    open(os.path.join(d, 'samples', '0.png'), 'wb').write(b'an image of an unfinished batch of another run')
    assert ps.unpack([str(out)], str(cut)) == ['s/p']
    assert os.listdir(os.path.join(d, 'samples')) == []
    assert len(os.listdir(os.path.join(d, 'batches'))) == 2
    # a run working there (another process holds its lock): refused
    busy = tmp_path / 'busy'
    d = _point(busy, 's/p', 80, 40, nfe=50, finished=0)
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; from utils.lock import acquire; '
                               'acquire(sys.argv[1]); print("held", flush=True); time.sleep(60)', d],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(ps.PackError, match='a run is working there'):
            ps.unpack([str(out)], str(busy))
    finally:
        holder.kill()
        holder.wait()


def test_bad_input_gets_one_line(tmp_path):
    def cli(*args):
        r = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'pack_samples.py'), *args],
                           capture_output=True, text=True, timeout=120)
        return r.returncode, r.stderr.strip()
    rc, err = cli('pack', str(tmp_path / 'none'), str(tmp_path / 'out'))
    assert rc == 1 and err.startswith('error:') and 'is not a folder' in err and len(err.splitlines()) == 1
    rc, err = cli('unpack', str(tmp_path / 'none.zip'), str(tmp_path / 'dest'))
    assert rc == 1 and 'does not exist' in err and len(err.splitlines()) == 1
    (tmp_path / 'samples_0.zip').write_bytes(b'not a zip')
    rc, err = cli('unpack', str(tmp_path / 'samples_0.zip'), str(tmp_path / 'dest'))
    assert rc == 1 and 'cannot be read' in err and len(err.splitlines()) == 1
    import zipfile
    with zipfile.ZipFile(tmp_path / 'samples_1.zip', 'w') as z:
        z.writestr('../../etc/settings.json', '{}')
    rc, err = cli('unpack', str(tmp_path / 'samples_1.zip'), str(tmp_path / 'dest'))
    assert rc == 1 and 'outside its folder' in err and not (tmp_path / 'dest').exists()


@pytest.mark.slow
def test_a_study_point_sampled_elsewhere_is_found_done_here(tmp_path):
    """End to end with the shipped C32 model: sample-only into one root, pack, unpack into another; a sampling run
    there finds every batch done and draws nothing (its batch files keep no raw samples: not rewritten)."""
    def study(out):
        r = subprocess.run([sys.executable, '-m', 'evaluation.study', 'c32_curves', '--sample_only', '--samples', '4',
                            '--only', 'vanilla_10it', '--out', str(out), '--no_progress'], cwd=ROOT,
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert r.returncode == 0, r.stderr[-2000:]
    study(tmp_path / 'gpu')
    ps.pack(str(tmp_path / 'gpu'), str(tmp_path / 'back'), log=lambda *_: None)
    assert ps.unpack([str(tmp_path / 'back')], str(tmp_path / 'here'), log=lambda *_: None)
    batch = next((tmp_path / 'here').rglob('batch_000000.npz'))
    stamp = os.path.getmtime(batch)
    study(tmp_path / 'here')
    assert os.path.getmtime(batch) == stamp and 'samples' not in _arrays(batch)
    assert len(list(batch.parent.parent.joinpath('samples').glob('*.png'))) == 4     # the images are restored


def test_device_tree_counts_what_travels(tmp_path):
    dt = _load('device_tree')
    files = dt.tree_files()
    assert 'README.md' in files and not any(n.startswith('runs/') for n in files)   # ignored folders stay behind
    aside = set(dt.set_aside_names())
    assert any('/checkpoints-meta/' in n for n in aside) and any(n.endswith('.png') for n in aside)
    assert not any(n.endswith(('.py', '.csv', 'checkpoint.pth')) for n in aside)    # code, rows, weights travel
    # without the shipped resume files and result images (--drop_resume) the tree leaves room for a carried run
    # folder (~20 MB) or the fixtures (14 MB): a larger tree would make the GPU session's calls fail before they start
    kept = sum(s for n, s in files.items() if n not in aside)
    assert kept < 44 * 2 ** 20, 'the tree that travels to the GPU machine has grown'


def test_an_unfinished_cpu_point_travels_partly_and_resumes_there_as_one_run(tmp_path):
    """--partial: a CPU sampling run cut short (2 of 3 batches; its run.lock left behind by the kill) is packed with
    the batches it finished, unpacked on another machine, and resumed there: only the missing batch is drawn, and it
    is the batch an uninterrupted run draws.  Without --partial it stays behind; a GPU point is never packed partly."""
    import torch

    import models
    from configs.ncsn import mnist
    from models.checkpoint import save_checkpoint
    config = mnist.get_config()
    config.model.nf = 4
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'checkpoint.pth')
    save_checkpoint(ckpt, models.create_model(config), config)

    def sample(work):
        r = subprocess.run([sys.executable, 'main.py', '--config', 'configs/mnist_pds.py', '--mode', 'sample',
                            '--config.model.nf=4', '--config.sampling.n_steps_each=1', '--checkpoint', ckpt,
                            '--workdir', str(work), '--num_samples', '5', '--batch_size', '2'], cwd=ROOT,
                           capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert r.returncode == 0, r.stderr[-2000:]
        return r

    whole = tmp_path / 'here' / 'st' / 'p'
    sample(whole)
    cut = tmp_path / 'there' / 'st' / 'p'                      # the same run, killed after its second batch
    os.makedirs(cut.parent)
    import shutil
    shutil.copytree(whole, cut)
    os.remove(cut / 'batches' / 'batch_000002.npz')
    (cut / 'run.lock').write_text('{"pid": 1, "host": "gone"}\n')
    packed, left = ps.pack(str(tmp_path / 'there'), str(tmp_path / 'full'), log=lambda *_: None)
    assert packed == [] and left == {'st/p': 'unfinished (2 of 3 batches)'}
    packed, _ = ps.pack(str(tmp_path / 'there'), str(tmp_path / 'back'), log=lambda *_: None, partial=True)
    assert packed == ['st/p']
    dest = tmp_path / 'new_machine'
    log = []
    assert ps.unpack([str(tmp_path / 'back')], str(dest), log=log.append) == ['st/p']
    assert 'unfinished' in log[-1]
    there = dest / 'st' / 'p'
    assert sorted(os.listdir(there / 'batches')) == ['batch_000000.npz', 'batch_000001.npz']
    out = sample(there)
    assert sorted(os.listdir(there / 'batches')) == sorted(os.listdir(whole / 'batches'))
    for b in range(3):
        a, c = _arrays(whole / 'batches' / f'batch_{b:06d}.npz'), _arrays(there / 'batches' / f'batch_{b:06d}.npz')
        assert np.array_equal(a['images'], c['images']) and np.array_equal(a['indices'], c['indices'])
    assert len(list((there / 'samples').glob('*.png'))) == 5, out.stderr
    # a point cut short on a GPU stays there
    settings = json.loads((cut / 'settings.json').read_text())
    (cut / 'settings.json').write_text(json.dumps(dict(settings, device='cuda:0')))
    _, left = ps.pack(str(tmp_path / 'there'), str(tmp_path / 'gpu'), log=lambda *_: None, partial=True)
    assert 'sampled on cuda:0' in left['st/p']


def test_unfinished_only_carries_the_unfinished_cpu_points_and_names_the_finished_ones(tmp_path):
    """--unfinished_only (implies --partial): a finished point stays behind, named; the unfinished CPU point travels
    with its finished batches and unpacks to the same bytes; the CLI takes the flag."""
    _point(str(tmp_path / 'runs'), 'st/done', num_samples=4, batch_size=2, nfe=10)
    _point(str(tmp_path / 'runs'), 'st/cut', num_samples=6, batch_size=2, nfe=10, finished=2, seed=1)
    packed, left = ps.pack(str(tmp_path / 'runs'), str(tmp_path / 'out'), log=lambda *_: None, unfinished_only=True)
    assert packed == ['st/cut']
    assert left == {'st/done': 'finished (--unfinished_only carries the unfinished points only)'}
    assert ps.unpack([str(tmp_path / 'out')], str(tmp_path / 'dest'), log=lambda *_: None) == ['st/cut']
    there = tmp_path / 'dest' / 'st' / 'cut' / 'batches'
    assert sorted(os.listdir(there)) == ['batch_000000.npz', 'batch_000001.npz']
    for n in os.listdir(there):
        a, b = _arrays(there / n), _arrays(tmp_path / 'runs' / 'st' / 'cut' / 'batches' / n)
        assert np.array_equal(a['images'], b['images']) and np.array_equal(a['indices'], b['indices'])
    assert not (tmp_path / 'dest' / 'st' / 'done').exists()
    assert ps.main(['pack', str(tmp_path / 'runs'), str(tmp_path / 'cli'), '--unfinished_only']) == 0
    with __import__('zipfile').ZipFile(tmp_path / 'cli' / 'samples_0.zip') as z:
        assert {n.split('/')[1] for n in z.namelist()} == {'cut'}
