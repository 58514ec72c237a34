"""Report the Blender inside this render child: version, Python, numpy (a ProbeJob's result)."""

import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402
import numpy  # noqa: E402

from bridge import contract  # noqa: E402


def probe(job):
    return {
        "blender_version": bpy.app.version_string,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "executable": sys.executable,
    }


if __name__ == "__main__":
    contract.script_main(contract.SCRIPT_PROBE, probe)
