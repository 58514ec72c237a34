"""Built-in procedural motions: contact, no sliding, rigid bones, periodic gait."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from thfm_synth.assets.motion import ground, quat
from thfm_synth.assets.motion.builtin_motions import BUILTIN_IDS, builtin_motion
from thfm_synth.assets.motion.resample import resample
from thfm_synth.assets.motion.window import activity


@functools.lru_cache(maxsize=None)
def _clip(mid):
    c = builtin_motion(mid)
    return c, c.forward_kinematics()


def _runs(mask):
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


@pytest.mark.parametrize("mid", BUILTIN_IDS)
def test_builtin_basics(mid):
    c, (pos, rot) = _clip(mid)
    assert c.fps == 120.0 and c.num_frames == 960 and c.source == mid
    again = builtin_motion(mid)
    assert np.array_equal(again.local_rotations, c.local_rotations)  # deterministic
    assert np.array_equal(again.root_translation, c.root_translation)
    sk = c.skeleton
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, sk.parents[1:]], axis=-1)
    assert (lengths.max(axis=0) - lengths.min(axis=0)).max() < 1e-9
    assert np.all(np.isfinite(pos))
    assert np.median(activity(c)) > 0.02  # none of them stands still


@pytest.mark.parametrize("mid", BUILTIN_IDS)
def test_builtin_feet_touch_and_never_sink(mid):
    c, (pos, _) = _clip(mid)
    h = ground.lowest_foot_height(pos, c.skeleton)
    assert h.min() >= 0.0
    assert pos[..., 2].min() >= 0.0
    needed = {"builtin-run": 0.5}.get(mid, 0.99)  # the run has flight phases
    assert np.mean(h <= 0.02) >= needed


@pytest.mark.parametrize("mid", BUILTIN_IDS)
def test_planted_feet_do_not_slide(mid):
    """Wherever a toe joint rests on the floor it stays put (sub-millimetre)."""
    c, (pos, _) = _clip(mid)
    sk = c.skeleton
    for name in ("LeftToeBase", "LeftToeBase_end", "RightToeBase", "RightToeBase_end"):
        j = sk.index[name]
        z = pos[:, j, 2]
        planted = z <= z.min() + 1e-4
        runs = [(a, b) for a, b in _runs(planted) if b - a >= 3]
        assert runs, name
        for a, b in runs:
            xy = pos[a:b, j, :2]
            assert np.linalg.norm(xy - xy[0], axis=1).max() < 0.005, (name, a, b)


@pytest.mark.parametrize("mid,speed,period", [("builtin-walk", 1.3, 1.1), ("builtin-run", 2.8, 0.7)])
def test_gait_is_periodic_and_moves_at_its_speed(mid, speed, period):
    c, (pos, _) = _clip(mid)
    n = int(round(period * c.fps))
    rel = pos - pos[:, :1]
    mid_frames = slice(120, 960 - 120 - n)  # away from the ends of the smoothing filter
    np.testing.assert_allclose(rel[mid_frames], rel[n:][mid_frames], atol=1e-6)
    travelled = np.linalg.norm(pos[-1, 0, :2] - pos[0, 0, :2]) / c.duration
    assert travelled == pytest.approx(speed, rel=0.02)
    # facing -Y while walking along -Y
    assert pos[-1, 0, 1] < pos[0, 0, 1]
    h = ground.lowest_foot_height(pos, c.skeleton)
    if mid == "builtin-run":
        assert np.mean(h > 0.03) > 0.15  # flight phases


def test_turn_changes_heading():
    c, (pos, rot) = _clip("builtin-turn")
    fwd = quat.rotate(rot[:, 0], np.array([0.0, -1.0, 0.0]))  # the pelvis forward axis
    heading = np.unwrap(np.arctan2(fwd[:, 0], -fwd[:, 1]))
    assert np.degrees(heading[-1] - heading[0]) == pytest.approx(90, abs=10)  # +180 then -90
    assert np.degrees(heading.max() - heading[0]) == pytest.approx(180, abs=15)


def test_reach_and_squat_move_arms_and_pelvis():
    c, (pos, _) = _clip("builtin-reach")
    sk = c.skeleton
    wrist = pos[:, sk.index["RightHand"]]
    assert wrist[:, 2].max() > 1.9 and wrist[:, 1].min() < -0.4  # overhead and forward
    c, (pos, _) = _clip("builtin-squat")
    assert pos[:, 0, 2].max() - pos[:, 0, 2].min() > 0.3


def test_builtins_resample_to_24_fps():
    r = resample(builtin_motion("builtin-walk"), 24.0)
    assert r.num_frames == 192
