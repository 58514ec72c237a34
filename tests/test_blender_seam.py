"""The Blender boundary (thfm_synth/blender): jobs as one JSON document, typed results and errors on
both sides, names written once, and an installed copy that renders without the source tree."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from thfm_synth.blender import contract
from thfm_synth.blender.call import BlenderBadInput, BlenderCrash, BlenderDiskFull, call, unwrap
from thfm_synth.blender.runtime import SCRIPTS
from thfm_synth.errors import UserError

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the protocol, without Blender
@pytest.mark.parametrize("job_type", sorted(set(contract.JOBS.values()), key=lambda t: t.__name__))
def test_every_job_type_round_trips_through_json_and_refuses_unknown_fields(job_type):
    required = {
        f.name: "x"
        for f in job_type.__dataclass_fields__.values()
        if f.default is f.default_factory is __import__("dataclasses").MISSING
    }
    if job_type is contract.CharacterPreviewJob:
        required["characters"] = ["a.npz"]
    job = job_type(**required)
    doc = json.loads(json.dumps(contract.job_document("script.py", job)))
    assert doc["contract"] == contract.CONTRACT_VERSION and job_type.from_dict(doc["job"]) == job
    with pytest.raises(ValueError, match="unknown field"):
        job_type.from_dict({**doc["job"], "bogus": 1})


@pytest.mark.parametrize(
    "change, match",
    [
        ({"mode": "fast"}, "mode"),
        ({"modalities": ["rgb", "thermal"]}, "modalities"),
        ({"modalities": []}, "modalities"),
        ({"device": "metal"}, "device"),
        ({"label_samples": 0}, "label_samples"),
        ({"frames": [0, "1"]}, "frames"),
        ({"per_modality_shading": "pbr"}, "per_modality_shading"),
    ],
)
def test_a_malformed_render_job_is_refused_on_both_sides(change, match):
    with pytest.raises(ValueError, match=match):
        contract.RenderJob.from_dict({"scene": "s", "out": "o", **change})


def _run(tmp_path, handler, script=contract.SCRIPT_PROBE, doc=None):
    path = tmp_path / contract.JOB_FILE
    path.write_text(json.dumps(doc or contract.job_document(script, contract.ProbeJob())))
    return contract.run_job(str(path), script, handler)


def test_results_carry_the_error_kind_that_decides_retry_or_stop(tmp_path):
    def bad(job):
        raise contract.JobInputError("scene.json of /x is missing", "save the description first")

    def full(job):
        raise OSError(errno.ENOSPC, "No space left on device")

    def blender_full(job):  # Blender's image writers report ENOSPC as text
        raise RuntimeError("Error writing render result: No space left on device")

    def bug(job):
        raise KeyError("boom")

    def dies(job):
        raise SystemExit("render_scene.py: giving up")  # a script must never die without a result

    contract.warn("device cuda is not available; falling back to cpu")
    ok = _run(tmp_path, lambda job: (contract.warn("w1"), {"answer": 42})[1])
    assert ok == {"ok": True, "result": {"answer": 42}, "warnings": ["w1"]}  # warnings are per job
    assert json.loads((tmp_path / contract.RESULT_FILE).read_text()) == ok
    kinds = {
        name: _run(tmp_path, h)["error"]["kind"]
        for name, h in (("bad", bad), ("full", full), ("blender_full", blender_full), ("bug", bug), ("dies", dies))
    }
    assert kinds == {
        "bad": "bad_input",
        "full": "disk_full",
        "blender_full": "disk_full",
        "bug": "crash",
        "dies": "crash",
    }
    # the main side turns each kind into the exception the farm acts on
    with pytest.raises(BlenderBadInput) as exc:
        unwrap(_run(tmp_path, bad), "render_scene.py")
    assert isinstance(exc.value, UserError)
    assert exc.value.one_line() == "scene.json of /x is missing (fix: save the description first)"
    with pytest.raises(BlenderDiskFull) as exc:
        unwrap(_run(tmp_path, full), "render_scene.py")
    assert exc.value.errno == errno.ENOSPC
    with pytest.raises(BlenderCrash, match="KeyError"):
        unwrap(_run(tmp_path, bug), "render_scene.py")
    with pytest.warns(RuntimeWarning, match="w1"):
        assert unwrap(ok, "render_scene.py") == {"answer": 42}


def test_a_job_for_another_script_or_contract_version_is_bad_input(tmp_path):
    doc = contract.job_document(contract.SCRIPT_RENDER, contract.RenderJob(scene="s", out="o"))
    assert _run(tmp_path, lambda j: {}, contract.SCRIPT_PROBE, doc)["error"]["kind"] == "bad_input"
    doc = {**contract.job_document(contract.SCRIPT_PROBE, contract.ProbeJob()), "contract": 0}
    res = _run(tmp_path, lambda j: {}, contract.SCRIPT_PROBE, doc)
    assert res["error"]["kind"] == "bad_input" and "contract 0" in res["error"]["what"]


def test_names_are_written_once():
    """No Blender script or main-environment module spells a contract name as a literal of its own."""
    names = [
        contract.ATTR_PART,
        contract.ATTR_PART_UV,
        contract.ATTR_CANONICAL,
        contract.PROP_SUBJECT,
        "labels.part.X",
        "rgb.fg.X",
        "labels.Depth.Z",
        "THFM_IMPORT_",
        "THFM_SCENE_PROBE_",
        "_render_args",
    ]
    offenders = []
    for path in [*SCRIPTS.glob("*.py"), *(REPO / "thfm_synth").rglob("*.py")]:
        if path.name == "contract.py":
            continue
        text = path.read_text()
        offenders += [f"{path.name}: {n}" for n in names if f'"{n}"' in text or f"'{n}'" in text]
    assert offenders == []
    # and the main side decodes exactly the channels the contract says Blender writes
    assert contract.CH_PART == "labels.part.X" and contract.CH_FG == "rgb.fg.X"
    assert contract.CH_CANONICAL == ("labels.can_x.X", "labels.can_y.X", "labels.can_z.X")


# ----------------------------------------------------------------------------- through Blender
@pytest.mark.render
def test_bad_input_inside_blender_is_one_line_naming_the_file(tmp_path):
    scene = tmp_path / "no-scene"
    scene.mkdir()
    with pytest.raises(BlenderBadInput) as exc:
        call(contract.SCRIPT_RENDER, contract.RenderJob(scene=str(scene), out=str(tmp_path / "out")), timeout=120)
    line = exc.value.one_line()
    assert str(scene / contract.SCENE_JSON) in line and "(fix: " in line and "\n" not in line


@pytest.mark.render
def test_an_installed_copy_renders_without_the_source_tree(tmp_path):
    """Build the wheel, unpack it elsewhere and render an analytic scene from there: the Blender scripts,
    the contract and the built-in library come from the installed copy, not from this repository."""
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = tmp_path / "site"
    with zipfile.ZipFile(next(wheels.glob("*.whl"))) as z:
        z.extractall(site)
    for needed in (
        "blender_scripts/render_scene.py",
        "blender_scripts/bridge.py",
        "thfm_synth/blender/contract.py",
        "assets_manifest/builtin.yaml",
        "jobs/train_from_synth.yaml",
    ):
        assert (site / needed).is_file(), needed
    script = f"""
import sys, json
sys.path.insert(0, {str(site)!r})
import thfm_synth
from thfm_synth.blender.runtime import SCRIPTS
from thfm_synth.assets.library import load_library
from thfm_synth.render.analytic import analytic_scene
from thfm_synth.render.runner import render
assert thfm_synth.__file__.startswith({str(site)!r}), thfm_synth.__file__
assert str(SCRIPTS).startswith({str(site)!r}), SCRIPTS
assert load_library().by_kind["characters"]
analytic_scene({str(tmp_path / "scene")!r}, 32, 24, samples=1, denoise=False)
info = render({str(tmp_path / "scene")!r}, {str(tmp_path / "out")!r}, timeout=300)
print(json.dumps({{"frames": len(info["frames"]), "blender": info["blender_version"]}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["THFM_RENDER_VENV"] = str(REPO / ".venv-render")  # an installed copy names its render environment
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["frames"] == 1 and out["blender"].startswith("5.0")
    raw = sorted((tmp_path / "out" / contract.RAW_DIR).glob("*.exr"))
    assert len(raw) == 1 and raw[0].stat().st_size > 0


def test_the_readme_names_the_files_a_new_modality_touches():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("#### Adding a modality") :]
    section = section[: section.index("### The video folder")]
    files = ["thfm_synth/blender/contract.py", "blender_scripts/render_scene.py", "thfm_synth/render/outputs.py"]
    for f in files:
        assert f"`{f}`" in section and (REPO / f).is_file(), f
    text = {f: (REPO / f).read_text() for f in files}
    assert "STORED_MODALITIES" in text[files[0]] and "def layer_plan" in text[files[1]]
    assert all(f"def {fn}" in text[files[2]] for fn in ("decode_raw", "write_frame", "read_frame"))
