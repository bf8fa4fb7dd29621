"""benchmarks/bf16_training.py on a tiny random model: the three runs continue from one start, bf16 really trains
under autocast (its weights differ from fp32's, a little), the reseeded run sees other batches, the verdict is the
stated rule, and a rerun resumes instead of training again."""
import json

import pytest

from benchmarks import bf16_training as bt


@pytest.mark.slow
def test_tiny_runs_the_three_arms_and_states_the_rule(tmp_path, capsys):
    out = str(tmp_path / 'b')
    record = bt.main(['--tiny', '--out', out, '--steps', '20', '--heldout', '16', '--quiet'])
    assert record['start_step'] == 0 and record['steps'] == 20
    for which in ('raw', 'ema'):
        v = record['verdict'][which]
        assert v['bf16_delta'] != 0 and abs(v['bf16_delta']) < 1e-2 * v['fp32']      # autocast acted, a little
        assert v['reseeded_delta'] != 0
        assert v['neutral'] == (abs(v['bf16_delta']) <= abs(v['reseeded_delta']))
    train = record['train']
    assert train['windows'] == 2 and train['fp32_reseeded'] != train['fp32']
    assert json.load(open(tmp_path / 'b' / 'bf16_training.json'))['verdict'] == json.loads(json.dumps(record['verdict']))
    logs = {arm: (tmp_path / 'b' / arm / 'train_log.csv').read_bytes() for arm in bt.ARMS}
    again = bt.main(['--tiny', '--out', out, '--steps', '20', '--heldout', '16', '--quiet'])   # done: no new steps
    assert {arm: (tmp_path / 'b' / arm / 'train_log.csv').read_bytes() for arm in bt.ARMS} == logs
    assert again['verdict'] == record['verdict']


def test_the_training_doc_quotes_the_committed_result():
    """docs/training.md's bf16 table is results/bf16_training/bf16_training.json, as rounded there."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    record = json.load(open(os.path.join(root, 'results', 'bf16_training', 'bf16_training.json')))
    text = open(os.path.join(root, 'docs', 'training.md'), encoding='utf-8').read()
    assert record['start_step'] == 6595 and record['steps'] == 200 and record['heldout'] == 512
    for which in ('raw', 'ema'):
        v = record['verdict'][which]
        cells = (f"{v['fp32']:.3f} | {v['bf16_delta']:+.4f} ± {v['bf16_se']:.4f} | "
                 f"{v['reseeded_delta']:+.4f} ± {v['reseeded_se']:.4f} | {v['fp32_moved']:+.3f} | "
                 + ('yes' if v['neutral'] else '**no**'))
        assert cells in text, cells
