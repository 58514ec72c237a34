"""Planned video -> character in motion: the glue of characters, motions and the plan."""

import dataclasses
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.assets.validate import validate
from thfm_synth.config import load_config
from thfm_synth.assets.motion.bvh import read_bvh
from thfm_synth.plan.planner import make_plan
from thfm_synth.render.scene.animate import animate

from conftest import run_cli


@pytest.fixture(scope="module")
def cache(character_cache):
    return character_cache


def test_builtin_body_with_builtin_walk(cache):
    lib = load_library(builtin=True)
    spec = make_plan(load_config("paper"), lib, 0, 1)[0]
    spec = dataclasses.replace(spec, motion_id="builtin-walk", motion_start_frame=10, mirror=False)
    anim = animate(spec, lib, cache)
    joints = anim.joints["smpl24"].positions
    assert anim.clip.num_frames == joints.shape[0] == 81 and joints.shape[1] == 24
    assert anim.clip.fps == 24.0
    travel = np.linalg.norm(joints[-1, 0, :2] - joints[0, 0, :2])
    assert 1.3 * 81 / 24 * 0.8 < travel < 1.3 * 81 / 24 * 1.25  # the built-in walk is 1.3 m/s
    ankles = joints[:, [7, 8], 2]
    assert ankles.min() > -0.01 and np.median(ankles.min(axis=1)) < 0.15  # on the ground, not floating
    assert set(anim.joints) == {"smpl24", "h36m17", "coco17"}


def test_fbx_character_walks_a_cmu_clip_forward(cache, shared_manifest, shared_assets):
    lib = load_library([shared_manifest])
    spec = make_plan(load_config("paper"), lib, 0, 1)[0]
    spec = dataclasses.replace(
        spec, character_id="characters-smooth_male_casual", motion_id="cmu-02_01", motion_start_frame=0, mirror=True
    )
    anim = animate(spec, lib, cache)
    pelvis = anim.joints["smpl24"].positions[:, 0]
    assert np.linalg.norm(pelvis[-1, :2] - pelvis[0, :2]) > 1.0
    assert "mirrored" in anim.flags


def test_cli_builds_characters_with_a_valid_manifest(tmp_path):
    proc = run_cli("assets", "build-characters", "--count", "2", "--seed", "4", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    assert "MB per character" in proc.stdout
    count, problems = validate(tmp_path / "c" / "manifest.yaml")
    assert count == 2 and problems == []


def test_cli_fetches_cmu_from_a_mirror_and_writes_a_manifest(tmp_path, shared_assets):
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_assets / "mocap" / "cmu"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = run_cli(
            "assets",
            "fetch",
            "cmu",
            "--dest",
            tmp_path / "cmu",
            "--layout",
            "{clip}.bvh",
            "--base-url",
            f"http://127.0.0.1:{server.server_port}",
            "--clips",
            "02_01,09_01",
        )
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    count, problems = validate(tmp_path / "cmu" / "manifest.yaml")
    assert count == 2 and problems == []
    lib = load_library([tmp_path / "cmu" / "manifest.yaml"], builtin=False, check_files=True)
    walk = lib.entry("cmu-02_01")
    assert walk.num_frames == read_bvh(lib.path_of(walk)).num_frames and "walk" in walk.tags and walk.activity


def test_builtin_bodies_get_coco_face_points_from_anny_regressor(cache):
    lib = load_library(builtin=True)
    spec = dataclasses.replace(
        make_plan(load_config("paper"), lib, 0, 1)[0], motion_id="builtin-turn", motion_start_frame=0, mirror=False
    )
    anim = animate(spec, lib, cache)
    coco = anim.joints["coco17"]
    assert coco.face_source == "regressor"
    nose, leye, reye, lear, rear = (coco.positions[:, i] for i in range(5))
    head = anim.joints["smpl24"].positions[:, 15]
    # anatomy: eyes ~6 cm apart, ears further apart than eyes, nose in front of the ears, all near the head
    assert np.all(np.abs(np.linalg.norm(leye - reye, axis=1) - 0.063) < 0.02)
    assert np.all(np.linalg.norm(lear - rear, axis=1) > np.linalg.norm(leye - reye, axis=1))
    assert np.all(np.linalg.norm(nose - head, axis=1) < 0.2)
    # rigid with the head: distances between face points constant while the body turns
    d = np.linalg.norm(nose - lear, axis=1)
    assert np.ptp(d) < 1e-6
