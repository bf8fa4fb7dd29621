"""torchrun with 2 CPU processes (gloo): ``main.py --mode eval`` splits the batches between the ranks without overlap,
the images are byte for byte those of one process, and rank 0 scores once, after both ranks finished."""
import ast
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from runners.evaluate import run_eval
from tests.evaluation.eval_helpers import ONE_THREAD, ROOT, TINY, mnist_config


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _pngs(folder):
    return {name: open(os.path.join(folder, name), 'rb').read() for name in os.listdir(folder)}


@pytest.mark.slow
def test_torchrun_two_ranks_split_batches_and_match_one_process(tiny_checkpoint, fake_mnist, tmp_path):
    cache = str(tmp_path / 'cache')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
           '--master_addr=127.0.0.1', f'--master_port={_free_port()}', os.path.join(ROOT, 'main.py'),
           '--config', 'configs/mnist_pds.py', '--mode', 'eval', *TINY, '--config.sampling.num_levels=3',
           '--config.sampling.n_steps_each=1', '--checkpoint', tiny_checkpoint, '--workdir', str(tmp_path / 'two'),
           '--num_samples', '7', '--batch_size', '2', '--fid_features', 'standin', '--device', 'cpu',
           '--data', fake_mnist, '--fid_cache', cache, '--results_csv', str(tmp_path / 'r.csv')]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, **ONE_THREAD))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = re.findall(r'rank (\d)/2: sampled \d+ batches (\[[\d, ]*\])', out.stdout)   # the ranks' lines may interleave
    done = {int(r): ast.literal_eval(b) for r, b in lines}
    assert done == {0: [0, 2], 1: [1, 3]}                                     # batch b on rank b % 2
    assert sorted(done[0] + done[1]) == [0, 1, 2, 3]                          # complete, no duplicates
    assert out.stdout.count('FID ') == 1                                      # scored once, by rank 0
    two = json.load(open(tmp_path / 'two' / 'eval.json'))
    assert two['world_size'] == 2 and len(open(tmp_path / 'r.csv').read().splitlines()) == 2

    config = mnist_config(num_levels=3, n_steps_each=1)
    one = run_eval(config, str(tmp_path / 'one'), checkpoint=tiny_checkpoint, num_samples=7, batch_size=2,
                   features='standin', ref=f'data:{fake_mnist}', fid_cache=cache, progress=False)
    pngs = _pngs(tmp_path / 'one' / 'samples')
    assert sorted(pngs) == sorted(f'{i}.png' for i in range(7))
    assert pngs == _pngs(tmp_path / 'two' / 'samples')                       # byte-identical
    assert one['fid'] == two['fid'] and one['kid'] == two['kid']
