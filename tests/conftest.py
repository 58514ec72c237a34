"""Shared fixtures: paths of the shared test assets and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ASSETS = REPO.parent / "shared" / "assets"


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `thfm-synth ARGS` in a fresh interpreter of this environment, like a user would."""
    env = {**os.environ, "THFM_NO_BOOTSTRAP": "1"}
    return subprocess.run([sys.executable, "-m", "thfm_synth", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO, env=env)


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    if not SHARED_ASSETS.is_dir():
        pytest.skip("../shared/assets is not present")
    return SHARED_ASSETS


@pytest.fixture(scope="session")
def shared_manifest() -> Path:
    return REPO / "assets_manifest" / "shared_test_assets.yaml"


@pytest.fixture(scope="session")
def smplx_models(tmp_path_factory) -> Path:
    """A folder of stand-in SMPL-X model files (official .npz layout, built from an anny body; no real
    SMPL-X files exist here): SMPLX_NEUTRAL.npz, SMPLX_FEMALE.npz, SMPLX_MALE.npz."""
    from smplx_testmodel import write_model

    folder = tmp_path_factory.mktemp("smplx_models")
    for gender in ("neutral", "female", "male"):
        write_model(folder, gender)
    return folder
