"""configs.load_file (scripts/ship_checkpoint.py --config, evaluation.curvature --config) takes ``file.py:setting``
as --config does, and a missing file is one ValueError line, not a traceback."""
import pytest


def test_config_file_with_a_setting_and_a_missing_one():
    from configs import load_file
    assert load_file('configs/ve/deadleaves64_ncsnpp.py:cpu').model.nf == 16
    assert load_file('configs/ve/deadleaves64_ncsnpp.py').model.nf == 28
    with pytest.raises(ValueError, match="config file 'configs/nope.py' does not exist"):
        load_file('configs/nope.py:cpu')


def test_half_weights_halve_the_file_and_keep_the_samples(tmp_path):
    """ship_checkpoint --half: Model A's parameters in float16 make a file half the size that loads into the float32
    network, and annealed Langevin from it (16 samples, the same noise) stays within the stated 0.011 of the float32
    weights' samples (values in [0, 1]; docstring of scripts/ship_checkpoint.py), 6e-4 on average; float32 weights
    saved the same way give the same samples exactly (so the bound measures the rounding, nothing else)."""
    import importlib.util
    import os
    import numpy as np
    import torch
    import models
    from configs import load_file
    from models.checkpoint import load_into, load_score_model, save_checkpoint
    from runners.sample import run_sample
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location('ship', os.path.join(root, 'scripts', 'ship_checkpoint.py'))
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    source = os.path.join(root, 'checkpoints', 'ncsn_mnist_cpu', 'checkpoint.pth')
    config = load_file('configs/mnist_cpu_pds.py')
    config.pds.enabled = False
    paths = {}
    for name, half in (('full', False), ('half', True)):
        net = models.create_model(config)
        load_into(net, torch.load(source, map_location='cpu', weights_only=True), config)
        if half:
            ship.half_parameters(net)
            assert all(p.dtype == torch.float16 for p in net.parameters())
        paths[name] = str(tmp_path / f'{name}.pth')
        save_checkpoint(paths[name], net, config)
    assert os.path.getsize(paths['half']) < 0.52 * os.path.getsize(paths['full'])
    samples = {}
    for name in ('source', 'full', 'half'):
        score = load_score_model(paths.get(name, source), config, use_ema=True, device='cpu')
        work = str(tmp_path / f'w_{name}')
        run_sample(config, score, work, 16, 16, 0, progress=False)
        with np.load(os.path.join(work, 'batches', 'batch_000000.npz')) as z:
            samples[name] = z['samples']
    assert np.array_equal(samples['full'], samples['source'])
    diff = np.abs(samples['half'] - samples['full'])
    assert 0 < diff.max() <= 0.011 * 1.5 and diff.mean() <= 6e-4 * 1.5


@pytest.mark.slow
def test_ship_half_without_the_resume_file(tmp_path):
    """The command line: a few training steps of a tiny NCSN++, shipped with --half --no_resume: checkpoint.pth
    (float16 parameters), train_log.csv and loss.png, no checkpoints-meta/; it samples as a checkpoint does."""
    import os
    import subprocess
    import sys
    import torch
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    work, out = tmp_path / 'work', tmp_path / 'out'
    tiny = ['--config.model.nf=8', '--config.data.image_size=16', '--config.training.batch_size=4',
            '--config.training.log_freq=1', '--config.optim.warmup=2']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, 'main.py', '--config', 'configs/ve/deadleaves64_ncsnpp.py', '--mode', 'train',
                        '--data', 'deadleaves:16', '--workdir', str(work), '--device', 'cpu',
                        '--config.training.n_iters=3', *tiny], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, 'scripts/ship_checkpoint.py', '--workdir', str(work), '--out', str(out),
                        '--half', '--no_resume'], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(os.listdir(out)) == ['checkpoint.pth', 'loss.png', 'train_log.csv']
    obj = torch.load(out / 'checkpoint.pth', map_location='cpu', weights_only=True)
    assert {t.dtype for t in obj['ema']['shadow_params']} == {torch.float16}
    r = subprocess.run([sys.executable, 'main.py', '--config', 'configs/ve/deadleaves64_ncsnpp.py', '--mode', 'sample',
                        '--checkpoint', str(out / 'checkpoint.pth'), '--workdir', str(tmp_path / 's'),
                        '--num_samples', '2', '--device', 'cpu', '--config.sampling.num_steps=5', '--config.sampling.method=edm', *tiny],
                       cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(os.listdir(tmp_path / 's' / 'samples')) == 2
