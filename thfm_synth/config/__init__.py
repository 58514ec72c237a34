"""Dataset configuration: schema (`schema.py`), presets (`presets/*.yaml`) and loading (`load.py`)."""

from thfm_synth.config.load import PRESETS, config_digest, config_yaml, load_config
from thfm_synth.config.schema import DatasetConfig

__all__ = ["DatasetConfig", "PRESETS", "config_digest", "config_yaml", "load_config"]
