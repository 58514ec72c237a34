"""Change a clip's frame rate: slerp for rotations, linear for the root position.

Output frame k is at time k / fps from the clip's first frame, for every k whose
time lies within the clip, so the last output frame is never extrapolated. 120 -> 24
fps therefore takes every 5th source frame exactly. No low-pass filter is applied:
at 24 fps mocap has little energy above the new Nyquist rate, and filtering would
soften foot contacts.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import MotionClip

DEFAULT_FPS = 24.0


def resampled_frame_count(num_frames: int, fps_in: float, fps_out: float) -> int:
    """Frames `resample` produces; planning uses it to pick windows without the clip."""
    if num_frames < 1:
        return 0
    span = (num_frames - 1) / float(fps_in)
    # 1e-9 absorbs rounding in span * fps_out for exact ratios such as 120 -> 24
    return int(np.floor(span * float(fps_out) + 1e-9)) + 1


def resample(clip: MotionClip, fps: float = DEFAULT_FPS) -> MotionClip:
    if not fps > 0:
        raise ValueError(f"target fps must be positive, got {fps}")
    n_out = resampled_frame_count(clip.num_frames, clip.fps, fps)
    if clip.num_frames == 1 or fps == clip.fps:
        return dataclasses.replace(clip, fps=float(fps))
    u = np.arange(n_out) * (clip.fps / float(fps))  # fractional source frame per output frame
    i0 = np.minimum(np.floor(u + 1e-9).astype(np.int64), clip.num_frames - 2)
    t = np.clip(u - i0, 0.0, 1.0)
    rot = quat.slerp(clip.local_rotations[i0], clip.local_rotations[i0 + 1], t[:, None])
    trans = clip.root_translation[i0] * (1.0 - t)[:, None] + clip.root_translation[i0 + 1] * t[:, None]
    return dataclasses.replace(clip, fps=float(fps), local_rotations=rot, root_translation=trans)
