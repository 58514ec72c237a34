"""Resampling to the render rate and choosing N-frame windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from motion_testdata import clip, cmu_params, needs_cmu
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.builtin_motions import builtin_motion
from thfm_synth.assets.motion.resample import resample, resampled_frame_count
from thfm_synth.assets.motion.skeleton import MotionClip, rest_motion
from thfm_synth.assets.motion.window import (
    activity,
    activity_profile,
    choose_window,
    choose_window_from_profile,
    cut_window,
    select_window,
    window_indices,
)


@pytest.mark.parametrize("clip_id", cmu_params())
def test_120_to_24_fps_keeps_every_fifth_frame(clip_id):
    c = clip(clip_id)
    r = resample(c, 24)
    assert r.fps == 24.0
    assert r.num_frames == (c.num_frames - 1) // 5 + 1 == resampled_frame_count(c.num_frames, 120, 24)
    assert quat.angle(quat.mul(quat.conj(c.local_rotations[::5]), r.local_rotations)).max() < 1e-9
    np.testing.assert_allclose(r.root_translation, c.root_translation[::5], atol=1e-12)
    assert r.duration <= c.duration + 1e-12


@needs_cmu
@pytest.mark.parametrize("fps", [50.0, 30.0, 23.976, 7.0])
def test_resampling_is_slerp_and_lerp(fps):
    c = clip("05_06")
    r = resample(c, fps)
    assert r.num_frames == int(np.floor((c.num_frames - 1) / 120 * fps + 1e-9)) + 1
    times_in = np.arange(c.num_frames) / c.fps
    times_out = np.arange(r.num_frames) / fps
    for j in range(0, c.skeleton.num_joints, 5):
        ref = Slerp(times_in, Rotation.from_quat(quat.to_xyzw(c.local_rotations[:, j])))(times_out)
        ours = Rotation.from_quat(quat.to_xyzw(r.local_rotations[:, j]))
        assert (ref.inv() * ours).magnitude().max() < 1e-7
    for k in range(3):
        np.testing.assert_allclose(
            r.root_translation[:, k], np.interp(times_out, times_in, c.root_translation[:, k]), atol=1e-12
        )


def test_resample_upsampling_and_identity():
    walk = builtin_motion("builtin-walk", num_frames=121)
    assert resample(walk, 120).num_frames == 121
    up = resample(walk, 240)
    assert up.num_frames == 241
    assert quat.angle(quat.mul(quat.conj(walk.local_rotations), up.local_rotations[::2])).max() < 1e-9


def test_window_indices_exact_length_and_short_policies():
    idx, flags = window_indices(100, 10, 81)
    assert len(idx) == 81 and idx[0] == 10 and idx[-1] == 90 and flags == ()
    idx, flags = window_indices(30, 0, 81)  # shorter than N: ping-pong
    assert len(idx) == 81 and flags == ("pingpong",)
    assert idx.max() == 29 and idx.min() == 0 and np.all(np.abs(np.diff(idx)) == 1)
    idx, flags = window_indices(30, 0, 81, short="hold")
    assert len(idx) == 81 and flags == ("hold",) and np.all(idx[29:] == 29)
    assert window_indices(1, 0, 5)[0].tolist() == [0] * 5
    with pytest.raises(ValueError):
        window_indices(100, 30, 81)
    with pytest.raises(ValueError):
        window_indices(100, 0, 81, short="loop")


def test_choose_window_prefers_motion():
    still = rest_motion(builtin_motion("builtin-walk", 2).skeleton, num_frames=200, fps=24.0)
    walk = resample(builtin_motion("builtin-walk", num_frames=481), 24.0)  # 97 frames
    # 200 still frames, then walking: a standing actor would waste the sample
    joined = MotionClip(
        walk.skeleton,
        24.0,
        np.concatenate([still.root_translation, walk.root_translation]),
        np.concatenate([still.local_rotations, walk.local_rotations]),
    )
    a = activity(joined)
    assert a[:190].max() < 0.01 and a[210:].min() > 0.5
    for u in np.linspace(0, 0.999, 25):
        start = choose_window(joined, 81, u)
        assert 0 <= start <= joined.num_frames - 81
        assert a[start : start + 81].mean() > 0.5 * a[200:281].mean()
        window = cut_window(joined, start, 81)
        assert window.num_frames == 81 and window.flags == ()
    assert choose_window(joined, 81, 0.3) == choose_window(joined, 81, 0.3)  # deterministic
    starts = {choose_window(joined, 81, u) for u in np.linspace(0, 0.999, 25)}
    assert len(starts) > 5  # u still spreads over the active part
    # all-still clip: any window will do, still exactly N frames
    assert cut_window(still, choose_window(still, 81, 0.7), 81).num_frames == 81
    with pytest.raises(ValueError):
        choose_window(joined, 81, 1.0)


def test_short_clip_gets_flagged_window():
    run = resample(builtin_motion("builtin-run", num_frames=150), 24.0)  # 30 frames
    w = select_window(run, 0.5, 81)
    assert w.num_frames == 81 and "pingpong" in w.flags
    w = select_window(run, 0.5, 81, short="hold")
    assert w.num_frames == 81 and "hold" in w.flags


@needs_cmu
@pytest.mark.parametrize("clip_id", ["09_12", "02_05", "01_14"])
def test_profile_windows_match_clip_windows(clip_id):
    """Planning from the manifest's profile picks (nearly) the window the clip would."""
    c = clip(clip_id)
    profile = activity_profile(c)
    assert len(profile) == int(np.ceil(c.num_frames / c.fps - 1e-9))
    assert all(isinstance(x, float) for x in profile)
    r = resample(c, 24.0)
    for u in (0.0, 0.3, 0.6, 0.95):
        s_plan = choose_window_from_profile(profile, c.num_frames, c.fps, 81, u)
        s_clip = choose_window(r, 81, u)
        assert 0 <= s_plan <= r.num_frames - 81
        assert abs(s_plan - s_clip) <= 24  # within a second: the profile is per second
        assert cut_window(r, s_plan, 81).num_frames == 81


def test_activity_is_speed_in_metres_per_second():
    walk = builtin_motion("builtin-walk")
    a = activity(walk)
    assert 1.0 < np.median(a) < 2.5  # a 1.3 m/s walk; limbs swing faster than the body
    slow = dataclasses.replace(walk, fps=walk.fps / 2)
    np.testing.assert_allclose(activity(slow), a / 2)
