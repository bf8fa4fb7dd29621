"""PDS operator maths on small sizes, against dense matrices and the official complex-FFT formulation."""
import numpy as np
import pytest
import torch

import preconditioning
from configs import defaults
from preconditioning.operator import Preconditioner, solenoidal_fft, solenoidal_fft_roll, solenoidal_roll

SHAPE = (2, 8, 6)   # C, H, W (non-square on purpose)


def dense(op, shape=SHAPE):
    """The matrix of a linear map on (C, H, W) images (float64)."""
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return op(basis).reshape(n, n).T


def symmetric_table(seed, shape=SHAPE):
    """A positive Hermitian-symmetric frequency table, as statistics of real images give."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand((16, *shape), generator=g, dtype=torch.float64)
    return torch.log1p((torch.fft.fft2(imgs).abs() ** 2).mean(0))


def official_gram(v, Fm, S):
    """The official PDS drift transform: Re idft(Fm dft(S^2 idft(Fm dft(v))))."""
    inner = torch.fft.ifft2(torch.fft.fft2(v) * Fm) * S ** 2
    return torch.fft.ifft2(torch.fft.fft2(inner) * Fm).real


def official_noise(z, Fm, S):
    return torch.fft.ifft2(torch.fft.fft2(z * S) * Fm).real


@pytest.mark.parametrize('with_space', [False, True])
def test_gram_is_M_MT_symmetric_positive_definite(with_space):
    Fm = preconditioning.normalised_inverse(symmetric_table(0).numpy(), 3.).double()
    S = preconditioning.normalised_inverse(torch.rand(SHAPE, generator=torch.Generator().manual_seed(1)).numpy() + .1, 3.).double() \
        if with_space else None
    P = Preconditioner(Fm, S, dtype=torch.float64)
    assert P.real
    M, G = dense(P.noise), dense(P.gram)
    assert torch.allclose(G, G.T, atol=1e-12)
    assert torch.allclose(G, M @ M.T, atol=1e-12)
    assert torch.linalg.eigvalsh(G).min() > 0.5          # entries of Fm, S are >= 1


@pytest.mark.parametrize('with_space', [False, True])
def test_rfft_equals_official_complex_formulation(with_space):
    Fm = preconditioning.normalised_inverse(symmetric_table(2).numpy(), 5.)
    S = preconditioning.normalised_inverse(np.random.default_rng(3).random(SHAPE).astype(np.float32) + .1, 5.) \
        if with_space else torch.ones(1)
    P = Preconditioner(Fm, S if with_space else None)
    v = torch.randn((3, *SHAPE), generator=torch.Generator().manual_seed(4))
    ref_gram, ref_noise = official_gram(v, Fm, S), official_noise(v, Fm, S)
    assert (P.gram(v) - ref_gram).abs().max() <= 1e-6 * ref_gram.abs().max()
    assert (P.noise(v) - ref_noise).abs().max() <= 1e-6 * ref_noise.abs().max()


def test_non_hermitian_table_uses_the_complex_formulation():
    Fm = torch.rand(SHAPE, generator=torch.Generator().manual_seed(5)) + 1   # not Hermitian-symmetric
    P = Preconditioner(Fm)
    assert not P.real
    v = torch.randn((2, *SHAPE), generator=torch.Generator().manual_seed(6))
    assert torch.allclose(P.gram(v), official_gram(v, Fm, torch.ones(1)), atol=1e-5)
    assert torch.allclose(P.noise(v), official_noise(v, Fm, torch.ones(1)), atol=1e-5)


def test_identity_filters_give_the_identity():
    P = Preconditioner(torch.ones(SHAPE), torch.ones(SHAPE))
    v = torch.randn((2, *SHAPE))
    assert torch.allclose(P.gram(v), v, atol=1e-6) and torch.allclose(P.noise(v), v, atol=1e-6)
    ident = preconditioning.Identity()
    assert ident.drift(v) is v and ident.noise(v) is v


def test_normalised_inverse_matches_eq22_and_official_range():
    m = np.array([[[0.5, 2.0], [1.0, 4.0]]], dtype=np.float32)
    out = preconditioning.normalised_inverse(m, 5.)
    expected = 5. / (m / 4. + 4.)
    assert np.allclose(out.numpy(), expected, rtol=1e-6)
    assert float(out.min()) == 1.0 and float(out.max()) <= 5. / 4.
    with pytest.raises(preconditioning.FilterError):
        preconditioning.normalised_inverse(-m, 5.)


def test_radial_filter_on_the_unshifted_grid():
    """Eq. 20: the disc around DC (low frequencies) is 1, the rest lambda; DC sits at [0, 0] of the DFT grid."""
    H = W = 28
    R = preconditioning.radial_filter((1, H, W), 0.2, 1.6)[0]
    assert R[0, 0] == 1 and R[1, 0] == 1 and R[H - 1, W - 1] == 1     # DC and its neighbours (both signs)
    assert R[H // 2, W // 2] == pytest.approx(1.6)                      # Nyquist corner: high frequency
    k = torch.fft.fftfreq(H) * H                                        # signed integer frequencies
    direct = torch.where(k[:, None] ** 2 + k[None, :] ** 2 <= 2 * (0.2 * H) ** 2, 1.0, 1.6)
    assert torch.equal(R, direct.float())
    assert preconditioning.operator.is_hermitian(R)
    # the fftshift-ed (wrong) table is a different filter: a test on values, not shapes, catches it
    assert not torch.equal(torch.fft.fftshift(R), R)


def test_radial_direction_config():
    pds = defaults.pds_config()
    pds.enabled, pds.freq, pds.radius, pds.lam = True, 'radial', 0.2, 1.6
    assert pds.radial_direction == 'direct'          # the default (docs/results.md: PDS on a perfect score)
    pds.radial_direction = 'inverse'
    inverse = preconditioning.from_config(pds, (1, 28, 28))
    pds.radial_direction = 'direct'
    direct = preconditioning.from_config(pds, (1, 28, 28))
    assert float(inverse.freq[0, 0, 14, 14]) == pytest.approx(1 / 1.6)
    assert float(direct.freq[0, 0, 14, 14]) == pytest.approx(1.6)
    assert float(inverse.freq[0, 0, 0, 0]) == float(direct.freq[0, 0, 0, 0]) == 1.


def test_solenoidal_operators_are_skew_symmetric():
    S = dense(solenoidal_roll((1, 2)))
    assert torch.allclose(S, -S.T) and S.abs().max() == 1
    # Re[F - F^T] and Re[F (P - P^T) F^-1] vanish on real images (F^T = F; F P F^-1 is a diagonal phase)
    for op in (solenoidal_fft(), solenoidal_fft_roll((1, 1))):
        D = dense(op)
        assert torch.allclose(D, -D.T, atol=1e-9) and D.abs().max() < 1e-9


def test_filter_shape_mismatch_is_a_clear_error(tmp_path):
    path = tmp_path / 'f_freq.npy'
    np.save(path, np.ones((3, 32, 32), np.float32))
    pds = defaults.pds_config()
    pds.enabled, pds.freq, pds.freq_path = True, 'stats', str(path)
    with pytest.raises(preconditioning.FilterError, match=r'\(3, 32, 32\).*\(1, 28, 28\)'):
        preconditioning.from_config(pds, (1, 28, 28))
    pds.freq_path = str(tmp_path / 'missing.npy')
    with pytest.raises(preconditioning.FilterError, match='does not exist'):
        preconditioning.from_config(pds, (1, 28, 28))


def _pds(**fields):
    pds = defaults.pds_config()
    pds.enabled = True
    pds.update(fields)
    return pds


def _pc_run(apply_to, corrector, stats):
    import sampling
    c = defaults.ve_ncsnpp()
    c.model.sigma_max, c.model.sigma_min, c.model.num_scales = 5., 0.01, 6
    c.data.num_channels, c.data.image_size = 1, 8
    c.sampling.corrector = corrector
    c.pds.enabled, c.pds.freq, c.pds.freq_path, c.pds.apply_to = apply_to is not None, 'stats', stats, apply_to or 'all'
    score = lambda x, sigma: -x / (0.1 + torch.as_tensor(sigma).reshape(-1, 1, 1, 1) ** 2)  # noqa: E731
    return sampling.sample(c, score, (4, 1, 8, 8), torch.Generator().manual_seed(3))[0]


def test_apply_to_corrector_preconditions_the_corrector_steps_only(tmp_path):
    """pds.apply_to = 'corrector': prior, predictor and denoising are vanilla's draw for draw; the corrector is not."""
    stats = str(tmp_path / 'x_freq.npy')
    np.save(stats, np.random.default_rng(0).uniform(0.5, 3., (1, 8, 8)))
    P = preconditioning.from_config(_pds(freq='stats', freq_path=stats, apply_to='corrector'), (1, 8, 8))
    assert P.at_step(3, 'corrector') is P.P
    assert all(P.at_step(3, role).is_identity for role in ('prior', 'predictor', 'denoise'))
    vanilla = _pc_run(None, 'none', stats)
    assert torch.equal(_pc_run('corrector', 'none', stats), vanilla)          # no corrector: exactly vanilla
    assert not torch.equal(_pc_run('all', 'none', stats), vanilla)
    with_corrector = [_pc_run(a, 'langevin', stats) for a in (None, 'corrector', 'all')]
    assert not torch.equal(with_corrector[1], with_corrector[0]) and not torch.equal(with_corrector[1], with_corrector[2])


def test_apply_to_errors_are_clear(tmp_path):
    import sampling
    from runners import validate
    with pytest.raises(ValueError, match="pds.apply_to must be one of"):
        preconditioning.from_config(_pds(freq='radial', apply_to='predictor'), (1, 8, 8))
    c = defaults.ve_ncsnpp()
    c.pds.enabled, c.pds.apply_to = True, 'everything'
    assert any("pds.apply_to = 'everything'" in p for p in validate.sampling_problems(c))
    c.pds.freq, c.pds.apply_to, c.pds.spectrum_path = 'auto', 'corrector', str(tmp_path / 'none_spectrum.npy')
    with pytest.raises(ValueError, match="set pds.apply_to = 'all'"):
        sampling.preconditioner(c, (1, 8, 8))


@pytest.mark.parametrize('omega', [0., 0.3])
def test_marginal_predictor_drift_is_half_identity_plus_gram(tmp_path, omega):
    """pds.predictor_drift = 'marginal': the predictor's drift matrix is (I + M M^T) / 2 (+ omega S, unchanged) and its
    noise M, against dense matrices; prior and corrector are the official operator itself."""
    stats = str(tmp_path / 'x_freq.npy')
    np.save(stats, symmetric_table(4).numpy())
    cfg = _pds(freq='stats', freq_path=stats)
    cfg.omega, cfg.solenoidal, cfg.predictor_drift = omega, 'roll', 'marginal'
    P = preconditioning.from_config(cfg, SHAPE, dtype=torch.float64)
    official = P.P
    assert P.at_step(2, 'corrector') is official and P.at_step(2, 'prior') is official
    pred = P.at_step(2, 'predictor')
    gram, skew = dense(official.gram), dense(solenoidal_roll((1, 1)))
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    assert not torch.allclose(gram, eye, atol=1e-3)                              # a filter that acts
    assert torch.allclose(dense(pred.drift), (eye + gram) / 2 + omega * skew, atol=1e-10)
    assert torch.allclose(dense(pred.noise), dense(official.noise), atol=1e-12)


def test_predictor_drift_errors_are_clear(tmp_path):
    import sampling
    from runners import validate
    with pytest.raises(ValueError, match="pds.predictor_drift must be one of"):
        preconditioning.from_config(_pds(freq='radial', predictor_drift='half'), (1, 8, 8))
    c = defaults.ve_ncsnpp()
    c.pds.enabled, c.pds.predictor_drift = True, 'half'
    assert any("pds.predictor_drift = 'half'" in p for p in validate.sampling_problems(c))
    c.pds.predictor_drift = 'marginal'
    assert not validate.sampling_problems(c)
    for key, value in (('sampling.method', 'ald'), ('sampling.predictor', 'none'), ('pds.freq', 'auto')):
        c2 = defaults.ve_ncsnpp()
        c2.pds.enabled, c2.pds.predictor_drift = True, 'marginal'
        section, name = key.split('.')
        setattr(getattr(c2, section), name, value)
        with pytest.raises(ValueError, match="pds.predictor_drift = 'marginal' changes the PC predictor"):
            sampling.preconditioner(c2, (1, 8, 8))
