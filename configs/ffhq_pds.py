"""PDS on NCSN++, FFHQ 1024 x 1024 (supp. Table 2: 66 iterations, alpha = 5, with the space filter).

    python main.py --config configs/ffhq_pds.py --mode sample                # default row: table2_66it
    python main.py --config configs/ffhq_pds.py:<row> --mode sample          # another row of the paper's table
Rows: see PDS_SETTINGS in configs/ve/ffhq_ncsnpp_continuous.py.
"""
from configs import defaults
import configs.ve.ffhq_ncsnpp_continuous as _model


def get_config(setting=''):
    return defaults.pds_config_from(_model, 'table2_66it', setting)
