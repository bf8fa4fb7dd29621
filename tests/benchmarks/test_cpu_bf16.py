"""benchmarks/cpu_bf16.py: fp32 and bf16 rates of a shipped model side by side, and the bf16 score's error, which
must be that of bf16 rounding (above 0: autocast acted; below 5 %: the same score)."""
import json

from benchmarks import cpu_bf16


def test_rows_name_the_model_and_the_bf16_error(tmp_path):
    import torch
    before = torch.get_num_threads()
    rows = cpu_bf16.main(['--models', 'b', '--batch', '2', '--reps', '1', '--json', str(tmp_path / 'r.json')])
    (row,) = rows
    assert row['model'] == 'b' and row['checkpoint_sha256'].startswith('38d882e2') and row['batch'] == 2
    assert row['fp32'] > 0 and row['bf16'] > 0 and row['ratio'] == row['bf16'] / row['fp32']
    assert 1e-4 < row['rel_err'] < 5e-2
    assert json.load(open(tmp_path / 'r.json'))['rows'][0]['model'] == 'b'
    assert torch.get_num_threads() == before         # the caller's thread count is left as it was


def test_the_speed_doc_quotes_the_committed_rates():
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    record = json.load(open(os.path.join(root, 'results', 'cpu_bf16', 'cpu_bf16.json')))
    text = open(os.path.join(root, 'docs', 'speed.md'), encoding='utf-8').read()
    for r in record['rows']:
        assert f"| {r['fp32']:.1f} | {r['bf16']:.1f} | {r['ratio']:.2f}x | {r['rel_err']:.1e} (" in text, r['model']
