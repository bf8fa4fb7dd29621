"""Everything is checked before the first file is written; bad values are one clear error each (field, value,
allowed range), never a run that exits 0 with wrong output."""
import json
import os

import numpy as np
import pytest
import torch

from runners import validate
from runners.sample import SamplingError, divergence_bound, run_sample
from tests.runners.runner_helpers import (FREQ, empirical_config, empirical_model, one_line_error, run_main,
                                          snapshot)

SAMPLE = ['--config', 'configs/mnist_empirical_pds.py', '--mode', 'sample', '--device', 'cpu',
          '--config.sampling.num_levels=2', '--config.sampling.n_steps_each=1']


@pytest.fixture(scope='module')
def model():
    return empirical_model(empirical_config())


# --- 2. validate before anything is written -----------------------------------------------------------------

@pytest.mark.parametrize('change,message', [
    (dict(method='pc', predictor='reverse_diffusionn'), "sampling.predictor = 'reverse_diffusionn': expected one of"),
    (dict(method='pc', corrector='langevn'), "sampling.corrector = 'langevn': expected one of"),
    (dict(method='pcc'), "sampling.method = 'pcc': expected one of"),
])
def test_typo_locks_nothing_and_the_corrected_command_runs(tmp_path, model, change, message):
    work = str(tmp_path / 'run')
    with pytest.raises(validate.ConfigError, match=message):
        run_sample(empirical_config(**change), model, work, 2, 2, seed=0, progress=False)
    assert snapshot(work) == {}                          # no settings.json: the folder is not locked
    run_sample(empirical_config(), model, work, 2, 2, seed=0, progress=False)
    assert os.path.isfile(os.path.join(work, 'samples', '1.png'))


def test_missing_filter_file_locks_nothing(tmp_path, model):
    from preconditioning import FilterError
    work, config = str(tmp_path / 'run'), empirical_config()
    config.pds.freq, config.pds.freq_path = 'stats', str(tmp_path / 'nope_freq.npy')
    with pytest.raises(FilterError, match='nope_freq.npy'):
        run_sample(config, model, work, 2, 2, seed=0, progress=False)
    assert snapshot(work) == {}
    config.pds.freq_path = FREQ
    run_sample(config, model, work, 2, 2, seed=0, progress=False)
    assert json.load(open(os.path.join(work, 'settings.json')))['config']['pds']['freq_path'] == FREQ


def test_divergence_leaves_the_folder_reusable_with_other_settings(tmp_path, model):
    work = str(tmp_path / 'run')
    with pytest.raises(SamplingError, match='diverged in batch 0 at step 0'):
        run_sample(empirical_config(step_lr=1e6), model, work, 2, 2, seed=0, progress=False)
    assert os.listdir(os.path.join(work, 'samples')) == [] and os.listdir(os.path.join(work, 'batches')) == []
    run_sample(empirical_config(), model, work, 2, 2, seed=0, progress=False)       # new settings accepted
    settings = json.load(open(os.path.join(work, 'settings.json')))
    assert settings['config']['sampling']['step_lr'] == empirical_config().sampling.step_lr
    # with a finished batch the folder is locked again
    with pytest.raises(SamplingError, match='already holds samples made with other settings'):
        run_sample(empirical_config(step_lr=1e-5), model, work, 2, 2, seed=0, progress=False)


def test_unfinished_images_of_other_settings_are_removed(tmp_path, model):
    work = str(tmp_path / 'run')
    run_sample(empirical_config(), model, work, 4, 4, seed=0, progress=False)
    os.remove(os.path.join(work, 'batches', 'batch_000000.npz'))       # killed before the marker
    run_sample(empirical_config(), model, work, 2, 2, seed=5, progress=False)   # other settings: folder reused
    assert sorted(os.listdir(os.path.join(work, 'samples'))) == ['0.png', '1.png']   # no stale 2.png, 3.png
    assert json.load(open(os.path.join(work, 'settings.json')))['seed'] == 5


def test_stray_temporaries_are_removed(tmp_path, model):
    work = str(tmp_path / 'run')
    run_sample(empirical_config(), model, work, 2, 2, seed=0, progress=False)
    strays = [os.path.join(work, '.tmp-abc.json'), os.path.join(work, 'samples', '.tmp-x.png'),
              os.path.join(work, 'batches', '.tmp-y.npz')]
    for path in strays:
        open(path, 'wb').write(b'half')
    run_sample(empirical_config(), model, work, 2, 2, seed=0, progress=False)
    assert not any(os.path.exists(p) for p in strays)


# --- 3. no silent wrong output ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('args,message', [
    (['--num_samples', '0'], '--num_samples = 0: expected an integer >= 1'),
    (['--num_samples', '-3'], '--num_samples = -3: expected an integer >= 1'),
    (['--batch_size', '0'], '--batch_size = 0: expected an integer >= 1'),
    (['--batch_size', '-2'], '--batch_size = -2: expected an integer >= 1'),
    (['--speed_up', '0'], 'sampling.speed_up (--speed_up) = 0.0: expected > 0'),
])
def test_bad_counts_on_the_command_line(tmp_path, args, message):
    work = str(tmp_path / 'run')
    out = run_main(*SAMPLE, '--workdir', work, *args)
    assert message in one_line_error(out)
    assert not os.path.exists(work)


@pytest.mark.parametrize('change,message', [
    (dict(n_steps_each=0), 'sampling.n_steps_each = 0: expected an integer >= 1'),
    (dict(method='pc', predictor='none', corrector='langevin', n_steps_each=0),
     'sampling.n_steps_each = 0: expected an integer >= 1'),
    (dict(method='pc', predictor='none', corrector='none'), "nothing would update the prior noise"),
    (dict(method='pc', corrector='langevin', snr=0.), 'sampling.snr = 0.0: expected > 0'),
    (dict(method='pc', speed_up=0.), 'sampling.speed_up (--speed_up) = 0.0: expected > 0'),
    (dict(method='pc', num_steps=-3), 'sampling.num_steps = -3: expected an integer >= 1, or 0'),
    (dict(method='pc', last_step='tweedie'), "sampling.last_step = 'tweedie': expected 'predictor'"),
    (dict(method='edm', last_step='denoiser'), "sampling.last_step = 'denoiser' is a setting of sampling.method = 'pc'"),
    (dict(method='ald', last_step='denoiser'), "'ald' ends its own way"),
    (dict(method='pc', speed_up=5000.), 'int(10 / 5000.0) = 0 steps; expected speed_up <= 10'),
    (dict(step_lr=0.), 'sampling.step_lr = 0.0: expected > 0'),
    (dict(num_levels=11), 'sampling.num_levels = 11: expected an integer in 1..model.num_scales = 10'),
])
def test_sampler_settings_that_would_return_noise_or_crash(tmp_path, model, change, message):
    work = str(tmp_path / 'run')
    with pytest.raises(validate.ConfigError) as err:
        run_sample(empirical_config(**change), model, work, 2, 2, seed=0, progress=False)
    assert message in str(err.value)
    assert snapshot(work) == {}


@pytest.mark.parametrize('method,change,message', [
    ('edm', dict(schedule='cosine'), "sampling.schedule = 'cosine': expected one of ('karras', 'geometric')"),
    ('dpmpp_2m', dict(rho=-1.), 'sampling.rho = -1.0: expected > 0'),
    ('edm_stochastic', dict(s_churn=-1.), 'sampling.s_churn = -1.0: expected >= 0'),
    ('edm_stochastic', dict(s_noise=0.), 'sampling.s_noise = 0.0: expected > 0'),
    ('edm_stochastic', dict(s_tmin=2., s_tmax=1.), 'sampling.s_tmax = 1.0: expected >= sampling.s_tmin = 2.0'),
    ('dpmpp_2m_sde', dict(dpmpp_solver_type='rk4'), "sampling.dpmpp_solver_type = 'rk4': expected one of"),
    ('dpmpp_3m_sde', dict(dpmpp_eta=-0.5), 'sampling.dpmpp_eta = -0.5: expected >= 0'),
    ('ode', dict(ode_method='Euler'), "sampling.ode_method = 'Euler': expected one of ('RK45'"),
    ('ode', dict(ode_rtol=-1e-5), 'sampling.ode_rtol = -1e-05: expected > 0'),
    ('adaptive_sde', dict(adaptive_abstol=-1.), 'sampling.adaptive_abstol = -1.0: expected > 0'),
    ('adaptive_sde', dict(adaptive_safety=1.5), 'sampling.adaptive_safety = 1.5: expected in (0, 1]'),
    ('ddim', dict(ddim_eta=-1.), 'sampling.ddim_eta = -1.0: expected in [0, 1]'),
    ('ddim', dict(ddim_eta=2.), 'sampling.ddim_eta = 2.0: expected in [0, 1]'),
    ('ddpm', dict(ddpm_variance='fixed'), "sampling.ddpm_variance = 'fixed': expected one of ('beta', 'beta_tilde')"),
])
def test_rival_and_vp_settings_are_refused_before_a_file_is_written(tmp_path, model, method, change, message):
    """The settings only the rival and VP samplers read: out of range they ended the run after its workdir was made
    (a traceback or a late error) or sampled nonsense with exit 0 (a negative rho, churn or tolerance)."""
    if method in ('ddim', 'ddpm'):                # VP only: the config check (no VP model here)
        from configs import mnist_ddpmpp_cpu_pds
        config = mnist_ddpmpp_cpu_pds.get_config()
        config.pds.enabled = False
        config.sampling.method, config.sampling.num_steps = method, 3
        for k, v in change.items():
            config.sampling[k] = v
        with pytest.raises(validate.ConfigError) as err:
            validate.check_sampling(config, 2, 2)
        assert message in str(err.value) and '\n' not in str(err.value)
        return
    config = empirical_config(method=method, num_steps=3, **change)
    config.pds.enabled = False
    work = str(tmp_path / 'run')
    with pytest.raises(validate.ConfigError) as err:
        run_sample(config, model, work, 2, 2, seed=0, progress=False)
    assert message in str(err.value) and '\n' not in str(err.value)
    assert snapshot(work) == {}


@pytest.mark.parametrize('pds,message', [
    (dict(lam=0.), 'pds.lam = 0.0: expected > 0'),
    (dict(lam=-1.6), 'pds.lam = -1.6: expected > 0'),
    (dict(radius=-0.2), 'pds.radius = -0.2: expected >= 0'),
    (dict(freq='stats', alpha=1.), 'pds.alpha = 1.0: expected > 1 (the statistics filter R = alpha / (m / max m + '
                                   'alpha - 1) is finite and positive for every m >= 0 only when alpha > 1'),
    (dict(freq='stats', alpha=0.5), 'pds.alpha = 0.5: expected > 1'),
])
def test_pds_values_outside_their_range(tmp_path, model, pds, message):
    config = empirical_config()
    for k, v in pds.items():
        config.pds[k] = v
    with pytest.raises(validate.ConfigError) as err:
        run_sample(config, model, str(tmp_path / 'run'), 2, 2, seed=0, progress=False)
    assert message in str(err.value)
    assert snapshot(str(tmp_path / 'run')) == {}


@pytest.mark.parametrize('where', ['config', 'argument'])
def test_a_negative_seed_is_refused_before_a_file_is_written(tmp_path, model, where):
    """numpy's SeedSequence takes no negative seed: the run made its workdir, then failed with 'expected
    non-negative integer'."""
    config, work = empirical_config(), str(tmp_path / 'run')
    if where == 'config':
        config.seed = -1
    with pytest.raises(validate.ConfigError) as err:
        run_sample(config, model, work, 2, 2, seed=-1, progress=False)
    assert str(err.value) == ('seed (--seed) = -1' if where == 'config' else 'seed = -1') + \
        ': expected an integer >= 0 (the noise of batch b is seeded by (seed, b))'
    assert snapshot(work) == {}


def test_one_message_names_every_bad_field():
    with pytest.raises(validate.ConfigError) as err:
        validate.check_sampling(empirical_config(n_steps_each=0, step_lr=-1.), num_samples=0)
    assert str(err.value).count('; ') == 2 and 'num_samples = 0' in str(err.value)


def test_statistics_error_names_the_file(tmp_path, model):
    from preconditioning import FilterError
    bad = str(tmp_path / 'negative_freq.npy')
    np.save(bad, -np.abs(np.load(FREQ)))
    config = empirical_config()
    config.pds.freq, config.pds.freq_path = 'stats', bad
    with pytest.raises(FilterError) as err:
        run_sample(config, model, str(tmp_path / 'run'), 2, 2, seed=0, progress=False)
    assert f'pds.freq_path = {bad!r}' in str(err.value) and 'non-negative' in str(err.value)
    assert snapshot(str(tmp_path / 'run')) == {}


def test_huge_but_finite_values_are_divergence(tmp_path, model):
    """step_lr 1e6: finite values around 1e10 that would be saved as black / white images."""
    work = str(tmp_path / 'run')
    with pytest.raises(SamplingError) as err:
        run_sample(empirical_config(step_lr=1e6), model, work, 4, 2, seed=0, progress=False)
    msg = str(err.value)
    assert 'sampling diverged in batch 0 at step 0 (noise level sigma = 1)' in msg and 'max |x| = ' in msg
    assert 'nothing of this batch was written' in msg
    assert os.listdir(os.path.join(work, 'samples')) == [] and os.listdir(os.path.join(work, 'batches')) == []


def test_divergence_bound_leaves_room_for_the_prior():
    """The PC prior is sigma_max M z: |x| up to ~6 sigma_max ||M|| is legitimate; the bound is 1 + 100 sigma_max ||M||."""
    import preconditioning
    config = empirical_config(method='pc')
    P = preconditioning.from_config(config.pds, (1, 28, 28))          # radial, 'direct', lam 1.6: ||M|| = 1.6
    assert divergence_bound(config, P) == pytest.approx(1 + 100 * 1.0 * 1.6)
    assert divergence_bound(config, preconditioning.Identity()) == pytest.approx(101.)
    prior = P.noise(torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))) * config.model.sigma_max
    assert float(prior.abs().max()) < divergence_bound(config, P) / 10


@pytest.mark.parametrize('freq', ['none', 'stats', 'radial'])
def test_correct_pc_runs_do_not_trip_the_bound(tmp_path, model, freq):
    config = empirical_config(method='pc', predictor='reverse_diffusion', corrector='langevin', num_steps=8)
    config.pds.freq = freq
    run_sample(config, model, str(tmp_path / 'run'), 4, 4, seed=0, progress=False)


# --- 5. broken or misleading --------------------------------------------------------------------------------

def test_noise_device_given_as_a_torch_device(tmp_path, model):
    work = str(tmp_path / 'run')
    run_sample(empirical_config(), model, work, 2, 2, seed=0, noise_device=torch.device('cpu'), progress=False)
    assert json.load(open(os.path.join(work, 'settings.json')))['noise_device'] == 'cpu'


@pytest.mark.slow
def test_noise_device_flag(tmp_path):
    work = str(tmp_path / 'run')
    out = run_main(*SAMPLE, '--workdir', work, '--num_samples', '2', '--noise_device=device')
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(os.path.join(work, 'samples'))) == ['0.png', '1.png']


class Bar:
    """Records what the runner's progress bar is told."""
    made = []

    def __init__(self, total=None, **kw):
        self.total, self.n = total, 0
        Bar.made.append(self)

    def update(self, k=1):
        self.n += k

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


@pytest.mark.parametrize('sampler,steps', [
    (dict(method='pc', predictor='reverse_diffusion', corrector='langevin', num_steps=5), 5),   # NFE 10
    (dict(ald_variant='ncsnv2', denoise=True, num_levels=4, n_steps_each=2), 8),               # NFE 9
])
def test_progress_bar_ends_at_its_total(tmp_path, model, monkeypatch, sampler, steps):
    import runners.sample
    monkeypatch.setattr(runners.sample, 'tqdm', Bar)
    Bar.made.clear()
    config = empirical_config(**sampler)
    config.pds.enabled = False
    run_sample(config, model, str(tmp_path / 'run'), 3, 2, seed=0)      # 2 batches
    bar, = Bar.made
    assert bar.total == 2 * steps and bar.n == bar.total


@pytest.mark.parametrize('change,message', [
    (dict(apply_to='corrector', corrector='none'), "pds.apply_to = 'corrector' with sampling.corrector = 'none': no "
                                                   "step would be preconditioned (the run would be vanilla)"),
    (dict(apply_to='corrector', predictor_drift='marginal'), "pds.predictor_drift = 'marginal' changes the "
                                                             "predictor's drift, which pds.apply_to = 'corrector' "
                                                             "leaves vanilla"),
])
def test_pds_settings_that_would_silently_do_nothing(change, message):
    """Two PDS settings that ran as something else (found writing Model D's studies): refused in one line."""
    from configs.mnist_ncsnpp_cpu_pds import get_config
    config = get_config()
    for key, value in change.items():
        (config.sampling if key == 'corrector' else config.pds)[key] = value
    with pytest.raises(validate.ConfigError) as err:
        validate.check_sampling(config, num_samples=4)
    assert message in str(err.value) and '\n' not in str(err.value)
    config.pds.apply_to = 'all'
    validate.check_sampling(config, num_samples=4)                 # the same settings with PDS everywhere: accepted
