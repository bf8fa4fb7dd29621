"""studies/: the study definitions as data: the registry finds every model file, and each study's points build
the configs, iterations and NFE its tables say (Model A: annealed Langevin on its 10 levels; Model B: PC and the
rivals; Models C32 / C64 / C128: the dead-leaves quality bar, curves and rivals at each size; Model D: the VP
DDPM++, its PC / DDPM samplers with every PDS form on VP, DDIM and the rivals)."""
import os

import numpy as np
import pytest
import torch

from studies import STUDIES, get, model_a, model_b, model_c, model_d, spec


def test_inverse_lambda_is_direct_one_over_lambda():
    """Eq. 20's two readings are one axis: 'inverse' with lambda builds exactly the operator of 'direct' 1/lambda."""
    from configs import mnist_cpu_pds
    from preconditioning.operator import from_config
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    outs = []
    for direction, lam in (('inverse', 1.6), ('direct', 1 / 1.6)):
        config = mnist_cpu_pds.get_config('table1_20it')
        config.pds.radial_direction, config.pds.lam = direction, lam
        op = from_config(config.pds, (1, 28, 28))
        outs.append((op.noise(x), op.drift(x)))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(outs[0][0], x, atol=1e-3)


def test_curves_use_the_issue_sample_counts():
    s = model_a.a_curves()
    counts = {p.name: p.num_samples for p in s.points}
    assert counts['vanilla_100it'] == 2000 and counts['pds_auto_200it'] == 500 and len(s.points) == 21
    assert dict(s.points[0].overrides)['sampling.n_steps_each'] == 1


def test_rivals_run_at_the_stated_budgets_on_the_models_levels():
    import sampling
    from sampling.edm import sigma_schedule
    s = model_a.a_rivals()
    nfe = {p.name: sampling.iterations(spec.point_config(s, p))[1] for p in s.points}
    assert [nfe[f'vanilla_{i}it'] for i in (10, 20, 50, 100)] == [10, 20, 50, 100]
    assert (nfe['ode_euler_10'], nfe['edm_4'], nfe['edm_10'], nfe['edm_stochastic_10']) == (10, 7, 19, 19)
    assert [nfe[f'heun_pds{k}'] for k in (1, 3, 9)] == [28, 46, 100]
    config = spec.point_config(s, next(p for p in s.points if p.name == 'edm_10'))
    levels = sigma_schedule('geometric', config.model.sigma_min, config.model.sigma_max, 10)[:10]
    trained = np.geomspace(config.model.sigma_max, config.model.sigma_min, config.model.num_scales)
    np.testing.assert_allclose(np.asarray(levels, dtype=np.float64), trained, rtol=1e-5)   # the trained levels
    assert not spec.point_config(s, next(p for p in s.points if p.name == 'edm_10')).pds.enabled
    assert spec.point_config(s, next(p for p in s.points if p.name == 'heun_pds3')).pds.enabled


def test_model_b_studies_run_at_the_stated_budgets():
    """Model B's points build valid configs whose iterations / NFE are what the tables will say: PC N steps =
    2N NFE on the PDS command line's grid, the statistics filter at Table 2's alphas, PDS only in a corrector."""
    import sampling
    from sampling import sde as sde_lib
    curves, rivals = model_b.b_curves(), model_b.b_rivals()
    for s in (curves, rivals):
        assert s.model['config'] == 'mnist_ncsnpp_cpu_pds' and s.model['results'].endswith('model_b')
    cfg = {p.name: spec.point_config(curves, p) for p in curves.points}
    for its in spec.CURVE_ITERATIONS:
        assert sampling.iterations(cfg[f'vanilla_{its}it']) == (its, 2 * its)
        assert sde_lib.from_config(cfg[f'pds_a5_{its}it']).N == its
        assert not cfg[f'vanilla_{its}it'].pds.enabled
        assert (cfg[f'pds_a5_{its}it'].pds.freq, cfg[f'pds_a5_{its}it'].pds.alpha) == ('stats', 5.)
        assert cfg[f'pds_a10_{its}it'].pds.alpha == 10. and cfg[f'pds_auto_{its}it'].pds.freq == 'auto'
    assert {p.num_samples for p in curves.points if '1000it' in p.name} == {500}
    from preconditioning.operator import MarginalPredictor
    for its in (50, 100, 200):
        marg = cfg[f'pds_a5_marg_{its}it']
        assert (marg.pds.alpha, marg.pds.predictor_drift, sde_lib.from_config(marg).N) == (5., 'marginal', its)
        assert isinstance(sampling.preconditioner(marg, (1, 28, 28)), MarginalPredictor)
    rc = {p.name: spec.point_config(rivals, p) for p in rivals.points}
    nfe = {k: sampling.iterations(c)[1] for k, c in rc.items()}
    assert (nfe['edm_5'], nfe['edm_stochastic_25'], nfe['ode_euler_20'], nfe['heun_pds3']) == (9, 49, 20, 46)
    assert nfe['edm_stochastic_100'] == 199                                 # beside PC at 100 iterations (NFE 200)
    assert nfe['rk45_0.001'] is None and rc['rk45_0.001'].sampling.ode_rtol == 1e-3       # adaptive: counted later
    assert rc['ggf_0.02'].sampling.adaptive_reltol == 0.02 and rc['ggf_0.02'].sampling.method == 'adaptive_sde'
    assert [k for k, c in rc.items() if c.pds.enabled and c.sampling.method != 'pc'] == ['heun_pds1', 'heun_pds3']
    assert {p.num_samples for p in rivals.points} == {2000}


def test_the_registry_finds_every_model_file(tmp_path, monkeypatch):
    """Adding a model's studies is adding one file: the registry lists every module of the folder (not spec, not
    _private ones) and refuses a study name defined twice."""
    import studies
    assert sorted(STUDIES) == ['a_curves', 'a_map', 'a_rivals', 'b_curves', 'b_rivals'] + sorted(
        f'c{size}_{kind}' for size in (32, 64, 128) for kind in ('quality', 'curves', 'rivals')) + [
        'd_curves', 'd_first', 'd_quality', 'd_rivals']
    assert sorted(studies.MODULES) == ['model_a', 'model_b', 'model_c', 'model_d']
    assert get('b_rivals', 7).points[0].num_samples == 7
    pkg = tmp_path / 'more_studies'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / '_helpers.py').write_text('STUDIES = {"hidden": None}\n')
    (pkg / 'model_z.py').write_text(
        'from studies.spec import Point, Study, model\n'
        'MODEL_Z = model("mnist_cpu_pds", "none.pth", "results/model_z")\n'
        'def z_one(samples=None):\n'
        '    return Study("z_one", MODEL_Z,\n'
        '                 (Point("vanilla_20it", "vanilla", (("pds.enabled", False),), samples or 10),))\n'
        'STUDIES = {"z_one": z_one}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    found, modules = studies.discover('more_studies', [str(pkg)])
    assert list(found) == ['z_one'] and list(modules) == ['model_z']
    z = found['z_one']()
    assert spec.config_name(z, z.points[0]) == 'configs/mnist_cpu_pds.py --pds=false'
    assert spec.point_config(z, z.points[0]).pds.enabled is False
    (pkg / 'model_y.py').write_text('from more_studies.model_z import z_one\nSTUDIES = {"z_one": z_one}\n')
    with pytest.raises(ValueError, match="study 'z_one' is defined twice: more_studies/model_y.py and "
                                         "more_studies/model_z.py"):
        studies.discover('more_studies', [str(pkg)])


def test_the_map_cells_are_the_gain_and_step_of_each_point():
    s = model_a.a_map()
    assert s.table == 'map' and model_a.a_curves().table == 'curves' and model_b.b_rivals().table == 'rivals'
    for p in s.points:
        gain, step = p.cell
        assert p.name == f'g{gain:.3f}_lr{step:g}' and dict(p.overrides)['sampling.step_lr'] == step
        assert p.overrides[:-1] == spec.gain_overrides(gain) and p.label.startswith(spec.gain_label(gain) + ',')
    assert {p.cell for p in s.points} == {(g, st) for g in model_a.MAP_GAINS for st in model_a.MAP_STEPS}


# --- Models C32 / C64 / C128 (studies/model_c.py) ------------------------------------------------------------------

@pytest.mark.parametrize('size', [32, 64, 128])
def test_model_c_studies_build_valid_configs_at_the_stated_budgets_and_counts(size, monkeypatch):
    """Every point of c<size>_quality / _curves / _rivals builds its config and passes the engine's checks
    (runners.validate.check_sampling, as sample_study runs them); its iterations and NFE are what the tables will
    say and its sample count follows the rule (curves: 2,000 up to 100 iterations, 500 beyond; rivals: 2,000 up
    to NFE 100, 500 beyond; quality: 500 at score_sde's N); names are unique; the quality point and the rivals' PC
    points at NFE <= 100 are the curves' points (one row serves both)."""
    import sampling
    from runners import validate
    from sampling import sde as sde_lib
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    quality, curves, rivals = (get(f'c{size}_{kind}') for kind in ('quality', 'curves', 'rivals'))
    n_default = {32: 1000, 64: 1000, 128: 2000}[size]
    module = {32: 've/deadleaves32_ncsnpp_cpu', 64: 've/deadleaves64_ncsnpp:cpu', 128: 've/deadleaves128_ncsnpp'}[size]
    ckpt = {32: 'ncsnpp_deadleaves32_cpu', 64: 'ncsnpp_deadleaves64_cpu', 128: 'ncsnpp_deadleaves128'}[size]
    cfg, nfe = {}, {}
    for s in (quality, curves, rivals):
        assert s.model == dict(config=module, checkpoint=os.path.join('checkpoints', ckpt, 'checkpoint.pth'),
                               ref='data:deadleaves', ref_split='test', results=os.path.join('results',
                                                                                             f'model_c{size}'))
        assert len({p.name for p in s.points}) == len(s.points)
        for p in s.points:
            c = spec.point_config(s, p)
            assert c.data.image_size == size and c.data.dataset == 'DeadLeaves' and c.model.num_scales == n_default
            assert validate.check_sampling(c, p.num_samples, min(s.batch_size, p.num_samples))
            cfg[(s.name, p.name)], nfe[(s.name, p.name)] = c, sampling.iterations(c)
            path, _, setting = module.partition(':')
            assert spec.config_name(s, p).startswith(f'configs/{path}.py{":" + setting if setting else ""} --pds=')
            if c.sampling.method == 'pc':
                its = nfe[(s.name, p.name)][0]
                assert sde_lib.from_config(c).N == its and nfe[(s.name, p.name)] == (its, 2 * its)
    # quality: vanilla PC at score_sde's N, one Langevin step at the config's snr, 500 samples
    (q,) = quality.points
    c = cfg[(quality.name, q.name)]
    assert (q.name, q.num_samples, nfe[(quality.name, q.name)]) == (f'vanilla_{n_default}it', 500,
                                                                    (n_default, 2 * n_default))
    assert (c.sampling.method, c.sampling.predictor, c.sampling.corrector, c.sampling.n_steps_each, c.sampling.snr,
            c.pds.enabled) == ('pc', 'reverse_diffusion', 'langevin', 1, 0.16, False)
    assert model_c.SIZES[size]['num_scales'] == n_default
    key = lambda s, p: (spec.config_name(s, p), p.num_samples)  # noqa: E731
    curve_keys = {key(curves, p) for p in curves.points}
    assert key(quality, q) in curve_keys
    # curves: five series x 10 .. 1000 (and 2000 at 128 px) iterations, most informative first: every series at 50
    # and 100, vanilla beyond, 10 and 20, the PDS series beyond
    its_list = (10, 20, 50, 100, 200, 500, 1000) + ((2000,) if size == 128 else ())
    beyond = its_list[4:]
    series = ['vanilla', 'pds_a5', 'pds_a10', 'pds_auto', 'pds_a10_marg']
    assert [p.name for p in curves.points] == (
        [f'{s}_{i}it' for i in (50, 100) for s in series] + [f'vanilla_{i}it' for i in beyond]
        + [f'{s}_{i}it' for i in (10, 20) for s in series] + [f'{s}_{i}it' for i in beyond for s in series[1:]])
    assert len(curves.points) == 5 * len(its_list)
    assert sorted(nfe[(curves.name, p.name)][0] for p in curves.points) == sorted(i for i in its_list for _ in range(5))
    for p in curves.points:
        c, its = cfg[(curves.name, p.name)], nfe[(curves.name, p.name)][0]
        assert p.num_samples == (2000 if its <= 100 else 500)
        assert c.pds.enabled == (p.label != 'vanilla')
        if c.pds.enabled:
            series = p.name.rsplit('_', 1)[0]
            assert (c.pds.freq, c.pds.alpha, c.pds.predictor_drift) == {
                'pds_a5': ('stats', 5., 'official'), 'pds_a10': ('stats', 10., 'official'),
                'pds_auto': ('auto', 5., 'official'), 'pds_a10_marg': ('stats', 10., 'marginal')}[series]
            assert c.pds.freq_path == f'assets/stats/deadleaves{size}_freq.npy'
    # rivals: EDM (NFE 2n - 1), DPM-Solver++ (NFE = steps), PC at NFE 2N; 2,000 samples up to NFE 100, 500 beyond
    r_nfe = {p.name: nfe[(rivals.name, p.name)][1] for p in rivals.points}
    assert [r_nfe[f'edm_{n}'] for n in (5, 10, 25, 50, 100)] == [9, 19, 49, 99, 199]
    assert [r_nfe[f'edm_stochastic_{n}'] for n in (5, 10, 25, 50, 100)] == [9, 19, 49, 99, 199]
    assert [r_nfe[f'dpmpp_3m_sde_{n}'] for n in (10, 20, 50, 100, 200)] == [10, 20, 50, 100, 200]
    assert {p.name.rsplit('_', 1)[0] for p in rivals.points if p.name.startswith('dpmpp')} == {
        'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde'}
    assert all(p.num_samples == (2000 if r_nfe[p.name] <= 100 else 500) for p in rivals.points)
    assert list(r_nfe.values()) == sorted(r_nfe.values(), key=lambda v: min(b for b in (10, 20, 50, 100, 200)
                                                                             if v <= b))   # by budget
    assert rivals.table == 'rivals' and rivals.budgets == (10, 20, 50, 100, 200)
    pc = [p for p in rivals.points if cfg[(rivals.name, p.name)].sampling.method == 'pc']
    assert sorted({r_nfe[p.name] for p in pc}) == [20, 40, 100, 200] and len(pc) == 20
    assert all((key(rivals, p) in curve_keys) == (r_nfe[p.name] <= 100) for p in pc)
    assert not any(cfg[(rivals.name, p.name)].pds.enabled for p in rivals.points if p not in pc)
    assert len(rivals.points) == 45 and {p.num_samples for p in get(f'c{size}_rivals', 4).points} == {4}


@pytest.mark.parametrize('size', [32, 64, 128])
def test_model_c_pds_points_find_their_statistics(size, monkeypatch):
    """The PDS series build their preconditioners from assets/stats/deadleaves<size>_freq.npy (and automatic PDS
    from the _spectrum.npy beside it) at 32 and 64 px; at 128 px those files are not made yet, and the point is
    refused in one line naming the file."""
    import preconditioning
    from runners import validate
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    s = get(f'c{size}_curves')
    for p in s.points[1:5]:                      # the four PDS series at 10 iterations
        c = spec.point_config(s, p)
        if size == 128:
            with pytest.raises(preconditioning.FilterError, match='deadleaves128_(freq|spectrum).npy'):
                validate.build_preconditioner(c, (3, size, size))
        else:
            assert validate.build_preconditioner(c, (3, size, size)) is not None


# --- Model D (studies/model_d.py): the VP DDPM++ of issue 31 part 3 ------------------------------------------------

def _model_d_configs(monkeypatch):
    """{(study, point): (point, config, (iterations, NFE))} of d_quality / d_curves / d_rivals, every point checked
    as the engine and the sampler check it: runners.validate.check_sampling (what sample_study runs), the sampler's
    process check, its preconditioner built (statistics files found, the PDS form accepted by the sampler) and, for
    PC, the VP chain's own check (sampling/pc.py refuses a Langevin / reverse-diffusion / ancestral step at N < 20)."""
    import sampling
    from runners import validate
    from sampling import pc
    from sampling import sde as sde_lib
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = {}
    for name in ('d_quality', 'd_curves', 'd_rivals'):
        s = get(name)
        assert s.model == dict(config='vp/mnist_ddpmpp_cpu', checkpoint=os.path.join(
            'checkpoints', 'ddpmpp_mnist_cpu', 'checkpoint.pth'), ref='data:$PDS_DATA/mnist', ref_split='test',
            results=os.path.join('results', 'model_d'))
        assert s.batch_size == 50 and len({p.name for p in s.points}) == len(s.points)
        for p in s.points:
            c = spec.point_config(s, p)
            assert (c.training.sde, c.data.image_size, c.data.centered, c.model.num_scales) == ('vpsde', 28, True, 1000)
            its = validate.check_sampling(c, p.num_samples, min(s.batch_size, p.num_samples))
            sampling.check_process(c)
            assert validate.build_preconditioner(c, (1, 28, 28)) is not None
            if c.sampling.method == 'pc':
                pc._check_vp_chain(sde_lib.from_config(c), c.sampling.predictor, c.sampling.corrector)
            assert spec.config_name(s, p).startswith('configs/vp/mnist_ddpmpp_cpu.py --pds=')
            out[(name, p.name)] = (p, c, its)
    return out


def test_model_d_studies_build_valid_configs_at_the_stated_budgets_and_counts(monkeypatch):
    """Every point of d_quality / d_curves / d_rivals passes the engine's and the sampler's checks; its iterations
    and NFE are what the tables will say, its count follows the rule (2,000 up to 100 iterations / NFE, 500 beyond;
    500 for the quality bar), each series is the PDS form its label says, and the quality points and the rivals'
    PC / DDPM points are the curves' own (one row serves both)."""
    from preconditioning.operator import CorrectorOnly, MarginalPredictor, Preconditioner
    from sampling import preconditioner
    cfg = _model_d_configs(monkeypatch)
    quality, curves, rivals = (get(f'd_{kind}') for kind in ('quality', 'curves', 'rivals'))
    key = lambda s, p: (spec.config_name(s, p), p.num_samples)  # noqa: E731
    curve_keys = {key(curves, p) for p in curves.points}
    # quality: the config's own PC sampler (score_sde's VP: Euler-Maruyama, no corrector) at N = 1000 and DDPM on
    # all 1000 chain steps, 500 samples each, PDS off; the curves' points at 1000 iterations
    assert [p.name for p in quality.points] == ['vanilla_1000it', 'ddpm_1000it']
    for p in quality.points:
        _, c, its = cfg[('d_quality', p.name)]
        assert p.num_samples == 500 and its == (1000, 1000) and not c.pds.enabled and key(quality, p) in curve_keys
    c = cfg[('d_quality', 'vanilla_1000it')][1]
    assert (c.sampling.method, c.sampling.predictor, c.sampling.corrector, c.sampling.eps) == (
        'pc', 'euler_maruyama', 'none', 1e-3)
    c = cfg[('d_quality', 'ddpm_1000it')][1]
    assert (c.sampling.method, c.sampling.ddpm_variance, tuple(c.sampling.chain_steps)) == ('ddpm', 'beta', ())
    # curves: 6 PC series + 3 DDPM series at 10 .. 1000, the 2 PC + Langevin series at 20 .. 1000; cheapest first
    series = {}
    for p in curves.points:
        series.setdefault(p.name.rsplit('_', 1)[0], []).append(cfg[('d_curves', p.name)][2][0])
    assert series == {k: list(spec.CURVE_ITERATIONS[1:] if k in ('langevin', 'pds_a5_corr') else spec.CURVE_ITERATIONS)
                      for k in ('vanilla', 'pds_a5', 'pds_a10', 'pds_a5_marg', 'pds_a10_marg', 'pds_auto',
                                'langevin', 'pds_a5_corr', 'ddpm', 'ddpm_pds_a5', 'ddpm_pds_a5_marg')}
    assert len(curves.points) == 9 * 7 + 2 * 6 == 75
    assert [cfg[('d_curves', p.name)][2][0] for p in curves.points] == sorted(
        cfg[('d_curves', p.name)][2][0] for p in curves.points)
    assert [p.name for p in curves.points[:9]] == [f'{k}_10it' for k in (
        'vanilla', 'pds_a5', 'pds_a10', 'pds_a5_marg', 'pds_a10_marg', 'pds_auto', 'ddpm', 'ddpm_pds_a5',
        'ddpm_pds_a5_marg')]
    forms = {'vanilla': (False, 'pc', 'none', None, None, None, 'Identity'),
             'pds_a5': (True, 'pc', 'none', 'stats', 5., 'official', 'Preconditioner'),
             'pds_a10': (True, 'pc', 'none', 'stats', 10., 'official', 'Preconditioner'),
             'pds_a5_marg': (True, 'pc', 'none', 'stats', 5., 'marginal', 'MarginalPredictor'),
             'pds_a10_marg': (True, 'pc', 'none', 'stats', 10., 'marginal', 'MarginalPredictor'),
             'pds_auto': (True, 'pc', 'none', 'auto', None, 'official', 'ScheduledPreconditioner'),
             'langevin': (False, 'pc', 'langevin', None, None, None, 'Identity'),
             'pds_a5_corr': (True, 'pc', 'langevin', 'stats', 5., 'official', 'CorrectorOnly'),
             'ddpm': (False, 'ddpm', None, None, None, None, 'Identity'),
             'ddpm_pds_a5': (True, 'ddpm', None, 'stats', 5., 'official', 'Preconditioner'),
             'ddpm_pds_a5_marg': (True, 'ddpm', None, 'stats', 5., 'marginal', 'MarginalPredictor')}
    assert {Preconditioner.__name__, MarginalPredictor.__name__, CorrectorOnly.__name__} < {
        f[-1] for f in forms.values()}
    for p in curves.points:
        _, c, (its, nfe) = cfg[('d_curves', p.name)]
        k = p.name.rsplit('_', 1)[0]
        enabled, method, corrector, freq, alpha, drift, P = forms[k]
        assert p.num_samples == (2000 if its <= 100 else 500)
        assert (c.pds.enabled, c.sampling.method) == (enabled, method)
        assert nfe == (2 * its if corrector == 'langevin' else its)
        if method == 'pc':
            assert (c.sampling.predictor, c.sampling.corrector, c.sampling.speed_up) == (
                'euler_maruyama', corrector, 1000 / its)
            assert c.sampling.snr == 0.16 and c.sampling.n_steps_each == 1
        else:
            assert c.sampling.num_steps == its and c.sampling.speed_up == 1.
        if enabled:
            assert (c.pds.freq, c.pds.predictor_drift, c.pds.freq_path) == (
                freq, drift, 'assets/stats/mnist_freq.npy')
            assert c.pds.alpha == alpha or freq == 'auto'
            assert c.pds.apply_to == ('corrector' if k == 'pds_a5_corr' else 'all')
        assert type(preconditioner(c, (1, 28, 28))).__name__ == P
        assert ('corrector' in p.label) == (corrector == 'langevin')            # the corrector is named
    # rivals: DDIM (NFE = steps), EDM (NFE 2n - 1), DPM-Solver++ (NFE = steps), RK45 (adaptive), and the curves'
    # points at NFE <= 200 of the same count; ordered by budget, RK45 last
    r = {p.name: (p, c, its) for (s, _), (p, c, its) in cfg.items() if s == 'd_rivals'}
    nfe = {k: v[2][1] for k, v in r.items()}
    assert [nfe[f'ddim_{n}'] for n in (10, 20, 50, 100, 200)] == [10, 20, 50, 100, 200]
    assert all(r[f'ddim_{n}'][1].sampling.ddim_eta == 0. for n in (10, 20, 50, 100, 200))
    assert [nfe[f'edm_{n}'] for n in (5, 10, 25, 50, 100)] == [9, 19, 49, 99, 199]
    assert [nfe[f'edm_stochastic_{n}'] for n in (5, 10, 25, 50, 100)] == [9, 19, 49, 99, 199]
    for m in ('dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde'):
        assert [nfe[f'{m}_{n}'] for n in (10, 20, 50, 100, 200)] == [10, 20, 50, 100, 200]
    assert [(k, r[k][1].sampling.ode_rtol, r[k][1].sampling.ode_atol, r[k][0].num_samples) for k in nfe
            if nfe[k] is None] == [('rk45_0.01', 1e-2, 1e-2, 2000), ('rk45_0.001', 1e-3, 1e-3, 2000),
                                   ('rk45_1e-05', 1e-5, 1e-5, 500)]
    fixed = [k for k in nfe if nfe[k] is not None]
    assert list(nfe)[len(fixed):] == ['rk45_0.01', 'rk45_0.001', 'rk45_1e-05']
    budget = lambda v: min(b for b in model_d.RIVAL_BUDGETS if v <= b)  # noqa: E731
    assert [budget(nfe[k]) for k in fixed] == sorted(budget(nfe[k]) for k in fixed)
    assert all(r[k][0].num_samples == (2000 if nfe[k] <= 100 else 500) for k in fixed)
    eps3 = [k for k in fixed if 'eps3' in k]          # PC at score_sde's eps 1e-3 at every N: N = NFE, speed_up 1
    assert sorted(eps3) == sorted(f'{s}_{n}it' for s in ('vanilla_eps3', 'pds_a5_eps3', 'pds_a5_marg_eps3',
                                                         'vanilla_eps3_den', 'pds_a5_marg_eps3_den')
                                  for n in model_d.RIVAL_BUDGETS)
    for k in eps3:
        c, n = r[k][1], int(k.split('_')[-1][:-2])
        assert (c.sampling.method, c.sampling.num_steps, c.sampling.speed_up, c.sampling.eps) == ('pc', n, 1., 1e-3)
        assert nfe[k] == n and key(rivals, r[k][0]) not in curve_keys and c.pds.enabled == ('pds' in k)
        assert c.pds.predictor_drift == ('marginal' if 'marg' in k else 'official')
        assert c.sampling.last_step == ('denoiser' if k.split('_')[-2] == 'den' else 'predictor')
        assert r[k][0].label.endswith('eps 1e-3, denoiser last step' if 'den' in k else 'eps 1e-3')
    shared = [k for k in fixed if r[k][1].sampling.method in ('pc', 'ddpm') and k not in eps3]
    assert all(key(rivals, r[k][0]) in curve_keys for k in shared)                  # the curves' rows
    assert len(shared) == 9 * 5 + 2 * 2 and sorted(k for k in shared if 'langevin' in k or 'corr' in k) == [
        'langevin_20it', 'langevin_50it', 'pds_a5_corr_20it', 'pds_a5_corr_50it']
    assert not any(r[k][1].pds.enabled for k in nfe if k not in shared and k not in eps3)
    for k in nfe:            # EDM / DPM-Solver++ in EDM's sigma view from sigma(1e-3) (speed_up 1), not sigma(eps x su)
        if r[k][1].sampling.method not in ('pc', 'ddpm'):
            assert r[k][1].sampling.speed_up == 1. and r[k][1].sampling.eps == 1e-3
    assert rivals.table == 'rivals' and rivals.budgets == (10, 20, 50, 100, 200) and len(rivals.points) == 107
    assert {p.num_samples for s in ('d_quality', 'd_curves', 'd_rivals') for p in get(s, 4).points} == {4}


def test_model_d_first_pass_is_the_full_studies_points_so_their_rows_are_shared():
    """d_first runs 26 points of d_rivals early; each is the same point (name, label, overrides, count) as in
    d_rivals, and those on the PC / DDPM samplers at the speed_up rule's eps also as in d_curves, so the full studies
    find their rows done."""
    first, rivals, curves = (get(n) for n in ('d_first', 'd_rivals', 'd_curves'))
    r, c = {p.name: p for p in rivals.points}, {p.name: p for p in curves.points}
    assert len(first.points) == 26 and all(r[p.name] == p for p in first.points)
    on_curves = [p for p in first.points if p.name.endswith('it') and 'eps3' not in p.name]
    assert len(on_curves) == 12 and all(c[p.name] == p for p in on_curves)
    assert [p.name for p in first.points][7:10] == ['vanilla_eps3_20it', 'pds_a5_marg_eps3_20it', 'pds_a5_eps3_20it']
    assert {spec.config_name(first, p) for p in first.points} <= {spec.config_name(rivals, p) for p in rivals.points}
    assert sorted({p.label for p in first.points}) == sorted({
        'vanilla', 'PDS stats α=5 (Table 2, 100 it)', 'PDS stats α=5, marginal predictor', 'DDPM ancestral',
        'DDIM (η=0)', 'DPM-Solver++ 2M SDE', 'EDM stochastic', 'vanilla, eps 1e-3', 'PDS stats α=5, eps 1e-3',
        'PDS stats α=5, marginal predictor, eps 1e-3', 'vanilla, eps 1e-3, denoiser last step',
        'PDS stats α=5, marginal predictor, eps 1e-3, denoiser last step'})
    assert first.budgets == (20, 50, 100) and {p.num_samples for p in get('d_first', 4).points} == {4}


def test_model_d_corrector_series_start_where_vp_langevin_is_defined():
    """The PC + Langevin series start at 20 iterations: at N = 10 the chain's largest beta is beta_max / N = 2 and
    sampling/pc.py refuses VP's Langevin step in one line (the official update would take the square root of a
    negative number); Euler-Maruyama without a corrector, the config's sampler, runs there."""
    from sampling import pc
    from sampling import sde as sde_lib
    s = spec.Study('t', model_d.MODEL_D, (spec.Point('p', 'l', model_d.OFF + model_d.LANGEVIN + (
        ('sampling.speed_up', 100.),), 4),))
    c = spec.point_config(s, s.points[0])
    with pytest.raises(ValueError, match='langevin on the VP SDE with N = 10 steps'):
        pc._check_vp_chain(sde_lib.from_config(c), c.sampling.predictor, c.sampling.corrector)
    pc._check_vp_chain(sde_lib.from_config(c), 'euler_maruyama', 'none')
    assert model_d.CORRECTOR_ITERATIONS == (20, 50, 100, 200, 500, 1000)


def test_model_d_chain_points_stay_within_the_models_levels():
    """Each DDPM / DDIM point visits chain levels the continuous model answers (sigma <= sigma(1)): a continuous
    model's chain is its SDE at t_j = (j + 1) / N (sampling.ddpm_chain), not the discrete chain, whose top four levels
    (sigma 154.3 .. 157.4) lie beyond sigma(1) = 152.2."""
    import sampling
    bad = []
    for name in ('d_quality', 'd_curves', 'd_rivals'):
        s = get(name)
        for p in s.points:
            c = spec.point_config(s, p)
            if c.sampling.method in sampling.VP_ONLY:
                levels = sampling.ddpm_chain(c).level_sigmas()[sampling._chain_tau(c)]
                if float(levels.max()) > sampling.sigma_range(c)[1] * (1 + 1e-6):
                    bad.append(f'{name}/{p.name}')
    assert not bad, f'{len(bad)} points: {bad[:3]} ...'


# docs/vp.md's Model D tables, one per NFE budget: label -> point of d_first, else of d_curves, else of d_rivals (the
# first study that has the name); a 'the same, PDS (a) / (b)' row below one of them is that point's PDS form (PARENTS)
VP_DOC_ROWS = {
    20: {'VP PC (Euler-Maruyama), eps 0.05 (speed_up rule): vanilla': 'vanilla_20it',
         'the same, PDS (a) official form, alpha 5': 'pds_a5_20it',
         'the same, PDS (b) marginal form, alpha 5': 'pds_a5_marg_20it',
         "VP PC, score_sde's eps 1e-3: vanilla": 'vanilla_eps3_20it',
         'VP PC, eps 1e-3, denoiser as the last step (`sampling.last_step`): vanilla': 'vanilla_eps3_den_20it',
         'DDPM ancestral, 20 steps of the chain': 'ddpm_20it',
         'DDIM (eta 0), 20 steps': 'ddim_20',
         'EDM stochastic, 10 steps (NFE 19)': 'edm_stochastic_10',
         'DPM-Solver++ 2M SDE, 20 steps': 'dpmpp_2m_sde_20'},
    50: {'VP PC (Euler-Maruyama), eps 0.02 (speed_up rule): vanilla': 'vanilla_50it',
         "VP PC, score_sde's eps 1e-3: vanilla": 'vanilla_eps3_50it',
         'VP PC, eps 1e-3, denoiser as the last step (`sampling.last_step`): vanilla': 'vanilla_eps3_den_50it',
         'the same, PDS (a) official form, alpha 5': 'pds_a5_50it',
         'the same, PDS (b) marginal form, alpha 5': 'pds_a5_marg_50it',
         'the same, PDS (a) official form, alpha 10': 'pds_a10_50it',
         'the same, PDS (b) marginal form, alpha 10': 'pds_a10_marg_50it',
         'DDPM ancestral, 50 steps of the chain': 'ddpm_50it',
         'DDIM (eta 0), 50 steps': 'ddim_50',
         'EDM stochastic, 25 steps (NFE 49)': 'edm_stochastic_25',
         'DPM-Solver++ 2M SDE, 50 steps': 'dpmpp_2m_sde_50'},
    100: {'VP PC (Euler-Maruyama), eps 0.01 (speed_up rule): vanilla': 'vanilla_100it',
          'the same, PDS (a) official form, alpha 5': 'pds_a5_100it',
          'the same, PDS (b) marginal form, alpha 5': 'pds_a5_marg_100it',
          'the same, PDS (a) official form, alpha 10': 'pds_a10_100it',
          'the same, PDS (b) marginal form, alpha 10': 'pds_a10_marg_100it',
          'DDPM ancestral, 100 steps of the chain': 'ddpm_100it',
          'DDIM (eta 0), 100 steps': 'ddim_100',
          'EDM stochastic, 50 steps (NFE 99)': 'edm_stochastic_50',
          'DPM-Solver++ 2M SDE, 100 steps': 'dpmpp_2m_sde_100',
          'DPM-Solver++ 3M SDE, 100 steps': 'dpmpp_3m_sde_100'},
}
PARENTS = {'the same, PDS (b)': {'vanilla_eps3_20it': 'pds_a5_marg_eps3_20it',
                                 'vanilla_eps3_den_20it': 'pds_a5_marg_eps3_den_20it',
                                 'vanilla_eps3_50it': 'pds_a5_marg_eps3_50it',
                                 'vanilla_eps3_den_50it': 'pds_a5_marg_eps3_den_50it'},
           'the same, PDS (a)': {'vanilla_eps3_20it': 'pds_a5_eps3_20it', 'vanilla_eps3_50it': 'pds_a5_eps3_50it'}}


def _vp_doc_table(header):
    """The body lines of docs/vp.md's table under ``header`` (header and rule line dropped) and the committed rows of
    results/model_d/study.csv."""
    import csv
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, 'docs', 'vp.md'), encoding='utf-8').read()
    table = text[text.index(header):].split('\n\n')[0].splitlines()[2:]
    rows = list(csv.DictReader(open(os.path.join(root, 'results', 'model_d', 'study.csv'), encoding='utf-8')))
    return table, rows


def _assert_kid_quoted(row, kid):
    """``kid`` ('0.0089 ± 0.0006') is the row's KID and its standard deviation, rounded to the digits quoted."""
    import re
    mean, std = re.match(r'([\d.]+) ± ([\d.]+)', kid).groups()
    digits = len(mean.split('.')[1])
    assert f'{float(row["kid"]):.{digits}f}' == mean and f'{float(row["kid_std"]):.{digits}f}' == std


@pytest.mark.parametrize('nfe,count', [(20, 12), (50, 14), (100, 10)])
def test_vp_doc_table_quotes_the_model_d_rows(nfe, count):
    """Every FID / KID of docs/vp.md's Model D table at this NFE is the committed 2,000-sample Inception row of the
    point it names (rounded as quoted), of the shipped checkpoint; the (a) / (b) rows below a 'the same' row follow
    their parent's setting."""
    table, rows = _vp_doc_table(f'| NFE {nfe} | FID | KID |')
    points = {p.name: (study, p) for study in (get('d_rivals'), get('d_curves'), get('d_first'))
              for p in study.points}                      # a later study's point wins: d_first, then d_curves
    parent, checked = None, 0
    for line in table:
        label, fid, kid = (c.strip().strip('*') for c in line.strip('|').split('|'))
        if label in VP_DOC_ROWS[nfe]:
            name = VP_DOC_ROWS[nfe][label]
            parent = name if not label.startswith('the same') else parent
        else:
            name = PARENTS[label][parent]
        cfg = spec.config_name(*points[name])
        found = [r for r in rows if r['config'] == cfg and r['features'] == 'inception']
        assert len(found) == 1 and found[0]['num_samples'] == '2000', name
        assert found[0]['checkpoint_sha256'].startswith('618693ca5cc3'), name
        assert f'{float(found[0]["fid"]):.1f}' == fid, (name, fid)
        _assert_kid_quoted(found[0], kid)
        checked += 1
    assert checked == count


D_CURVES_DOC_ROWS = {
    'vanilla, 20 it': 'vanilla_20it',
    'automatic PDS (form (a), the filter per step from the data spectrum), 20 it': 'pds_auto_20it',
    'vanilla, 50 it': 'vanilla_50it',
    'automatic PDS, 50 it': 'pds_auto_50it',
    'vanilla, 100 it': 'vanilla_100it',
    'automatic PDS, 100 it': 'pds_auto_100it',
    'vanilla + Langevin corrector (snr 0.16), 20 it': 'langevin_20it',
    'the same, PDS alpha 5 in the corrector only (form (c))': 'pds_a5_corr_20it',
    'vanilla + Langevin corrector (snr 0.16), 50 it': 'langevin_50it',
    'the same, PDS alpha 5 in the corrector only, 50 it': 'pds_a5_corr_50it',
    'vanilla + Langevin corrector (snr 0.16), 100 it': 'langevin_100it',
    'the same, PDS alpha 5 in the corrector only, 100 it': 'pds_a5_corr_100it',
}
D_DDPM_DOC_ROWS = {
    'vanilla, 50 steps': 'ddpm_50it',
    'PDS (a) official form, alpha 5, 50 steps': 'ddpm_pds_a5_50it',
    'PDS (b) marginal form, alpha 5, 50 steps': 'ddpm_pds_a5_marg_50it',
    'vanilla, 100 steps': 'ddpm_100it',
    'PDS (a) official form, alpha 5, 100 steps': 'ddpm_pds_a5_100it',
    'PDS (b) marginal form, alpha 5, 100 steps': 'ddpm_pds_a5_marg_100it',
}


# docs/vp.md's NFE-200 table (500 samples per point), row by row: the point each row quotes
D_200_DOC_POINTS = ['vanilla_200it', 'pds_a5_200it', 'pds_a10_200it', 'pds_a5_marg_200it', 'pds_a10_marg_200it',
                    'pds_auto_200it', 'langevin_200it', 'pds_a5_corr_200it', 'ddpm_200it', 'ddpm_pds_a5_200it',
                    'ddpm_pds_a5_marg_200it', 'ddim_200', 'dpmpp_2m_200', 'dpmpp_2m_sde_200',
                    'dpmpp_3m_sde_200', 'edm_100', 'edm_stochastic_100']


D_500_DOC_POINTS = ['vanilla_500it', 'pds_a5_500it', 'pds_a10_500it', 'pds_a5_marg_500it', 'pds_a10_marg_500it',
                    'ddpm_500it', 'vanilla_1000it']


@pytest.mark.parametrize('header, doc_points', [
    ('| 200 iterations / steps (500 samples) | NFE | FID | KID |', D_200_DOC_POINTS),
    ('| 500 and 1000 iterations (500 samples) | NFE | FID | KID |', D_500_DOC_POINTS)])
def test_vp_doc_500_sample_tables_quote_the_model_d_rows(header, doc_points):
    """docs/vp.md's NFE-200 and NFE-500 / 1000 tables: every NFE, FID and KID is the committed 500-sample Inception
    row of the point it quotes (d_quality's and d_curves' PC / DDPM points, d_rivals' DDIM, DPM-Solver++ and EDM),
    of the shipped checkpoint."""
    table, rows = _vp_doc_table(header)
    assert len(table) == len(doc_points)
    points = {p.name: (study, p) for study in (get('d_quality'), get('d_rivals'), get('d_curves'))
              for p in study.points}
    for line, name in zip(table, doc_points):
        label, nfe, fid, kid = (c.strip().strip('*') for c in line.strip('|').split('|'))
        cfg = spec.config_name(*points[name])
        found = [r for r in rows if r['config'] == cfg and r['features'] == 'inception' and r['num_samples'] == '500']
        assert len(found) == 1 and found[0]['checkpoint_sha256'].startswith('618693ca5cc3'), name
        assert found[0]['nfe'] == nfe and f'{float(found[0]["fid"]):.1f}' == fid, (label, name, nfe, fid)
        _assert_kid_quoted(found[0], kid)


@pytest.mark.parametrize('header, doc_rows', [('| VP PC, speed_up rule | NFE | FID | KID |', D_CURVES_DOC_ROWS),
                                              ('| DDPM ancestral, steps of the 1000-step chain | NFE | FID | KID |',
                                               D_DDPM_DOC_ROWS)])
def test_vp_doc_d_curves_tables_quote_the_model_d_rows(header, doc_rows):
    """docs/vp.md's d_curves tables: every NFE, FID and KID is the committed 2,000-sample Inception row of the
    d_curves point it names, of the shipped checkpoint."""
    table, rows = _vp_doc_table(header)
    curves = get('d_curves')
    points = {p.name: p for p in curves.points}
    assert [line.split('|')[1].strip() for line in table] == list(doc_rows)
    for line in table:
        label, nfe, fid, kid = (c.strip().strip('*') for c in line.strip('|').split('|'))
        cfg = spec.config_name(curves, points[doc_rows[label]])
        found = [r for r in rows if r['config'] == cfg and r['features'] == 'inception' and r['num_samples'] == '2000']
        assert len(found) == 1 and found[0]['checkpoint_sha256'].startswith('618693ca5cc3'), label
        assert found[0]['nfe'] == nfe and f'{float(found[0]["fid"]):.1f}' == fid, (label, nfe, fid)
        _assert_kid_quoted(found[0], kid)
