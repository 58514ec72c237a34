"""Scripts that run inside Blender (bpy 5.0.1, numpy 1.26), started by `thfm_synth.blender`.

A package only so that it installs beside `thfm_synth` (a non-editable install renders) and so
that the main environment can test the pure-numpy modules here (e.g. `fbx_ascii`). Nothing in
the main environment imports the bpy scripts.
"""
