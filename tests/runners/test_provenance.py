"""Resumed sampling never mixes inputs: settings.json records the resolved checkpoint file and the sha256 of it and
of every file the sampler reads; a rerun whose inputs changed is refused, naming what changed, and writes nothing."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from models.checkpoint import load_score_model
from runners.sample import SamplingError, run_sample
from tests.runners.runner_helpers import (FREQ, empirical_config, empirical_model, ncsn_config, save_ncsn,
                                          snapshot)
from utils import provenance


def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def kill_batch(work, b, index):
    """What a kill in the middle of batch b leaves: no batch marker, one image missing."""
    os.remove(os.path.join(work, 'batches', f'batch_{b:06d}.npz'))
    os.remove(os.path.join(work, 'samples', f'{index}.png'))


def test_run_folder_that_moved_on_to_a_newer_checkpoint_is_refused(tmp_path):
    """Training continued between two runs: the folder now resolves to checkpoint_3; batch 1 would come from it."""
    folder = tmp_path / 'train_run'
    first = save_ncsn(str(folder / 'checkpoints' / 'checkpoint_2.pth'), seed=0)
    config, work = ncsn_config(), str(tmp_path / 'samples_run')
    run_sample(config, load_score_model(str(folder), config), work, 4, 2, seed=0, checkpoint=str(folder),
               progress=False)
    settings = json.load(open(os.path.join(work, 'settings.json')))
    assert settings['inputs']['checkpoint'] == {'path': first, 'size': os.path.getsize(first), 'sha256': sha(first)}
    kill_batch(work, 1, 3)
    before = snapshot(work)

    newer = save_ncsn(str(folder / 'checkpoints' / 'checkpoint_3.pth'), seed=1)
    model = load_score_model(str(folder), config)
    assert model.source['path'] == newer
    with pytest.raises(SamplingError) as err:
        run_sample(config, model, work, 4, 2, seed=0, checkpoint=str(folder), progress=False)
    msg = str(err.value)
    assert 'made from other input files' in msg and 'checkpoint: was ' in msg
    assert 'checkpoint_2.pth' in msg and 'checkpoint_3.pth' in msg and 'use a new --workdir' in msg
    assert snapshot(work) == before                    # nothing written, batch 1 not redone

    # the same bytes under the explicit file name resume fine (content, not the path string, is compared)
    os.remove(newer)
    run_sample(config, load_score_model(first, config), work, 4, 2, seed=0, checkpoint=first, progress=False)
    assert os.path.isfile(os.path.join(work, 'samples', '3.png'))


def test_overwritten_pds_statistics_file_is_refused(tmp_path):
    """pds.freq_path overwritten between a killed run and its rerun: refused naming the file; restored: resumes to the
    same images."""
    freq = str(tmp_path / 'mnist_freq.npy')
    shutil.copy(FREQ, freq)
    config = empirical_config()
    config.pds.freq, config.pds.freq_path, config.pds.alpha = 'stats', freq, 5.
    model, work = empirical_model(config), str(tmp_path / 'run')
    run_sample(config, model, work, 4, 2, seed=0, progress=False)
    inputs = json.load(open(os.path.join(work, 'settings.json')))['inputs']
    assert inputs['pds.freq_path']['sha256'] == sha(freq) and inputs['checkpoint']['sha256'] == sha(config.model.data)
    reference = np.load(os.path.join(work, 'batches', 'batch_000001.npz'))['images']
    kill_batch(work, 1, 2)
    before = snapshot(work)

    np.save(freq, np.load(FREQ) * 1.5)                 # another dataset's statistics under the same name
    with pytest.raises(SamplingError) as err:
        run_sample(config, model, work, 4, 2, seed=0, progress=False)
    assert 'pds.freq_path: was ' in str(err.value) and freq in str(err.value)
    assert snapshot(work) == before

    shutil.copy(FREQ, freq)
    run_sample(config, model, work, 4, 2, seed=0, progress=False)
    assert np.array_equal(np.load(os.path.join(work, 'batches', 'batch_000001.npz'))['images'], reference)


def test_inputs_are_hashed_once_per_run(tmp_path, monkeypatch):
    freq = str(tmp_path / 'f.npy')
    shutil.copy(FREQ, freq)
    config = empirical_config()
    config.pds.freq, config.pds.freq_path = 'stats', freq
    model = empirical_model(config)
    calls = []
    real = provenance.sha256_stream
    monkeypatch.setattr(provenance, 'sha256_stream', lambda f, *a: calls.append(1) or real(f, *a))
    run_sample(config, model, str(tmp_path / 'run'), 6, 2, seed=0, progress=False)      # 3 batches
    assert len(calls) == 1                              # the statistics file; the model hashed its file when loaded


def test_eval_rows_name_the_exact_checkpoint_and_filter_files(tmp_path):
    from evaluation.results import read_csv
    from runners.evaluate import run_eval
    from tests.evaluation.eval_helpers import random_images
    data = str(tmp_path / 'ref.npy')
    np.save(data, random_images(16, 28, 1, seed=1))
    freq = str(tmp_path / 'f.npy')
    shutil.copy(FREQ, freq)
    config = empirical_config()
    config.pds.freq, config.pds.freq_path = 'stats', freq
    config.eval.num_samples, config.eval.batch_size = 4, 2
    table = str(tmp_path / 'results.csv')
    rec = run_eval(config, str(tmp_path / 'run'), checkpoint=config.model.data, features='standin',
                   ref=f'data:{data}', fid_cache=str(tmp_path / 'cache'), results_csv=table, progress=False)
    assert rec['checkpoint_file'] == config.model.data and rec['checkpoint_sha256'] == sha(config.model.data)
    assert rec['input_files'] == f'pds.freq_path={freq} sha256:{sha(freq)}'
    assert rec['inputs']['pds.freq_path']['sha256'] == sha(freq)
    from evaluation.results import portable
    row = read_csv(table)[0]          # the CSV holds the same paths, made portable (relative, $PDS_DATA, ~)
    assert row['checkpoint_file'] == portable(config.model.data) and row['checkpoint_sha256'] == sha(config.model.data)
    assert row['input_files'] == portable(rec['input_files'])


def test_legacy_results_file_gets_the_provenance_columns(tmp_path):
    import csv
    from evaluation import results
    table = str(tmp_path / 'old.csv')
    with open(table, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=results.LEGACY_COLUMNS)
        w.writeheader()
        w.writerow({'model': 'old', 'fid': '1.5'})
    results.append_csv(table, {'model': 'new', 'fid': 2., 'checkpoint_sha256': 'ab'})
    rows = results.read_csv(table)
    assert tuple(rows[0]) == results.CSV_COLUMNS and [r['model'] for r in rows] == ['old', 'new']
    assert rows[0]['checkpoint_sha256'] == '' and rows[1]['checkpoint_sha256'] == 'ab'
