"""PDS on NCSN++ (deep, continuous), CIFAR-10 32 x 32 (supp. Table 2: 100 it alpha 5, 200 it alpha 10).

    python main.py --config configs/cifar10_pds.py --mode sample                # default row: table2_100it
    python main.py --config configs/cifar10_pds.py:<row> --mode sample          # another row of the paper's table
Rows: see PDS_SETTINGS in configs/ve/cifar10_ncsnpp_deep_continuous.py.
"""
from configs import defaults
import configs.ve.cifar10_ncsnpp_deep_continuous as _model


def get_config(setting=''):
    return defaults.pds_config_from(_model, 'table2_100it', setting)
