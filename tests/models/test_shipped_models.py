"""The CPU-trained MNIST checkpoints the repository ships (VE and VP) are learned scores: each one denoises MNIST
digits far better than doing nothing (Tweedie's denoiser D(x) = x + sigma^2 score(x, sigma) against the clean image),
which a random or broken network cannot do, and each loads into its own config's network."""
import os

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow        # end-to-end: in `make test` and CI, not `make test-fast`

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = {
    # name: (checkpoint, config module, parameters, {sigma: the largest allowed error ratio}); the ratio is
    # E|D(x) - x0|^2 / E|x - x0|^2 (1 = no denoising; the random-weight networks give 1.0-1.3 at every sigma)
    'model_a': ('checkpoints/ncsn_mnist_cpu/checkpoint.pth', 'configs.ncsn.mnist_cpu', 518_817,
                {1.0: 0.1, 0.1: 0.4, 0.02: 0.4}),          # measured 0.023, 0.197, 0.173
    'model_b': ('checkpoints/ncsnpp_mnist_cpu/checkpoint.pth', 'configs.ve.mnist_ncsnpp_cpu', 843_137,
                {5.0: 0.02, 1.0: 0.1, 0.1: 0.25, 0.02: 0.3}),  # 0.003, 0.021, 0.078, 0.128 (step 15,001)
    # the VP model, in EDM's view of VP (score(y, sigma), y = x0 + sigma z on the centred digits in [-1, 1]); at sigma 5
    # returning D = 0 would give ~0.03, so the bound there tells a learned score from a trivial one
    'model_d': ('checkpoints/ddpmpp_mnist_cpu/checkpoint.pth', 'configs.vp.mnist_ddpmpp_cpu', 839_973,
                {5.0: 0.02, 1.0: 0.1, 0.1: 0.3, 0.02: 0.4}),   # 0.008, 0.030, 0.108, 0.164 (step 15,001)
}


def _images(n=64):
    """Training digits shipped with the repository (assets/mnist_train_1000.npz), in [0, 1]."""
    x = np.load(os.path.join(ROOT, 'assets', 'mnist_train_1000.npz'))['images'][:n]
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_checkpoint_is_a_learned_score(name):
    import importlib
    from models.checkpoint import load_score_model
    path, module, n_params, bounds = SHIPPED[name]
    config = importlib.import_module(module).get_config()
    config.device = 'cpu'
    score = load_score_model(os.path.join(ROOT, path), config)
    assert sum(p.numel() for p in score.net.parameters()) == n_params
    x0 = _images()
    if config.data.centered:
        x0 = 2 * x0 - 1
    g = torch.Generator().manual_seed(0)
    for sigma, bound in bounds.items():
        x = x0 + sigma * torch.randn(x0.shape, generator=g)
        with torch.inference_mode():
            d = x + sigma ** 2 * score(x, sigma)
        ratio = float(((d - x0) ** 2).mean() / ((x - x0) ** 2).mean())
        assert ratio < bound, f'{name} at sigma {sigma}: denoised error {ratio:.3f} of the noise (bound {bound})'


@pytest.mark.skipif(not __import__('shutil').which(os.environ.get('CXX', 'g++')),
                    reason='torch.compile on the CPU needs a C++ compiler (g++ or $CXX)')
def test_compiled_network_samples_what_the_eager_one_does():
    """load_score_model(compile=True) (--compile): Model A's annealed Langevin run with the compiled network lands
    within float error of the eager run, draw for draw."""
    import sampling
    from configs import mnist_cpu_pds
    from models.checkpoint import load_score_model
    config = mnist_cpu_pds.get_config()
    config.sampling.n_steps_each = 1
    path = os.path.join(ROOT, SHIPPED['model_a'][0])
    from torch._dynamo.utils import counters
    out, graphs = [], []
    for compile in (False, True):
        counters.clear()
        score = load_score_model(path, config, compile=compile)
        out.append(sampling.sample(config, score, (8, 1, 28, 28), torch.Generator().manual_seed(0))[0])
        graphs.append(counters['stats']['unique_graphs'])
    assert graphs[0] == 0 and graphs[1] >= 1, graphs              # compiled only when asked
    assert float((out[0] - out[1]).abs().max()) < 1e-3, float((out[0] - out[1]).abs().max())
    assert float(out[0].std()) > 0.05                        # a real run, not a constant
