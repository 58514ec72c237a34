"""Preprocessing: rendered videos -> model-ready targets and latents -> shards."""
