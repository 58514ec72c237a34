"""Quaternion helpers, forward kinematics and bone frames."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from motion_testdata import clip, needs_cmu
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import (
    CANONICAL_JOINTS,
    CMU_MB_TO_CANONICAL,
    Skeleton,
    canonical_name,
    canonical_skeleton,
    forward_kinematics,
    local_from_global,
    mirror_name,
    rest_motion,
)

RNG = np.random.default_rng(3)


def _rand_q(*shape):
    return quat.normalize(RNG.normal(size=shape + (4,)))


def _scipy(q):
    return Rotation.from_quat(quat.to_xyzw(q))


def test_quaternion_helpers_agree_with_scipy():
    a, b = _rand_q(50), _rand_q(50)
    v = RNG.normal(size=(50, 3))
    np.testing.assert_allclose(quat.to_matrix(quat.mul(a, b)), (_scipy(a) * _scipy(b)).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(quat.rotate(a, v), _scipy(a).apply(v), atol=1e-12)
    np.testing.assert_allclose(quat.to_matrix(a), _scipy(a).as_matrix(), atol=1e-12)
    back = quat.from_matrix(quat.to_matrix(a))
    assert np.allclose(np.abs(np.sum(back * a, axis=-1)), 1.0)
    t = RNG.uniform(size=50)
    ours = quat.slerp(a, b, t)
    for k in range(50):  # scipy's Slerp follows the shortest arc between rotations
        ref = Slerp([0, 1], Rotation.from_quat(quat.to_xyzw(np.stack([a[k], b[k]]))))([t[k]])
        assert (ref.inv() * _scipy(ours[k])).magnitude()[0] < 1e-9
    euler = RNG.uniform(-180, 180, size=(50, 3))
    np.testing.assert_allclose(
        quat.to_matrix(quat.from_euler_channels(euler, "ZYX")),
        Rotation.from_euler("ZYX", euler, degrees=True).as_matrix(),
        atol=1e-12,
    )
    u, w = RNG.normal(size=(50, 3)), RNG.normal(size=(50, 3))
    q = quat.between(u, w)
    np.testing.assert_allclose(
        quat.rotate(q, u / np.linalg.norm(u, axis=1, keepdims=True)),
        w / np.linalg.norm(w, axis=1, keepdims=True),
        atol=1e-12,
    )
    assert np.allclose(quat.rotate(quat.between(u, -u), u), -u)  # antiparallel case


def test_make_continuous_removes_sign_flips():
    q = quat.slerp(np.tile(quat.IDENTITY, (100, 1)), _rand_q(1), np.linspace(0, 1, 100))
    flipped = q * np.where(RNG.uniform(size=(100, 1)) < 0.5, -1.0, 1.0)
    fixed = quat.make_continuous(flipped)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], axis=-1) > 0)


def _reference_fk(sk, local, trans):
    """Plain per-joint FK with matrices, identity bone frames only."""
    m = Rotation.from_quat(quat.to_xyzw(local.reshape(-1, 4))).as_matrix().reshape(local.shape[:2] + (3, 3))
    g = np.zeros_like(m)
    p = np.zeros(local.shape[:2] + (3,))
    for j in range(sk.num_joints):
        if j == 0:
            g[:, 0], p[:, 0] = m[:, 0], trans
        else:
            par = sk.parents[j]
            g[:, j] = g[:, par] @ m[:, j]
            p[:, j] = p[:, par] + g[:, par] @ sk.offsets[j]
    return p, g


@needs_cmu
def test_fk_matches_a_plain_implementation():
    c = clip("02_01")
    pos, rot = c.forward_kinematics()
    ref_p, ref_g = _reference_fk(c.skeleton, c.local_rotations, c.root_translation)
    np.testing.assert_allclose(pos, ref_p, atol=1e-12)
    np.testing.assert_allclose(quat.to_matrix(rot), ref_g, atol=1e-12)


@needs_cmu
def test_bone_frames_do_not_change_the_motion():
    """Same motion on the same skeleton with arbitrary bone frames: identical positions."""
    c = clip("02_01")
    pos, rot = c.forward_kinematics()
    frames = _rand_q(c.skeleton.num_joints)
    sk2 = c.skeleton.with_rest_orientations(frames)
    rest_pos, rest_rot = forward_kinematics(sk2, np.tile(quat.IDENTITY, (1, sk2.num_joints, 1)), sk2.offsets[None, 0])
    np.testing.assert_allclose(rest_pos[0], sk2.rest_positions, atol=1e-12)
    assert np.allclose(np.abs(np.sum(rest_rot[0] * frames, axis=-1)), 1.0)
    local = local_from_global(sk2, quat.mul(rot, frames))
    pos2, _ = forward_kinematics(sk2, local, c.root_translation)
    np.testing.assert_allclose(pos2, pos, atol=1e-12)


@needs_cmu
def test_bone_lengths_are_constant_in_every_frame():
    c = clip("05_06")
    pos, _ = c.forward_kinematics()
    sk = c.skeleton
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, sk.parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(sk.bone_lengths[1:], lengths.shape), atol=1e-9)


def test_canonical_vocabulary_and_skeleton():
    sk = canonical_skeleton()
    assert set(CANONICAL_JOINTS) <= set(sk.names)
    assert canonical_name("LeftHandFinger1") == "LeftHandIndex1"
    assert canonical_name("RightHandFinger1_end") == "RightHandIndex1_end"
    assert set(CMU_MB_TO_CANONICAL) == {"LeftHandFinger1", "RightHandFinger1"}
    assert sk.find("LeftHandFinger1") == sk.index["LeftHandIndex1"]
    assert mirror_name("LHipJoint") == "RHipJoint" and mirror_name("RThumb_end") == "LThumb_end"
    assert mirror_name("LeftArm") == "RightArm" and mirror_name("Spine") == "Spine"
    rest = sk.rest_positions
    # a standing adult facing -Y: left is +X, feet on the floor, head top ~1.78 m
    assert rest[sk.index["LeftArm"], 0] > 0 and rest[sk.index["RightArm"], 0] < 0
    assert rest[sk.index["LeftToeBase"], 1] < rest[sk.index["LeftFoot"], 1]
    assert 0.0 < rest[:, 2].min() < 0.02 and 1.7 < rest[:, 2].max() < 1.85
    for j, n in enumerate(sk.names):  # symmetric
        m = sk.index[mirror_name(n)]
        np.testing.assert_allclose(rest[m], rest[j] * [-1, 1, 1])
    clip_ = rest_motion(sk, 3)
    np.testing.assert_allclose(clip_.forward_kinematics()[0][2], rest)


def test_skeleton_validation():
    with pytest.raises(ValueError, match="parents"):
        Skeleton(("a", "b"), np.array([-1, 1]), np.zeros((2, 3)), np.tile(quat.IDENTITY, (2, 1)))
    with pytest.raises(ValueError, match="duplicate"):
        Skeleton(("a", "a"), np.array([-1, 0]), np.zeros((2, 3)), np.tile(quat.IDENTITY, (2, 1)))
    sk = Skeleton(("a", "b"), np.array([-1, 0]), np.zeros((2, 3)), np.tile(quat.IDENTITY, (2, 1)))
    with pytest.raises(ValueError):
        sk.offsets[0, 0] = 1.0  # read-only


def test_skeleton_from_rest_and_blender_root_location():
    from thfm_synth.assets.motion.skeleton import root_location_in_bone_frame, skeleton_from_rest

    base = canonical_skeleton()
    frames = _rand_q(base.num_joints)
    sk = skeleton_from_rest(base.names, base.parents, base.rest_positions, frames, name="rig")
    np.testing.assert_allclose(sk.offsets, base.offsets, atol=1e-12)
    trans = np.array([[0.1, -0.2, 1.0], [0.0, 0.0, 0.9]])
    loc = root_location_in_bone_frame(sk, trans)
    # Blender: head = rest head + B_root @ location
    np.testing.assert_allclose(sk.offsets[0] + quat.rotate(frames[0], loc), trans, atol=1e-12)
