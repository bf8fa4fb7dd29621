"""The PDS preconditioner as the sampler sees it (supp. Eq. 19 and 23).

With a frequency factor ``Fm`` (C, H, W) on the unshifted DFT grid and a space factor ``S``
(C, H, W) -- both already *inverted* filters, see ``filters.py`` -- the sampler's operator is

    M z   = Re F^-1[ Fm * F[ S * z ] ]                       (noise and prior, Eq. 23: M^-1 dw)
    M M^T v = Re F^-1[ Fm * F[ S^2 * F^-1[ Fm * F[v] ] ] ]   (drift / score, Eq. 23: M^-1 M^-T grad)

exactly the official PDS formulation.  When ``Fm`` is real and Hermitian-symmetric
(``Fm[k] == Fm[-k]``, true for every filter built from real images or from Eq. 20) the operator is
real and we use real FFTs (``rfft2``): half the work, and with S = 1, M M^T v = F^-1[Fm^2 F[v]] is
one FFT round trip.  A non-symmetric table falls back to the full complex formulation.

``drift`` also adds the solenoidal term ``omega * S_sol v`` of Eq. 23-24 when omega != 0.
"""
import torch

from preconditioning import filters

HERMITIAN_TOL = 1e-4


class Identity:
    """No preconditioning: the sampler does no FFT at all."""
    is_identity = True

    def noise(self, z):
        return z

    def drift(self, v):
        return v

    def drift_f(self, v):
        return v

    def at_step(self, i, role=None):
        return self


def is_hermitian(table):
    """True if table[..., k, l] == table[..., -k, -l] (indices mod H, W) to a relative 1e-4."""
    flipped = torch.roll(torch.flip(table, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    return bool((table - flipped).abs().max() <= HERMITIAN_TOL * table.abs().max())


class Preconditioner:
    """M = C diag(S) with C = Re F^-1 diag(Fm) F; optional solenoidal term omega * S_sol.

    ``freq`` and ``space`` are (C, H, W) tables (or None for 1); ``solenoidal`` is a callable v -> S_sol v."""
    is_identity = False

    def __init__(self, freq=None, space=None, omega=0., solenoidal=None, device='cpu', dtype=torch.float32):
        as_table = lambda t: None if t is None else torch.as_tensor(t).to(device=device, dtype=dtype)[None]  # noqa: E731
        self.freq, self.space = as_table(freq), as_table(space)
        self.omega, self.solenoidal = float(omega), solenoidal
        if self.omega and solenoidal is None:
            raise ValueError('omega != 0 needs a solenoidal operator')
        self.real = self.freq is None or is_hermitian(self.freq)
        if self.freq is not None and self.real:
            width = self.freq.shape[-1]
            self.half = self.freq[..., : width // 2 + 1].contiguous()      # rfft2 half-plane of Fm
            self.half_sq = self.half ** 2
        self.space_sq = None if self.space is None else self.space ** 2

    def _filter(self, v, table_half):
        """C v = Re F^-1[Fm F[v]] (table_half: the rfft half-plane of Fm or of Fm^2)."""
        if self.freq is None:
            return v
        if self.real:
            return torch.fft.irfft2(torch.fft.rfft2(v) * table_half, s=v.shape[-2:])
        return torch.fft.ifft2(torch.fft.fft2(v) * self.freq).real

    def noise(self, z):
        """M z: the preconditioned Gaussian noise (and prior) of Eq. 23."""
        if self.space is not None:
            z = z * self.space
        return self._filter(z, self.half if self.freq is not None and self.real else None)

    def gram(self, v):
        """M M^T v = C S^2 C v."""
        if self.freq is None:
            return v if self.space_sq is None else v * self.space_sq
        if self.space is None and self.real:
            return self._filter(v, self.half_sq)                       # one FFT round trip
        if self.real:
            return self._filter(self._filter(v, self.half) * self.space_sq, self.half)
        # Official complex formulation: the imaginary part is kept between the two filters.
        inner = torch.fft.ifft2(torch.fft.fft2(v) * self.freq) * (self.space_sq if self.space_sq is not None else 1)
        return torch.fft.ifft2(torch.fft.fft2(inner) * self.freq).real

    def drift(self, v):
        """(M M^T + omega S_sol) v: what multiplies the score in every update (Eq. 23)."""
        return self.plus_skew(self.gram(v), v)

    def drift_f(self, v):
        """What multiplies the forward SDE's own drift f in a reverse step (VP; VE has f = 0): the official form
        preconditions the whole reverse drift, f - g^2 s, as PDS's code does (so, the same operator as the score's)."""
        return self.drift(v)

    def plus_skew(self, out, v):
        """out + omega S_sol v (the solenoidal term of Eq. 23; nothing when omega = 0)."""
        return out + self.omega * self.solenoidal(v) if self.omega else out

    def at_step(self, i, role=None):
        """The operator of the sampler's step ``i`` (PC: step i of N; annealed Langevin: level i) for ``role``
        ('prior', 'corrector', 'predictor', 'denoise').  A fixed preconditioner is the same everywhere; a
        schedule-aware one (``pds.freq = 'auto'``, preconditioning/auto.py) is not."""
        return self


class _PerRole:
    """A preconditioner ``P`` that acts differently per role: the sampler must ask ``at_step(i, role)``."""
    is_identity = False
    misuse = ''                                     # what the TypeError of a role-less call says

    def __init__(self, P):
        self.P = P
        self.freq, self.space = getattr(P, 'freq', None), getattr(P, 'space', None)   # the gain bound of runners

    def noise(self, z):
        raise TypeError(f'{self.misuse}; call P.at_step(i, role)')

    drift = drift_f = noise


class CorrectorOnly(_PerRole):
    """``P`` in the Langevin corrector steps only, the identity in the prior, predictor and final denoising step
    (``pds.apply_to = 'corrector'``).  Supp. Theorem 1 covers exactly these steps: each leaves p_sigma invariant for
    any invertible M, so the sampler's fixed points are vanilla's and only the corrector's mixing changes."""
    misuse = "pds.apply_to = 'corrector' preconditions the corrector steps only"

    def at_step(self, i, role=None):
        return self.P.at_step(i, role) if role == 'corrector' else Identity()


APPLY_TO = ('all', 'corrector')


class MarginalPredictor(_PerRole):
    """``P`` in every update, but the predictor's drift is (I + M M^T) / 2 instead of M M^T
    (``pds.predictor_drift = 'marginal'``; the noise stays M).

    Why: for the VE reverse SDE dx = g^2 s dt + g dw (reverse time), a process dx = A s dt + g M dw keeps the
    marginals p_t exactly when A = g^2 (I + M M^T) / 2 (its Fokker-Planck equation; a skew term omega S s may be
    added).  The official code's preconditioned predictor, drift g^2 M M^T with noise g M, has A = g^2 M M^T,
    which is the reverse SDE only for M M^T = I: it drifts off the marginals wherever M != I, and only the
    corrector pulls it back.  Supp. Theorem 1 covers the corrector; this is the predictor form that is exact in
    the continuous limit too.  The corrector is the official one; so is the prior (sigma_max M z) unless
    ``exact_prior``: then the prior is the process's own (the VP SDE's N(0, I)), since the marginals are kept only
    from the right start (a VP prior M z stays visibly off at t = 0: its low-gain directions contract slowly).

    For the VP SDE, dx = [f - g^2 s] dt + g dw_bar, the same holds with the drift f - g^2 (I + M M^T) / 2 s: f is
    not preconditioned (``drift_f`` is the identity), the score term is."""
    misuse = "pds.predictor_drift = 'marginal' changes the predictor only"

    def __init__(self, P, exact_prior=False):
        super().__init__(P)
        self.exact_prior = exact_prior

    def at_step(self, i, role=None):
        if role == 'prior' and self.exact_prior:
            return Identity()
        P = self.P.at_step(i, role)
        return _HalfGram(P) if role == 'predictor' else P


class _HalfGram:
    """drift v -> (v + M M^T v) / 2 (+ P's skew term, unchanged), noise M: the predictor of MarginalPredictor."""
    is_identity = False

    def __init__(self, P):
        self.P = P

    def noise(self, z):
        return self.P.noise(z)

    def drift(self, v):
        return self.P.plus_skew(0.5 * (v + self.P.gram(v)), v)           # one FFT round trip, as M M^T alone

    def drift_f(self, v):
        return v                                                          # f is not preconditioned

    def at_step(self, i, role=None):
        return self


PREDICTOR_DRIFT = ('official', 'marginal')


# ----------------------------------------------------------------------------------------------
# Solenoidal operators of Eq. 24 (all skew-symmetric).  Note: for the 2-D DFT matrix F^T = F, so
# Re[F - F^T] = 0, and F P F^-1 is diagonal with conjugate-pair entries, so Re[F (P - P^T) F^-1] = 0
# on real images too: both are zero operators in exact arithmetic (the supplementary reports "no
# obvious effect" for them).  Only the roll form P_mn - P_mn^T acts.  We implement all three
# literally so that the paper's experiments can be rerun.

def solenoidal_roll(shift):
    m, n = shift
    return lambda v: torch.roll(v, (m, n), dims=(-2, -1)) - torch.roll(v, (-m, -n), dims=(-2, -1))


def solenoidal_fft():
    # Re[F v] - Re[F^T v], with F^T = F for the DFT matrix.
    return lambda v: torch.fft.fft2(v).real - torch.fft.fft2(v).real


def solenoidal_fft_roll(shift):
    roll = solenoidal_roll(shift)
    return lambda v: torch.fft.fft2(roll(torch.fft.ifft2(v))).real


SOLENOIDAL = {'roll': solenoidal_roll, 'fft': lambda shift: solenoidal_fft(), 'fft_roll': solenoidal_fft_roll}


def from_config(pds, shape, device='cpu', dtype=torch.float32, exact_prior=False):
    """Build the preconditioner of a config's ``pds`` section for samples of shape (C, H, W) (``exact_prior``: see
    :class:`MarginalPredictor`)."""
    if not pds.enabled:
        return Identity()
    freq = space = None
    if pds.freq == 'radial':
        table = filters.radial_filter(shape, pds.radius, pds.lam)
        if pds.radial_direction not in ('inverse', 'direct'):
            raise ValueError(f"pds.radial_direction must be 'inverse' or 'direct', got {pds.radial_direction!r}")
        freq = 1. / table if pds.radial_direction == 'inverse' else table
    elif pds.freq == 'stats':
        if not pds.freq_path:
            raise filters.FilterError("pds.freq = 'stats' needs pds.freq_path (a *_freq.npy file, C x H x W)")
        freq = filters.normalised_inverse(filters.load_statistic(pds.freq_path, shape, 'frequency filter'), pds.alpha)
    elif pds.freq == 'auto':
        raise ValueError("pds.freq = 'auto' depends on the sampler's schedule: build it with "
                         "sampling.preconditioner(config, shape)")
    elif pds.freq != 'none':
        raise ValueError(f"pds.freq must be 'none', 'radial', 'stats' or 'auto', got {pds.freq!r}")
    if pds.space:
        if not pds.space_path:
            raise filters.FilterError('pds.space = True needs pds.space_path (a *_space.npy file, C x H x W)')
        space = filters.normalised_inverse(filters.load_statistic(pds.space_path, shape, 'space filter'), pds.alpha)
    solenoidal = None
    if pds.omega:
        if pds.solenoidal not in SOLENOIDAL:
            raise ValueError(f'pds.solenoidal must be one of {sorted(SOLENOIDAL)}, got {pds.solenoidal!r}')
        solenoidal = SOLENOIDAL[pds.solenoidal](tuple(pds.shift))
    return restrict(Preconditioner(freq, space, pds.omega, solenoidal, device=device, dtype=dtype), pds, exact_prior)


def restrict(P, pds, exact_prior=False):
    """``P`` limited to the updates ``pds.apply_to`` names ('all' or 'corrector'), with the predictor drift
    ``pds.predictor_drift`` names ('official': M M^T; 'marginal': (I + M M^T) / 2, :class:`MarginalPredictor`)."""
    apply_to, drift = pds.get('apply_to', 'all'), pds.get('predictor_drift', 'official')
    if apply_to not in APPLY_TO:
        raise ValueError(f"pds.apply_to must be one of {APPLY_TO}, got {apply_to!r}")
    if drift not in PREDICTOR_DRIFT:
        raise ValueError(f"pds.predictor_drift must be one of {PREDICTOR_DRIFT}, got {drift!r}")
    if apply_to == 'corrector':
        return CorrectorOnly(P)
    return P if drift == 'official' else MarginalPredictor(P, exact_prior)
