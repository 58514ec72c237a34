"""Renderer-agnostic scene description: camera trajectories and scene layout (pure numpy)."""
