"""Retargeting onto rigs with other proportions, rest poses, bone frames and bone sets."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from motion_testdata import WALKING, clip, cmu_params, fk, needs_cmu
from thfm_synth.assets.motion import ground, quat
from thfm_synth.assets.motion.builtin_motions import builtin_motion
from thfm_synth.assets.motion.retarget import build_retarget_map, mirror_clip, mirror_permutation, retarget
from thfm_synth.assets.motion.skeleton import Skeleton, canonical_name
from thfm_synth.assets.motion.testing import derive_skeleton, variant_target


@functools.lru_cache(maxsize=None)
def _retargeted(clip_id: str):
    src = clip(clip_id)
    target = variant_target(src.skeleton)
    out = retarget(src, target)
    return out, out.forward_kinematics()


def _excluded(name: str) -> bool:
    n = canonical_name(name)
    return any(k in n for k in ("FingerBase", "HandIndex1", "Thumb")) or n.endswith("ToeBase_end")


def bone_pairs(source: Skeleton, target: Skeleton):
    """(target parent, target child, source parent, source child) for every target bone
    whose ends both exist in the source; the parent is the nearest mapped ancestor."""
    pairs = []
    for c in range(1, target.num_joints):
        sc = source.canonical_index.get(canonical_name(target.names[c]))
        if sc is None or _excluded(target.names[c]):
            continue
        a = target.parents[c]
        while a >= 0 and canonical_name(target.names[a]) not in source.canonical_index:
            a = target.parents[a]
        if a < 0:
            continue
        sa = source.canonical_index[canonical_name(target.names[a])]
        lt = np.linalg.norm(target.rest_positions[c] - target.rest_positions[a])
        ls = np.linalg.norm(source.rest_positions[sc] - source.rest_positions[sa])
        if lt > 0.01 and ls > 0.01:
            pairs.append((a, c, sa, sc))
    return pairs


def direction_errors_deg(src_pos, tgt_pos, pairs):
    a, c, sa, sc = (np.array(x) for x in zip(*pairs))
    vs = src_pos[:, sc] - src_pos[:, sa]
    vt = tgt_pos[:, c] - tgt_pos[:, a]
    cos = np.sum(vs * vt, -1) / np.linalg.norm(vs, axis=-1) / np.linalg.norm(vt, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))  # (F, bones)


@needs_cmu
def test_variant_target_really_differs():
    src = clip("02_01").skeleton
    tgt = variant_target(src)
    assert "LHipJoint" not in tgt.names and "Neck1" not in tgt.names and "SpineMid" in tgt.names
    assert "LeftHandFinger1" in tgt.names and "LeftHandIndex1" not in tgt.names
    assert not np.allclose(tgt.rest_orientations, quat.IDENTITY)

    def arm_dir(sk, side):
        p = sk.rest_positions
        d = p[sk.index[f"{side}ForeArm"]] - p[sk.index[f"{side}Arm"]]
        return d / np.linalg.norm(d)

    # A-pose: arm 45 degrees below horizontal in the target, ~horizontal in the source
    assert arm_dir(tgt, "Left")[2] == pytest.approx(-np.sin(np.radians(45)), abs=1e-6)
    assert abs(arm_dir(src, "Left")[2]) < 0.05
    rmap = build_retarget_map(src, tgt)
    assert rmap.leg_ratio == pytest.approx(1.15, rel=0.02)


@pytest.mark.parametrize("clip_id", cmu_params())
def test_retargeted_bone_directions_match_the_source(clip_id):
    src = clip(clip_id)
    out, (pos, _) = _retargeted(clip_id)
    pairs = bone_pairs(src.skeleton, out.skeleton)
    assert len(pairs) >= 18
    err = direction_errors_deg(fk(clip_id)[0], pos, pairs)
    assert np.median(err) < 2.0, f"median {np.median(err):.3f} deg"
    assert err.max() < 10.0, f"max {err.max():.3f} deg"


@pytest.mark.parametrize("clip_id", cmu_params())
def test_retargeted_bones_are_rigid_and_nothing_sinks(clip_id):
    out, (pos, _) = _retargeted(clip_id)
    sk = out.skeleton
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, sk.parents[1:]], axis=-1)
    assert (lengths.max(axis=0) - lengths.min(axis=0)).max() < 1e-3
    assert ground.lowest_foot_height(pos, sk).min() > -0.01
    assert pos[..., 2].min() > -0.01  # no joint below the floor either


@pytest.mark.parametrize("clip_id", cmu_params(WALKING))
def test_walking_clips_keep_ground_contact(clip_id):
    out, (pos, _) = _retargeted(clip_id)
    h = ground.lowest_foot_height(pos, out.skeleton)
    assert np.mean(h <= 0.02) >= 0.2
    assert h.min() >= -0.01
    # where the source foot is planted the target foot is exactly at its contact height
    src = clip(clip_id)
    planted = ground.foot_contacts(fk(clip_id)[0], src.skeleton, src.fps).any(axis=1)
    assert planted.mean() > 0.2
    np.testing.assert_allclose(h[planted], ground.contact_height_default(out.skeleton), atol=1e-3)


@needs_cmu
def test_same_skeleton_with_other_bone_frames_reproduces_full_rotations():
    """Twist is transferred too: with only the bone frames changed, every world-space
    delta rotation equals the source's and the path is unchanged horizontally."""
    src = clip("05_02")
    frames = quat.normalize(np.random.default_rng(1).normal(size=(src.skeleton.num_joints, 4)))
    tgt = src.skeleton.with_rest_orientations(frames, name="reframed")
    out = retarget(src, tgt)
    spos, srot = fk("05_02")
    tpos, trot = out.forward_kinematics()
    delta = quat.mul(trot, quat.conj(frames))
    assert quat.angle(quat.mul(quat.conj(srot), delta)).max() < 1e-6
    np.testing.assert_allclose(tpos[..., :2], spos[..., :2], atol=1e-9)


@needs_cmu
def test_target_with_an_extra_root_bone_and_other_scale():
    """FBX rigs often put an unmapped 'Root' bone on the floor above the Hips."""
    src = clip("07_01")
    base = derive_skeleton(
        src.skeleton, name="big", scale={n: 1.2 for n in src.skeleton.names}, frames_seed=5, floor_height=0.01
    )
    names = ("Root",) + base.names
    parents = np.concatenate([[-1], base.parents + 1])
    parents[1] = 0
    offsets = np.concatenate([[[0.3, 0.2, 0.0]], base.offsets])
    offsets[1] -= [0.3, 0.2, 0.0]
    frames = np.concatenate([[quat.from_axis_angle(np.array([1.0, 0, 0]), np.pi / 2)], base.rest_orientations])
    tgt = Skeleton(names, parents, offsets, frames, name="with-root")
    out = retarget(src, tgt)
    pos, _ = out.forward_kinematics()
    spos = fk("07_01")[0]
    err = direction_errors_deg(spos, pos, bone_pairs(src.skeleton, tgt))
    assert err.max() < 1e-4
    hips = tgt.index["Hips"]
    np.testing.assert_allclose(pos[:, hips, :2], 1.2 * spos[:, 0, :2], atol=1e-9)  # leg ratio 1.2
    h = ground.lowest_foot_height(pos, tgt)
    assert h.min() >= 0.01 - 1e-9 and np.mean(h <= 0.02) > 0.5


@needs_cmu
def test_mirroring_is_an_involution():
    c = clip("06_08")
    twice = mirror_clip(mirror_clip(c))
    assert quat.angle(quat.mul(quat.conj(c.local_rotations), twice.local_rotations)).max() < 1e-9
    np.testing.assert_allclose(twice.root_translation, c.root_translation, atol=1e-12)
    assert "mirrored" not in twice.flags and "mirrored" in mirror_clip(c).flags


def test_mirroring_reflects_the_motion():
    walk = builtin_motion("builtin-walk", num_frames=240)  # symmetric skeleton
    pos, _ = walk.forward_kinematics()
    mirrored = mirror_clip(walk)
    mpos, _ = mirrored.forward_kinematics()
    perm = mirror_permutation(walk.skeleton)
    np.testing.assert_allclose(mpos, pos[:, perm] * [-1, 1, 1], atol=1e-9)
    # and through retargeting, onto the same skeleton
    rpos, _ = retarget(walk, walk.skeleton, mirror=True).forward_kinematics()
    np.testing.assert_allclose(rpos, pos[:, perm] * [-1, 1, 1], atol=1e-6)
    assert quat.angle(quat.mul(quat.conj(mirror_clip(mirrored).local_rotations), walk.local_rotations)).max() < 1e-9


@needs_cmu
def test_round_trip_through_a_rig_with_bone_frames():
    """A retargeted clip (non-identity bone frames, fewer bones) works as a source too."""
    src = clip("09_12")
    there, _ = _retargeted("09_12")
    back = retarget(there, src.skeleton)
    pos, _ = back.forward_kinematics()
    pairs = bone_pairs(there.skeleton, src.skeleton)
    err = direction_errors_deg(there.forward_kinematics()[0], pos, pairs)
    assert err.max() < 10.0 and np.median(err) < 1e-6
    assert ground.lowest_foot_height(pos, src.skeleton).min() > -0.01


def _clavicle_elevation_deg(pos, sk: Skeleton, side: str) -> np.ndarray:
    """Angle (F,) between a clavicle (Shoulder -> Arm) and the chest's up chord (Spine1 -> Head)."""
    i = {canonical_name(n): k for k, n in enumerate(sk.names)}
    clav = pos[:, i[f"{side}Arm"]] - pos[:, i[f"{side}Shoulder"]]
    up = pos[:, i["Head"]] - pos[:, i["Spine1"]]
    cos = np.sum(clav * up, -1) / np.linalg.norm(clav, axis=-1) / np.linalg.norm(up, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@needs_cmu
@pytest.mark.parametrize("clip_id", ["02_01", "05_10"])
def test_clavicles_take_the_turn_from_rest_not_the_source_rigs_clavicle_angle(clip_id):
    """CMU's clavicle rises ~24 degrees from the chest's centre to the shoulder; anny's is level.
    Aligning one onto the other shrugged every person's shoulders to the ears: a target clavicle
    must keep its own rest angle and turn away from it as much as the source's turns from its rest."""
    src = clip(clip_id)
    s_rest = src.skeleton.rest_positions[None]
    drop = {
        s: 0.8
        * np.linalg.norm(s_rest[0, src.skeleton.index[f"{s}Arm"]] - s_rest[0, src.skeleton.index[f"{s}Shoulder"]])
        for s in ("Left", "Right")
    }
    # a level clavicle: the shoulder joint lowered by most of the source clavicle's rise
    target = derive_skeleton(
        src.skeleton, name="level_clavicles", move={f"{s}Arm": (0.0, 0.0, -0.4 * drop[s]) for s in drop}
    )
    out = retarget(src, target)
    pos, _ = out.forward_kinematics()
    src_pos = fk(clip_id)[0]
    t_rest = target.rest_positions[None]
    for side in ("Left", "Right"):
        rest_gap = _clavicle_elevation_deg(t_rest, target, side) - _clavicle_elevation_deg(s_rest, src.skeleton, side)
        assert abs(rest_gap[0]) > 8.0  # the two rigs' clavicles really differ at rest
        turn_t = _clavicle_elevation_deg(pos, out.skeleton, side) - _clavicle_elevation_deg(t_rest, target, side)
        turn_s = _clavicle_elevation_deg(src_pos, src.skeleton, side) - _clavicle_elevation_deg(
            s_rest, src.skeleton, side
        )
        err = np.abs(turn_t - turn_s)
        assert np.median(err) < 2.0 and err.max() < 8.0, (side, np.median(err), err.max())


@needs_cmu
@pytest.mark.parametrize("clip_id", ["02_01", "05_10"])
def test_the_pelvis_stays_rigid_on_a_rig_with_other_hip_bones(clip_id):
    """The pelvis-to-hip bones are part of a rigid pelvis: on a rig whose hip joints sit elsewhere
    than the source's (wider, higher) they keep their own rest place. Aligning them onto the source's
    directions moved anny's hip joints 3.4 cm inside its pelvis and lowered the body 6.8 cm."""
    src = clip(clip_id)
    target = derive_skeleton(
        src.skeleton, name="wide_hips", move={"LeftUpLeg": (0.04, 0.0, 0.03), "RightUpLeg": (-0.04, 0.0, 0.03)}
    )
    pos, _ = retarget(src, target).forward_kinematics()
    i = target.index
    rest = np.linalg.norm(target.rest_positions[i["LeftUpLeg"]] - target.rest_positions[i["RightUpLeg"]])
    width = np.linalg.norm(pos[:, i["LeftUpLeg"]] - pos[:, i["RightUpLeg"]], axis=-1)
    np.testing.assert_allclose(width, rest, atol=1e-3)
