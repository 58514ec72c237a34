"""The HTML dataset card: self-contained, and it renders in headless Chromium without errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from thfm_synth.tools.report import write_report
from thfm_synth.tools.report.card import svg_histogram
from thfm_synth.testsetup import CHROMIUM_STEP, find_chromium

import test_preprocess_data as data

SECTIONS = (
    "counts",
    "licences",
    "histograms",
    "focal",
    "distance",
    "view",
    "azimuth",
    "face-angle",
    "pose-pca",
    "pose-spread",
    "visibility",
    "gallery",
)


def chromium() -> str:
    """A Chromium binary; the test command's set-up step installs one (announced), never this test."""
    if path := find_chromium():
        return path
    pytest.skip(f"Chromium is not installed: {CHROMIUM_STEP}")


def headless(html_path, tmp_path, *extra) -> subprocess.CompletedProcess:
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *extra,
        html_path.resolve().as_uri(),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str, html_path) -> list[str]:
    """Chromium logs every console message and uncaught exception as `...:CONSOLE:...] "text", source: URL`."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def browser() -> str:
    """Skip before rendering anything when there is no Chromium to look at the card with."""
    return chromium()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return data.rendered(tmp_path_factory)


def check_self_contained(page: str):
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.replace("http://www.w3.org/2000/svg", ""))
    assert not re.search(r'(?i)\b(src|href)\s*=\s*"(?!data:|#)', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page


@pytest.mark.render
def test_card_of_a_render_output_renders_in_headless_chromium(browser, rendered, tmp_path):
    out = tmp_path / "card.html"
    summary = write_report(rendered, out)
    page = out.read_text()
    check_self_contained(page)
    assert summary["counts"]["videos"] == data.NUM_VIDEOS and summary["counts"]["frames"] == 9 * data.NUM_VIDEOS
    assert summary["thumbnails"] == data.NUM_VIDEOS and summary["charts"] == 7
    assert page.count('src="data:image/png;base64,') == data.NUM_VIDEOS and "CC0-1.0" in page
    for sid in SECTIONS:
        assert f'id="{sid}"' in page, sid

    proc = headless(out, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert console_messages(proc.stderr, out) == []
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-ready="1"' in body, "the page's script did not run to the end"
    assert 'data-broken-images="0"' in body and f'data-thumbnails="{data.NUM_VIDEOS}"' in body
    assert 'data-charts="7"' in body
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert dom.count("<rect") > 30 and "left_wrist" in dom

    shot = tmp_path / "card.png"
    proc = headless(out, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from thfm_synth.render.imagefiles import read_png

    img = read_png(shot)
    assert img.shape[1] == 1200 and img.std() > 10  # something was drawn


@pytest.mark.render
def test_card_of_a_shard_set_with_and_without_its_render_folder(browser, tmp_path_factory, tmp_path):
    shards, _ = data.shard_set(tmp_path_factory)
    summary = write_report(shards, tmp_path / "card.html")
    assert summary["source"] == "shards" and summary["records_per_task"]["depth"] == 3
    assert summary["counts"]["records"] == 27 and summary["counts"]["videos"] == data.NUM_VIDEOS  # 9 tasks
    page = (tmp_path / "card.html").read_text()
    check_self_contained(page)
    assert 'id="records"' in page and "figures from the rendered videos" in page

    copy = tmp_path / "set"  # the render folder is gone: everything comes from the records
    shutil.copytree(shards, copy)
    index = json.loads((copy / "index.json").read_text())
    (copy / "index.json").write_text(json.dumps({**index, "render_dir": str(tmp_path / "gone")}))
    summary = write_report(copy, tmp_path / "card2.html")
    page = (tmp_path / "card2.html").read_text()
    # from the records: the azimuth chart (keypoints and cameras) but no face angles (SMPL-24 only)
    assert summary["thumbnails"] == data.NUM_VIDEOS and summary["charts"] == 6 and "decoded latents" in page
    assert summary["counts"]["frames"] == 9 * data.NUM_VIDEOS
    proc = headless(tmp_path / "card2.html", tmp_path, "--dump-dom")
    assert proc.returncode == 0 and 'data-ready="1"' in proc.stdout
    assert console_messages(proc.stderr, tmp_path / "card2.html") == []


def test_histogram_svg_handles_constant_and_empty_data():
    assert 'data-n="3"' in svg_histogram([2.0, 2.0, 2.0], title="t", xlabel="x")
    assert "no data" in svg_histogram([np.nan], title="t", xlabel="x")


def test_card_shows_the_realised_azimuth_next_to_the_configured_range(tmp_path):
    """Synthetic render output (no Blender): three videos whose cameras sit at known azimuths from
    the subject's facing, one of them from a plan made before the azimuth reference existed."""
    from thfm_synth.assets.library import load_library
    from thfm_synth.config import load_config
    from thfm_synth.conventions import look_at
    from thfm_synth.render.farm.folders import DONE
    from thfm_synth.assets.motion.joints import COCO17_NAMES, SMPL24_NAMES
    from thfm_synth.plan.planner import make_plan, plan_meta, write_plan
    from thfm_synth.tools.report.card import collect
    from thfm_synth.render.video.annotations import write_annotations

    cfg = load_config("preview", overrides={"camera": {"azimuth_deg": [-40, 40]}})
    lib = load_library(builtin=True)
    specs = make_plan(cfg, lib, 0, 3)
    (tmp_path / "videos").mkdir()
    write_plan(tmp_path / "plan.parquet", specs, plan_meta(cfg, lib, 0, 3))
    smpl = np.zeros((2, 24, 3))
    smpl[:, :, 2] = 1.0
    a = np.radians(50.0)  # the subject faces 50 deg from -Y: its left is (cos a, sin a)
    left = np.array([np.cos(a), np.sin(a), 0.0])
    fwd = np.array([np.sin(a), -np.cos(a), 0.0])
    for i, j in ((1, 2), (16, 17)):
        smpl[:, i] += 0.1 * left
        smpl[:, j] -= 0.1 * left
    coco = np.zeros((2, 17, 3))
    coco[:, :5] = smpl[:, :1] + np.array(
        [0.1 * fwd, 0.08 * fwd + 0.03 * left, 0.08 * fwd - 0.03 * left, 0.07 * left, -0.07 * left]
    )
    for spec, azimuth in zip(specs, (-30.0, 10.0, 170.0)):
        d = tmp_path / "videos" / spec.video_id
        d.mkdir()
        b = a + np.radians(azimuth)
        eye = smpl[0, 0] + 3.0 * np.array([np.sin(b), -np.cos(b), 0.0])
        r, t = look_at(eye, smpl[0, 0])
        arrays = {
            "K": np.tile(np.eye(3), (2, 1, 1)),
            "R": np.stack([r, r]),
            "t": np.stack([t, t]),
            "joints3d_world_smpl24": smpl,
            "joints3d_world_coco17": coco,
            "visibility_smpl24": np.zeros((2, 24), np.uint8),
            "joint_names_smpl24": np.array(SMPL24_NAMES),
            "joint_names_coco17": np.array(COCO17_NAMES),
        }
        write_annotations(d / "annotations.npz", arrays)
        row = spec.to_row()
        if azimuth == 170.0:
            del row["camera_azimuth_reference"]  # a video of an old plan
        (d / "metadata.json").write_text(json.dumps({"spec": row, "stats": {"frames": 2}}))
        (d / DONE).write_text("{}")
    facts = collect(tmp_path)
    np.testing.assert_allclose(facts.azimuth, [-30.0, 10.0, 170.0], atol=1e-6)
    # the face centre sits 6 cm ahead of the pelvis: under a degree of parallax at 3 m
    np.testing.assert_allclose(facts.face_angle, [-30.0, -30.0, 10.0, 10.0, 170.0, 170.0], atol=1.0)
    assert facts.azimuth_range == (-40.0, 40.0) and facts.world_azimuth_videos == 1
    page = tmp_path / "card.html"
    write_report(tmp_path, page)
    html = page.read_text()
    assert 'id="view"' in html and 'id="azimuth"' in html and 'id="face-angle"' in html
    assert 'class="band"' in html and "configured range -40 to 40 deg" in html
    assert "67% of frames" in html and "1 video(s) come from plans made before" in html


def test_card_explains_low_visibility_of_interior_joints():
    """'pelvis visible 25%' next to 'head 100%' is the depth rule's doing; the card says so, with the rule."""
    from thfm_synth.tools.report.card import Facts, render_html
    from thfm_synth.render.scene.visibility import SELF_TOL_M

    facts = Facts(
        title="t",
        source="render",
        path="p",
        joint_names=["pelvis", "left_hip", "head", "left_ankle"],
        visible=np.array([0.25, 0.4, 1.0, 1.0]),
    )
    page = render_html(facts)
    note = re.search(r'<p class="note" id="visibility-note">(.*?)</p>', page).group(1)
    assert f"at most {SELF_TOL_M * 100:.0f} cm in front of it" in note and "pelvis (the SMPL root" in note
    assert note.endswith("Below 50% here: pelvis 25%, left_hip 40%.") and "expected, not an error" in note
