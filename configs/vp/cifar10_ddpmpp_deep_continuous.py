"""score_sde configs/vp/cifar10_ddpmpp_deep_continuous.py: DDPM++ deep (8 blocks per level), CIFAR-10 32 px, VP SDE
beta 0.1..20, continuous, 950k training iterations."""
from configs import defaults


def get_config():
    config = defaults.vp('ncsnpp', continuous=True)
    config.data.dataset = 'CIFAR10'
    config.training.n_iters = 950001
    config.model.num_res_blocks = 8
    return config
