"""PDS on NCSNv2, LSUN tower 128 x 128 (supp. Table 1: 65 / 81 / 108 iterations, r = 0.2H, lambda = 1.1).

    python main.py --config configs/tower_pds.py --mode sample                # default row: table1_108it
    python main.py --config configs/tower_pds.py:<row> --mode sample          # another row of the paper's table
Rows: see PDS_SETTINGS in configs/ncsnv2/tower.py.
"""
from configs import defaults
import configs.ncsnv2.tower as _model


def get_config(setting=''):
    return defaults.pds_config_from(_model, 'table1_108it', setting)
