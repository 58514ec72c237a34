"""THFM's tasks: names, prompts and target encodings, defined once.

Everything that needs the task list imports it from here: the preprocessing pipeline
(``thfm_synth.preprocess``: what it builds per record), the shard tools (``thfm_synth.shards``)
and the model (``model.thfm``: the prompt table rows; ``model.train``: the loss table). This
module imports nothing from the project, so both layers can use it.

The order of :data:`TASKS` is the row order of a run's prompt table and of the trainer's
per-task loss table; dense tasks come first, the two keypoint tasks last. A checkpoint records
the task list it was trained with (``meta["tasks"]``); evaluation maps a task to the checkpoint's
own row by name, so checkpoints made before a task was added still work for the tasks they know.

Target encodings
----------------
Dense targets are 3-channel videos in [-1, 1] (what the VAE encodes; a value ``v`` in [0, 1]
is stored as ``2 v - 1``). Every dense target also has a per-pixel **validity** mask: the
pixels that carry ground truth (``valid``); losses and metrics use only those.

- ``depth`` (full-scene depth): disparity ``1 / z`` (z = planar depth along the optical axis,
  metres) normalised to [0, 1] by the clip's own min/max over valid pixels (one normalisation
  per clip, so the normalisation cannot flicker), repeated to 3 channels. Invalid: no surface
  (sky, depth 0 or non-finite) -> disparity 0 (``-1``: "infinitely far").
- ``human_depth``: the same encoding restricted to the person: pixels whose pixel-centre ray hits
  the subject (DensePose part > 0) are valid and normalised by the min/max of *their* disparity
  over the clip; **background holds -1** (the "no depth" value, as sky in ``depth``).
- ``normals`` (full-scene normals): unit normal in the OpenCV camera frame (x right, y down,
  z forward; facing the camera, so z < 0), xyz as is. Invalid: no surface -> (0, 0, 0).
- ``human_normals``: as ``normals`` on the subject's pixels; **background holds (0, 0, 0)**
  (the "no surface" value), and only subject pixels are valid.
- ``mask`` (soft segmentation): the subject's antialiased coverage alpha in [0, 1], repeated to
  3 channels; every pixel is valid (background = alpha 0 is ground truth too).
- ``iuv`` (dense pose): (part / 24, U, V); part 0..24 (0 = not the person), U, V in [0, 1] of
  the part's chart; every pixel is valid (part 0 is ground truth). Background holds (0, 0, 0)
  in [0, 1], i.e. ``(-1, -1, -1)``.
- ``canonical`` (canonical body coordinates): xyz of the surface point in the character's rest
  pose, normalised to [0, 1]^3; background holds 0 -> ``-1``; every pixel is valid.
- ``keypoints_2d``: (T, K, 2) joints in normalised image coordinates ([0, 1] inside the image);
  ``keypoints_3d``: (T, K, 3) joints in the OpenCV camera frame, metres. Not dense (no video
  target); joints the ground truth does not have are NaN (invalid).

Pixel ground truth in the shards (:mod:`model.pixels`) stores, per dense record, what the target
is built from at model resolution: metric depth (float16 metres) for the two depth tasks, the
target itself quantised to uint8 for the others, plus the validity mask.
"""

from __future__ import annotations

TASKS: tuple[str, ...] = (
    "depth",
    "human_depth",
    "normals",
    "human_normals",
    "mask",
    "iuv",
    "canonical",
    "keypoints_2d",
    "keypoints_3d",
)
KEYPOINT_TASKS: tuple[str, ...] = ("keypoints_2d", "keypoints_3d")
DENSE_TASKS: tuple[str, ...] = tuple(t for t in TASKS if t not in KEYPOINT_TASKS)
TASK_INDEX: dict[str, int] = {t: i for i, t in enumerate(TASKS)}

# Tasks whose pixel ground truth is metric depth (the [-1, 1] target is derived per clip).
DEPTH_TASKS: tuple[str, ...] = ("depth", "human_depth")
# Tasks whose pixels are valid only where the person is (the rest holds the background value).
HUMAN_ONLY_TASKS: tuple[str, ...] = ("human_depth", "human_normals")

# The rendered modality each dense task is made from (render/outputs.py names).
TASK_MODALITY: dict[str, str] = {
    "depth": "depth",
    "human_depth": "depth",
    "normals": "normal",
    "human_normals": "normal",
    "mask": "mask",
    "iuv": "iuv",
    "canonical": "canonical",
}

# One fixed prompt per task (the task is chosen only by its prompt embedding).
PROMPTS: dict[str, str] = {
    "depth": "Predict the depth of the scene as a disparity map.",
    "human_depth": "Predict the depth of the person only as a disparity map; the background is empty.",
    "normals": "Predict the surface normals of the scene in camera coordinates.",
    "human_normals": "Predict the surface normals of the person only in camera coordinates; the background is empty.",
    "mask": "Segment the person: predict a soft foreground mask.",
    "iuv": "Predict dense human body-part labels and UV coordinates.",
    "canonical": "Predict canonical body-surface coordinates of the person.",
    "keypoints_2d": "Predict the 2D body keypoints of the person.",
    "keypoints_3d": "Predict the 3D body keypoints of the person.",
}

# What a background (invalid) pixel of each dense task holds, in [-1, 1] (see the module doc).
BACKGROUND_VALUE: dict[str, float] = {
    "depth": -1.0,
    "human_depth": -1.0,
    "normals": 0.0,
    "human_normals": 0.0,
    "mask": -1.0,
    "iuv": -1.0,
    "canonical": -1.0,
}

assert set(PROMPTS) == set(TASKS) and TASKS[len(DENSE_TASKS) :] == KEYPOINT_TASKS


def check_tasks(tasks, what: str = "tasks") -> tuple[str, ...]:
    """``tasks`` as a tuple after checking every name is known and none repeats (ValueError naming them)."""
    tasks = tuple(tasks)
    bad = [t for t in tasks if t not in TASK_INDEX]
    if bad or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"unknown or repeated {what} {bad or list(tasks)}; choose from {', '.join(TASKS)}")
    return tasks


__all__ = [
    "TASKS",
    "DENSE_TASKS",
    "KEYPOINT_TASKS",
    "TASK_INDEX",
    "DEPTH_TASKS",
    "HUMAN_ONLY_TASKS",
    "TASK_MODALITY",
    "PROMPTS",
    "BACKGROUND_VALUE",
    "check_tasks",
]
