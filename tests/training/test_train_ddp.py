"""Two processes under torchrun (gloo, CPU): same parameters on both ranks, equal to a one-process run."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from training import run_train
from train_helpers import blobs, tiny_ncsnv2, trainable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SCRIPT = textwrap.dedent('''
    import os, sys
    import torch
    from train_helpers import blobs, trainable
    from test_train_ddp import config
    from training import run_train
    torch.set_num_threads(1)
    result = run_train(config(), sys.argv[1], blobs(10), progress=False)
    torch.save({'params': trainable(result['net']), 'ema': result['ema'].shadow_params,
                'world': int(os.environ['WORLD_SIZE'])},
               os.path.join(sys.argv[2], 'rank%s.pt' % os.environ['RANK']))
''')


def config():
    c = tiny_ncsnv2(batch=4, steps=3, log_freq=1, snapshot_freq=2)
    c.data.uniform_dequantization = True        # random flips are on too (NCSNv2 default)
    return c


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    script = tmp_path / 'ddp_train.py'
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE]), OMP_NUM_THREADS='1')
    env.pop('RANK', None), env.pop('WORLD_SIZE', None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script),
           str(tmp_path / 'run'), str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
    assert ranks[0]['world'] == 2
    for a, b in zip(ranks[0]['params'] + ranks[0]['ema'], ranks[1]['params'] + ranks[1]['ema']):
        assert torch.equal(a, b)
    # Rank 0 wrote the files, once.
    assert sorted(p.name for p in (tmp_path / 'run' / 'checkpoints').iterdir()) == \
        ['checkpoint_2.pth', 'checkpoint_3.pth']
    lines = (tmp_path / 'run' / 'train_log.csv').read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith('step,loss')
    # The global batch is split, not duplicated: a one-process run on the same data gives the same result
    # (up to the order of the gradient all-reduce).
    single = run_train(config(), str(tmp_path / 'single'), blobs(10), progress=False)
    for a, b in zip(ranks[0]['params'], trainable(single['net'])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    single_log = (tmp_path / 'single' / 'train_log.csv').read_text().splitlines()
    for ddp_row, one_row in zip(lines[1:], single_log[1:]):
        torch.testing.assert_close(float(ddp_row.split(',')[1]), float(one_row.split(',')[1]), rtol=1e-4, atol=0)
