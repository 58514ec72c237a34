"""Body-model parameters in training records: the SMPL-X ground truth of annotations.npz, per clip frame.

A record of a video whose character is an SMPL-X body carries

* `body_model` (str): JSON {"model": "smplx", "gender", "model_file", "model_sha256",
  "num_vertices", "layout": [[name, start, size], ...], "usage"};
* `body_params` (T, P) float32: per frame, the concatenation given by `layout` (PARAM_LAYOUT:
  camera-frame and world-frame global orientation and translation, body/jaw/eye/hand poses as
  axis-angle, expression), P = 184;
* `body_betas` (10,) float32: the shape.

Records of other characters have `body_model` "" and empty arrays. Camera-frame parameters are
unchanged by the preprocessing crop and resize (only K changes).
"""

from __future__ import annotations

import json

import numpy as np

PARAM_LAYOUT: tuple[tuple[str, int], ...] = (
    ("global_orient_cam", 3),
    ("transl_cam", 3),
    ("global_orient_world", 3),
    ("transl_world", 3),
    ("body_pose", 63),
    ("jaw_pose", 3),
    ("leye_pose", 3),
    ("reye_pose", 3),
    ("left_hand_pose", 45),
    ("right_hand_pose", 45),
    ("expression", 10),
)
USAGE = (
    "smplx.SMPLX(model_path, gender=gender, use_pca=False, flat_hand_mean=True, num_betas=10, "
    "num_expression_coeffs=10) with body_betas and the *_cam (or *_world) orientation and translation gives "
    "the body mesh in the camera (world) frame"
)


def layout() -> list[list]:
    out, start = [], 0
    for name, size in PARAM_LAYOUT:
        out.append([name, start, size])
        start += size
    return out


def has_body(ann: dict) -> bool:
    return "smplx_betas" in ann


def pack(ann: dict, frames: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(body_model JSON, body_params (T, P) float32, body_betas float32) from annotations.npz arrays."""
    cols = []
    for name, size in PARAM_LAYOUT:
        a = np.asarray(ann[f"smplx_{name}"], np.float64)[frames]
        cols.append(a.reshape(len(frames), size))
    info = {
        "model": "smplx",
        "gender": str(ann["smplx_gender"]),
        "model_file": str(ann["smplx_model_file"]),
        "model_sha256": str(ann["smplx_model_sha256"]),
        "num_vertices": int(ann["smplx_num_vertices"]),
        "layout": layout(),
        "usage": USAGE,
    }
    return (
        json.dumps(info, sort_keys=True),
        np.concatenate(cols, axis=1).astype(np.float32),
        np.asarray(ann["smplx_betas"], np.float32),
    )


def unpack(body_model: str, params: np.ndarray) -> dict[str, np.ndarray]:
    """{name: (T, ...) array} from a record's body_params (poses as (T, joints, 3))."""
    info = json.loads(body_model)
    out = {}
    for name, start, size in info["layout"]:
        a = np.asarray(params)[:, start : start + size]
        out[name] = a.reshape(len(a), -1, 3) if name.endswith("_pose") and size > 3 else a
    return out


def describe(body_model: str, params: np.ndarray, betas: np.ndarray, frame: int = 0) -> list[str]:
    """Lines for `shards show`: the model, the shape and one frame's parameters."""
    if not body_model:
        return []
    info = json.loads(body_model)
    p = unpack(body_model, params)
    fmt = lambda a: "[" + ", ".join(f"{x:+.3f}" for x in np.asarray(a).ravel()) + "]"  # noqa: E731
    lines = [
        f"body model: {info['model']} ({info['gender']}, {info['model_file']} sha256 "
        f"{info['model_sha256'][:12]}, {info['num_vertices']} vertices), {len(params)} frames x "
        f"{params.shape[1]} parameters",
        f"  betas {fmt(betas)}",
    ]
    if len(params):
        f = min(frame, len(params) - 1)
        lines += [
            f"  frame {f}: global_orient_cam {fmt(p['global_orient_cam'][f])} transl_cam {fmt(p['transl_cam'][f])} (m)",
            f"  frame {f}: global_orient_world {fmt(p['global_orient_world'][f])} transl_world "
            f"{fmt(p['transl_world'][f])} (m)",
            f"  frame {f}: body_pose (21 x 3, rad) |max| {np.abs(p['body_pose'][f]).max():.3f}, hands |max| "
            f"{max(np.abs(p['left_hand_pose'][f]).max(), np.abs(p['right_hand_pose'][f]).max()):.3f}, "
            f"expression {fmt(p['expression'][f][:3])}...",
        ]
    return lines
