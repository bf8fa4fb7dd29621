"""PDS on NCSN, MNIST 28 x 28 (supp. Table 1: 20 iterations, radial filter r = 0.2H, lambda = 1.6).

    python main.py --config configs/mnist_pds.py --mode sample                # default row: table1_20it
    python main.py --config configs/mnist_pds.py:<row> --mode sample          # another row of the paper's table
Rows: see PDS_SETTINGS in configs/ncsn/mnist.py.
"""
from configs import defaults
import configs.ncsn.mnist as _model


def get_config(setting=''):
    return defaults.pds_config_from(_model, 'table1_20it', setting)
