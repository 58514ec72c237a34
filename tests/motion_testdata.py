"""Shared test data for tests/test_motion_*.py: the CMU clips, parsed once per run."""

from __future__ import annotations

import functools

import pytest

from conftest import asset_path, missing_asset_reason

CMU_DIR = asset_path("mocap/cmu")
CMU_FILES = sorted(CMU_DIR.glob("*.bvh")) if CMU_DIR.is_dir() else []
CMU_IDS = [p.stem for p in CMU_FILES]
WALKING = ["02_01", "03_01", "07_01", "07_04", "08_01", "08_05", "08_07", "09_12"]

needs_cmu = pytest.mark.skipif(not CMU_FILES, reason=missing_asset_reason(CMU_DIR))


@functools.lru_cache(maxsize=None)
def clip(clip_id: str):
    from thfm_synth.assets.motion.bvh import read_bvh

    return read_bvh(CMU_DIR / f"{clip_id}.bvh")


@functools.lru_cache(maxsize=None)
def fk(clip_id: str):
    return clip(clip_id).forward_kinematics()


def cmu_params(ids=None):
    """Parametrize over clips (default: all), or one skipped case when the data is absent."""
    if not CMU_IDS:
        return [pytest.param("none", marks=pytest.mark.skip(reason=missing_asset_reason(CMU_DIR)))]
    return list(CMU_IDS if ids is None else ids)
