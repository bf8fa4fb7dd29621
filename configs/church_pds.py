"""PDS on NCSN++, LSUN church 256 x 256 (supp. Table 2: 166 iterations, alpha = 5).

    python main.py --config configs/church_pds.py --mode sample                # default row: table2_166it
    python main.py --config configs/church_pds.py:<row> --mode sample          # another row of the paper's table
Rows: see PDS_SETTINGS in configs/ve/church_ncsnpp_continuous.py.
"""
from configs import defaults
import configs.ve.church_ncsnpp_continuous as _model


def get_config(setting=''):
    return defaults.pds_config_from(_model, 'table2_166it', setting)
