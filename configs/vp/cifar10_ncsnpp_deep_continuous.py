"""score_sde configs/vp/cifar10_ncsnpp_deep_continuous.py: NCSN++ deep (8 blocks per level) on the VP SDE, CIFAR-10
32 px, continuous, 950k training iterations."""
from configs import defaults


def get_config():
    config = defaults.vp('ncsnpp', continuous=True)
    config.data.dataset = 'CIFAR10'
    config.training.n_iters = 950001
    config.model.num_res_blocks = 8
    config.model.fir = True
    config.model.progressive_input = 'residual'
    return config
