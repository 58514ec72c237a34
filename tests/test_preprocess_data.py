"""Shared, cached test data for the preprocessing, shard-inspection and report tests (no tests here).

`rendered(tmp_path_factory)`: three real preview renders (256x160, 9 frames, 24 fps) made once per
session with `thfm-synth render` (needs the render environment). `shard_set(tmp_path_factory)`:
those videos preprocessed once with Ray to 96x64 (a non-integer 0.4x scale with a 3.2-pixel
horizontal crop), 9 frames -> 3 latent frames, one video per shard (3 shards of 7 records).
Other test modules import these functions; the module-level cache makes each run once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli

NUM_VIDEOS = 3
SETTINGS = dict(num_frames=9, fps=24, width=96, height=64, max_shard_bytes=1, prompt_dim=32, progress=False)
_CACHE: dict[str, object] = {}


def rendered(tmp_path_factory) -> Path:
    if "render" not in _CACHE:
        out = tmp_path_factory.mktemp("render") / "out"
        proc = run_cli(
            "render",
            "--preset",
            "preview",
            "--num-videos",
            str(NUM_VIDEOS),
            "--out",
            out,
            "--workers",
            "2",
            timeout=600,
        )
        if proc.returncode != 0:
            pytest.fail(f"test render failed:\n{proc.stdout}\n{proc.stderr}")
        _CACHE["render"] = out
    return _CACHE["render"]


def shard_set(tmp_path_factory):
    """(shard folder, summary of the run that made it)."""
    if "shards" not in _CACHE:
        from thfm_synth.preprocess.pipeline import preprocess

        out = tmp_path_factory.mktemp("shards") / "set"
        summary = preprocess(rendered(tmp_path_factory), out, workers=2, **SETTINGS)
        _CACHE["shards"] = (out, summary)
    return _CACHE["shards"]
