"""Pick the frames of a clip to render: a window of exactly N frames, with motion.

Activity is the mean speed (m/s) of the skeleton's joints in the world, so walking
(~1 m/s) scores high, fidgeting in place low, standing still ~0. It is a property of
the motion, not of a character's proportions, and needs no foot or contact logic.

`choose_window` turns a plan's uniform number u into a start frame: windows whose
mean activity is at least half of the best window's (and above STILL_SPEED) are
candidates, each drawn with probability proportional to its activity. So the same
(clip, N, u) always gives the same window, still stretches are avoided whenever the
clip has anything better, and different u still spread over all active parts.

The plan does not read BVH files: the asset manifest stores `activity_profile` (one
number per second) and the plan calls `choose_window_from_profile`, then stores the
start frame; rendering cuts that start with `cut_window` and never re-chooses.

Clips shorter than N frames are played forward and backward ("pingpong", the default:
no jump in pose or position, the motion just reverses) or frozen on the last frame
("hold"); either way the result has exactly N frames and carries the policy's name in
`MotionClip.flags` so a dataset can filter such samples.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from thfm_synth.assets.motion.resample import resampled_frame_count
from thfm_synth.assets.motion.skeleton import MotionClip

DEFAULT_NUM_FRAMES = 81
STILL_SPEED = 0.05  # m/s mean joint speed: below this a window counts as standing still
ACTIVE_FRACTION = 0.5  # candidates score at least this fraction of the best window
SHORT_POLICIES = ("pingpong", "hold")


def activity(clip: MotionClip) -> np.ndarray:
    """Per-frame mean joint speed in m/s, (F,), by central differences."""
    pos, _ = clip.forward_kinematics()
    keep = ~clip.skeleton.is_end_site
    pos = pos[:, keep]
    nf = pos.shape[0]
    if nf < 2:
        return np.zeros(nf)
    vel = np.gradient(pos, 1.0 / clip.fps, axis=0)
    return np.linalg.norm(vel, axis=-1).mean(axis=1)


def activity_profile(clip: MotionClip, bin_seconds: float = 1.0) -> list[float]:
    """Mean activity per `bin_seconds` from the clip's first frame (last bin may be
    partial), rounded to mm/s: a few numbers per motion for the asset manifest."""
    a = activity(clip)
    bins = np.floor(np.arange(a.shape[0]) / clip.fps / bin_seconds + 1e-9).astype(np.int64)
    sums = np.bincount(bins, weights=a)
    counts = np.bincount(bins)
    return [round(float(x), 3) for x in sums / np.maximum(counts, 1)]


def _check(num_frames: int, u: float) -> None:
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}")
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must be in [0, 1), got {u}")


def choose_window(clip_or_activity: MotionClip | Sequence[float] | np.ndarray, num_frames: int, u: float) -> int:
    """Start frame of an N-frame window (0 when the clip is not longer than N).

    Pass the clip at the fps you will render, or a per-frame activity at that fps.
    """
    _check(num_frames, u)
    a = (
        activity(clip_or_activity)
        if isinstance(clip_or_activity, MotionClip)
        else np.asarray(clip_or_activity, dtype=np.float64)
    )
    nf = a.shape[0]
    if nf <= num_frames:
        return 0
    csum = np.concatenate([[0.0], np.cumsum(a)])
    score = (csum[num_frames:] - csum[:-num_frames]) / num_frames  # mean activity per start
    best = score.max()
    if best < STILL_SPEED:
        weight = np.ones_like(score)  # nothing moves: every window is as good
    else:
        weight = np.where(score >= max(STILL_SPEED, ACTIVE_FRACTION * best), score, 0.0)
    cdf = np.cumsum(weight)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), score.shape[0] - 1))


def choose_window_from_profile(
    profile: Sequence[float],
    num_source_frames: int,
    source_fps: float,
    num_frames: int,
    u: float,
    fps: float = 24.0,
    bin_seconds: float = 1.0,
) -> int:
    """`choose_window` from a manifest's activity profile, for the clip resampled to `fps`.

    `num_source_frames`/`source_fps` describe the clip as the manifest lists it (after
    any T-pose frame was dropped), so the frame count matches `resample` exactly.
    """
    n = resampled_frame_count(num_source_frames, source_fps, fps)
    if not len(profile):
        return 0 if n <= num_frames else choose_window(np.zeros(n), num_frames, u)
    bins = np.minimum(np.floor(np.arange(n) / fps / bin_seconds + 1e-9).astype(np.int64), len(profile) - 1)
    return choose_window(np.asarray(profile, dtype=np.float64)[bins], num_frames, u)


def window_indices(
    num_available: int, start: int, num_frames: int, short: str = "pingpong"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Source frame indices of the window, and the flags to record (empty if none)."""
    if short not in SHORT_POLICIES:
        raise ValueError(f"short policy must be one of {SHORT_POLICIES}, got {short!r}")
    if num_available < 1:
        raise ValueError("the clip has no frames")
    if num_available >= num_frames:
        if not 0 <= start <= num_available - num_frames:
            raise ValueError(f"window start {start} + {num_frames} frames does not fit {num_available} frames")
        return np.arange(start, start + num_frames), ()
    k = np.arange(num_frames)
    if short == "hold" or num_available == 1:
        return np.minimum(k, num_available - 1), ("hold",)
    period = 2 * (num_available - 1)
    m = k % period
    return np.where(m < num_available, m, period - m), ("pingpong",)


def cut_window(
    clip: MotionClip, start: int, num_frames: int = DEFAULT_NUM_FRAMES, short: str = "pingpong"
) -> MotionClip:
    """The N-frame window starting at `start` (from `choose_window`)."""
    idx, flags = window_indices(clip.num_frames, start, num_frames, short)
    return clip.take(idx, flags=flags)


def select_window(
    clip: MotionClip, u: float, num_frames: int = DEFAULT_NUM_FRAMES, short: str = "pingpong"
) -> MotionClip:
    """choose_window + cut_window on a clip already at the render fps."""
    return cut_window(clip, choose_window(clip, num_frames, u), num_frames, short)
