"""An SMPL-X character rendered for real with `thfm-synth render` (tiny: 64x96, 5 frames, 2 samples):
labels and joints line up with the pixels, the stored parameters reproduce the rendered mesh, and the
parameters reach the shards (`shards show`) and the dataset card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import smplx
import torch
import yaml

from conftest import run_cli
from thfm_synth.render import qa
from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.conventions import project
from thfm_synth.plan.planner import read_plan
from thfm_synth.render import outputs
from thfm_synth.render.scene.assemble import assemble
from thfm_synth.render.video.annotations import read_annotations

pytestmark = [pytest.mark.render, pytest.mark.slow]
# DensePose parts a joint's pixel may show (the joint lies inside that limb)
JOINT_PARTS = {
    "head": {23, 24},
    "left_wrist": {4, 19, 21},
    "right_wrist": {3, 20, 22},
    "left_knee": {8, 10, 12, 14},
    "right_knee": {7, 9, 11, 13},
    "left_elbow": {15, 17, 19, 21},
    "right_elbow": {16, 18, 20, 22},
    "left_ankle": {5, 12, 14},
    "right_ankle": {6, 11, 13},
    "spine3": {1, 2},
    "pelvis": {1, 2, 7, 8, 9, 10},
}


@pytest.fixture(scope="module")
def rendered(smplx_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("smplx_render")
    config = {
        "preset": "preview",
        "num_videos": 1,
        "video": {"width": 64, "height": 96, "num_frames": 5},
        "render": {"samples": 2, "denoise": False},
        "background": {"kind_weights": {"hdri": 0, "scene": 0, "sky": 1}},
        "camera": {
            "framing_weights": {"full_body": 1.0, "upper_body": 0.0, "face": 0.0},
            "trajectory_weights": {"static": 1.0},
        },
        "characters": {"backend": "smplx", "smplx_model_dir": str(smplx_models)},
    }
    (root / "smplx.yaml").write_text(yaml.safe_dump(config))
    out = root / "out"
    proc = run_cli(
        "render",
        "--config",
        root / "smplx.yaml",
        "--out",
        out,
        "--workers",
        "1",
        "--cache",
        root / "cache",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    video = next((out / "videos").iterdir())
    return root, out, video


def test_the_video_carries_smplx_ground_truth_and_passes_qa(rendered, smplx_models):
    _, _, video = rendered
    meta = json.loads((video / "metadata.json").read_text())
    assert meta["qa"]["passed"], meta["qa"]
    assert meta["body_model"]["model"] == "smplx" and meta["spec"]["character_id"].startswith("smplx-builtin-")
    assert meta["assets"][meta["spec"]["character_id"]]["licence"] == "LicenseRef-SMPL-X-NC"
    ann = read_annotations(video / "annotations.npz")
    assert ann["smplx_body_pose"].shape == (5, 21, 3) and ann["joints3d_world_smplx55"].shape == (5, 55, 3)
    # the stored camera-frame parameters give the body where the camera saw it: its joints, regressed
    # from that mesh, are the stored camera-frame joints
    gender = str(ann["smplx_gender"])
    layer = smplx.SMPLX(
        str(smplx_models / f"SMPLX_{gender.upper()}.npz"),
        gender=gender,
        use_pca=False,
        flat_hand_mean=True,
        num_betas=10,
        num_expression_coeffs=10,
        dtype=torch.float64,
    )
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        v = layer(
            betas=t(np.tile(ann["smplx_betas"], (5, 1))),
            expression=t(ann["smplx_expression"]),
            global_orient=t(ann["smplx_global_orient_cam"]),
            body_pose=t(ann["smplx_body_pose"].reshape(5, -1)),
            jaw_pose=t(ann["smplx_jaw_pose"]),
            leye_pose=t(ann["smplx_leye_pose"]),
            reye_pose=t(ann["smplx_reye_pose"]),
            left_hand_pose=t(ann["smplx_left_hand_pose"].reshape(5, -1)),
            right_hand_pose=t(ann["smplx_right_hand_pose"].reshape(5, -1)),
            transl=t(ann["smplx_transl_cam"]),
        ).vertices.numpy()
    regressed = np.einsum("jv,fvk->fjk", layer.J_regressor.numpy(), v)
    assert np.abs(regressed - ann["joints3d_cam_smplx55"]).max() < 1e-5


def test_joints_and_labels_line_up_with_the_pixels(rendered, smplx_models):
    root, out, video = rendered
    ann = read_annotations(video / "annotations.npz")
    names = [str(n) for n in ann["joint_names_smplx55"]]
    seen = hit = agree = checked = 0
    for f in range(5):
        fr = outputs.read_frame(video, f)
        for c in ("smplx55", "smpl24", "h36m17", "coco17"):
            uv, z = project(ann["K"][f], ann["R"][f], ann["t"][f], ann[f"joints3d_world_{c}"][f])
            assert np.abs(uv - ann[f"joints2d_{c}"][f]).max() < 1e-9
            assert np.allclose(z, ann[f"joints3d_cam_{c}"][f][:, 2])
        vis = ann["visibility_smplx55"][f, :22] == 0  # body joints (fingers are 1-2 px wide here)
        seen += vis.sum()
        hit += (qa.sample(fr.mask, ann["joints2d_smplx55"][f, :22][vis]) > 0.5).sum()
        for name, parts in JOINT_PARTS.items():
            j = names.index(name)
            if ann["visibility_smplx55"][f, j] == 0:
                x, y = np.floor(ann["joints2d_smplx55"][f, j]).astype(int)
                checked += 1
                agree += int(fr.part[y, x]) in parts
        interior = qa.erode(fr.mask >= 1.0, 1)
        assert interior.sum() > 50
        assert np.all((fr.part[interior] >= 1) & (fr.part[interior] <= 24))
        assert fr.canonical[interior].min() >= 0 and fr.canonical[interior].max() <= 1
    assert seen > 0 and hit / seen > 0.95
    assert checked >= 20 and agree / checked > 0.8, (agree, checked)
    # the mesh the renderer drew: vertices the depth pass sees project onto the subject's coverage
    specs, meta = read_plan(out / "plan.parquet")
    cfg = load_config(config_file=root / "smplx.yaml")
    asm = assemble(specs[0], load_library(bodies=cfg.character), cfg.render, root / "cache")
    cam = asm.description.camera
    for f in range(5):
        fr = outputs.read_frame(video, f, ("depth", "mask"))
        uv, z = project(cam.k[f], cam.r[f], cam.t[f], asm.vertices[f])
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < 64) & (uv[:, 1] >= 0) & (uv[:, 1] < 96)
        front = np.abs(qa.sample(fr.depth, uv[inside]) - z[inside]) < 0.01
        assert front.sum() > 50 and (qa.sample(fr.mask, uv[inside][front]) > 0).mean() > 0.99


def test_shards_and_card_carry_the_parameters(rendered, tmp_path):
    from thfm_synth.preprocess.pipeline import preprocess
    from thfm_synth.tools import shards_inspect as inspect
    from thfm_synth.shards.store import ShardSet

    _, out, video = rendered
    shards = tmp_path / "shards"
    preprocess(
        out,
        shards,
        num_frames=5,
        fps=24,
        width=64,
        height=96,
        workers=0,
        progress=False,
        prompt_dim=32,
        tasks=("depth", "keypoints_3d"),
    )
    ann = read_annotations(video / "annotations.npz")
    recs = list(ShardSet.open(shards).records("parquet", verify=True))
    assert len(recs) == 2
    for rec in recs:
        info = json.loads(rec.body_model)
        assert info["model"] == "smplx" and rec.arrays["body_params"].shape == (5, 184)
        np.testing.assert_allclose(rec.arrays["body_betas"], ann["smplx_betas"], rtol=1e-6)
        start = dict((n, s) for n, s, _ in info["layout"])["transl_cam"]
        np.testing.assert_allclose(rec.arrays["body_params"][:, start : start + 3], ann["smplx_transl_cam"], atol=1e-5)
    assert inspect.verify(shards).data["ok"]
    res = run_cli("shards", "show", shards, "--out", tmp_path / "show", "--task", "keypoints_3d")
    assert res.returncode == 0, res.stderr
    assert "body model: smplx" in res.stdout and "transl_cam" in res.stdout
    card = tmp_path / "card.html"
    res = run_cli("report", out, "--out", card)
    assert res.returncode == 0, res.stderr
    text = card.read_text()
    assert "Body model (SMPL-X)" in text and "1 of 1 videos carry SMPL-X parameters" in text
