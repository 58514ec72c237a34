import shutil
from pathlib import Path

import pytest
import yaml

from thfm_synth.assets.library import load_library
from thfm_synth.assets.manifest import Manifest, dump_manifest, file_sha256, load_manifest
from thfm_synth.assets.scan import scan
from thfm_synth.assets.validate import validate
from thfm_synth.errors import UserError

from conftest import REPO, run_cli


@pytest.fixture
def scanned_copy(tmp_path, shared_assets):
    """A private copy of a few shared assets and its manifest, safe to corrupt."""
    lib = tmp_path / "lib"
    (lib / "mocap").mkdir(parents=True)
    (lib / "hdri").mkdir()
    (lib / "characters").mkdir()
    for name in ("02_01.bvh", "09_01.bvh", "README.md"):
        shutil.copy(shared_assets / "mocap/cmu" / name, lib / "mocap" / name)
    shutil.copy(shared_assets / "hdri/venice_sunset_1k.hdr", lib / "hdri")
    shutil.copy(shared_assets / "hdri/LICENSE.md", lib / "hdri")
    for name in ("Smooth_Male_Casual.fbx", "LICENSE.md"):
        shutil.copy(shared_assets / "characters" / name, lib / "characters")
    out = tmp_path / "manifest.yaml"
    out.write_text(dump_manifest(scan(lib, tmp_path).manifest))
    return lib, out


def test_scan_classifies_the_shared_assets(shared_assets, tmp_path):
    m = scan(shared_assets, tmp_path).manifest
    assert (len(m.motions), len(m.hdris), len(m.characters), len(m.scenes)) == (27, 5, 2, 3)
    walk = next(e for e in m.motions if e.id == "cmu-02_01")
    assert walk.fps == 120.0 and walk.num_frames == 343 and walk.skeleton == "cmu_mb" and "walk" in walk.tags
    assert {e.licence for e in m.hdris + m.characters + m.scenes} == {"CC0-1.0"}
    assert {e.licence for e in m.motions} == {"CMU-Mocap-Terms"}
    assert all(e.rig == "quaternius" for e in m.characters)
    kit = next(e for e in m.scenes if e.format == "kit")
    assert kit.scene_type == "room" and kit.path.endswith("kenney_furniture_kit")
    assert (m.hdris[0].width, m.hdris[0].height) == (1024, 512)


def test_committed_shared_manifest_is_current_and_valid(shared_assets, shared_manifest):
    count, problems = validate(shared_manifest)
    assert count == 37 and problems == []
    committed = load_manifest(REPO / "assets_manifest" / "shared_test_assets.yaml").manifest
    assert committed.root == "../../shared/assets" and committed.description.startswith("scanned from ../../shared")
    count, problems = validate(REPO / "assets_manifest" / "builtin.yaml")
    assert count >= 30 and problems == []


def test_validate_reports_checksum_missing_licence_and_corruption(scanned_copy):
    lib, manifest = scanned_copy
    assert validate(manifest)[1] == []
    # one flipped byte in a BVH, a deleted HDRI, a truncated character, an unknown licence
    bvh = lib / "mocap" / "02_01.bvh"
    data = bytearray(bvh.read_bytes())
    data[5000] ^= 0x01
    bvh.write_bytes(bytes(data))
    (lib / "hdri" / "venice_sunset_1k.hdr").unlink()
    fbx = lib / "characters" / "Smooth_Male_Casual.fbx"
    fbx.write_bytes(b"not an fbx")
    raw = yaml.safe_load(manifest.read_text())
    raw["motions"][1]["licence"] = "UNKNOWN"
    manifest.write_text(yaml.safe_dump(raw))
    count, problems = validate(manifest)
    text = "\n".join(problems)
    assert f"{bvh}: sha256 mismatch" in text
    assert "venice_sunset_1k.hdr: missing" in text
    assert f"{fbx} is not an FBX file" in text
    assert "mocap-09_01" in text and "licence is 'UNKNOWN'" in text
    assert all("fix" in p and "\n" not in p for p in problems)
    proc = run_cli("assets", "validate", manifest)
    assert proc.returncode == 1 and "sha256 mismatch" in proc.stdout


def test_library_rejects_missing_files_and_duplicate_ids(scanned_copy, tmp_path):
    lib, manifest = scanned_copy
    (lib / "mocap" / "09_01.bvh").unlink()
    with pytest.raises(UserError, match="09_01.bvh is missing"):
        load_library([manifest])
    dup = tmp_path / "dup.yaml"
    builtin = load_manifest(REPO / "assets_manifest" / "builtin.yaml").manifest
    dup.write_text(dump_manifest(Manifest(name="dup", skies=builtin.skies[:1])))
    with pytest.raises(UserError, match="appears in both"):
        load_library([dup])


def test_malformed_manifests_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmotions:\n  - id: a\n    sha256: 12\n")
    with pytest.raises(UserError) as err:
        load_manifest(bad)
    assert str(bad) in err.value.one_line() and "motions.0.sha256" in err.value.one_line()
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_manifest(bad)


def test_cli_scan_then_validate(shared_assets, tmp_path):
    out = tmp_path / "m.yaml"
    proc = run_cli("assets", "scan", shared_assets, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "27 motions" in proc.stdout
    proc = run_cli("assets", "validate", out)
    assert proc.returncode == 0 and "0 problem(s)" in proc.stdout
    assert load_manifest(out).root == shared_assets.resolve()
    # nothing records the folder as an absolute path: a committed manifest must not name the machine
    text, m = out.read_text(), load_manifest(out).manifest
    assert not Path(m.root).is_absolute() and m.description == f"scanned from {m.root} (relative to this file)"
    assert str(shared_assets.resolve()) not in text.replace(m.root, "") and str(tmp_path) not in text
    entry = load_manifest(out).manifest.hdris[0]
    assert file_sha256(shared_assets / entry.path) == entry.sha256


def test_committed_builtin_manifest_is_generated():
    from thfm_synth.assets.builtin import builtin_yaml

    assert (REPO / "assets_manifest" / "builtin.yaml").read_text() == builtin_yaml()
