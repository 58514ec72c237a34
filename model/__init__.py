"""THFM model code (JAX). It sits below the pipeline: of thfm_synth it imports only the shard format
(thfm_synth.shards) and small shared helpers, never the render or preprocess stages.

Subpackages are imported explicitly (e.g. ``from model.wan import WanTransformer3D``) so that
importing ``model`` itself stays cheap.
"""
