"""benchmarks/precision_neutrality.py --tiny: every variant sampled with the same seeds and scored with the project's
eval, the verdict table written, a rerun redoes nothing (resumable), --summary reads the finished runs back, and
--per_sigma measures the bf16 score's error per noise level."""
import pytest

from benchmarks import precision_neutrality as pn


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield


TINY = ['--tiny', '--compile_backend', 'eager', '--num_samples', '8', '--batch_size', '4', '--quiet']


@pytest.mark.slow
def test_tiny_run_scores_every_variant_and_resumes(tmp_path):
    out = str(tmp_path)
    results = pn.main(TINY + ['--out', out])
    assert set(results) == {('tiny_ald', 'ald_3it'), ('tiny_ald', 'ald_6it'), ('tiny_pc', 'pc_4it'),
                            ('tiny_pc', 'pc_8it')}
    for recs in results.values():
        assert set(recs) == set(pn.VARIANTS)
        assert recs['compile']['kid'] == pytest.approx(recs['fp32']['kid'], abs=1e-6)   # eager backend: same run
        assert recs['bf16']['kid'] != recs['fp32']['kid']
    rows = (tmp_path / 'neutrality.csv').read_text().splitlines()
    assert len(rows) == 1 + 4 * len(pn.VARIANTS)
    table = (tmp_path / 'neutrality.md').read_text()
    assert table.count('| reference |') == 4 and '| bf16_min0.1 |' in table

    again = pn.main(TINY + ['--out', out])                      # finished runs are read back, not redone
    assert (tmp_path / 'neutrality.csv').read_text().splitlines() == rows
    assert again[('tiny_pc', 'pc_8it')]['bf16']['kid'] == results[('tiny_pc', 'pc_8it')]['bf16']['kid']
    summary = pn.main(TINY + ['--out', out, '--summary', '--variants', 'fp32', 'bf16'])
    assert set(summary[('tiny_ald', 'ald_3it')]) == {'fp32', 'bf16'}


def test_a_committed_row_of_the_same_checkpoint_stands_in_for_its_deleted_folder(tmp_path):
    """A fresh clone has the committed rows but not the sample folders: adding a variant must not redo fp32 (hours
    at 1000 iterations), unless the checkpoint changed since the row was written."""
    import shutil
    out = str(tmp_path)
    args = TINY + ['--out', out, '--models', 'tiny_pc', '--points', 'pc_4it']
    first = pn.main(args + ['--variants', 'fp32'])
    rows = (tmp_path / 'neutrality.csv').read_text().splitlines()
    shutil.rmtree(tmp_path / 'tiny_pc' / 'pc_4it' / 'fp32')
    again = pn.main(args + ['--variants', 'fp32', 'bf16'])
    after = (tmp_path / 'neutrality.csv').read_text().splitlines()
    assert after[:len(rows)] == rows and len(after) == len(rows) + 1 and ',bf16,' in after[-1]   # fp32 not redone
    assert again[('tiny_pc', 'pc_4it')]['fp32']['kid'] == first[('tiny_pc', 'pc_4it')]['fp32']['kid']
    shutil.rmtree(tmp_path / 'tiny_pc' / 'pc_4it' / 'fp32', ignore_errors=True)
    ckpt = tmp_path / 'tiny' / 'pc.pth'
    ckpt.write_bytes(b'')          # another checkpoint file: its row no longer applies; tiny_setup writes a new one
    ckpt.unlink()
    pn.main(args + ['--variants', 'fp32'])
    assert len((tmp_path / 'neutrality.csv').read_text().splitlines()) == len(after) + 1       # fp32 redone


def test_the_summary_leaves_out_a_committed_row_of_another_checkpoint(tmp_path, capsys):
    """--summary reads committed rows back only when their checkpoint sha256 is the current file's: a row of
    another checkpoint is named in a note and left out of the verdict table."""
    import shutil
    out = str(tmp_path)
    args = TINY + ['--out', out, '--models', 'tiny_pc', '--points', 'pc_4it']
    first = pn.main(args + ['--variants', 'fp32'])
    shutil.rmtree(tmp_path / 'tiny_pc' / 'pc_4it' / 'fp32')
    summary = pn.main(args + ['--variants', 'fp32', '--summary'])
    assert summary[('tiny_pc', 'pc_4it')]['fp32']['kid'] == first[('tiny_pc', 'pc_4it')]['fp32']['kid']
    csv_path = tmp_path / 'neutrality.csv'
    header, row = csv_path.read_text().splitlines()
    sha = row.split(',')[header.split(',').index('checkpoint_sha256')]
    csv_path.write_text(header + '\n' + row.replace(sha, 'f' * 64) + '\n')
    capsys.readouterr()
    assert pn.main(args + ['--variants', 'fp32', '--summary']) == {}
    assert f'note: tiny_pc pc_4it fp32: the row of neutrality.csv was made from checkpoint sha256 ffffffffffff, ' \
           f'not' in capsys.readouterr().out
    assert '| tiny_pc |' not in (tmp_path / 'neutrality.md').read_text()


def test_verdict_is_one_combined_standard_deviation():
    ref = {'kid': 0.010, 'kid_std': 0.003}
    assert pn.verdict({'kid': 0.014, 'kid_std': 0.004}, ref)[2]          # 0.004 <= 0.005
    assert not pn.verdict({'kid': 0.016, 'kid_std': 0.004}, ref)[2]      # 0.006 > 0.005


def test_per_sigma_tiny(tmp_path, capsys):
    pn.main(['--tiny', '--out', str(tmp_path), '--per_sigma', '--models', 'tiny_pc'])
    out = capsys.readouterr().out
    assert 'tiny_pc: relative L2 error of the bf16 score against fp32' in out
    assert out.count('  sigma ') == 10


def test_the_mnist_models_need_pds_data(tmp_path, monkeypatch):
    monkeypatch.delenv('PDS_DATA', raising=False)
    with pytest.raises(SystemExit, match='needs PDS_DATA'):
        pn.main(['--out', str(tmp_path)])
    with pytest.raises(SystemExit, match='--models c64: expected a, b, c32'):
        pn.main(['--out', str(tmp_path), '--models', 'c64'])


def test_points_runs_only_the_named_points_and_names_a_wrong_one(tmp_path):
    results = pn.main(TINY + ['--out', str(tmp_path), '--models', 'tiny_pc', '--points', 'pc_4it',
                              '--variants', 'fp32'])
    assert set(results) == {('tiny_pc', 'pc_4it')}
    with pytest.raises(SystemExit, match=r'--points pc_5it: the models tiny_pc have the points pc_4it, pc_8it'):
        pn.main(TINY + ['--out', str(tmp_path), '--models', 'tiny_pc', '--points', 'pc_5it'])


def test_the_speed_doc_quotes_the_committed_neutrality_rows():
    """docs/speed.md's neutrality table is results/neutrality/neutrality.csv, rounded as quoted (FID .2f, KID .4f),
    each variant's verdict by :func:`pn.verdict` as the table says, every committed row quoted."""
    import csv
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rows = {r['workdir'].split('neutrality/', 1)[1]: r
            for r in csv.DictReader(open(os.path.join(root, 'results', 'neutrality', 'neutrality.csv')))}
    assert {r['num_samples'] for r in rows.values()} == {'500'} and {r['device'] for r in rows.values()} == {'cpu'}
    text = open(os.path.join(root, 'docs', 'speed.md'), encoding='utf-8').read()
    table = text[text.index('| model, point | fp32 FID / KID |'):].split('\n\n')[0].splitlines()[2:]
    points = {'A': ('a', {20: 'ald_20it', 100: 'ald_100it'}), 'B': ('b', {100: 'pc_100it', 1000: 'pc_1000it'}),
              'C32': ('c32', {100: 'pc_100it', 1000: 'pc_1000it'})}
    checked = 0
    for line in table:
        cells = [c.strip() for c in line.strip('|').split('|')]
        key, its = re.match(r'(A|B|C32)\b.*?(\d+) it\.', cells[0]).groups()
        model, names = points[key]
        for variant, cell in zip(('fp32', 'bf16', 'compile', 'bf16_min0.1'), cells[1:]):
            if cell == '—':                              # not run (yet)
                assert f'{model}/{names[int(its)]}/{variant}' not in rows, (key, its, variant)
                continue
            fid, kid = re.match(r'([\d.]+) / ([\d.]+)', cell).groups()
            row = rows[f'{model}/{names[int(its)]}/{variant}']
            assert (f'{float(row["fid"]):.2f}', f'{float(row["kid"]):.4f}') == (fid, kid), (key, its, variant)
            ref = rows[f'{model}/{names[int(its)]}/fp32']
            rec = {k: float(row[k]) for k in ('kid', 'kid_std')}
            neutral = pn.verdict(rec, {k: float(ref[k]) for k in ('kid', 'kid_std')})[2]
            assert neutral == ('NOT neutral' not in cell), (key, its, variant)
            checked += 1
    assert checked == len(rows)                         # every committed row is quoted
