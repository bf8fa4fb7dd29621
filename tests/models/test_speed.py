"""The speed switches (models/speed.py) on the CPU: the default path is the plain one bit for bit, tf32 changes nothing
here, bf16 samples close to fp32 (tolerances stated with the measured values), torch.compile matches eager, and
what needs CUDA says so in one line.  On a GPU (``-k cuda``) the same switches are checked there."""
import os
import shutil

import pytest
import torch

import sampling
from benchmarks.tiny_models import random_score, tiny_ncsn, tiny_ncsnpp
from models import speed as speed_lib
from models.checkpoint import load_score_model
from models.speed import Speed, SpeedError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_A = os.path.join(ROOT, 'checkpoints', 'ncsn_mnist_cpu', 'checkpoint.pth')
MODEL_B = os.path.join(ROOT, 'checkpoints', 'ncsnpp_mnist_cpu', 'checkpoint.pth')
HAS_CXX = shutil.which(os.environ.get('CXX', 'g++')) is not None
CUDA = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    yield


def _model_b(steps=20):
    from configs.ve import mnist_ncsnpp_cpu
    config = mnist_ncsnpp_cpu.get_config()
    config.sampling.num_steps = steps
    return config


def _model_a(its=20):
    from configs import mnist_cpu_pds
    config = mnist_cpu_pds.get_config()
    config.pds.enabled = False                    # vanilla annealed Langevin, 10 levels
    config.sampling.n_steps_each = its // 10
    return config


def _sample(config, path, speed=None, n=8, device='cpu'):
    score = load_score_model(path, config, device=device)
    if speed is not None:
        speed_lib.apply(score, speed)
    shape = (n, config.data.num_channels, config.data.image_size, config.data.image_size)
    with speed_lib.backend((speed or Speed()).precision, device):
        return sampling.sample(config, score, shape, torch.Generator().manual_seed(0), device)[0]


def test_the_default_switches_are_the_plain_path_bit_for_bit():
    """Speed() applied (fp32, channels-last 'auto', no compile, no graphs) changes nothing: Model B's PC samples are
    torch.equal to a model the module never touched, and the network is called without autocast."""
    config = _model_b(steps=5)
    plain = _sample(config, MODEL_B)
    assert torch.equal(plain, _sample(config, MODEL_B, Speed()))
    score = speed_lib.apply(load_score_model(MODEL_B, config), Speed())
    assert score.autocast_dtype is None and not score.channels_last


def test_tf32_on_the_cpu_is_a_no_op_and_the_flags_come_back():
    config = _model_b(steps=5)
    assert torch.equal(_sample(config, MODEL_B), _sample(config, MODEL_B, Speed(precision='tf32')))
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with speed_lib.backend('tf32', 'cuda'):          # the flags only (no GPU needed to set them)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with speed_lib.backend('fp32', 'cuda'):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    with speed_lib.backend('tf32', 'cpu'):           # a CPU run leaves CUDA's flags alone
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.parametrize('sigma', [0.01, 0.1, 1., 10.])
def test_bf16_score_is_within_bf16_rounding_of_fp32(sigma):
    """Model B's score under bf16 autocast: float32 out, relative L2 error <= 1e-2 of the fp32 score (measured
    3.1e-3 .. 4.7e-3 at sigma 0.01 .. 10; bf16 keeps 8 mantissa bits, 2^-8 = 3.9e-3)."""
    config = _model_b()
    score = load_score_model(MODEL_B, config)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 1, 28, 28, generator=g) + sigma * torch.randn(8, 1, 28, 28, generator=g)
    with torch.inference_mode():
        ref = score(x, sigma)
        speed_lib.apply(score, Speed(precision='bf16'))
        out = score(x, sigma)
    assert out.dtype == torch.float32
    err = float((out - ref).norm() / ref.norm())
    assert 0 < err <= 1e-2, err


@pytest.mark.parametrize('path,config', [(MODEL_B, _model_b), (MODEL_A, _model_a)])
def test_bf16_min_sigma_keeps_the_small_levels_in_fp32(path, config):
    """--bf16_min_sigma 0.1: a call at sigma 0.05 is the fp32 call bit for bit, one at sigma 0.5 the bf16 call (Model
    B: continuous sigma; Model A: a level index)."""
    config = config()
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    out = {}
    for name, speed in (('fp32', Speed()), ('bf16', Speed(precision='bf16')),
                        ('mixed', Speed(precision='bf16', bf16_min_sigma=0.1))):
        score = speed_lib.apply(load_score_model(path, config), speed)
        sigmas = (0.0464, 0.5995) if path == MODEL_A else (0.05, 0.5)          # Model A: two of its levels
        with torch.inference_mode():
            out[name] = [score(x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(3)), s)
                         for s in sigmas]
    assert torch.equal(out['mixed'][0], out['fp32'][0]) and not torch.equal(out['mixed'][0], out['bf16'][0])
    assert torch.equal(out['mixed'][1], out['bf16'][1])


def test_bf16_runs_the_network_in_bf16_and_keeps_the_sampler_in_fp32():
    config = _model_b(steps=2)
    score = speed_lib.apply(load_score_model(MODEL_B, config), Speed(precision='bf16'))
    seen = []
    hook = score.net.all_modules[-1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x, _ = sampling.sample(config, score, (2, 1, 28, 28), torch.Generator().manual_seed(0))
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}           # the last conv ran in bf16
    assert x.dtype == torch.float32                          # the sampler's state did not


def test_bf16_samples_close_to_fp32_model_b_pc():
    """Model B, vanilla PC at 20 iterations, 8 samples, the same noise: the bf16 samples differ from fp32 by rms
    <= 0.03 and max <= 0.25 (measured rms 0.010, max 0.074; the samples' std is 2.5 before clamping)."""
    config = _model_b(steps=20)
    a, b = _sample(config, MODEL_B), _sample(config, MODEL_B, Speed(precision='bf16'))
    d = (a - b).abs()
    assert float(d.pow(2).mean().sqrt()) <= 0.03 and float(d.max()) <= 0.25, (float(d.pow(2).mean().sqrt()),
                                                                             float(d.max()))
    assert not torch.equal(a, b)


def test_bf16_samples_close_to_fp32_model_a_ald():
    """Model A, vanilla annealed Langevin at 20 iterations: rms <= 0.02, max <= 0.2 (measured rms 0.0052, max
    0.054 on images in [0, 1])."""
    config = _model_a(its=20)
    a, b = _sample(config, MODEL_A), _sample(config, MODEL_A, Speed(precision='bf16'))
    d = (a - b).abs()
    assert float(d.pow(2).mean().sqrt()) <= 0.02 and float(d.max()) <= 0.2, (float(d.pow(2).mean().sqrt()),
                                                                            float(d.max()))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CXX, reason='torch.compile (inductor) on the CPU needs a C++ compiler (g++ or $CXX)')
def test_compile_matches_eager():
    """Inductor-compiled tiny NCSN++ (default mode), PC 4 steps with PDS: within 1e-5 of the eager run's largest
    value (float reassociation only)."""
    config = tiny_ncsnpp()
    config.pds.enabled, config.pds.freq = True, 'radial'
    out = []
    for speed in (Speed(), Speed(compile=True)):
        score = speed_lib.apply(random_score(config), speed)
        out.append(sampling.sample(config, score, (2, 1, 8, 8), torch.Generator().manual_seed(0))[0])
    err = float((out[0] - out[1]).abs().max() / out[0].abs().max())
    assert err <= 1e-5, err


def test_compile_modes_reach_torch_compile(monkeypatch):
    """--compile_mode max-autotune is passed on (without inductor's CUDA graphs under --cuda_graphs)."""
    calls = []
    score = random_score(tiny_ncsnpp())
    monkeypatch.setattr(score.net, 'compile', lambda **kw: calls.append(kw))
    speed_lib.apply(score, Speed(compile=True, compile_mode='max-autotune'))
    speed_lib.apply(score, Speed(compile=True, compile_mode='max-autotune', cuda_graphs=True))
    speed_lib.apply(score, Speed(compile=True))
    assert calls == [{'backend': 'inductor', 'mode': 'max-autotune'},
                     {'backend': 'inductor', 'mode': 'max-autotune-no-cudagraphs'}, {'backend': 'inductor'}]


@pytest.mark.parametrize('family', ['ncsnpp', 'ncsn'])
def test_channels_last_on_and_off(family):
    """'on' makes any network channels-last (NCSN++ and the RefineNets), 'off' undoes the RefineNets' CPU default;
    the scores agree to float rounding."""
    config = tiny_ncsnpp() if family == 'ncsnpp' else tiny_ncsn()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = random_score(config)
    with torch.inference_mode():
        base = ref(x, 0.5)
        for mode in ('on', 'off'):
            score = speed_lib.apply(random_score(config), Speed(channels_last=mode))
            weight = max((p for p in score.net.parameters() if p.dim() == 4), key=lambda p: p.shape[1])
            assert weight.is_contiguous(memory_format=torch.channels_last) == (mode == 'on')
            assert score.channels_last == (mode == 'on')
            assert float((score(x, 0.5) - base).abs().max() / base.abs().max()) <= 1e-5


def test_a_score_without_a_network_takes_only_the_defaults():
    from tests.runners.runner_helpers import empirical_config, empirical_model
    score = empirical_model(empirical_config())
    assert speed_lib.apply(score, Speed(precision='tf32')) is score
    with pytest.raises(SpeedError, match=r'--precision bf16, --compile: this model \(EmpiricalScore\) has no network'):
        speed_lib.apply(score, Speed(precision='bf16', compile=True))


def test_bad_switch_values_are_one_line():
    with pytest.raises(SpeedError, match="--precision 'fp16': expected one of fp32, tf32, bf16"):
        Speed(precision='fp16')
    with pytest.raises(SpeedError, match='--compile_mode'):
        Speed(compile_mode='reduce-overhead')
    with pytest.raises(SpeedError, match='--bf16_min_sigma 0.1 acts on bf16 only; expected --precision bf16'):
        Speed(bf16_min_sigma=0.1)
    with pytest.raises(SpeedError, match='with --cuda_graphs: a captured step cannot switch precision'):
        Speed(precision='bf16', bf16_min_sigma=0.1, cuda_graphs=True)
    with pytest.raises(SpeedError, match='expected a noise level >= 0'):
        Speed(precision='bf16', bf16_min_sigma=-1.)


def test_record_and_label():
    s = Speed(precision='bf16', channels_last='on', compile=True, cuda_graphs=True)
    assert s.label() == 'bf16+channels_last=on+compile+cuda_graphs'
    assert s.record() == {'precision': 'bf16', 'channels_last': 'on', 'compile': True, 'compile_mode': 'default',
                          'cuda_graphs': True}
    assert speed_lib.from_flags(type('F', (), {})()) == Speed()
    mixed = Speed(precision='bf16', bf16_min_sigma=0.1)
    assert mixed.label() == 'bf16(fp32 below sigma 0.1)' and mixed.record()['bf16_min_sigma'] == 0.1


def test_graphs_on_the_cpu_are_a_note(capsys):
    assert not speed_lib.graphs_wanted(Speed(cuda_graphs=True), 'cpu')
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['note: --cuda_graphs needs a CUDA device; on cpu the sampler steps run eagerly (the same samples)']
    assert not speed_lib.graphs_wanted(Speed(), 'cpu') and not capsys.readouterr().err


# -- --batch_size auto --------------------------------------------------------------------------------------------------

def test_auto_batch_needs_cuda_in_one_line():
    config = tiny_ncsnpp()
    with pytest.raises(SpeedError) as e:
        speed_lib.probe_batch(random_score(config), config, 'cpu')
    assert str(e.value).startswith('--batch_size auto: needs a CUDA device (it probes GPU memory), this run is on cpu; '
                                   'expected a number, e.g. --batch_size 64') and '\n' not in str(e.value)


def test_the_search_finds_the_largest_power_of_two_that_fits():
    assert speed_lib.largest_fitting_power_of_two(lambda b: b * 3 <= 100, 4096) == 32
    assert speed_lib.largest_fitting_power_of_two(lambda b: True, 64) == 64
    assert speed_lib.largest_fitting_power_of_two(lambda b: False, 64) == 0
    tried = []
    speed_lib.largest_fitting_power_of_two(lambda b: tried.append(b) or b < 8, 4096)
    assert tried == [1, 2, 4, 8]                         # stops at the first that does not fit
    assert [speed_lib.probe_cap(n) for n in (1, 64, 100, 50000)] == [1, 64, 128, 4096]


def test_prepare_keeps_a_workdirs_batch_size(capsys):
    """auto with finished batches of 16 in the workdir: 16 (the images depend on it), no probe (no GPU needed)."""
    config = tiny_ncsnpp()
    score, batch = speed_lib.prepare(random_score(config), Speed(), config, 'cpu', 64, 'auto', recorded=16)
    assert batch == 16 and 'the batch size of the finished batches' in capsys.readouterr().err
    assert speed_lib.prepare(random_score(config), Speed(), config, 'cpu', 64, 8)[1] == 8


# -- training switches ---------------------------------------------------------------------------------------------------

def test_training_switches_keep_old_configs():
    import ml_collections
    tr = ml_collections.ConfigDict(dict(bf16=True, channels_last=True, compile=False))
    sw, ignored = speed_lib.training_switches(tr, 'cpu')
    assert sw['precision'] == 'bf16' and sw['bf16'] and not sw['channels_last'] and ignored == ['channels_last']
    sw, _ = speed_lib.training_switches(ml_collections.ConfigDict(dict(bf16=False)), 'cpu')
    assert sw['precision'] == 'fp32' and not sw['bf16']
    with pytest.raises(SpeedError, match='disagree'):
        speed_lib.training_switches(ml_collections.ConfigDict(dict(bf16=True, precision='fp32')), 'cpu')


def test_bf16_training_on_the_cpu_is_close_and_keeps_fp32_weights(tmp_path):
    """One tiny NCSN++ training step in bf16 autocast: loss within 2 % of fp32's (the same draws), weights and EMA
    float32."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'training'))
    from train_helpers import blobs, tiny_ncsnpp as tiny_train
    from training.train import Trainer
    losses = []
    for precision in ('fp32', 'bf16'):
        config = tiny_train(steps=1)
        config.training.precision = precision
        trainer = Trainer(config, str(tmp_path / precision), blobs(8), progress=False)
        x = torch.stack([blobs(8)[i][0] for i in range(4)])
        losses.append(float(trainer.train_step(x).loss))
        assert trainer.speed['bf16'] == (precision == 'bf16')
        assert all(p.dtype == torch.float32 for p in trainer.net.parameters())
        assert all(p.dtype == torch.float32 for p in trainer.ema.shadow_params)
        trainer.close()
    assert abs(losses[1] - losses[0]) <= 0.02 * abs(losses[0]), losses


# -- on a GPU ------------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not CUDA, reason='needs a CUDA GPU')
def test_cuda_precisions_and_auto_batch():
    """On CUDA: fp32 (strict) samples within 1e-5 of the CPU's, tf32 within 1e-3 relative, bf16 as on the CPU; the
    auto batch is a power of two."""
    config = _model_b(steps=5)
    cpu = _sample(config, MODEL_B)
    scale = float(cpu.abs().max())
    fp32 = _sample(config, MODEL_B, Speed(), device='cuda').cpu()
    tf32 = _sample(config, MODEL_B, Speed(precision='tf32'), device='cuda').cpu()
    bf16 = _sample(config, MODEL_B, Speed(precision='bf16'), device='cuda').cpu()
    print(f'cuda vs cpu, max rel: fp32 {float((fp32 - cpu).abs().max()) / scale:.1e}, tf32 '
          f'{float((tf32 - cpu).abs().max()) / scale:.1e}, bf16 {float((bf16 - cpu).abs().max()) / scale:.1e}')
    assert float((fp32 - cpu).abs().max()) <= 1e-5 * scale
    assert float((tf32 - cpu).abs().max()) <= 1e-3 * scale
    assert float((bf16 - cpu).abs().pow(2).mean().sqrt()) <= 0.03
    score = load_score_model(MODEL_B, config, device='cuda')
    b = speed_lib.probe_batch(score, config, 'cuda', num_samples=100000)
    assert b >= 1 and b & (b - 1) == 0, b
