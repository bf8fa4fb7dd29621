"""Runner tests run single-threaded (tests/conftest.py: single_thread)."""
import pytest


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield
