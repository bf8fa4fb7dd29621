"""ermongroup/ncsnv2 configs/bedroom.yml: NCSNv2Deeper, LSUN bedroom 128 px, 1086 levels (tower.yml's settings)."""
from configs.ncsnv2 import tower

PDS_SETTINGS = {}


def get_config():
    config = tower.get_config()
    config.data.category = 'bedroom'
    return config
