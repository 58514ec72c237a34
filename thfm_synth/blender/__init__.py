"""The Blender boundary: everything that starts Blender or speaks to it lives here.

* `contract` - every name both sides share (scripts, job types, modalities, attributes,
  AOVs, EXR channels, the scene-format version) and the job protocol itself; standard library
  only, also loaded by `blender_scripts/bridge.py` inside Blender.
* `runtime` - which Blender (the render environment's bpy, or `--blender PATH`) and its command.
* `call` - one job in a fresh child: `call(script, job) -> result`, typed errors.
* `child` - `ServingChild`: a long-lived child for many jobs (the render farm's workers).

This package's `__init__` imports nothing: `contract` must stay loadable on its own.
"""
