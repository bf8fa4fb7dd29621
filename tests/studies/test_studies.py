"""studies/: the study definitions as data: the registry finds every model file, and each study's points build
the configs, iterations and NFE its tables say (Model A: annealed Langevin on its 10 levels; Model B: PC and the
rivals; Models C32 / C64 / C128: the dead-leaves quality bar, curves and rivals at each size)."""
import os

import numpy as np
import pytest
import torch

from studies import STUDIES, get, model_a, model_b, model_c, spec


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
        f'c{size}_{kind}' for size in (32, 64, 128) for kind in ('quality', 'curves', 'rivals'))
    assert sorted(studies.MODULES) == ['model_a', 'model_b', 'model_c']
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
    module = {32: 've/deadleaves32_ncsnpp_cpu', 64: 've/deadleaves64_ncsnpp', 128: 've/deadleaves128_ncsnpp'}[size]
    ckpt = {32: 'ncsnpp_deadleaves32_cpu', 64: 'ncsnpp_deadleaves64', 128: 'ncsnpp_deadleaves128'}[size]
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
            assert spec.config_name(s, p).startswith(f'configs/{module}.py --pds=')
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
    # curves: five series x 10 .. 1000 (and 2000 at 128 px) iterations, cheapest first
    its_list = (10, 20, 50, 100, 200, 500, 1000) + ((2000,) if size == 128 else ())
    assert [p.name for p in curves.points[:5]] == ['vanilla_10it', 'pds_a5_10it', 'pds_a10_10it', 'pds_auto_10it',
                                                   'pds_a10_marg_10it']
    assert len(curves.points) == 5 * len(its_list)
    assert [nfe[(curves.name, p.name)][0] for p in curves.points] == [i for i in its_list for _ in range(5)]
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
