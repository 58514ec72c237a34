"""SMPL-24, H36M-17 and COCO-17 keypoints from posed skeletons."""

from __future__ import annotations

import numpy as np
import pytest

from motion_testdata import clip, needs_cmu
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.builtin_motions import builtin_motion
from thfm_synth.assets.motion.joints import (
    COCO17_NAMES,
    FACE_NAMES,
    H36M17_NAMES,
    SMPL24_NAMES,
    coco17,
    h36m17,
    joint_sets,
    regress_face,
    smpl24,
)
from thfm_synth.assets.motion.retarget import retarget
from thfm_synth.assets.motion.skeleton import canonical_skeleton, forward_kinematics, rest_motion
from thfm_synth.assets.motion.testing import variant_target


def test_sets_have_their_conventions_and_sizes():
    sets = joint_sets(builtin_motion("builtin-walk", num_frames=30))
    assert sets["smpl24"].names == SMPL24_NAMES and len(SMPL24_NAMES) == 24
    assert sets["h36m17"].names == H36M17_NAMES and len(H36M17_NAMES) == 17
    assert sets["coco17"].names == COCO17_NAMES and len(COCO17_NAMES) == 17
    for name, s in sets.items():
        assert s.convention == name and s.positions.shape == (30, len(s.names), 3)
        assert np.all(np.isfinite(s.positions))
    assert sets["coco17"].face_source == "head_model"


def test_rest_pose_anatomy():
    sets = joint_sets(rest_motion(canonical_skeleton()))
    smpl = dict(zip(SMPL24_NAMES, sets["smpl24"].positions[0]))
    coco = dict(zip(COCO17_NAMES, sets["coco17"].positions[0]))
    h36m = dict(zip(H36M17_NAMES, sets["h36m17"].positions[0]))
    for n, p in smpl.items():  # subject's left is +X
        if n.startswith("left_"):
            assert p[0] > 0.05 and smpl["right_" + n[5:]][0] == pytest.approx(-p[0])
    spine_z = [smpl[n][2] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    assert np.all(np.diff(spine_z) > 0)
    assert (
        smpl["left_collar"][0]
        < smpl["left_shoulder"][0]
        < smpl["left_elbow"][0]
        < smpl["left_wrist"][0]
        < smpl["left_hand"][0]
    )
    assert smpl["left_foot"][1] < smpl["left_ankle"][1]  # toes point forward (-Y)
    # face: nose in front of the head, eyes above the nose, ears to the side, all near the head
    assert coco["nose"][1] < smpl["head"][1] - 0.05
    assert coco["left_eye"][2] > coco["nose"][2] and coco["left_eye"][0] > 0 > coco["right_eye"][0]
    assert coco["left_ear"][0] > coco["left_eye"][0] and abs(coco["left_ear"][1] - smpl["head"][1]) < 0.05
    assert 1.6 < coco["left_eye"][2] < 1.72  # eye height of a 1.78 m adult
    np.testing.assert_allclose(h36m["pelvis"], 0.5 * (smpl["left_hip"] + smpl["right_hip"]))
    assert h36m["head"][2] == pytest.approx(canonical_skeleton().rest_positions[:, 2].max())
    assert h36m["thorax"][2] > h36m["spine"][2] > h36m["pelvis"][2]


def test_face_follows_the_head():
    sk = canonical_skeleton()
    rot = np.tile(quat.IDENTITY, (2, sk.num_joints, 1))
    rot[1, sk.index["Head"]] = quat.from_axis_angle(np.array([0.0, 0, 1]), np.pi / 2)  # look left (+X)
    pos, glob = forward_kinematics(sk, rot, np.tile(sk.offsets[0], (2, 1)))
    face = coco17(sk, pos, glob).positions[:, :5]
    head = pos[:, sk.index["Head"]]
    assert (face[0, 0] - head[0])[1] < -0.05  # frame 0: nose towards -Y
    assert (face[1, 0] - head[1])[0] > 0.05  # frame 1: nose towards +X
    np.testing.assert_allclose(np.linalg.norm(face[0] - head[0], axis=1), np.linalg.norm(face[1] - head[1], axis=1))


def test_vertex_regressor_face_points():
    walk = builtin_motion("builtin-walk", num_frames=4)
    verts = np.random.default_rng(0).normal(size=(4, 50, 3))
    reg = np.zeros((5, 50))
    for k in range(5):
        reg[k, 10 * k : 10 * k + 10] = 0.1  # each point is the mean of ten vertices
    face = regress_face(verts, reg)
    np.testing.assert_allclose(face[:, 2], verts[:, 20:30].mean(axis=1))
    from scipy.sparse import csr_matrix

    np.testing.assert_allclose(regress_face(verts, csr_matrix(reg)), face)
    sets = joint_sets(walk, face_points=face)
    assert sets["coco17"].face_source == "regressor"
    np.testing.assert_allclose(sets["coco17"].positions[:, :5], face)
    np.testing.assert_allclose(sets["h36m17"].positions[:, H36M17_NAMES.index("neck_nose")], face[:, 0])
    with pytest.raises(ValueError):
        joint_sets(walk, face_points=face[:, :4])
    assert FACE_NAMES == COCO17_NAMES[:5]


@needs_cmu
def test_keypoints_on_a_retargeted_cmu_mb_rig():
    """cmu_mb names (LeftHandFinger1) and collapsed/extra bones still give every point."""
    src = clip("08_01")
    out = retarget(src, variant_target(src.skeleton))
    pos, rot = out.forward_kinematics()
    sk = out.skeleton
    s = smpl24(sk, pos, rot)
    np.testing.assert_allclose(s.positions[:, SMPL24_NAMES.index("left_hand")], pos[:, sk.index["LeftHandFinger1"]])
    np.testing.assert_allclose(s.positions[:, SMPL24_NAMES.index("left_knee")], pos[:, sk.index["LeftLeg"]])
    h = h36m17(sk, pos, rot)
    c = coco17(sk, pos, rot)
    for js in (s, h, c):
        assert np.all(np.isfinite(js.positions))
    # limb lengths between skeletal points stay constant through the motion (COCO elbow -> wrist)
    arm = np.linalg.norm(c.positions[:, 9] - c.positions[:, 7], axis=-1)
    assert arm.max() - arm.min() < 1e-9
