"""PDS on NCSNv2, LSUN church 96 x 96 (supp. Table 1: 126 / 157 / 210 iterations, r = 0.2H, lambda = 1.6).

    python main.py --config configs/church96_pds.py --mode sample                # default row: table1_157it
    python main.py --config configs/church96_pds.py:<row> --mode sample          # another row of the paper's table
Rows: see PDS_SETTINGS in configs/ncsnv2/church.py.
"""
from configs import defaults
import configs.ncsnv2.church as _model


def get_config(setting=''):
    return defaults.pds_config_from(_model, 'table1_157it', setting)
