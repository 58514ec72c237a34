"""Report the Blender inside this render child: `THFM_PROBE {json}` on stdout."""

import json
import platform
import sys

import bpy
import numpy

info = {
    "blender_version": bpy.app.version_string,
    "python": platform.python_version(),
    "numpy": numpy.__version__,
    "executable": sys.executable,
}
print("THFM_PROBE " + json.dumps(info), flush=True)
