"""Checks that turn a config into a sampling run, before anything is written.

:func:`check_sampling` lists every out-of-range field of the sampler, the model's noise schedule and PDS (one phrase
per bad field: the field, its value, the allowed range) and raises one :class:`ConfigError` with all of them; the
samplers themselves would silently return the initial noise (``n_steps_each = 0``), divide by zero (``speed_up =
0``) or build infinite filters (``pds.alpha = 1``).  :func:`build_preconditioner` builds the PDS operator and makes
sure a statistics-file error names the file.
"""
import math
import sys

import preconditioning
import sampling

ALD_VARIANTS = ('ncsn', 'ncsnv2')


class ConfigError(ValueError):
    """A config or option that cannot make a correct run; the message names each bad field and its allowed range."""


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(name, value, problems, minimum=1):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.append(f'{name} = {value!r}: expected an integer >= {minimum}')


def check_counts(num_samples=None, batch_size=None, names=('--num_samples', '--batch_size')):
    """Raise ConfigError unless the (given) number of samples and batch size are integers >= 1."""
    problems = []
    _count(names[0], num_samples, problems)
    _count(names[1], batch_size, problems)
    if problems:
        raise ConfigError('; '.join(problems))


def clamp_batch(num_samples, batch_size, say=True):
    """``min(batch_size, num_samples)``: a batch larger than the run would draw (and hold in memory) noise for images
    that are thrown away.  Says so on stderr when it clamps (``say``)."""
    if num_samples and batch_size and batch_size > num_samples:
        if say:
            print(f'note: batch size {batch_size} is more than the {num_samples} samples asked for: using '
                  f'{num_samples}', file=sys.stderr, flush=True)
        return num_samples
    return batch_size


def sampling_problems(config):
    """The list of problems (strings) of ``config``'s sampler, noise schedule and PDS settings."""
    problems = []
    s, m = config.sampling, config.model

    def need(ok, field, value, allowed):
        if not ok:
            problems.append(f'{field} = {value!r}: expected {allowed}')
        return ok

    seed = config.get('seed', 0)
    need(_seed_ok(seed), 'seed (--seed)', seed, SEED_RANGE)
    sigma_ok = (need(_number(m.sigma_min) and m.sigma_min > 0, 'model.sigma_min', m.sigma_min, '> 0')
                & need(_number(m.sigma_max) and m.sigma_max > 0, 'model.sigma_max', m.sigma_max, '> 0'))
    if sigma_ok:
        need(m.sigma_max > m.sigma_min, 'model.sigma_max', m.sigma_max, f'> model.sigma_min = {m.sigma_min}')
    scales_ok = need(isinstance(m.num_scales, int) and m.num_scales >= 1, 'model.num_scales', m.num_scales,
                     'an integer >= 1')
    method = s.method
    if not need(method in sampling.SAMPLERS, 'sampling.method', method, f'one of {sorted(sampling.SAMPLERS)}'):
        return problems + _pds_problems(config)
    steps = s.get('n_steps_each', 1)
    speed_up = s.get('speed_up', 1.)
    speed_ok = need(_number(speed_up) and speed_up > 0, 'sampling.speed_up (--speed_up)', speed_up,
                    '> 0 (N = int(model.num_scales / speed_up) steps, eps = sampling.eps x speed_up)')
    last_step = s.get('last_step', 'predictor')
    if method != 'pc' and last_step != 'predictor':
        problems.append(f"sampling.last_step = {last_step!r} is a setting of sampling.method = 'pc'; "
                        f"{method!r} ends its own way (expected 'predictor', the default)")
    if method != 'ald':       # pc and the rival samplers (sampling/edm.py, ode.py, adaptive.py) on the VE SDE
        if method == 'pc':
            need(s.predictor in sampling.PREDICTORS, 'sampling.predictor', s.predictor,
                 f'one of {sorted(sampling.PREDICTORS)}')
            need(s.corrector in sampling.CORRECTORS, 'sampling.corrector', s.corrector,
                 f'one of {sorted(sampling.CORRECTORS)}')
            need(last_step in sampling.pc.LAST_STEPS, 'sampling.last_step', last_step,
                 "'predictor' (score_sde's last predictor step) or 'denoiser' (Tweedie's E[x_0 | x] at the last time)")
            if s.predictor == 'none' and s.corrector == 'none':
                problems.append("sampling.predictor = 'none' and sampling.corrector = 'none': nothing would update "
                                'the prior noise; expected a predictor, a corrector or both')
            corrector, field = s.corrector, 'sampling.corrector'
        else:
            corrector, field = s.get('step_corrector', 'none'), 'sampling.step_corrector'
        if corrector != 'none':
            need(isinstance(steps, int) and steps >= 1, 'sampling.n_steps_each', steps,
                 f"an integer >= 1 (corrector steps per noise level; use {field} = 'none' for none)")
            need(_number(s.snr) and s.snr > 0, 'sampling.snr', s.snr, '> 0 (the corrector step size)')
        num_steps = s.get('num_steps', 0)
        steps_ok = need(isinstance(num_steps, int) and num_steps >= 0, 'sampling.num_steps', num_steps,
                        'an integer >= 1, or 0 for int(model.num_scales / speed_up)')
        if speed_ok and steps_ok and scales_ok and not num_steps and int(m.num_scales / speed_up) < 1:
            problems.append(f'sampling.speed_up (--speed_up) = {speed_up!r}: int(model.num_scales / speed_up) = '
                            f'int({m.num_scales} / {speed_up}) = 0 steps; expected speed_up <= {m.num_scales} '
                            '(or set sampling.num_steps)')
        eps = s.get('eps', 1e-5)
        if need(_number(eps) and eps > 0, 'sampling.eps', eps, '> 0') and speed_ok:
            need(eps * speed_up < 1, 'sampling.eps', eps,
                 f'eps x speed_up < 1 (the smallest sampling time; here {eps} x {speed_up})')
        problems += _solver_problems(s, method)
        sde = config.training.get('sde', 'vesde')
        if sde not in ('vesde', 'vpsde'):
            problems.append(f"training.sde = {sde!r}: expected 'vesde' or 'vpsde' (the SDEs sampled)")
        elif sde == 'vpsde' and method not in sampling.VP_METHODS:
            problems.append(f"sampling.method = {method!r}: a VP model (training.sde = 'vpsde') samples with one of "
                            f"{sampling.VP_METHODS}")
        elif sde == 'vesde' and method in sampling.VP_ONLY:
            problems.append(f"sampling.method = {method!r}: runs on the DDPM chain of a VP model; this config is VE "
                            "(training.sde = 'vesde')")
    elif method == 'ald':
        need(s.ald_variant in ALD_VARIANTS, 'sampling.ald_variant', s.ald_variant, f'one of {ALD_VARIANTS}')
        need(isinstance(steps, int) and steps >= 1, 'sampling.n_steps_each', steps,
             'an integer >= 1 (Langevin steps per noise level)')
        need(_number(s.step_lr) and s.step_lr > 0, 'sampling.step_lr', s.step_lr, '> 0')
        levels = s.get('num_levels', 0)
        if scales_ok:
            need(isinstance(levels, int) and 0 <= levels <= m.num_scales, 'sampling.num_levels', levels,
                 f'an integer in 1..model.num_scales = {m.num_scales}, or 0 for all')
    return problems + _pds_problems(config)


def _solver_problems(s, method):
    """The problems of the settings that only the rival and VP samplers read (EDM's grid and churn, DPM-Solver++,
    the ODE and Gotta Go Fast tolerances, DDPM / DDIM): out of range they would end the run late with a traceback,
    or sample nonsense with exit 0 (a negative tolerance, rho or churn)."""
    from sampling.ddpm import VARIANCES
    from sampling.dpm_solver import SOLVER_TYPES
    from sampling.edm import SCHEDULES
    from sampling.ode import ODE_METHODS
    problems = []

    def need(ok, field, allowed):
        if not ok:
            problems.append(f'sampling.{field} = {s.get(field)!r}: expected {allowed}')

    def positive(field, allowed='> 0'):
        need(_number(s.get(field)) and s.get(field) > 0, field, allowed)

    if method in sampling.STEP_CORRECTED:                 # the EDM grid (sampling.rival_sigmas)
        need(s.get('schedule', 'karras') in SCHEDULES, 'schedule', f'one of {SCHEDULES}')
        if s.get('schedule', 'karras') == 'karras':
            positive('rho', '> 0 (EDM Eq. 5; 7 in EDM)')
    if method == 'edm_stochastic':
        churn, tmin, tmax = s.get('s_churn'), s.get('s_tmin'), s.get('s_tmax')
        need(_number(churn) and churn >= 0, 's_churn', '>= 0 (EDM Alg. 2; 0 is the deterministic Heun sampler)')
        need(_number(tmin) and tmin >= 0, 's_tmin', '>= 0')
        need(_number(tmax) and (not _number(tmin) or tmax >= tmin), 's_tmax', f'>= sampling.s_tmin = {tmin!r}')
        positive('s_noise', '> 0 (EDM Alg. 2; 1.007 in EDM Table 5)')
    if method in ('dpmpp_2m_sde', 'dpmpp_3m_sde'):
        eta = s.get('dpmpp_eta', 1.)
        need(_number(eta) and eta >= 0, 'dpmpp_eta', '>= 0 (0: the ODE, 1: the reverse diffusion SDE)')
    if method == 'dpmpp_2m_sde':
        need(s.get('dpmpp_solver_type', 'midpoint') in SOLVER_TYPES, 'dpmpp_solver_type', f'one of {SOLVER_TYPES}')
    if method == 'ode':
        need(s.get('ode_method', 'RK45') in ODE_METHODS, 'ode_method',
             f'one of {ODE_METHODS} (scipy.integrate.solve_ivp)')
        positive('ode_rtol')
        positive('ode_atol')
    if method == 'adaptive_sde':
        for field in ('adaptive_abstol', 'adaptive_reltol', 'adaptive_exp'):
            positive(field)
        h = s.get('adaptive_h_init')
        need(_number(h) and 0 < h < 1, 'adaptive_h_init', 'in (0, 1) (the first step in t, which runs 1 -> eps)')
        theta = s.get('adaptive_safety')
        need(_number(theta) and 0 < theta <= 1, 'adaptive_safety', 'in (0, 1] (Gotta Go Fast\'s theta)')
    if method == 'ddim':
        eta = s.get('ddim_eta', 0.)
        need(_number(eta) and 0 <= eta <= 1, 'ddim_eta', 'in [0, 1] (0: DDIM, 1: DDPM with the posterior variance; '
             "above 1 Eq. 12's noise can exceed 1 - alpha_bar and the step leaves the marginals)")
    if method == 'ddpm':
        need(s.get('ddpm_variance', 'beta') in VARIANCES, 'ddpm_variance', f'one of {VARIANCES}')
    return problems


def _pds_problems(config):
    p = config.pds
    if not p.enabled:
        return []
    problems = []
    if p.get('apply_to', 'all') not in preconditioning.operator.APPLY_TO:
        problems.append(f"pds.apply_to = {p.apply_to!r}: expected 'all' (prior, predictor and corrector, as the "
                        "official code) or 'corrector' (the Langevin corrector steps only, supp. Theorem 1)")
    if p.get('predictor_drift', 'official') not in preconditioning.operator.PREDICTOR_DRIFT:
        problems.append(f"pds.predictor_drift = {p.predictor_drift!r}: expected 'official' (M M^T s, as the official "
                        "code) or 'marginal' ((I + M M^T) / 2 s, which keeps the reverse SDE's marginals)")
    if p.get('apply_to', 'all') == 'corrector':
        if p.get('predictor_drift', 'official') != 'official':
            problems.append(f"pds.predictor_drift = {p.predictor_drift!r} changes the predictor's drift, which "
                            "pds.apply_to = 'corrector' leaves vanilla: the setting would be ignored; expected "
                            "pds.apply_to = 'all' with it, or pds.predictor_drift = 'official'")
        s = config.sampling
        if s.method == 'pc' and s.corrector == 'none':
            problems.append("pds.apply_to = 'corrector' with sampling.corrector = 'none': no step would be "
                            "preconditioned (the run would be vanilla); expected sampling.corrector = 'langevin' (or "
                            "'ald'), or pds.apply_to = 'all'")
    if p.freq == 'radial':
        if not (_number(p.lam) and p.lam > 0):
            problems.append(f'pds.lam = {p.lam!r}: expected > 0 (Eq. 20: the filter is 1 inside the disc and lam '
                            'outside; lam = 1 is no preconditioning)')
        if not (_number(p.radius) and p.radius >= 0):
            problems.append(f'pds.radius = {p.radius!r}: expected >= 0 (the disc radius as a fraction of the image '
                            'height, r = radius x H)')
    if p.freq == 'stats' or p.get('space'):
        if not (_number(p.alpha) and p.alpha > 1):
            problems.append(f'pds.alpha = {p.alpha!r}: expected > 1 (the statistics filter R = alpha / (m / max m + '
                            'alpha - 1) is finite and positive for every m >= 0 only when alpha > 1; alpha = 1 '
                            'divides by m, infinite where m = 0; large alpha approaches no preconditioning)')
    return problems


SEED_RANGE = 'an integer >= 0 (the noise of batch b is seeded by (seed, b))'


def _seed_ok(seed):
    return isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0


def check_sampling(config, num_samples=None, batch_size=None, seed=None):
    """Raise one ConfigError naming every bad field of the sampling run (and the counts and the run's seed, when
    given: a run may draw with another seed than ``config.seed``)."""
    problems = sampling_problems(config)
    if seed is not None and seed != config.get('seed', 0) and not _seed_ok(seed):
        problems.append(f'seed = {seed!r}: expected {SEED_RANGE}')
    try:
        check_counts(num_samples, batch_size, names=('num_samples', 'batch_size'))
    except ConfigError as err:
        problems.append(str(err))
    if problems:
        raise ConfigError('; '.join(problems))
    return sampling.iterations(config)


def build_preconditioner(config, shape, device='cpu'):
    """The PDS operator the sampler of ``config`` uses (``sampling.preconditioner``, which is
    ``preconditioning.from_config`` except for ``pds.freq = 'auto'``); an error about a statistics file names the
    file (the preconditioning package does not always: a table with a negative entry, say)."""
    try:
        return sampling.preconditioner(config, tuple(shape), device=device)
    except preconditioning.FilterError as err:
        text = str(err)
        files = [(k, config.pds.get(k)) for k in ('freq_path', 'space_path', 'spectrum_path') if config.pds.get(k)]
        if not files or any(path in text for _, path in files):
            raise
        culprit = _failing_file(config, shape) or files
        named = ', '.join(f'pds.{k} = {path!r}' for k, path in culprit)
        raise preconditioning.FilterError(f'{named}: {text}') from None


def _failing_file(config, shape):
    """Which statistics file of ``config.pds`` fails on its own (to name it in an error)."""
    from preconditioning import filters
    bad = []
    p = config.pds
    for key, used, what in (('freq_path', p.freq == 'stats', 'frequency filter'),
                            ('space_path', bool(p.get('space')), 'space filter')):
        if not used or not p.get(key):
            continue
        try:
            filters.normalised_inverse(filters.load_statistic(p[key], tuple(shape), what), p.alpha)
        except filters.FilterError:
            bad.append((key, p[key]))
    return bad
