"""Shared fixtures: paths of the shared test assets and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ASSETS = REPO.parent / "shared" / "assets"
SHARED_MAKEHUMAN = SHARED_ASSETS / "makehuman"

# Built-in characters wear the MakeHuman assets of ../shared (as a user's fetched folder would
# provide); without that folder they keep the procedural look. Set for the whole session so
# CLI subprocesses (run_cli) see it too; a test wanting the fallback clears it itself.
if SHARED_MAKEHUMAN.is_dir() and "THFM_MAKEHUMAN" not in os.environ:
    os.environ["THFM_MAKEHUMAN"] = str(SHARED_MAKEHUMAN)


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
def shared_makehuman(shared_assets) -> Path:
    return shared_assets / "makehuman"


@pytest.fixture(scope="session")
def shared_manifest() -> Path:
    return REPO / "assets_manifest" / "shared_test_assets.yaml"
