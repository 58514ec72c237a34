"""Several people per video (config `people`): plans balanced per person slot and unchanged for one
person, collision-free placement over the whole clip (or a recorded fallback), per-person masks that
partition the mask, per-person joints and who hides whom, and the per-person data in the shards."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from conftest import run_cli
from thfm_synth.assets.library import load_library
from thfm_synth.config import config_digest, load_config
from thfm_synth.plan.planner import make_plan, plan_meta, read_plan, write_plan
from thfm_synth.plan.spec import PLAN_SCHEMA
from thfm_synth.render.scene.visibility import PERSON_OCCLUDED, SCENE_OCCLUDED, SELF_OCCLUDED, VISIBLE, joint_visibility


def people_config(lo: int, hi: int, **people):
    cfg = load_config("preview")
    return cfg.model_copy(update={"people": cfg.people.model_copy(update={"count": (lo, hi), **people})})


@pytest.fixture(scope="module")
def library():
    return load_library(builtin=True)


def test_one_person_plans_and_configs_are_what_they_were(library, tmp_path):
    cfg = load_config("preview")
    assert "people" not in cfg.model_dump(mode="json")  # so config digests did not change
    assert config_digest(cfg) == config_digest(load_config("preview"))
    specs = make_plan(cfg, library, 0, 10)
    assert all(not s.others and "others" not in s.to_row() for s in specs)
    write_plan(tmp_path / "p.parquet", specs, plan_meta(cfg, library, 0, 10))
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "p.parquet").names == PLAN_SCHEMA.names  # no `others` column


def test_person_slots_are_balanced_and_plans_keep_their_prefix(library, tmp_path):
    cfg = people_config(1, 4)
    specs = make_plan(cfg, library, 3, 96)
    assert make_plan(cfg, library, 3, 40) == specs[:40]
    counts = Counter(s.num_people for s in specs)
    assert set(counts) == {1, 2, 3, 4} and min(counts.values()) > 10  # uniform over [1, 4]
    chars = [c.id for c in library.by_kind["characters"]]
    for slot in (1, 2, 3):
        used = [s.others[slot - 1].character_id for s in specs if s.num_people > slot]
        n = Counter(used)
        per = len(used) / len(chars)
        assert all(np.floor(per) <= n.get(c, 0) <= np.ceil(per) for c in chars), (slot, n)
    # person 0 is exactly what a one-person plan gives: adding people changes nobody else's draws
    one = make_plan(load_config("preview"), library, 3, 96)
    strip = [s.__class__(**{**s.__dict__, "others": ()}) for s in specs]
    assert strip == one
    write_plan(tmp_path / "p.parquet", specs, plan_meta(cfg, library, 3, 96))
    assert read_plan(tmp_path / "p.parquet")[0] == specs


def test_people_never_overlap_and_a_crowded_room_leaves_people_out(library, tmp_path):
    """Numpy placement (no Blender): over the whole clip no two pelvises come closer than two body
    radii; where that is impossible the person is left out with the reason, never overlapped."""
    from thfm_synth.render.scene.layout import build_set, path_fits
    from thfm_synth.render.scene.people import clearance, place_others

    cfg = people_config(4, 4)
    spec = next(s for s in make_plan(cfg, library, 1, 12) if s.background_kind == "sky")
    start = np.zeros((spec.num_frames, 2))
    placed, records = place_others(spec, library, tmp_path / "cache", start)
    assert len(records) == 3 and all(r["placed"] for r in records)
    paths = [start] + [p.pelvis_xy for p in placed]
    for i in range(len(paths)):
        for j in range(i + 1, len(paths)):
            assert clearance(paths[i], paths[j]) >= 2 * spec.others[0].body_radius_m - 1e-9
    assert all(p.vertices.shape[0] == spec.num_frames for p in placed)
    # with a camera 4 m along +x looking at the subject, nobody stands in its line of sight
    from thfm_synth.render.scene.people import sight_clearance

    camera = np.tile([4.0, 0.0], (spec.num_frames, 1))
    placed, records = place_others(spec, library, tmp_path / "cache", start, camera_xy=camera)
    assert all(r["placed"] for r in records)
    for p in placed:
        to_line, to_camera = sight_clearance(p.pelvis_xy, camera, start)
        assert to_line >= 2 * p.spec.body_radius_m - 1e-9 and to_camera >= 3 * p.spec.body_radius_m - 1e-9
    assert sight_clearance(np.array([[2.0, 0.1]]), np.array([[4.0, 0.0]]), np.array([[0.0, 0.0]])) == pytest.approx(
        (0.1, np.hypot(2.0, 0.1))
    )
    # a room too small for four: whoever does not fit is recorded as left out
    room = build_set({"generator": "room", "size_m": [2.6, 2.6, 2.6], "furniture": 0}, 0)
    centre = (np.array(room.floor_min) + np.array(room.floor_max)) / 2
    placed, records = place_others(spec, library, tmp_path / "cache", np.tile(centre, (spec.num_frames, 1)), room)
    out = [r for r in records if not r["placed"]]
    assert out and all("no place" in r["reason"] for r in out)
    for p in placed:
        assert path_fits(room, p.pelvis_xy, p.spec.body_radius_m)


def test_visibility_codes_a_joint_behind_another_person():
    depth = np.full((4, 4), 5.0)
    own = np.zeros((4, 4))
    other = np.zeros((4, 4))
    own[0, :] = 1.0
    other[1, :] = 1.0
    depth[1, :] = 3.0  # another person, in front
    uv = np.array([[0.5, 0.5], [0.5, 1.5], [0.5, 2.5], [1.5, 1.5]])
    z = np.array([5.05, 4.0, 4.0, 2.0])  # own surface / behind the other person / scene / in front of them
    codes = joint_visibility(uv, z, depth, own, others_mask=other)
    assert codes.tolist() == [VISIBLE, PERSON_OCCLUDED, VISIBLE, VISIBLE]
    depth[2, :] = 1.0  # the scene in front of the third joint
    assert joint_visibility(uv, z, depth, own, others_mask=other)[2] == SCENE_OCCLUDED
    assert joint_visibility(uv, z, depth, own)[1] == SCENE_OCCLUDED  # without the others' mask: the scene
    assert SELF_OCCLUDED not in codes


@pytest.mark.render
def test_a_video_of_three_people_partitions_the_mask_and_keeps_everyone(tmp_path, character_cache):
    from thfm_synth.render import outputs
    from thfm_synth.render.video.annotations import read_annotations

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "preset: preview\nvideo: {width: 160, height: 96, num_frames: 5}\npeople: {count: [3, 3]}\n"
        "background: {kind_weights: {sky: 1.0}}\ncamera: {focal_length_mm: [20, 24], azimuth_deg: [-30, 30],"
        " framing_weights: {full_body: 1.0}}\n"
    )
    plan = tmp_path / "plan.parquet"
    assert run_cli("plan", "--config", cfg, "--num-videos", "1", "--seed", "5", "--out", plan).returncode == 0
    out = tmp_path / "v"
    proc = run_cli("render-one", "--plan", plan, "--index", "0", "--out", out, "--cache", character_cache, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["people"]["planned"] == 3 and meta["people"]["rendered"] == 3
    ann = read_annotations(out / "annotations.npz")
    inst = ann["people_instance"]
    assert ann["people_joints2d_smpl24"].shape == (3, 5, 24, 2) and len(set(inst.tolist())) == 3
    np.testing.assert_array_equal(ann["people_joints2d_smpl24"][0], ann["joints2d_smpl24"])  # person 1: the subject
    seen = np.zeros(3, bool)
    for f in range(5):
        fr = outputs.read_frame(out, f)
        assert fr.people.shape[-1] == 3
        np.testing.assert_allclose(fr.people.sum(-1), fr.mask, atol=2**-10)  # the masks partition the union
        full = fr.people > 1 - 1e-3
        for k in range(3):  # where person k covers a pixel fully, the label pixel is person k's
            assert np.all(fr.instance[full[..., k]] == inst[k])
            seen[k] |= full[..., k].any()
        for k in range(3):  # a joint coded "hidden by another person": another person covers it, nearer
            vis = ann["people_visibility_smpl24"][k, f]
            for j in np.flatnonzero(vis == PERSON_OCCLUDED):
                u, v = ann["people_joints2d_smpl24"][k, f, j].astype(int)
                assert fr.mask[v, u] - fr.people[v, u, k] > 0.5
                assert fr.depth[v, u] < ann["people_joints3d_cam_smpl24"][k, f, j, 2]
    assert seen[0]  # the subject is in view; the others may stand outside it
    # the shards keep everyone's keypoints beside the subject's
    from thfm_synth.preprocess.pipeline import preprocess
    from thfm_synth.shards.store import ShardSet

    preprocess(out, tmp_path / "s", workers=0, progress=False, prompt_dim=16, tasks=("mask", "keypoints_2d"))
    rec = next(iter(ShardSet.open(tmp_path / "s").records()))
    assert rec.arrays["people_keypoints_2d"].shape == (3, 5, 24, 2)
    np.testing.assert_allclose(rec.arrays["people_keypoints_2d"][0], rec.arrays["keypoints_2d"])
