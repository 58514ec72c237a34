"""The Blender side of the job protocol: every script here imports the contract through this.

`thfm_synth/blender/contract.py` (standard library only) holds every name shared with the main
environment and the protocol itself. It is loaded by file path, never through `sys.path`:
putting the main environment's packages on Blender's path would put numpy 2 in front of
Blender's numpy 1.26. The file sits at `<root>/thfm_synth/blender/contract.py` beside
`<root>/blender_scripts/` both in the repository and in an installed package.
"""

import importlib.util
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRACT_PATH = os.path.join(_ROOT, "thfm_synth", "blender", "contract.py")


def _load_contract():
    name = "thfm_blender_contract"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CONTRACT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building the classes
    spec.loader.exec_module(module)
    return module


contract = _load_contract()
