"""Shared fixtures: the test assets (where they are, or a skip that says how to fetch them) and a CLI runner.

The test assets are found by `thfm_synth.assets.testassets.find_test_assets`: `$THFM_TEST_ASSETS`,
else `../shared/assets` beside the repository (the CI machines), else `~/.cache/thfm-synth/test-assets`
(where `python3 -m thfm_synth assets fetch test-assets` puts them). Tests never build that path themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from thfm_synth.assets import testassets

REPO = Path(__file__).resolve().parents[1]
TEST_ASSETS: Path | None = testassets.find_test_assets()
MISSING_ASSETS = testassets.missing_reason()

# Built-in characters wear the MakeHuman assets of the test assets (as a user's fetched folder would
# provide); without that folder they keep the procedural look. Set for the whole session so
# CLI subprocesses (run_cli) see it too; a test wanting the fallback clears it itself.
SHARED_MAKEHUMAN = TEST_ASSETS / "makehuman" if TEST_ASSETS is not None else None
if SHARED_MAKEHUMAN is not None and SHARED_MAKEHUMAN.is_dir() and "THFM_MAKEHUMAN" not in os.environ:
    os.environ["THFM_MAKEHUMAN"] = str(SHARED_MAKEHUMAN)


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `thfm-synth ARGS` in a fresh interpreter of this environment, like a user would."""
    env = {**os.environ, "THFM_NO_BOOTSTRAP": "1"}
    return subprocess.run(
        [sys.executable, "-m", "thfm_synth", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env=env,
    )


def asset_path(relative: str) -> Path:
    """A test-asset file's path for module-level constants; `require_test_asset` skips when it is absent."""
    return (TEST_ASSETS or testassets.default_dest()) / relative


def missing_asset_reason(path: Path) -> str:
    """Why a test-asset file is absent, and what to run."""
    if TEST_ASSETS is None:
        return f"{path.name}: {MISSING_ASSETS}"
    return f"{path} is missing from the test assets (fix: run `{testassets.FETCH_COMMAND}` to complete them)"


def require_test_asset(path: Path) -> Path:
    if not path.exists():
        pytest.skip(missing_asset_reason(path))
    return path


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    if TEST_ASSETS is None:
        pytest.skip(MISSING_ASSETS)
    return TEST_ASSETS


@pytest.fixture(scope="session")
def character_cache(tmp_path_factory) -> Path:
    """One baked-character cache for the session: a built-in body is baked once (~4 s of CPU each), not
    once per test. Bakes are written atomically and keyed by their inputs, so sharing is what a farm does.
    Tests about the cache itself (integrity, defaults) keep their own."""
    return tmp_path_factory.mktemp("character-cache")


@pytest.fixture(scope="session")
def shared_makehuman(shared_assets) -> Path:
    return shared_assets / "makehuman"


@pytest.fixture(scope="session")
def shared_manifest(tmp_path_factory) -> Path:
    """The committed manifest of the test assets; when they live elsewhere than its `root`
    (`../../shared/assets`), a copy of it whose root is where they are."""
    from thfm_synth.assets.manifest import dump_manifest, load_manifest

    committed = REPO / "assets_manifest" / "shared_test_assets.yaml"
    loaded = load_manifest(committed)
    if TEST_ASSETS is None or loaded.root == TEST_ASSETS.resolve():
        return committed
    copy = tmp_path_factory.mktemp("test_assets_manifest") / committed.name
    copy.write_text(dump_manifest(loaded.manifest.model_copy(update={"root": str(TEST_ASSETS.resolve())})))
    return copy


@pytest.fixture(scope="session")
def smplx_models(tmp_path_factory) -> Path:
    """A folder of stand-in SMPL-X model files (official .npz layout, built from an anny body; no real
    SMPL-X files exist here): SMPLX_NEUTRAL.npz, SMPLX_FEMALE.npz, SMPLX_MALE.npz."""
    from smplx_testmodel import write_model

    folder = tmp_path_factory.mktemp("smplx_models")
    for gender in ("neutral", "female", "male"):
        write_model(folder, gender)
    return folder
