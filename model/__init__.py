"""THFM model code (JAX). Nothing here imports the render side (bpy, thfm_synth.render).

Subpackages are imported explicitly (e.g. ``from model.wan import WanTransformer3D``) so that
importing ``model`` itself stays cheap.
"""
