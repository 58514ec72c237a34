"""The SMPL-X model in numpy: safe loading of the user's files, and a forward pass equal to `smplx`'s."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import smplx
import torch

from conftest import run_cli
from smplx_testmodel import build_arrays, write_model
from thfm_synth.assets.characters.rigs import detect_rig, map_rig
from thfm_synth.assets.characters.smplx_model import (
    PKL_TO_NPZ,
    SMPLX_JOINT_NAMES,
    SMPLX_PARENTS,
    available_genders,
    find_model_file,
    load_model,
    rodrigues,
)
from thfm_synth.errors import UserError


@pytest.fixture(scope="session")
def smplx_dir(smplx_models):
    return smplx_models


def smplx_layer(path, batch=1):
    return smplx.SMPLX(
        str(path),
        gender="neutral",
        use_pca=False,
        flat_hand_mean=True,
        num_betas=10,
        num_expression_coeffs=10,
        dtype=torch.float64,
        batch_size=batch,
    )


def run_smplx(layer, betas, expression, pose, transl):
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    f = len(pose)
    with torch.no_grad():
        out = layer(
            betas=t(np.broadcast_to(betas, (f, 10))),
            expression=t(np.broadcast_to(expression, (f, 10))),
            global_orient=t(pose[:, 0]),
            body_pose=t(pose[:, 1:22].reshape(f, -1)),
            jaw_pose=t(pose[:, 22]),
            leye_pose=t(pose[:, 23]),
            reye_pose=t(pose[:, 24]),
            left_hand_pose=t(pose[:, 25:40].reshape(f, -1)),
            right_hand_pose=t(pose[:, 40:55].reshape(f, -1)),
            transl=t(transl),
        )
    return out.vertices.numpy(), out.joints.numpy()


def test_the_test_file_has_the_official_layout(smplx_dir):
    with np.load(smplx_dir / "SMPLX_NEUTRAL.npz", allow_pickle=False) as z:
        keys = set(z.files)
        shapes = {k: z[k].shape for k in keys}
        kin = z["kintree_table"]
    assert {
        "v_template",
        "f",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "kintree_table",
        "vt",
        "ft",
        "hands_meanl",
        "hands_meanr",
        "hands_componentsl",
        "hands_componentsr",
        "lmk_faces_idx",
        "lmk_bary_coords",
        "dynamic_lmk_faces_idx",
        "dynamic_lmk_bary_coords",
    } <= keys
    nv = shapes["v_template"][0]
    assert shapes["shapedirs"] == (nv, 3, 20) and shapes["posedirs"] == (nv, 3, 486)
    assert shapes["J_regressor"] == (55, nv) and shapes["weights"] == (nv, 55) and shapes["kintree_table"] == (2, 55)
    assert kin[0, 0] == 4294967295 and np.array_equal(kin[0, 1:], SMPLX_PARENTS[1:])


def test_smplx_loads_it_and_our_forward_pass_equals_smplx(smplx_dir):
    model = load_model(smplx_dir, "neutral")
    layer = smplx_layer(smplx_dir / "SMPLX_NEUTRAL.npz", batch=6)
    rng = np.random.default_rng(7)
    betas, expression = rng.normal(0, 1.0, 10), rng.normal(0, 1.0, 10)
    pose = rng.normal(0, 0.5, (6, 55, 3))
    pose[0] = 0.0  # the rest pose too
    transl = rng.normal(0, 2.0, (6, 3))
    ref_v, ref_j = run_smplx(layer, betas, expression, pose, transl)
    out = model.forward(betas, expression, rodrigues(pose), transl)
    assert np.abs(out["vertices"] - ref_v).max() < 1e-6
    assert np.abs(out["joints"] - ref_j[:, :55]).max() < 1e-6
    # the joint regressor: rest joints of the shaped body, and a rigid motion moves regressed joints rigidly
    v_shaped, joints = model.shaped(betas, expression)
    assert np.allclose(joints, model.j_regressor @ v_shaped)
    assert np.allclose(model.j_regressor.sum(1), 1.0)
    assert np.abs(out["vertices"][0] - (v_shaped + transl[0])).max() < 1e-12  # rest pose: no correctives


def test_loading_never_unpickles(smplx_dir, tmp_path):
    marker = tmp_path / "unpickled"
    folder = tmp_path / "models"
    write_model(folder, "neutral", pickled_member=marker)
    model = load_model(folder, "neutral")
    assert model.num_vertices == load_model(smplx_dir).num_vertices
    assert not marker.exists()
    with np.load(folder / "SMPLX_NEUTRAL.npz", allow_pickle=True) as z:  # what an unsafe loader would do
        z["joint2num"]
    assert marker.exists()


def test_pkl_model_files_are_refused_with_the_conversion(tmp_path):
    (tmp_path / "SMPLX_NEUTRAL.pkl").write_bytes(b"not read")
    for where in (tmp_path, tmp_path / "SMPLX_NEUTRAL.pkl"):
        with pytest.raises(UserError) as exc:
            find_model_file(where, "neutral")
        text = exc.value.one_line()
        assert "\n" not in text and "pickl" in text and "arbitrary code" in text and PKL_TO_NPZ in text


def test_the_documented_conversion_turns_a_pkl_into_a_loadable_npz(tmp_path, smplx_dir):
    import pickle  # the user's own environment: this is the step the project refuses to do itself

    import scipy.sparse as sp

    arrays = build_arrays("neutral")
    arrays["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])  # as in the official .pkl
    arrays["joint2num"] = {"pelvis": 0}
    with open(tmp_path / "SMPLX_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(arrays, fh)
    subprocess.run(PKL_TO_NPZ.replace("python", sys.executable, 1), shell=True, cwd=tmp_path, check=True)
    converted, original = load_model(tmp_path, "neutral"), load_model(smplx_dir, "neutral")
    for key in ("v_template", "j_regressor", "weights", "posedirs", "shapedirs", "exprdirs", "hands_mean"):
        np.testing.assert_allclose(getattr(converted, key), getattr(original, key), rtol=1e-6, atol=1e-7)


def test_missing_or_wrong_model_folder_is_one_line_naming_the_files(tmp_path, smplx_dir):
    with pytest.raises(UserError, match=r"SMPLX_NEUTRAL\.npz, SMPLX_MALE\.npz, SMPLX_FEMALE\.npz"):
        find_model_file(tmp_path / "missing", "neutral")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(UserError, match=r"has no SMPLX_NEUTRAL\.npz.*found: readme\.txt"):
        available_genders(tmp_path)
    assert available_genders(smplx_dir) == ("neutral", "male", "female")
    # an npz that is not an SMPL-X model
    broken = tmp_path / "broken"
    broken.mkdir()
    arrays = build_arrays("neutral")
    del arrays["posedirs"]
    np.savez(broken / "SMPLX_NEUTRAL.npz", **arrays)
    with pytest.raises(UserError, match="lacks posedirs"):
        load_model(broken)
    arrays = build_arrays("neutral")
    arrays["kintree_table"] = arrays["kintree_table"][:, ::-1].copy()
    np.savez(broken / "SMPLX_NEUTRAL.npz", **arrays)
    with pytest.raises(UserError, match="kinematic tree"):
        load_model(broken)
    # the CLI: exit code 1, one line, nothing written
    out = tmp_path / "chars"
    res = run_cli(
        "assets",
        "build-characters",
        "--backend",
        "smplx",
        "--model-dir",
        tmp_path / "missing",
        "--count",
        "1",
        "--out",
        out,
    )
    assert res.returncode == 1 and not out.exists()
    last = res.stderr.strip().splitlines()[-1]
    assert "SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz" in last and "fix:" in last


def test_the_smplx_rig_table_maps_the_body_joints():
    mapping = map_rig(list(SMPLX_JOINT_NAMES), "smplx")
    canon = mapping.to_canonical
    assert canon["pelvis"] == "Hips" and canon["left_collar"] == "LeftShoulder" and canon["left_shoulder"] == "LeftArm"
    assert canon["left_wrist"] == "LeftHand" and canon["right_foot"] == "RightToeBase" and canon["neck"] == "Neck"
    assert [canon[n] for n in ("spine1", "spine2", "spine3")] == ["LowerBack", "Spine", "Spine1"]
    assert not any(n.startswith(("left_index", "jaw")) for n in canon)  # fingers keep the natural hand pose
    assert detect_rig(list(SMPLX_JOINT_NAMES)).rig == "smplx"
