"""Shared fixtures for tests/data.  ``PDS_DATA`` (a folder holding ``mnist/`` and ``fashion-mnist/`` IDX .gz files,
e.g. the development copies) switches on the tests that read the real MNIST / Fashion-MNIST files."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from configs.defaults import ncsn  # noqa: E402


def build_config(dataset='TEST', image_size=32, num_channels=3, crop='none', centered=False):
    config = ncsn()
    config.data.dataset = dataset
    config.data.image_size = image_size
    config.data.num_channels = num_channels
    config.data.crop = crop
    config.data.centered = centered
    return config


@pytest.fixture
def make_config():
    """``make_config(dataset, image_size, num_channels, crop, centered)`` -> an ncsn() config."""
    return build_config


@pytest.fixture(scope='session')
def pds_data():
    """The PDS_DATA folder; tests using it are skipped when the variable is unset."""
    root = os.environ.get('PDS_DATA')
    if not root:
        pytest.skip('PDS_DATA is not set: set PDS_DATA to the folder holding mnist/ and fashion-mnist/ '
                    '(IDX .gz files) to run the tests on the real MNIST / Fashion-MNIST data')
    for sub in ('mnist', 'fashion-mnist'):
        if not os.path.isdir(os.path.join(root, sub)):
            pytest.fail(f"PDS_DATA='{root}' has no '{sub}/' folder (expected the IDX .gz files there)")
    return root
