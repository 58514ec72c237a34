"""Per-joint visibility by depth test against the rendered frame (pure numpy).

Codes: 0 visible, 1 outside the image (or behind the camera), 2 occluded by the subject
itself, 3 occluded by the scene, 4 occluded by another person (videos with several people). Joints lie inside the body, so a visible joint sits a few
centimetres *behind* the surface the depth pass sees. The test therefore asks:

- is the pixel covered by the subject (mask > 0.5)? If the part label there belongs to the
  joint's own limb (or, without part labels, the surface is within `self_tol_m` in front
  of the joint) the joint is visible, otherwise another body part hides it (self);
  `self_tol_m` may differ per joint: interior joints sit up to ~15 cm behind the surface
  that shows them (SELF_TOL_M), while keypoints on the skin (nose, eyes, ears) must be the
  visible surface itself, within SURFACE_TOL_M (EAR_TOL_M for ears, under hair; a left eye
  seen from behind lies 5-15 cm behind the back of the head and is self-occluded);
- is the pixel another person's (`others_mask` > 0.5)? If that surface is nearer than the joint,
  the other person hides it; otherwise it is visible;
- is the pixel background? If the scene surface there is nearer than the joint, the scene
  hides it; otherwise (a joint projecting just off a thin limb's silhouette) it is visible.
"""

from __future__ import annotations

import numpy as np

VISIBLE, OUTSIDE, SELF_OCCLUDED, SCENE_OCCLUDED, PERSON_OCCLUDED = 0, 1, 2, 3, 4
SELF_TOL_M = 0.15
#: Surface keypoints: their own skin at the pixel is within this of them. 2 cm covers the
#: regressor's ~5 mm and the pixel footprint on a sloped cheek; ears get 3 cm because hair
#: lies over them and COCO labels an ear under hair as visible. The back of the head is 5 cm
#: or more in front of a face point seen from behind.
SURFACE_TOL_M = 0.02
EAR_TOL_M = 0.03


def keypoint_tolerances(names, surface: frozenset[str] | set[str]) -> np.ndarray:
    """Per-joint self-occlusion tolerance (K,): a surface tolerance for names in `surface`."""
    return np.array(
        [(EAR_TOL_M if n.endswith("_ear") else SURFACE_TOL_M) if n in surface else SELF_TOL_M for n in names]
    )


def joint_visibility(
    joints_2d: np.ndarray,
    joints_z: np.ndarray,
    depth: np.ndarray,
    mask: np.ndarray,
    part: np.ndarray | None = None,
    joint_parts: list[set[int]] | None = None,
    self_tol_m: float | np.ndarray = SELF_TOL_M,
    limb_tol_m: float = 0.35,
    others_mask: np.ndarray | None = None,
) -> np.ndarray:
    h, w = depth.shape
    codes = np.full(len(joints_2d), VISIBLE, dtype=np.uint8)
    tol = np.broadcast_to(np.asarray(self_tol_m, np.float64), (len(joints_2d),))
    for j, ((u, v), z) in enumerate(zip(joints_2d, joints_z)):
        if not (0 <= u < w and 0 <= v < h and z > 0):
            codes[j] = OUTSIDE
            continue
        x, y = int(u), int(v)
        surface = depth[y, x] if depth[y, x] > 0 else np.inf  # 0 = no surface (sky): infinitely far
        if mask[y, x] > 0.5:
            if part is not None and joint_parts is not None:
                own = part[y, x] in joint_parts[j] and surface > z - limb_tol_m
                codes[j] = VISIBLE if own else SELF_OCCLUDED
            else:
                codes[j] = VISIBLE if surface > z - tol[j] else SELF_OCCLUDED
        elif others_mask is not None and others_mask[y, x] > 0.5:
            codes[j] = PERSON_OCCLUDED if surface < z else VISIBLE
        elif surface < z:
            codes[j] = SCENE_OCCLUDED
    return codes
