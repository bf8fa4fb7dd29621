"""Errors raised while absl parses the flags (before main() runs) are one line each, ml_collections' "did you mean"
kept, nothing written."""
import pytest

from tests.runners.runner_helpers import one_line_error, run_main


@pytest.mark.parametrize('args,expected', [
    (['--config', 'configs/mnist_pds.py', '--config.sampling.stepp_lr=1'],
     "error: --config.sampling.stepp_lr: the config has no field 'stepp_lr' (Did you mean \"step_lr\" instead of "
     "\"stepp_lr\"?); expected a field of the config file"),
    (['--config', 'configs/mnist_pds.py', '--config.samplingg.step_lr=1'],
     "error: --config.samplingg.step_lr: the config has no field 'samplingg' (Did you mean \"sampling\""),
    (['--config', 'configs/nosuch_config.py'],
     "error: --config: cannot load the config file 'configs/nosuch_config.py' ([Errno 2] No such file or directory"),
    (['--config', 'configs/nosuch_config.py', '--config.sampling.step_lr=1'],
     "error: --config: cannot load the config file 'configs/nosuch_config.py'"),
    (['--config', 'configs/mnist_pds.py:nosuch'],
     "error: flag --config=configs/mnist_pds.py:nosuch: unknown PDS setting 'nosuch'; this config has "
     "['table1_20it']"),
    (['--config', 'configs/mnist_pds.py', '--config.sampling.step_lr=abc'],
     "error: flag --config.sampling.step_lr=abc: could not convert string to float: 'abc'"),
    (['--config', 'configs/ncsn/mnist.py:table1_20it'],
     "error: --config configs/ncsn/mnist.py:table1_20it: this config takes no setting (its get_config() has no "
     "parameter); expected configs/ncsn/mnist.py without ':table1_20it', or a configs/<dataset>_pds.py config"),
    ([],
     'error: --config is required: expected a config file, e.g. --config configs/mnist_cpu_pds.py (one per model '
     'in configs/; :<setting> picks a PDS row of the paper)'),
    pytest.param(['--config', 'configs/mnist_pds.py', '--device', 'cuda:7'], "error: --device 'cuda:7': ",
                 marks=pytest.mark.slow),            # imports torch and probes CUDA: seconds
])
def test_flag_errors_are_one_line(tmp_path, args, expected):
    out = run_main(*args, '--mode', 'sample', '--workdir', str(tmp_path / 'run'), '--checkpoint', 'x.pth')
    assert one_line_error(out).startswith(expected)
    assert not (tmp_path / 'run').exists()
