"""Retargeting accuracy onto the real rigs a render uses: every CMU clip of the test assets onto the
two Quaternius FBX characters (imported with Blender) and onto built-in anny bodies. The check is the
one tests/test_motion_retarget.py runs on synthetic target rigs: the direction of every bone whose
two ends both rigs have matches the source's, frame by frame (median < 2 deg, max < 10 deg).

One adaptation, for the Quaternius rigs: they have no hip bones (CMU's LHipJoint/RHipJoint), so the
"bone" from the root to each thigh is the pelvis itself, a rigid offset whose direction is set by each
rig's own proportions (measured: a constant 63.6/64.8 deg from CMU's on every frame of every clip, not
a motion error). The pelvis is checked as a whole instead: the axis from the right to the left thigh,
which turns with the root exactly when the root's rotation was carried over.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from conftest import asset_path, require_test_asset
from motion_testdata import CMU_IDS, clip, fk, needs_cmu
from test_motion_retarget import bone_pairs, direction_errors_deg
from thfm_synth.assets.characters.anny_body import bake_anny
from thfm_synth.assets.characters.skinning import motion_skeleton
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.retarget import REST_RELATIVE, retarget
from thfm_synth.assets.motion.skeleton import canonical_name

QUATERNIUS = ["Smooth_Male_Casual", "Smooth_Female_Casual"]
ANNY = [(21, 5), (3, 1)]  # (seed, variant) of two built-in bodies of other proportions


@functools.lru_cache(maxsize=None)
def quaternius_skeleton(name: str, tmp: str):
    from thfm_synth.assets.characters import import_character

    fbx = require_test_asset(asset_path(f"characters/{name}.fbx"))
    return motion_skeleton(import_character(fbx, f"{tmp}/{name}.npz"))


def pelvis_axis_errors_deg(src, src_pos, tgt, tgt_pos) -> np.ndarray:
    """(F,) angle between the source's and the target's right-thigh -> left-thigh axis."""
    s = src_pos[:, src.index["LeftUpLeg"]] - src_pos[:, src.index["RightUpLeg"]]
    t = tgt_pos[:, tgt.index["LeftUpLeg"]] - tgt_pos[:, tgt.index["RightUpLeg"]]
    cos = np.sum(s * t, -1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(t, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _turn_from_parent_deg(sk, g, j) -> np.ndarray:
    """(F,) angle of joint j's world delta from rest relative to its parent's."""
    p = sk.parents[j]
    d_j = quat.mul(g[:, j], quat.conj(sk.rest_orientations[j]))
    d_p = quat.mul(g[:, p], quat.conj(sk.rest_orientations[p]))
    return np.degrees(quat.angle(quat.mul(quat.conj(d_p), d_j)))


def errors_on(target, *, pelvis_as_a_whole: bool) -> dict[str, np.ndarray]:
    """clip id -> (frames, checked bones) direction errors in degrees, over every CMU clip."""
    out = {}
    for cid in CMU_IDS:
        src = clip(cid)
        moved = retarget(src, target)
        pos, _ = moved.forward_kinematics()
        pairs = bone_pairs(src.skeleton, moved.skeleton)
        if pelvis_as_a_whole:
            root = moved.skeleton.parents.tolist().index(-1)
            pairs = [p for p in pairs if p[0] != root]
        # clavicles and pelvis-to-hip bones take the source's turn from rest, not its direction (their
        # rest directions are each rig's joint placement): checked below by that turn instead
        pairs = [p for p in pairs if canonical_name(moved.skeleton.names[p[0]]) not in REST_RELATIVE]
        assert len(pairs) >= 11, len(pairs)
        err = direction_errors_deg(fk(cid)[0], pos, pairs)
        if pelvis_as_a_whole:
            err = np.concatenate(
                [err, pelvis_axis_errors_deg(src.skeleton, fk(cid)[0], moved.skeleton, pos)[:, None]], 1
            )
        # the rest-relative bones: their turn from rest relative to their parent (the angle of
        # D_parent^-1 D_bone, D = G B^-1 the world delta from rest) is the source's, exactly
        _, g_t = pos, moved.forward_kinematics()[1]
        g_s = fk(cid)[1]
        for name in sorted(REST_RELATIVE):
            jt = next((j for j, n in enumerate(moved.skeleton.names) if canonical_name(n) == name), None)
            js = src.skeleton.canonical_index.get(name)
            if jt is None or js is None:
                continue
            turn_t = _turn_from_parent_deg(moved.skeleton, g_t, jt)
            turn_s = _turn_from_parent_deg(src.skeleton, g_s, js)
            err = np.concatenate([err, np.abs(turn_t - turn_s)[:, None]], 1)
        out[cid] = err
    return out


def assert_accurate(errors: dict[str, np.ndarray]) -> None:
    everything = np.concatenate([e.ravel() for e in errors.values()])
    worst = max(errors, key=lambda c: errors[c].max())
    assert np.median(everything) < 2.0, f"median {np.median(everything):.3f} deg"
    assert errors[worst].max() < 10.0, f"max {errors[worst].max():.3f} deg ({worst})"


@needs_cmu
@pytest.mark.render  # the FBX import runs in Blender
@pytest.mark.parametrize("name", QUATERNIUS)
def test_cmu_clips_onto_the_quaternius_rigs_keep_every_bone_direction(name, tmp_path_factory):
    target = quaternius_skeleton(name, str(tmp_path_factory.mktemp("rig")))
    assert "LHipJoint" not in target.names  # the reason for the pelvis adaptation (module doc)
    assert_accurate(errors_on(target, pelvis_as_a_whole=True))


@needs_cmu
@pytest.mark.parametrize("seed,variant", ANNY)
def test_cmu_clips_onto_builtin_bodies_keep_every_bone_direction(seed, variant):
    target = motion_skeleton(bake_anny(seed, variant))
    errors = errors_on(target, pelvis_as_a_whole=False)
    # the built-in rig has CMU's bones: 14 checked by direction, clavicles and hip bones by their turn from rest
    assert min(e.shape[1] for e in errors.values()) >= 18
    assert_accurate(errors)
