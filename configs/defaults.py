"""Shared config skeletons (score_sde's ml_collections schema) for the three model families.

Every config file under ``configs/`` starts from one of these and sets the official values of one
model (see the tables in docs/reproducing-the-paper.md).  Field meanings:

* ``model.family``: ``ncsn`` | ``ncsnv2`` | ``ncsnpp`` | ``ddpm`` -- picks the checkpoint format and score wrapper.
* ``training.sde``: ``vesde`` | ``vpsde`` -- the noise process (VP: ``model.beta_min`` / ``beta_max``).
* ``model.name``: the registered network (``ncsn``, ``ncsnv2_64``, ``ncsnv2_128``, ``ncsnv2_256``, ``ncsnpp``).
* ``model.sigma_max`` / ``sigma_min`` / ``num_scales``: the geometric noise schedule (NCSN/NCSNv2:
  sigma_begin / sigma_end / num_classes).
* ``sampling.method``: ``pc`` (score_sde predictor-corrector) or ``ald`` (annealed Langevin of NCSN/NCSNv2);
  the rival samplers ``edm``, ``edm_stochastic``, ``ode_euler``, ``ode``, ``adaptive_sde``, ``dpmpp_2m``,
  ``dpmpp_2m_sde``, ``dpmpp_3m_sde`` (see ``sampling/``).
* ``pds``: preconditioning (off unless ``pds.enabled``); see ``preconditioning/``.
"""
import ml_collections


def _common():
    config = ml_collections.ConfigDict()
    config.seed = 42
    config.device = 'auto'

    config.training = training = ml_collections.ConfigDict()
    training.batch_size = 128
    training.n_iters = 200001
    training.snapshot_freq = 5000
    training.log_freq = 50
    training.snapshot_sampling = False
    training.sde = 'vesde'
    training.continuous = False
    training.reduce_mean = False
    training.likelihood_weighting = False
    training.anneal_power = 2.0
    # speed options: channels-last memory format and bf16 autocast (CUDA only; ignored on CPU), torch.compile (CUDA
    # and CPU; on the CPU it needs a C++ compiler: benchmarks/cpu_speed.py --compile)
    training.channels_last = False
    training.bf16 = False
    training.compile = False

    config.sampling = sampling = ml_collections.ConfigDict()
    sampling.method = 'pc'
    sampling.predictor = 'reverse_diffusion'
    sampling.corrector = 'langevin'
    sampling.snr = 0.16
    sampling.n_steps_each = 1
    sampling.noise_removal = True
    sampling.last_step = 'predictor'  # pc: 'predictor' (score_sde: the last predictor step, its mean with noise_removal)
    #                                  or 'denoiser' (Tweedie's E[x_0 | x] from the score at the last time instead, as
    #                                  DDIM / EDM / DPM-Solver++ end; same NFE; off the official path)
    sampling.probability_flow = False
    sampling.eps = 1e-5              # smallest time of the VE SDE sampler (official: 1e-5)
    sampling.speed_up = 1.0          # PDS command line: N = int(num_scales / speed_up), eps = 1e-5 * speed_up
    sampling.num_steps = 0           # PC: number of predictor steps N (0 = int(num_scales / speed_up))
    # annealed Langevin (sampling.method = 'ald')
    sampling.ald_variant = 'ncsnv2'  # 'ncsn' (v1: noise before score, no denoise) | 'ncsnv2'
    sampling.step_lr = 2e-5
    sampling.denoise = True
    sampling.num_levels = 0          # 0 = all model.num_scales levels; else that many, evenly picked
    sampling.init = 'uniform'        # ALD starts from U[0,1] as the official code does
    # VP SDE (training.sde = 'vpsde'): 'pc' (score_sde PC, VP updates), 'ddpm' (Ho et al. ancestral sampling),
    # 'ddim' (Song et al. 2021) and 'ode' (probability flow) on the chain of model.num_scales steps (sampling/ddpm.py)
    sampling.chain_steps = ()        # ddpm / ddim: the visited chain indices (ascending, in 0..N-1); () = num_steps
    #                                  evenly spread with both ends (num_steps 0 = all N)
    sampling.ddim_eta = 0.           # ddim: 0 = deterministic DDIM, 1 = DDPM with the posterior variance
    sampling.ddpm_variance = 'beta'  # ddpm: sigma^2 = 'beta' or 'beta_tilde' (the posterior variance)
    # rival samplers (sampling/edm.py, ode.py, adaptive.py): 'edm' (EDM Alg. 1, Heun), 'edm_stochastic' (Alg. 2),
    # 'ode_euler' (Euler on the same grid), 'ode' (probability-flow ODE, scipy), 'adaptive_sde' (Gotta Go Fast Alg. 1)
    sampling.schedule = 'karras'     # edm / edm_stochastic / ode_euler: N levels (as PC: num_steps or num_scales /
    #                                  speed_up), 'karras' (EDM Eq. 5) | 'geometric', then t_N = 0
    sampling.rho = 7.                # EDM Eq. 5
    sampling.s_churn = 80.           # edm_stochastic (EDM Alg. 2; Table 5, VE): gamma = min(S_churn / N, sqrt(2) - 1)
    sampling.s_tmin = 0.05           #   ... on levels in [S_tmin, S_tmax]
    sampling.s_tmax = 50.            #   (Table 5's VE column: 80 / 0.05 / 50 / 1.007)
    sampling.s_noise = 1.007
    sampling.step_corrector = 'none'  # edm / edm_stochastic / ode_euler: 'langevin' | 'ald' | 'none' after each step
    #                                   (snr, n_steps_each; PDS acts only here -- Theorem 1 covers the corrector)
    sampling.ode_method = 'RK45'     # ode: scipy.integrate.solve_ivp method, t = 1 -> eps, as score_sde
    sampling.ode_rtol = 1e-5
    sampling.ode_atol = 1e-5
    sampling.adaptive_abstol = 0.0039  # adaptive_sde: eps_abs (paper: 0.0039 for data in [0, 1], 0.0078 in [-1, 1])
    sampling.adaptive_reltol = 0.05  # eps_rel (paper: 0.01 .. 0.1)
    sampling.adaptive_h_init = 0.01
    sampling.adaptive_safety = 0.9   # theta
    sampling.adaptive_exp = 0.9      # r
    # dpmpp_2m / dpmpp_2m_sde / dpmpp_3m_sde (sampling/dpm_solver.py): DPM-Solver++ on the edm grid (schedule, rho, N)
    sampling.dpmpp_solver_type = 'midpoint'  # dpmpp_2m_sde: 'midpoint' (k-diffusion's default) | 'heun'
    sampling.dpmpp_eta = 1.          # dpmpp_2m_sde / dpmpp_3m_sde: 1 = the reverse diffusion SDE, 0 = the ODE
    sampling.batch_size = 64

    config.data = data = ml_collections.ConfigDict()
    data.dataset = 'CIFAR10'
    data.image_size = 32
    data.num_channels = 3
    data.centered = False
    data.random_flip = True
    data.uniform_dequantization = False
    data.crop = 'none'               # 'none' | 'celeba' (CenterCrop 140 then resize) | 'lsun' (resize then centre crop)

    config.model = model = ml_collections.ConfigDict()
    model.family = 'ncsnpp'
    model.name = 'ncsnpp'
    model.sigma_max = 50.
    model.sigma_min = 0.01
    model.num_scales = 1000
    model.ema = True
    model.ema_rate = 0.999
    model.nf = 128
    model.scale_by_sigma = True

    config.optim = optim = ml_collections.ConfigDict()
    optim.optimizer = 'Adam'
    optim.lr = 2e-4
    optim.beta1 = 0.9
    optim.eps = 1e-8
    optim.weight_decay = 0.
    optim.amsgrad = False
    optim.warmup = 0
    optim.grad_clip = -1.

    config.eval = evaluate = ml_collections.ConfigDict()
    evaluate.batch_size = 64
    evaluate.num_samples = 50000

    config.pds = pds_config()
    return config


def pds_config():
    """PDS settings (supp. Eq. 19-24).  Off by default; ``<dataset>_pds.py`` configs turn it on."""
    pds = ml_collections.ConfigDict()
    pds.enabled = False
    pds.setting = ''                 # name of the paper-table row applied (see apply_setting)
    pds.freq = 'none'                # 'none' | 'radial' (Eq. 20) | 'stats' (Eq. 22, a *_freq.npy file) |
    #                                  'auto' (per-step filters from the spectrum and the schedule: preconditioning/auto.py)
    pds.freq_path = ''
    pds.spectrum_path = ''           # 'auto': a *_spectrum.npy of --mode stats (default: freq_path's *_spectrum.npy)
    pds.alpha = 5.                   # Eq. 22 normalisation of statistics filters
    pds.radius = 0.2                 # Eq. 20: r as a fraction of H (r = 0.2H)
    pds.lam = 1.6                    # Eq. 20: lambda outside the radius
    # Eq. 20's R in the sampler: 'direct' uses R as written (high frequencies x lambda); 'inverse' uses 1/R, the
    # literal reading of Eq. 23 (M^-1).  'direct' is the default: on the exact score of MNIST images at 20
    # iterations it is the one that beats vanilla (benchmarks/empirical_mnist.py; docs/results.md).
    pds.radial_direction = 'direct'
    pds.space = False                # Eq. 21 space filter A (the paper uses it for FFHQ only)
    pds.space_path = ''
    pds.omega = 0.                   # Eq. 23 solenoidal weight (0 = off)
    pds.solenoidal = 'fft'           # 'fft': Re[F - F^T]; 'roll': P_mn - P_mn^T; 'fft_roll': Re[F (P_mn - P_mn^T) F^-1]
    pds.shift = (1, 1)               # (m, n) of P_mn
    # Which updates M acts in: 'all' (the official code: PC's prior, Langevin corrector and predictor; every ALD step)
    # or 'corrector' (the Langevin corrector steps only: exactly what supp. Theorem 1 covers, since each corrector
    # leaves p_sigma invariant for any invertible M; the prior and predictor stay vanilla).
    pds.apply_to = 'all'
    # The PC predictor's drift: 'official' (M M^T s, the official code) or 'marginal' ((I + M M^T) / 2 s with noise
    # M: the form that keeps the reverse SDE's marginals for any M, preconditioning/operator.MarginalPredictor).
    pds.predictor_drift = 'official'
    return pds


def ve_ncsnpp():
    """score_sde VE NCSN++ defaults (configs/default_cifar10_configs.py + ncsnpp)."""
    config = _common()
    config.training.sde = 'vesde'
    config.training.continuous = True
    config.training.batch_size = 128
    config.training.n_iters = 1300001
    config.training.snapshot_freq = 50000
    config.training.reduce_mean = False
    config.sampling.method = 'pc'
    config.sampling.predictor = 'reverse_diffusion'
    config.sampling.corrector = 'langevin'
    config.sampling.snr = 0.16
    config.sampling.n_steps_each = 1
    config.data.random_flip = True
    config.data.centered = False
    config.data.uniform_dequantization = False
    model = config.model
    model.family = 'ncsnpp'
    model.name = 'ncsnpp'
    model.sigma_max = 50.
    model.sigma_min = 0.01
    model.num_scales = 1000
    model.ema_rate = 0.999
    model.scale_by_sigma = True
    model.normalization = 'GroupNorm'
    model.nonlinearity = 'swish'
    model.nf = 128
    model.ch_mult = (1, 2, 2, 2)
    model.num_res_blocks = 4
    model.attn_resolutions = (16,)
    model.resamp_with_conv = True
    model.conditional = True
    model.fir = True
    model.fir_kernel = [1, 3, 3, 1]
    model.skip_rescale = True
    model.resblock_type = 'biggan'
    model.progressive = 'none'
    model.progressive_input = 'residual'
    model.progressive_combine = 'sum'
    model.attention_type = 'ddpm'
    model.init_scale = 0.
    model.fourier_scale = 16
    model.embedding_type = 'fourier'
    model.conv_size = 3
    model.dropout = 0.1
    config.optim.lr = 2e-4
    config.optim.warmup = 5000
    config.optim.grad_clip = 1.
    return config


def ve_ncsnpp_lsun(image_size=256):
    """score_sde default_lsun_configs + ncsnpp 256 px (bedroom, church, FFHQ-256, CelebA-HQ-256)."""
    config = ve_ncsnpp()
    config.training.batch_size = 64
    config.training.n_iters = 2400001
    config.sampling.snr = 0.075
    config.data.image_size = image_size
    config.data.crop = 'lsun'
    config.model.sigma_max = 378.
    config.model.num_scales = 2000
    config.model.ch_mult = (1, 1, 2, 2, 2, 2, 2)
    config.model.num_res_blocks = 2
    config.model.dropout = 0.
    config.model.progressive = 'output_skip'
    config.model.progressive_input = 'input_skip'
    config.model.progressive_combine = 'sum'
    config.eval.batch_size = 8
    return config


def vp(name='ncsnpp', continuous=True):
    """score_sde VP defaults (configs/default_cifar10_configs.py + the vp/ configs): the VP SDE with beta 0.1 .. 20,
    centred data, EMA 0.9999, reduce_mean, no scale_by_sigma; ``name`` 'ncsnpp' (DDPM++, positional embedding,
    BigGAN blocks, no FIR) or 'ddpm' (the DDPM network).  sampling.eps = 1e-3 (the official VP rule)."""
    config = ve_ncsnpp() if name == 'ncsnpp' else _common()
    config.training.sde = 'vpsde'
    config.training.continuous = continuous
    config.training.reduce_mean = True
    config.training.n_iters = 1300001
    config.training.snapshot_freq = 50000
    config.sampling.method = 'pc'
    config.sampling.predictor = 'euler_maruyama' if continuous else 'ancestral_sampling'
    config.sampling.corrector = 'none'
    config.sampling.eps = 1e-3
    config.data.centered = True
    model = config.model
    model.family = model.name = name
    model.beta_min = 0.1
    model.beta_max = 20.
    model.num_scales = 1000
    model.ema_rate = 0.9999
    model.scale_by_sigma = False
    model.normalization = 'GroupNorm'
    model.nonlinearity = 'swish'
    model.nf = 128
    model.ch_mult = (1, 2, 2, 2)
    model.num_res_blocks = 4 if name == 'ncsnpp' else 2
    model.attn_resolutions = (16,)
    model.resamp_with_conv = True
    model.conditional = True
    model.dropout = 0.1
    if name == 'ncsnpp':
        model.fir = False
        model.progressive_input = 'none'
        model.embedding_type = 'positional'
    else:
        model.embedding_type = 'fourier'     # inherited from score_sde's defaults; the DDPM network ignores it
    config.optim.lr = 2e-4
    config.optim.warmup = 5000
    config.optim.grad_clip = 1.
    return config


def ncsnv2(name='ncsnv2_64'):
    """ermongroup/ncsnv2 defaults (InstanceNorm++, ELU, EMA 0.999, denoise)."""
    config = _common()
    config.training.continuous = False
    config.training.n_iters = 300001
    config.training.batch_size = 128
    config.sampling.method = 'ald'
    config.sampling.ald_variant = 'ncsnv2'
    config.sampling.predictor = 'none'
    config.sampling.corrector = 'ald'
    config.sampling.denoise = True
    config.data.random_flip = True
    model = config.model
    model.family = 'ncsnv2'
    model.name = name
    model.nf = 128
    model.sigma_min = 0.01
    model.ema = True
    model.ema_rate = 0.999
    model.scale_by_sigma = True
    model.normalization = 'InstanceNorm++'
    model.nonlinearity = 'elu'
    config.optim.lr = 1e-4
    return config


def ncsn():
    """ermongroup/ncsn anneal.yml defaults (conditional RefineNet, CIN++, no EMA, no denoise)."""
    config = _common()
    config.training.continuous = False
    config.training.n_iters = 200001
    config.training.batch_size = 128
    config.training.snapshot_freq = 5000
    config.sampling.method = 'ald'
    config.sampling.ald_variant = 'ncsn'
    config.sampling.predictor = 'none'
    config.sampling.corrector = 'ald'
    config.sampling.step_lr = 2e-5
    config.sampling.n_steps_each = 100
    config.sampling.denoise = False
    config.sampling.batch_size = 25
    config.data.uniform_dequantization = True
    model = config.model
    model.family = 'ncsn'
    model.name = 'ncsn'
    model.nf = 128
    model.sigma_max = 1.
    model.sigma_min = 0.01
    model.num_scales = 10
    model.ema = False
    model.scale_by_sigma = False
    model.normalization = 'InstanceNorm++'
    model.nonlinearity = 'elu'
    config.optim.lr = 1e-3
    return config


_SETTING_FIELDS = {
    'sampling': ('speed_up', 'num_steps', 'num_levels', 'n_steps_each', 'step_lr', 'snr', 'denoise'),
    'pds': ('alpha', 'radius', 'lam', 'radial_direction', 'space', 'omega', 'solenoidal', 'shift',
            'freq', 'freq_path', 'space_path', 'spectrum_path', 'predictor_drift'),
}


def set_field(config, key, value):
    """Set the field ``key`` (``'section.field'``) of ``config`` to ``value``.  Returns False, setting nothing, when
    the config has no such field (ml_collections would add it silently: a typo must not pass)."""
    section, fld = key.split('.', 1)
    if section not in config or fld not in config[section]:
        return False
    config[section][fld] = value
    return True


def apply_setting(config, settings, name):
    """Turn PDS on with the named table row ``settings[name]`` (e.g. ``'table1_20it'``)."""
    if name not in settings:
        raise ValueError(f'unknown PDS setting {name!r}; this config has {sorted(settings)}')
    config.pds.enabled = True
    config.pds.setting = name
    for key, value in settings[name].items():
        section = next((s for s, keys in _SETTING_FIELDS.items() if key in keys), None)
        if section is None:
            raise ValueError(f'PDS setting {name!r}: unknown field {key!r}')
        config[section][key] = value
    return config


def pds_config_from(module, default_setting, setting=''):
    """``<dataset>_pds.py`` helper: the official model config of ``module`` with one PDS table row applied."""
    return apply_setting(module.get_config(), module.PDS_SETTINGS, setting or default_setting)
