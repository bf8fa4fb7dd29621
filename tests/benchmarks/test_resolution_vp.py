"""benchmarks/resolution_vp.py on a 16 px 1/f^2 Gaussian: the exact KL of each VP sampler behaves as derived
(vanilla PC, DDPM, DDIM and the marginal form (b) converge; the official form (a) does not), the table names the
iterations each needs, a rerun redoes nothing, and a bad size gets one line."""
import json
import os

import pytest

from benchmarks import resolution_vp as rv


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield


def test_exact_vp_errors_converge_where_derived(tmp_path, capsys):
    argv = ['--sizes', '16', '--models', 'power law', '--eps_rules', 'fixed', '--iterations', '20', '100', '1000',
            '--out', str(tmp_path)]
    assert rv.main(argv) == 0
    res = json.load(open(os.path.join(tmp_path, 'vp.json')))['16 power law fixed']
    kl = {s: {int(n): v for n, v in row.items()} for s, row in res['kl'].items()}
    assert set(kl) == set(rv.SAMPLERS) and sorted(kl['PC vanilla']) == [20, 100, 1000, 2000, 5000]
    for s in ('PC vanilla', 'PC (b) marginal alpha 5', 'DDPM vanilla', 'DDPM (b) marginal alpha 5', 'DDIM eta 0'):
        assert kl[s][1000] < 1e-4 and kl[s][1000] < kl[s][100] < kl[s][20], s
    for s in ('PC (a) official alpha 5', 'DDPM (a) official alpha 5'):      # leaves the marginals: a floor
        assert kl[s][1000] > 1e-3 and kl[s][1000] > 0.5 * kl[s][100], s
    assert 'DDIM eta 0' in capsys.readouterr().out
    md = open(os.path.join(tmp_path, 'vp.md')).read()
    assert '| 16 | power law | fixed | 0.001 |' in md and 'never' in md      # (a) never reaches KL 1e-3
    mtime = os.path.getmtime(os.path.join(tmp_path, 'vp.json'))
    assert rv.main(argv) == 0 and os.path.getmtime(os.path.join(tmp_path, 'vp.json')) == mtime   # resumed: no rerun


def test_bad_size_is_one_line(tmp_path, capsys):
    assert rv.main(['--sizes', '4', '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'expected image sides >= 8' in err[0]
