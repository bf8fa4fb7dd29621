"""configs.load_file (scripts/ship_checkpoint.py --config, evaluation.curvature --config) takes ``file.py:setting``
as --config does, and a missing file is one ValueError line, not a traceback."""
import pytest


def test_config_file_with_a_setting_and_a_missing_one():
    from configs import load_file
    assert load_file('configs/ve/deadleaves64_ncsnpp.py:cpu').model.nf == 16
    assert load_file('configs/ve/deadleaves64_ncsnpp.py').model.nf == 28
    with pytest.raises(ValueError, match="config file 'configs/nope.py' does not exist"):
        load_file('configs/nope.py:cpu')
