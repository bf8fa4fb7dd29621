"""score_sde configs/vp/cifar10_ncsnpp_continuous.py: NCSN++ on the VP SDE (positional embedding, FIR, residual input
pyramid, no scale_by_sigma), CIFAR-10 32 px, continuous.  Its keys equal the discrete VE NCSN++'s
(configs/ve/cifar10_ncsnpp.py): only the config tells the two processes apart."""
from configs import defaults


def get_config():
    config = defaults.vp('ncsnpp', continuous=True)
    config.data.dataset = 'CIFAR10'
    config.model.fir = True
    config.model.progressive_input = 'residual'
    return config
