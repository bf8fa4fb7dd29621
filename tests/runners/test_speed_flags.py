"""The speed flags of main.py (models/speed.py) through the runners: bad values and what needs CUDA are one line,
--mode sample applies and records them, --mode train maps them onto config.training and stops on --max_minutes."""
import json
import types

import pytest

from tests.runners.runner_helpers import ncsn_config, one_line_error, run_main, save_ncsn


@pytest.mark.parametrize('args,expected', [
    (['--batch_size', 'many'], "error: flag --batch_size=many: expected an integer >= 1 or 'auto', got 'many'"),
    (['--precision', 'fp16'], 'error: flag --precision=fp16: value should be one of <fp32|tf32|bf16>'),
    (['--compile_mode', 'fast'], 'error: flag --compile_mode=fast: value should be one of <default|max-autotune>'),
])
def test_bad_speed_flags_are_one_line(tmp_path, args, expected):
    out = run_main('--config', 'configs/mnist_pds.py', '--mode', 'sample', '--workdir', str(tmp_path / 'run'),
                   '--checkpoint', 'x.pth', *args)
    assert one_line_error(out).startswith(expected)
    assert not (tmp_path / 'run').exists()


def _flags(work, checkpoint, **kw):
    base = dict(mode='sample', seed=None, speed_up=None, pds=None, checkpoint=checkpoint, workdir=str(work),
                num_samples=2, batch_size=2, device='cpu', ema=True, compile=False, noise_device='cpu',
                precision=None, channels_last='auto', compile_mode='default', cuda_graphs=False)
    base.update(kw)
    return types.SimpleNamespace(**base)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_ncsn(str(tmp_path_factory.mktemp('ckpt') / 'checkpoint.pth'), seed=0)


def test_batch_size_auto_on_the_cpu_is_one_line(tmp_path, checkpoint):
    from runners import cli
    with pytest.raises(SystemExit) as e:
        cli.run('sample', ncsn_config(), _flags(tmp_path / 'run', checkpoint, batch_size='auto'))
    assert str(e.value.code).startswith('error: --batch_size auto: needs a CUDA device (it probes GPU memory), this '
                                        'run is on cpu; expected a number')


def test_sample_applies_and_records_the_switches(tmp_path, checkpoint, capsys):
    """--precision bf16 --channels_last off --cuda_graphs on the CPU: a note for the graphs, bf16 in settings.json,
    and a rerun at fp32 in the same folder is refused (the images differ)."""
    from runners import cli
    work = tmp_path / 'run'
    cli.run('sample', ncsn_config(), _flags(work, checkpoint, precision='bf16', channels_last='off', cuda_graphs=True))
    settings = json.load(open(work / 'settings.json'))
    assert settings['precision'] == 'bf16'
    assert settings['speed'] == {'precision': 'bf16', 'channels_last': 'off', 'compile': False,
                                 'compile_mode': 'default', 'cuda_graphs': True}
    assert 'note: --cuda_graphs needs a CUDA device' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.run('sample', ncsn_config(), _flags(work, checkpoint, num_samples=4))
    assert 'precision differ' in str(e.value.code) and '(--precision bf16)' in str(e.value.code)


def test_bf16_on_a_score_without_a_network_is_one_line(tmp_path):
    from runners import cli
    from tests.runners.runner_helpers import IMAGES, empirical_config
    with pytest.raises(SystemExit) as e:
        cli.run('sample', empirical_config(), _flags(tmp_path / 'run', IMAGES, precision='bf16'))
    assert str(e.value.code).startswith('error: --precision bf16: this model (EmpiricalScore) has no network')


def test_train_flags_set_the_training_switches():
    import ml_collections
    from runners.cli import _training_switches
    tr = ml_collections.ConfigDict(dict(bf16=False, compile=False, channels_last=False))
    _training_switches(tr, types.SimpleNamespace(precision='bf16', compile=True, compile_mode='max-autotune',
                                                 channels_last='on'))
    assert (tr.precision, tr.bf16, tr.compile, tr.compile_mode, tr.channels_last) == ('bf16', True, True,
                                                                                       'max-autotune', True)
    tr = ml_collections.ConfigDict(dict(bf16=True, compile=False, channels_last=False))
    _training_switches(tr, types.SimpleNamespace(precision=None, compile=False, compile_mode='default',
                                                 channels_last='auto'))
    assert tr.bf16 and 'precision' not in tr                    # flags not given leave the config as it is


def test_train_max_minutes_must_be_positive(tmp_path):
    from runners import cli
    from tests.training.train_helpers import tiny_ncsn
    flags = types.SimpleNamespace(mode='train', seed=None, speed_up=None, pds=None, workdir=str(tmp_path), data='x',
                                  device='cpu', workers=0, skip_bad=False, force_resume=False, max_minutes=0.,
                                  precision=None, compile=False, compile_mode='default', channels_last='auto',
                                  cuda_graphs=False)
    with pytest.raises(SystemExit) as e:
        cli.run('train', tiny_ncsn(), flags)
    assert str(e.value.code) == 'error: --max_minutes 0: expected a number of minutes > 0'


def test_where_bf16_stops_is_a_compared_setting(tmp_path, checkpoint):
    """--bf16_min_sigma changes the images (float32 below that level): a bf16 folder refuses to be resumed with it,
    and a folder made with it refuses plain bf16, naming the flag."""
    from runners import cli
    work = tmp_path / 'run'
    cli.run('sample', ncsn_config(), _flags(work, checkpoint, precision='bf16'))
    with pytest.raises(SystemExit) as e:
        cli.run('sample', ncsn_config(), _flags(work, checkpoint, precision='bf16', bf16_min_sigma=0.1, num_samples=4))
    assert 'bf16_min_sigma differ' in str(e.value.code)
    other = tmp_path / 'min'
    cli.run('sample', ncsn_config(), _flags(other, checkpoint, precision='bf16', bf16_min_sigma=0.1))
    assert json.load(open(other / 'settings.json'))['bf16_min_sigma'] == 0.1
    with pytest.raises(SystemExit) as e:
        cli.run('sample', ncsn_config(), _flags(other, checkpoint, precision='bf16', num_samples=4))
    assert 'bf16_min_sigma differ' in str(e.value.code) and '(--bf16_min_sigma 0.1)' in str(e.value.code)
