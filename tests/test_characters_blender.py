"""Blender's skinning of a loaded character equals numpy's linear blend skinning; retargeted mocap drives it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thfm_synth.assets.characters import forward_kinematics, import_character, linear_blend_skinning, save_character
from thfm_synth.assets.characters.anny_body import bake_anny
from thfm_synth.assets.characters.skinning import (
    local_rotations_from_world,
    matrix_to_quat,
    motion_skeleton,
    quat_to_matrix,
)
from thfm_synth.blender import contract
from thfm_synth.blender.call import call

from conftest import asset_path, require_test_asset


def _random_pose(num_joints: int, seed: int, max_angle: float = 0.7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(num_joints, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    ang = rng.uniform(0.0, max_angle, num_joints)
    return np.concatenate([np.cos(ang / 2)[:, None], np.sin(ang / 2)[:, None] * axis], axis=1)


def _posecheck(tmp: Path, char_npz: Path, quats: np.ndarray, root: np.ndarray | None) -> dict:
    pose = tmp / "pose.npz"
    np.savez(pose, quats=quats, **({} if root is None else {"root": root}))
    out = tmp / "out.npz"
    call(
        contract.SCRIPT_POSECHECK,
        contract.PosecheckJob(character=str(char_npz), pose=str(pose), out=str(out)),
        timeout=240,
    )
    assert out.is_file()
    with np.load(out, allow_pickle=False) as z:
        res = {k: z[k] for k in z.files}
    res["report"] = json.loads(str(res.pop("report_json")))
    return res


def test_quaternion_helpers_round_trip():
    q = _random_pose(50, 3, max_angle=3.1)
    back = matrix_to_quat(quat_to_matrix(q))
    assert np.allclose(np.abs(np.einsum("ij,ij->i", q, back)), 1.0)


@pytest.mark.render
def test_blender_pose_matches_numpy_lbs(tmp_path):
    c = bake_anny(21, 4)
    path = save_character(tmp_path / "c.npz", c)
    quats = _random_pose(len(c.joint_names), 1)
    root = c.joint_heads[0].astype(np.float64) + [0.4, -0.3, 0.1]
    res = _posecheck(tmp_path, path, quats, root)
    posed = forward_kinematics(c, quats, root)
    assert np.abs(res["bone_matrices"] - posed).max() < 1e-4
    ref = linear_blend_skinning(c, posed)
    moved = np.linalg.norm(ref - c.vertices, axis=1)
    assert moved.max() > 0.3  # a real pose, not the rest pose
    err = np.linalg.norm(res["vertices"] - ref, axis=1)
    assert err.max() < 1e-3, err.max()
    # the mesh carries the labels as attributes, one vertex group per joint, the material table
    rep = res["report"]
    for name, domain, kind in (
        ("thfm_part", "FACE", "INT"),
        ("thfm_part_uv", "CORNER", "FLOAT2"),
        ("thfm_canonical", "POINT", "FLOAT_VECTOR"),
        ("thfm_vertex_part", "POINT", "INT"),
        ("thfm_vertex_part_uv", "POINT", "FLOAT2"),
    ):
        assert rep["attributes"][name] == [domain, kind]
    assert np.array_equal(res["part"], c.vertex_part)
    assert rep["vertex_groups"] == rep["bones"] == len(c.joint_names)
    assert rep["materials"] == len(c.materials) and rep["polygons"] == len(c.faces)


def test_world_deltas_convert_to_the_same_pose():
    c = bake_anny(21, 5)
    quats = _random_pose(len(c.joint_names), 2)
    posed = forward_kinematics(c, quats)
    deltas = posed[:, :3, :3] @ np.swapaxes(c.joint_rest_rotations.astype(np.float64), 1, 2)
    back = local_rotations_from_world(c, deltas)
    assert np.allclose(
        np.abs(np.einsum("ij,ij->i", back, quats / np.linalg.norm(quats, axis=1, keepdims=True))), 1.0, atol=1e-6
    )


@pytest.fixture(scope="module")
def quaternius(tmp_path_factory):
    fbx = require_test_asset(asset_path("characters/Smooth_Male_Casual.fbx"))
    out = tmp_path_factory.mktemp("q") / "male.npz"
    return import_character(fbx, out), out


@pytest.mark.render
def test_quaternius_walks_with_retargeted_cmu_mocap(quaternius, tmp_path):
    """02_01 (walk) retargeted onto the imported FBX moves its pelvis > 1 m forward, in numpy and in Blender."""
    from thfm_synth.assets.motion import retarget  # our own code: an import error fails, never skips
    from thfm_synth.assets.motion.bvh import read_bvh

    bvh = require_test_asset(asset_path("mocap/cmu/02_01.bvh"))
    c, path = quaternius
    clip = retarget.retarget(read_bvh(bvh), motion_skeleton(c))
    posed = forward_kinematics(c, clip.local_rotations, clip.root_translation)
    pelvis = posed[:, 0, :3, 3]
    j = {n: i for i, n in enumerate(c.joint_names)}
    left0 = posed[0, j["LeftUpLeg"], :3, 3] - posed[0, j["RightUpLeg"], :3, 3]
    forward0 = np.cross(left0, [0.0, 0.0, 1.0])
    forward0 /= np.linalg.norm(forward0)
    travel = float((pelvis[-1] - pelvis[0]) @ forward0)
    assert travel > 1.0, travel
    # the same clip, keyframed in Blender (every 20th frame), moves the skinned mesh the same way
    frames = np.arange(0, clip.num_frames, 20)
    res = _posecheck(tmp_path, path, clip.local_rotations[frames], clip.root_translation[frames])
    assert np.abs(res["bone_matrices"][:, 0, :3, 3] - pelvis[frames]).max() < 1e-4
    ref = linear_blend_skinning(c, posed[frames])
    assert np.linalg.norm(res["vertices"] - ref, axis=-1).max() < 1e-3
    centre = res["vertices"].mean(axis=1)
    assert float((centre[-1] - centre[0]) @ forward0) > 1.0
    assert res["vertices"][..., 2].min() > -0.05  # feet stay on (not under) the ground
