"""thfm-synth: synthetic training data for THFM and the trainer that uses it.

This module must stay importable with the standard library alone: the launcher
(`python3 -m thfm_synth`) imports it before any environment exists.
"""

__version__ = "0.1.0"
