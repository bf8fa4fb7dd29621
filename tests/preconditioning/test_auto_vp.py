"""Automatic PDS on the VP SDE (pds.freq = 'auto', preconditioning.auto.AutoVPPC): exact-score Gaussians diagonal in
the DFT, error = mean per-frequency KL (preconditioning.auto.kl), analytic by the moment recursion (A5) (checked
against the real samplers in tests/sampling/test_vp_gaussian.py) and Monte Carlo through sampling.sample."""
import numpy as np
import pytest
import torch

import sampling
from configs import defaults
from preconditioning import auto
from sampling.sde import VPSDE
from tests.preconditioning.test_auto import gaussian_score, measured, spectra

PAIRS = [('reverse_diffusion', 'langevin'), ('euler_maruyama', 'none'), ('ancestral_sampling', 'none')]


@pytest.fixture(autouse=True)
def one_thread(single_thread):
    """Small FFTs, many steps: one thread is fastest and immune to a busy machine."""


def mnist_centred():
    """MNIST's spectrum (assets/stats, taken on [0, 1] images) as the centred data 2 x - 1 a VP model sees."""
    return spectra()['mnist'].affine(2., -1.)


def _kl(spec, N, predictor, corrector, auto_filters):
    sde = VPSDE(0.1, 20., N)
    filters = auto.AutoVPPC(spec, sde, 1e-3, predictor, corrector, 0.16, 1).filter if auto_filters else None
    return auto.kl(*auto.vp_pc_moments(spec, sde, 1e-3, predictor, corrector, filters=filters, exact_prior=True),
                   spec.P)


@pytest.mark.slow
@pytest.mark.parametrize('predictor,corrector', PAIRS)
@pytest.mark.parametrize('name,N_gain,gain', [('mnist', 100, 50), ('mnist_uncentred', 25, 100), ('anisotropic', 25, 1e3)])
def test_auto_vp_is_never_worse_than_vanilla(name, N_gain, gain, predictor, corrector):
    """Measured (reverse diffusion + Langevin, vanilla / auto at N = 25, 100, 400): centred MNIST 7.7e-3 / 2.3e-3,
    9.3e-4 / 7.4e-6, 3.4e-5 / 4.7e-6; uncentred (its small variances are 4x smaller) 1.4 / 6.1e-3, 2.1e-2 / 5.2e-5,
    4.3e-4 / 4.1e-6; on the stiff anisotropic spectrum vanilla's discrete steps overshoot its 1e-4 variances below
    N = 100 (KL 374 at 25) where auto stays at 2.4e-2."""
    spec = {'mnist': mnist_centred, 'mnist_uncentred': lambda: spectra()['mnist'],
            'anisotropic': lambda: spectra()['anisotropic']}[name]()
    for N in (25, 100, 400):
        vanilla, mine = _kl(spec, N, predictor, corrector, False), _kl(spec, N, predictor, corrector, True)
        assert np.isfinite(mine) and mine <= vanilla * (1 + 1e-9), (N, mine, vanilla)
        if N == N_gain:
            assert mine < vanilla / gain, (mine, vanilla)


def test_affine_spectrum():
    spec = spectra()['powerlaw2']
    centred = spec.affine(2., -1.)
    assert np.allclose(centred.P, 4 * spec.P)
    x = np.fft.ifft2(spec.mu * 16).real                     # the mean image (orthonormal DFT of 16 x 16)
    y = np.fft.ifft2(centred.mu * 16).real
    assert np.allclose(y, 2 * x - 1)


@pytest.mark.slow
def test_auto_vp_real_sampler_lands_where_the_recursion_says():
    """sampling.sample with pds.freq = 'auto' on a VP config with uncentred data (the spectrum file as it is): 1024
    MNIST-spectrum Gaussian samples at N = 25 (reverse diffusion + Langevin) land at the recursion's KL (6.1e-3) to
    the Monte-Carlo floor; vanilla at the same N is far off (1.4)."""
    spec = spectra()['mnist']
    config = defaults.vp('ncsnpp')
    config.data.num_channels, config.data.image_size, config.data.centered = 1, 28, False
    s = config.sampling
    s.predictor, s.corrector, s.num_steps = 'reverse_diffusion', 'langevin', 25
    config.pds.enabled, config.pds.freq, config.pds.spectrum_path = True, 'auto', 'assets/stats/mnist_spectrum.npy'
    score = gaussian_score(spec)
    x, nfe = sampling.sample(config, score, (1024, 1, 28, 28), torch.Generator().manual_seed(0))
    assert nfe == 50
    mc = auto.kl(*measured(spec, x), spec.P)
    rec = _kl(spec, 25, 'reverse_diffusion', 'langevin', True)
    assert abs(mc - rec) < 3e-3, (mc, rec)
    config.pds.enabled = False
    x, _ = sampling.sample(config, score, (1024, 1, 28, 28), torch.Generator().manual_seed(0))
    assert auto.kl(*measured(spec, x), spec.P) > 0.3


def test_auto_vp_maps_the_spectrum_to_centred_data():
    """A centred VP config gets the filters of the spectrum of 2 x - 1 (the file holds [0, 1] statistics)."""
    config = defaults.vp('ncsnpp')
    config.data.num_channels, config.data.image_size = 1, 28
    config.sampling.num_steps = 30
    config.pds.enabled, config.pds.freq, config.pds.spectrum_path = True, 'auto', 'assets/stats/mnist_spectrum.npy'
    P = sampling.preconditioner(config, (1, 28, 28))
    ref = auto.AutoVPPC(mnist_centred(), VPSDE(0.1, 20., 30), 1e-3, 'euler_maruyama', 'none', 0.16, 1)
    for i in (0, 7, 29):
        assert np.allclose(P.schedule.filter(i, 'predictor'), ref.filter(i, 'predictor'))


def test_auto_vp_refuses_what_it_does_not_derive():
    config = defaults.vp('ddpm', continuous=False)
    config.data.num_channels, config.data.image_size = 1, 28
    config.sampling.method = 'ddpm'
    config.pds.enabled, config.pds.freq, config.pds.spectrum_path = True, 'auto', 'assets/stats/mnist_spectrum.npy'
    with pytest.raises(ValueError, match="derived for sampling.method 'pc'"):
        sampling.preconditioner(config, (1, 28, 28))
    config.sampling.method, config.sampling.corrector = 'pc', 'ald'
    with pytest.raises(ValueError, match="corrector must be 'langevin' or 'none'"):
        sampling.preconditioner(config, (1, 28, 28))
