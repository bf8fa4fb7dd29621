"""Fixtures of the evaluation tests (helpers in eval_helpers.py)."""
import numpy as np
import pytest

from tests.evaluation.eval_helpers import dataset_config, make_tiny_checkpoint, random_images


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory):
    """A random-weight NCSN (nf 4) in the official ncsn format, for configs/mnist_pds.py + --config.model.nf=4."""
    return make_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'checkpoint.pth'))


@pytest.fixture(scope='session')
def fake_mnist(tmp_path_factory):
    """64 random 28 x 28 grayscale images as a .npy (an MNIST stand-in for the reference statistics)."""
    path = str(tmp_path_factory.mktemp('data') / 'fake_mnist.npy')
    np.save(path, random_images(64, 28, 1, seed=1))
    return path


@pytest.fixture
def make_dataset_config():
    return dataset_config


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    """In-process work single-threaded too, like the subprocesses (same numbers on both sides of a comparison)."""
    yield
