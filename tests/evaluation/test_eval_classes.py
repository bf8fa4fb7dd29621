"""evaluation/classes.py: the MNIST class-coverage check (needs PDS_DATA for the classifier's data)."""
import os

import numpy as np
import pytest

from evaluation import classes


def test_coverage_counts_argmax_confidence_and_tv():
    probs = np.full((4, 10), 0.01)
    probs[0, 3] = probs[1, 3] = 0.91                  # two confident 3s
    probs[2, 5] = 0.5                                 # a hesitant 5
    probs[3, 7] = 0.95
    cov = classes.coverage(probs)
    np.testing.assert_allclose(cov['shares'], np.eye(10)[3] * 0.5 + np.eye(10)[5] * 0.25 + np.eye(10)[7] * 0.25)
    assert cov['confident'] == 0.75 and cov['n'] == 4
    assert cov['tv'] == pytest.approx(0.5 * (0.4 + 0.15 + 0.15 + 7 * 0.1))


def test_bad_sample_inputs_are_one_line(tmp_path, capsys):
    np.save(tmp_path / 'f.npy', np.zeros((3, 28, 28), np.float32))
    with pytest.raises(classes.ClassesError, match='expected uint8 MNIST images'):
        classes.read_samples(str(tmp_path / 'f.npy'))
    with pytest.raises(classes.ClassesError, match='no batches'):
        classes.read_samples(str(tmp_path))
    assert classes.main([str(tmp_path), '--data', str(tmp_path / 'nowhere')]) == 2
    assert 'is not a folder' in capsys.readouterr().err


def test_a_workdir_is_read_whatever_its_folder_name(tmp_path):
    """A sample workdir whose name holds glob characters is read, not taken for one without batches."""
    work = tmp_path / 'run [a]*'
    os.makedirs(work / 'batches')
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28, 1)
    np.savez(work / 'batches' / 'batch_000000.npz', images=images[:1])
    np.savez(work / 'batches' / 'batch_000001.npz', images=images[1:])
    assert np.array_equal(classes.read_samples(str(work)).reshape(images.shape), images)


@pytest.mark.slow
def test_classifier_recognises_real_digits(tmp_path):
    root = os.environ.get('PDS_DATA')
    if not root:
        pytest.skip('PDS_DATA is not set: set it to the folder holding mnist/ to train the classifier')
    folder = os.path.join(root, 'mnist')
    net, acc = classes.train(folder, epochs=2, limit=6000, log=lambda m: None)
    assert acc > 0.9                                   # on all 10,000 test images
    x, y = classes.load_mnist(folder, 'test')
    cov = classes.coverage(classes.predict(net, x[:2000]), y[:2000])
    assert cov['tv'] < 0.05 and min(cov['shares']) > 0.05
    np.savez(tmp_path / 's.npz', images=x[:500, :, :, None])
    assert len(classes.read_samples(str(tmp_path / 's.npz'))) == 500
