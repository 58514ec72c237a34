"""SMPL-X bodies: sampled shapes, baked format, retargeted motion, parameters that reproduce the mesh."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import smplx
import torch

from motion_testdata import clip as cmu_clip, cmu_params, fk as cmu_fk
from test_motion_retarget import bone_pairs, direction_errors_deg
from thfm_synth.assets.library import load_library
from thfm_synth.assets.manifest import CharacterEntry, Manifest, builtin_sha256, dump_manifest
from thfm_synth.assets.validate import validate
from thfm_synth.assets.characters import build_characters, character_npz, load_character
from thfm_synth.assets.characters.format import validate_character
from thfm_synth.assets.characters.skinning import motion_skeleton
from thfm_synth.assets.characters.smplx_body import WORLD_FROM_MODEL, bake_smplx
from thfm_synth.assets.characters.smplx_model import LICENCE, SMPL24_FROM_SMPLX, load_model, rodrigues
from thfm_synth.assets.characters.smplx_motion import MODEL_DIR_ENV, smplx_motion
from thfm_synth.config import load_config
from thfm_synth.conventions import project
from thfm_synth.errors import UserError
from thfm_synth.assets.motion.builtin_motions import builtin_motion
from thfm_synth.assets.motion.retarget import REST_RELATIVE, retarget
from thfm_synth.assets.motion.skeleton import canonical_name
from thfm_synth.plan.planner import make_plan, plan_library, plan_meta
from thfm_synth.render.scene.assemble import assemble
from thfm_synth.shards import body_params
from thfm_synth.render.video.annotations import build_annotations

SEED = 3


def link_models(src, dst, names=("SMPLX_NEUTRAL.npz", "SMPLX_MALE.npz", "SMPLX_FEMALE.npz")):
    """A model folder sharing the files of `src` (hard links: the files are ~100 MB each)."""
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        try:
            os.link(src / n, dst / n)
        except OSError:
            shutil.copy(src / n, dst / n)
    return dst


@pytest.fixture(scope="module")
def bodies(smplx_models):
    return [bake_smplx(smplx_models, SEED, i) for i in range(6)]


@pytest.fixture(scope="module")
def walking(bodies):
    """Character 0 walking (built-in walk), its SMPL-X motion."""
    c = bodies[0]
    clip = retarget(builtin_motion("builtin-walk").take(np.arange(0, 48, 4)), motion_skeleton(c))
    return c, *smplx_motion(c, clip)


def smplx_forward(model_dir, gender, params, frame_suffix):
    """The smplx package's forward pass with stored parameters (annotations.npz keys)."""
    layer = smplx.SMPLX(
        str(model_dir / f"SMPLX_{gender.upper()}.npz"),
        gender=gender,
        use_pca=False,
        flat_hand_mean=True,
        num_betas=10,
        num_expression_coeffs=10,
        dtype=torch.float64,
    )
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    f = len(params[f"smplx_transl_{frame_suffix}"])
    with torch.no_grad():
        out = layer(
            betas=t(np.broadcast_to(params["smplx_betas"], (f, 10))),
            expression=t(params["smplx_expression"]),
            global_orient=t(params[f"smplx_global_orient_{frame_suffix}"]),
            body_pose=t(params["smplx_body_pose"].reshape(f, -1)),
            jaw_pose=t(params["smplx_jaw_pose"]),
            leye_pose=t(params["smplx_leye_pose"]),
            reye_pose=t(params["smplx_reye_pose"]),
            left_hand_pose=t(params["smplx_left_hand_pose"].reshape(f, -1)),
            right_hand_pose=t(params["smplx_right_hand_pose"].reshape(f, -1)),
            transl=t(params[f"smplx_transl_{frame_suffix}"]),
        )
    return out.vertices.numpy()


def test_same_seed_and_index_give_the_same_body(bodies, smplx_models):
    again = bake_smplx(smplx_models, SEED, 1)
    assert np.array_equal(again.vertices, bodies[1].vertices) and again.meta == bodies[1].meta
    assert not np.array_equal(bodies[0].meta["smplx"]["betas"], bodies[1].meta["smplx"]["betas"])


def test_bodies_are_diverse_and_reach_their_height_and_mass(bodies):
    phen = [c.meta["params"]["phenotype"] for c in bodies]
    for p, c in zip(phen, bodies):
        assert abs(p["height_m"] - p["height_target_m"]) < 0.005 and abs(p["weight_kg"] - p["weight_target_kg"]) < 0.5
        assert abs(c.meta["body_height_m"] - p["height_m"]) < 0.005  # soles to crown of the baked body
        assert c.meta["smplx"]["gender"] == {"female": "female", "male": "male", "neutral": "neutral"}[p["sex"]]
        assert c.meta["smplx"]["model_file"].endswith(f"SMPLX_{c.meta['smplx']['gender'].upper()}.npz")
        assert c.meta["licence"] == LICENCE and "non-commercial" in c.meta["licence_text"]
    heights = np.array([p["height_m"] for p in phen])
    assert heights.std() > 0.03 and {p["sex"] for p in phen} >= {"female", "male"}
    assert len({c.meta["params"]["appearance"]["skin"]["tone"] for c in bodies}) == len(bodies)


def test_the_baked_body_is_the_shaped_model_mesh_with_labels(bodies, smplx_models):
    for c in bodies[:3]:
        validate_character(c)
        info = c.meta["smplx"]
        model = load_model(smplx_models, info["gender"])
        nvb = info["num_body_vertices"]
        assert nvb == model.num_vertices and len(c.vertices) > nvb  # garments after the body
        v, j = model.shaped(np.array(info["betas"]), np.array(info["expression"]))
        w = np.asarray(info["world_from_model"])
        assert np.abs(v @ w[:3, :3].T + w[:3, 3] - c.vertices[:nvb]).max() < 1e-5
        assert np.abs(j @ w[:3, :3].T + w[:3, 3] - c.joint_heads).max() < 1e-5
        assert np.allclose(w[:3, :3], WORLD_FROM_MODEL) and abs(c.vertices[:, 2].min()) < 1e-6
        assert c.joint_names[0] == "Hips" and c.joint_source_names[20] == "left_wrist"
        assert c.joint_names[20] == "LeftHand" and c.joint_names[25] == "left_index1"
        # labels from the skin weights: every DensePose part on the body, on the right side
        part = c.vertex_part[:nvb]
        assert set(np.unique(part)) == set(range(1, 25))
        x = c.vertices[:nvb, 0]
        assert x[part == 4].mean() > 0.2 and x[part == 3].mean() < -0.2  # left hand on +x
        assert x[part == 24].mean() > 0 > x[part == 23].mean()  # head left / right
        assert c.vertices[:nvb][part == 5, 2].mean() < 0.15  # feet
        assert c.vertex_canonical.min() >= 0 and c.vertex_canonical.max() <= 1


def test_posed_mesh_is_smplx_and_the_parameters_reproduce_it(walking, smplx_models):
    c, clip, body = walking
    rng = np.random.default_rng(0)
    f = len(body.transl)
    yaw = 0.7
    placement = np.eye(4)
    placement[:3, :3] = [[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]
    placement[:3, 3] = [3.0, -2.0, 0.1]
    cam_r = rodrigues(rng.normal(0, 0.4, (f, 3)))
    cam_t = rng.normal(0, 3, (f, 3))
    ann = body.annotations(placement, cam_r, cam_t)
    world = body.body_vertices() @ placement[:3, :3].T + placement[:3, 3]
    assert np.abs(smplx_forward(smplx_models, body.model.gender, ann, "world") - world).max() < 1e-6
    cam = np.einsum("fij,fvj->fvi", cam_r, world) + cam_t[:, None]
    assert np.abs(smplx_forward(smplx_models, body.model.gender, ann, "cam") - cam).max() < 1e-6
    # the skeleton the motion drives is SMPL-X's: FK joints = the model's posed (LBS) joints
    pos, _ = clip.forward_kinematics()
    out = body.model.forward(body.betas, body.expression, body.rotations, body.transl)
    assert np.abs(out["joints"] - pos).max() < 1e-5
    # regressor joints: the 55 SMPL-X joints of the posed mesh, SMPL-24 a subset of them
    j = body.regressor_joints(body.body_vertices())
    assert np.allclose(j["smplx55"], np.einsum("jv,fvk->fjk", body.model.j_regressor, body.body_vertices()))
    assert np.array_equal(j["smpl24"], j["smplx55"][:, SMPL24_FROM_SMPLX])
    # garments that hug the body (all but skirts) keep their distance to the skin in every pose
    from scipy.spatial import cKDTree

    nvb = body.num_body_vertices
    hug = np.isin(c.vertex_garment, [g["id"] for g in c.garments if g["kind"] != "skirt"])
    rest = np.asarray(c.vertices, np.float64)
    d0 = cKDTree(rest[:nvb]).query(rest[hug])[0]
    for k in range(f):
        d = cKDTree(body.vertices[k, :nvb]).query(body.vertices[k, hug])[0]
        assert np.percentile(np.abs(d - d0), 99) < 0.01


def test_fingers_hold_the_natural_hand_pose(walking):
    c, clip, body = walking
    ann = body.annotations(np.eye(4), np.tile(np.eye(3), (len(body.transl), 1, 1)), np.zeros((len(body.transl), 3)))
    hands = np.asarray(c.meta["smplx"]["hand_pose"])
    assert np.abs(hands).max() > 0.05  # a relaxed curl, not a flat hand
    assert np.allclose(ann["smplx_left_hand_pose"], hands[0], atol=1e-6)
    assert np.allclose(ann["smplx_right_hand_pose"], hands[1], atol=1e-6)
    assert np.allclose(ann["smplx_jaw_pose"], 0, atol=1e-6) and np.allclose(ann["smplx_leye_pose"], 0, atol=1e-6)
    assert np.ptp(ann["smplx_body_pose"], axis=0).max() > 0.3  # the body does move


@pytest.mark.parametrize("clip_id", cmu_params(["02_01", "05_02", "07_04"]))
def test_retargeted_bone_directions_match_the_bvh(clip_id, bodies):
    frames = np.arange(0, cmu_clip(clip_id).num_frames, 4)
    src = cmu_clip(clip_id).take(frames)
    c = bodies[2]
    out, body = smplx_motion(c, retarget(src, motion_skeleton(c)))
    pos = body.model.forward(body.betas, body.expression, body.rotations, body.transl)["joints"]
    pairs = bone_pairs(src.skeleton, out.skeleton)
    assert len(pairs) >= 15
    src_pos = cmu_fk(clip_id)[0][frames]
    err = direction_errors_deg(src_pos, pos, pairs)
    assert np.median(err) < 2.0, f"median {np.median(err):.3f} deg"
    # every bone follows the BVH exactly, except the pelvis -> hip chords: they are rigid with the pelvis,
    # so their angle to the source is the difference of the two skeletons' rest anatomy, constant in time
    hips = np.array(
        [out.skeleton.names[a] == "Hips" and out.skeleton.names[b].endswith("UpLeg") for a, b, _, _ in pairs]
    )
    # clavicles take the source's turn from rest (retarget.REST_RELATIVE), not its rig's clavicle angle:
    # tests/test_retarget_real_rigs.py checks that turn
    rest_relative = np.array([canonical_name(out.skeleton.names[a]) in REST_RELATIVE for a, _, _, _ in pairs])
    exact = ~hips & ~rest_relative
    assert err[:, exact].max() < 0.1, f"max {err[:, exact].max():.3f} deg"
    assert np.ptp(err[:, hips], axis=0).max() < 0.1


def test_uv_textures_replace_the_procedural_clothes(smplx_models, tmp_path):
    from PIL import Image

    tex = tmp_path / "textures"
    tex.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8), (200, 100, 50)).save(tex / name)
    c = bake_smplx(smplx_models, SEED, 0, texture_dir=tex)
    model = load_model(smplx_models, c.meta["smplx"]["gender"])
    assert c.garments == [] and len(c.vertices) == model.num_vertices and len(c.materials) == 1
    assert c.materials[0]["texture"] in {str((tex / n).resolve()) for n in ("a.png", "b.png")}
    assert np.allclose(c.uv, model.vt) and np.array_equal(c.face_uv, model.ft)
    with pytest.raises(UserError, match="no image files"):
        bake_smplx(smplx_models, SEED, 0, texture_dir=tmp_path / "empty")


def test_posing_needs_the_recorded_model_file(smplx_models, tmp_path, monkeypatch):
    models = link_models(smplx_models, tmp_path / "models", ("SMPLX_NEUTRAL.npz",))
    c = bake_smplx(models, SEED, 0, gender="neutral")
    clip = retarget(builtin_motion("builtin-walk").take([0, 5]), motion_skeleton(c))
    (models / "SMPLX_NEUTRAL.npz").rename(tmp_path / "SMPLX_NEUTRAL.npz")
    with pytest.raises(UserError, match=MODEL_DIR_ENV):
        smplx_motion(c, clip)
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))  # the files moved: point at them
    smplx_motion(c, clip)
    other = tmp_path / "other"
    other.mkdir()
    os.link(smplx_models / "SMPLX_MALE.npz", other / "SMPLX_NEUTRAL.npz")  # another file under the same name
    monkeypatch.setenv(MODEL_DIR_ENV, str(other))
    with pytest.raises(UserError, match="not the file the character was baked with"):
        smplx_motion(c, clip)


def test_build_characters_writes_a_manifest_with_the_users_licence(smplx_models, tmp_path):
    manifest = build_characters(2, 5, tmp_path / "c", backend="smplx", model_dir=smplx_models, gender="female")
    assert [e.id for e in manifest.characters] == ["smplx-5-00000", "smplx-5-00001"]
    for e in manifest.characters:
        assert e.licence == LICENCE and "non-commercial" in e.source and e.rig == "smplx" and e.format == "npz"
        assert load_character(tmp_path / "c" / e.path).meta["smplx"]["gender"] == "female"
    assert "NON-COMMERCIAL" in (tmp_path / "c" / "manifest.yaml").read_text()
    assert validate(tmp_path / "c" / "manifest.yaml") == (2, [])


def test_config_backend_and_manifest_entries(smplx_models, tmp_path):
    cfg = load_config("preview", overrides={"characters": {"backend": "smplx", "smplx_model_dir": str(smplx_models)}})
    lib = load_library(bodies=cfg.character)
    chars = lib.by_kind["characters"]
    assert len(chars) == 16 and all(e.format == "smplx" and e.licence == LICENCE for e in chars)
    specs = make_plan(cfg, lib, 0, 4)
    assert all(s.character_id.startswith("smplx-builtin-") for s in specs)
    meta = plan_meta(cfg, lib, 0, 4)
    assert plan_library(meta).manifest_digests() == lib.manifest_digests()
    assert load_library().manifest_digests() != lib.manifest_digests()  # anny bodies: another library
    with pytest.raises(UserError, match="SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz"):
        load_library(bodies=cfg.character.model_copy(update={"smplx_model_dir": str(tmp_path / "none")}))
    # a format: smplx entry in a user manifest: baked on first use, cached
    params = {"generator": "smplx", "seed": 9, "index": 0, "gender": "male", "texture_dir": None}
    entry = CharacterEntry(
        id="my-smplx",
        path="models",
        sha256=builtin_sha256("characters", "my-smplx", params),
        licence=LICENCE,
        source="my SMPL-X files",
        params=params,
        format="smplx",
        rig="smplx",
    )
    link_models(smplx_models, tmp_path / "models")
    (tmp_path / "m.yaml").write_text(dump_manifest(Manifest(name="mine", characters=[entry])))
    assert validate(tmp_path / "m.yaml") == (1, [])
    lib = load_library([tmp_path / "m.yaml"], builtin=False)
    e = lib.entry("my-smplx")
    path = character_npz(e, lib.path_of(e), tmp_path / "cache")
    assert path == character_npz(e, lib.path_of(e), tmp_path / "cache")
    assert load_character(path).meta["smplx"]["gender"] == "male"


def test_assembled_scene_carries_exact_parameters_and_regressor_joints(smplx_models, tmp_path):
    cfg = load_config(
        "preview",
        overrides={
            "characters": {"backend": "smplx", "smplx_model_dir": str(smplx_models)},
            "video": {"width": 64, "height": 64, "num_frames": 5},
        },
    )
    lib = load_library(bodies=cfg.character)
    spec = next(s for s in make_plan(cfg, lib, 1, 30) if s.background_kind == "scene")
    asm = assemble(spec, lib, cfg.render, tmp_path)
    body = asm.body_annotations
    cam = asm.description.camera
    # the stored parameters give the rendered (float32) body vertices, in world and camera frames
    nvb = int(body["smplx_num_vertices"])
    rendered = asm.vertices[:, :nvb].astype(np.float64)
    assert np.abs(smplx_forward(smplx_models, str(body["smplx_gender"]), body, "world") - rendered).max() < 2e-6
    rendered_cam = np.einsum("fij,fvj->fvi", cam.r, rendered) + cam.t[:, None]
    assert np.abs(smplx_forward(smplx_models, str(body["smplx_gender"]), body, "cam") - rendered_cam).max() < 2e-6
    # joints: the model's regressor on the placed mesh; 2D = their projection, exactly
    reg = np.einsum("jv,fvk->fjk", asm.anim.body.model.j_regressor, rendered)
    assert np.abs(asm.joints_world["smplx55"] - reg).max() < 1e-6
    names = {c: asm.anim.joints[c].names for c in asm.joints_world}
    n = spec.num_frames
    depth = [np.zeros((64, 64), np.float32)] * n
    ann = build_annotations(cam.k, cam.r, cam.t, asm.joints_world, names, depth, [np.zeros((64, 64))] * n)
    for c in ("smplx55", "smpl24"):
        for f in range(n):
            uv, z = project(cam.k[f], cam.r[f], cam.t[f], ann[f"joints3d_world_{c}"][f])
            assert np.array_equal(uv, ann[f"joints2d_{c}"][f])
    assert np.array_equal(ann["joints3d_world_smpl24"], ann["joints3d_world_smplx55"][:, SMPL24_FROM_SMPLX])
    assert len(ann["joint_names_smplx55"]) == 55
    # what a shard record carries: camera-frame parameters per clip frame
    ann.update(body)
    info, params, betas = body_params.pack(ann, np.arange(n))
    back = body_params.unpack(info, params)
    assert params.shape == (n, 184) and np.allclose(betas, body["smplx_betas"])
    assert np.allclose(back["transl_cam"], body["smplx_transl_cam"], atol=1e-6)
    assert np.allclose(back["body_pose"], body["smplx_body_pose"], atol=1e-6)
