"""`assets import-characters`: licence rules, refusals, idempotence and the summary, with a stand-in
importer (no Blender); the real import of a folder is tested in test_characters_library.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from thfm_synth.assets.characters.folder_import import import_folder
from thfm_synth.assets.manifest import load_manifest
from thfm_synth.errors import UserError

from conftest import run_cli


def fake_importer(calls):
    """Writes a small npz; files named bad* are refused like an unmappable rig, crash* raise a bug."""

    def imp(path, out, rig="auto", height_m=None, bone_map=None):
        calls.append(Path(path).name)
        if Path(path).stem.startswith("bad"):
            raise UserError(f"{path}: no known rig matches its 3 bones [a, b, c]", "write a bone map")
        if Path(path).stem.startswith("crash"):
            raise RuntimeError("boom")
        np.savez(out, x=np.arange(3))
        return SimpleNamespace(
            materials=[{"name": "Skin"}], meta={"rig": rig if rig != "auto" else "mixamo"}, vertices=np.zeros((10, 3)),
            height_m=1.7,
        )  # fmt: skip

    return imp


def folder(tmp_path, names):
    d = tmp_path / "scans"
    d.mkdir(parents=True)
    for n in names:
        (d / n).parent.mkdir(parents=True, exist_ok=True)
        (d / n).write_bytes(n.encode())  # distinct contents -> distinct digests
    return d


def test_licence_sources_in_order_and_unknown_refused(tmp_path):
    d = folder(tmp_path, ["a.fbx", "b.glb", "c.gltf", "d.fbx", "notes.txt"])
    (d / "a.licence.txt").write_text("# from the vendor\nCC-BY-4.0 Jane Doe, 2025\n")
    (d / "LICENCES.yaml").write_text("b.glb: LicenseRef-RenderPeople\n'c*': MIT\n")
    calls = []
    r = import_folder(d, tmp_path / "lib", importer=fake_importer(calls))
    got = {e.id: e.licence for e in load_manifest(tmp_path / "lib" / "manifest.yaml").manifest.characters}
    assert got == {"a": "CC-BY-4.0", "b": "LicenseRef-RenderPeople", "c": "MIT"}
    assert [f for f, _ in r.refused] == ["d.fbx"] and "licence unknown" in r.refused[0][1]
    assert "d.fbx" not in calls  # refused before Blender is asked
    # --licence fills the gap; the sidecar still wins for a.fbx; nothing already imported is redone
    calls.clear()
    r = import_folder(d, tmp_path / "lib", licence="CC0-1.0", importer=fake_importer(calls))
    assert calls == ["d.fbx"] and len(r.skipped) == 3 and r.ok
    got = {e.id: e.licence for e in load_manifest(tmp_path / "lib" / "manifest.yaml").manifest.characters}
    assert got == {"a": "CC-BY-4.0", "b": "LicenseRef-RenderPeople", "c": "MIT", "d": "CC0-1.0"}


def test_entries_refusals_failures_and_idempotence(tmp_path):
    d = folder(tmp_path, ["Walker.fbx", "Walker.glb", "sub/Runner.glb", "bad_rig.fbx", ".hidden.fbx"])
    calls = []
    r = import_folder(d, tmp_path / "lib", licence="CC0-1.0", importer=fake_importer(calls))
    m = load_manifest(tmp_path / "lib" / "manifest.yaml")
    ids = sorted(e.id for e in m.manifest.characters)
    assert ids == ["Runner", "Walker", "Walker-glb"]
    e = next(e for e in m.manifest.characters if e.id == "Runner")
    assert e.path == "Runner.npz" and e.format == "npz" and e.rig == "mixamo" and e.height_m == 1.7
    assert e.params["import"]["file"] == "sub/Runner.glb" and e.params["import"]["materials"] == ["Skin"]
    assert [f for f, _ in r.refused] == ["bad_rig.fbx"] and "no known rig" in r.refused[0][1]
    assert str(d) not in r.refused[0][1]  # the reason names the file relative to the folder
    assert not (tmp_path / "lib" / "bad_rig.npz").exists() and r.ok
    before = (tmp_path / "lib" / "manifest.yaml").read_bytes()
    calls.clear()
    r = import_folder(d, tmp_path / "lib", licence="CC0-1.0", importer=fake_importer(calls))
    assert calls == ["bad_rig.fbx"] and len(r.skipped) == 3 and not r.imported
    assert (tmp_path / "lib" / "manifest.yaml").read_bytes() == before  # idempotent
    # a tampered npz is imported again rather than trusted
    (tmp_path / "lib" / "Runner.npz").write_bytes(b"junk")
    calls.clear()
    r = import_folder(d, tmp_path / "lib", licence="CC0-1.0", importer=fake_importer(calls))
    assert "Runner.glb" in calls and [f for f, _ in r.imported] == ["sub/Runner.glb"]
    # an unexpected failure is not a refusal: the run is not ok
    (d / "crash.fbx").write_bytes(b"crash")
    r = import_folder(d, tmp_path / "lib", licence="CC0-1.0", importer=fake_importer([]))
    assert [f for f, _ in r.failed] == ["crash.fbx"] and "boom" in r.failed[0][1] and not r.ok


def test_nothing_imported_leaves_nothing(tmp_path):
    d = folder(tmp_path, ["bad1.fbx", "bad2.glb"])
    r = import_folder(d, tmp_path / "lib", licence="CC0-1.0", importer=fake_importer([]))
    assert len(r.refused) == 2 and not r.ok
    assert not (tmp_path / "lib").exists()
    with pytest.raises(UserError, match="no .fbx"):
        import_folder(folder(tmp_path / "e", []), tmp_path / "lib2")


def test_cli_refuses_unknown_licences_with_exit_1_and_lists_them(tmp_path):
    d = folder(tmp_path, ["one.fbx", "two.glb"])
    p = run_cli("assets", "import-characters", str(d), "--out", str(tmp_path / "lib"))
    assert p.returncode == 1, p.stderr
    assert "0 imported, 0 already present, 2 refused, 0 failed" in p.stdout
    assert "refused one.fbx: licence unknown" in p.stdout and "refused two.glb: licence unknown" in p.stdout
    assert len(p.stderr.strip().splitlines()) == 1 and "no character of" in p.stderr  # piped: no bar, one line
    assert not (tmp_path / "lib").exists()


def test_plan_warns_about_unknown_licences(tmp_path):
    from thfm_synth.assets.manifest import Manifest, MotionEntry, dump_manifest

    bvh = tmp_path / "m.bvh"
    bvh.write_text("x")
    entry = MotionEntry(
        id="mystery-walk", path="m.bvh", sha256="0" * 64, licence="UNKNOWN", source="?", fps=30, num_frames=60
    )
    (tmp_path / "m.yaml").write_text(dump_manifest(Manifest(name="m", motions=[entry])))
    p = run_cli(
        "plan", "--preset", "preview", "--num-videos", "2", "--manifest", str(tmp_path / "m.yaml"), "--out",
        str(tmp_path / "plan.parquet"),
    )  # fmt: skip
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "mystery-walk" in lines[0] and "unknown licence" in lines[0], p.stderr


def test_no_background_error_points_at_the_real_fix():
    from thfm_synth.plan.planner import no_background_error

    cfg = SimpleNamespace(background=SimpleNamespace(kind_weights={"hdri": 1.0, "scene": 0.0, "sky": 1.0}))
    empty = SimpleNamespace(by_kind={"hdris": [], "scenes": [], "skies": []})
    what, fix = no_background_error(cfg, empty)  # --no-builtin and no backgrounds: no sky to weight
    assert "no HDRIs, scenes or skies" in what and "sky" not in fix.replace("skies", "")
    assert "--manifest" in fix and "--no-builtin" in fix
    scenes = SimpleNamespace(by_kind={"hdris": [], "scenes": ["s"], "skies": []})
    what, fix = no_background_error(cfg, scenes)
    assert "only scene" in what and fix.startswith("give scene a weight > 0")


ODD = {  # our joint -> an arbitrary rig's bone
    "Hips": "jnt_root",
    "LowerBack": "jnt_sp0",
    "Spine1": "jnt_sp1",
    "Neck": "jnt_nk",
    "Head": "jnt_hd",
    **{f"{side}{j}": f"jnt_{side[0].lower()}_{k}" for side in ("Left", "Right") for k, j in enumerate(
        ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot"))},
}  # fmt: skip


def test_bone_map_maps_an_unknown_rig(tmp_path):
    from thfm_synth.assets.characters.rigs import load_bone_map, map_rig

    bones = list(ODD.values()) + ["jnt_tail"]
    with pytest.raises(UserError) as err:  # without a map: their bones, the required ones, and the map format
        map_rig(bones, source="odd.fbx")
    msg = str(err.value)
    assert "jnt_tail" in msg and "left forearm" in msg and "--bone-map" in msg and "OurJoint: their_bone" in msg
    f = tmp_path / "map.yaml"
    f.write_text("".join(f"{k}: {v}\n" for k, v in ODD.items()))
    m = map_rig(bones, source="odd.fbx", bone_map=load_bone_map(f))
    assert m.rig == "custom" and m.to_canonical == {v: k for k, v in ODD.items()} and not m.missing
    # a map may fix only what a table lacks: a mixamo rig whose neck is called something else
    mixamo = ["mixamorig:" + b for b in ("Hips", "Spine", "Spine1", "Spine2", "Throat", "Head")] + [
        f"mixamorig:{s}{j}" for s in ("Left", "Right") for j in ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot")
    ]  # fmt: skip
    with pytest.raises(UserError, match="Neck"):
        map_rig(mixamo, "mixamo")
    m = map_rig(mixamo, "mixamo", bone_map={"Neck": "Throat"})
    assert m.rig == "mixamo+map" and m.to_canonical["mixamorig:Throat"] == "Neck" and not m.missing
    # a partial map names what is still unmapped; bad maps are one line each
    with pytest.raises(UserError, match="still unmapped: .*LeftFoot"):
        map_rig(bones, bone_map={k: v for k, v in ODD.items() if k != "LeftFoot"})
    with pytest.raises(UserError, match="lacks: jnt_nope"):
        map_rig(bones, bone_map={**ODD, "LeftFoot": "jnt_nope"})
    f.write_text("Pelvis: jnt_root\n")
    with pytest.raises(UserError, match="Pelvis is not one of our joints"):
        load_bone_map(f)


def test_a_files_own_bone_map_wins(tmp_path):
    d = folder(tmp_path, ["odd.fbx", "plain.fbx"])
    (d / "odd.bonemap.yaml").write_text("Hips: jnt_root\n")
    seen = {}

    def imp(path, out, rig="auto", height_m=None, bone_map=None):
        seen[Path(path).name] = bone_map
        return fake_importer([])(path, out, rig, height_m, bone_map)

    import_folder(d, tmp_path / "lib", licence="CC0-1.0", bone_map={"Hips": "pelvis"}, importer=imp)
    assert seen == {"odd.fbx": {"Hips": "jnt_root"}, "plain.fbx": {"Hips": "pelvis"}}
    entries = {e.id: e for e in load_manifest(tmp_path / "lib" / "manifest.yaml").manifest.characters}
    assert entries["odd"].params["import"]["bone_map"] == {"Hips": "jnt_root"}


def test_unknown_licence_imports_only_when_allowed(tmp_path):
    d = folder(tmp_path, ["a.fbx"])
    r = import_folder(d, tmp_path / "lib", allow_unknown_licence=True, importer=fake_importer([]))
    assert r.ok and [e.licence for e in load_manifest(tmp_path / "lib" / "manifest.yaml").manifest.characters] == [
        "UNKNOWN"
    ]


def test_cli_bad_bone_map_is_one_line_before_any_import(tmp_path):
    d = folder(tmp_path, ["a.fbx"])
    (tmp_path / "map.yaml").write_text("Pelvis: root\n")
    for cmd in (["import-characters", str(d)], ["import-character", str(d / "a.fbx")]):
        p = run_cli("assets", *cmd, "--out", str(tmp_path / "lib"), "--bone-map", str(tmp_path / "map.yaml"))
        assert p.returncode == 1 and "Pelvis is not one of our joints" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "lib").exists()
