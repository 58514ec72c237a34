"""Nothing wrong becomes training data (issue 12), part 1: the asset files a render reads are the ones
their manifest names, whole, and inside the manifest's folder.

Reproductions: a wrong HDRI sha256 rendered with rc 0 and false provenance; an entry reaching
`../../../../etc/passwd` validated clean and rendered magenta; a Radiance HDRI truncated to a third
validated clean and rendered black; zstd/gzip .blend files (Blender 5's default) refused; a config's
`manifests:` entry could point anywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import yaml

from thfm_synth.assets import decode, probes
from thfm_synth.assets.integrity import AssetMismatch, verify_video_assets
from thfm_synth.assets.library import load_library
from thfm_synth.assets.manifest import load_manifest
from thfm_synth.assets.validate import validate
from thfm_synth.config import load_config
from thfm_synth.digests import DigestCache, file_sha256
from thfm_synth.errors import ConfigError, UserError
from thfm_synth.plan.planner import make_plan

from conftest import run_cli

HDRI = "hdri/venice_sunset_1k.hdr"
TINY = (
    "preset: preview\nvideo: {width: 64, height: 64, num_frames: 1}\nrender: {samples: 1, denoise: false}\n"
    "background: {kind_weights: {hdri: 1.0, scene: 0.0, sky: 0.0}}\n"
)


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


def hdri_manifest(folder: Path, hdr: Path, sha256: str | None = None, path: str | None = None) -> Path:
    entry = {
        "id": "test-hdri",
        "path": hdr.relative_to(folder).as_posix() if path is None else path,
        "sha256": sha256 or file_sha256(hdr),
        "licence": "CC0-1.0",
        "source": "test",
        "format": "hdr",
        "width": 1024,
        "height": 512,
    }
    out = folder / "hdri.yaml"
    out.write_text(yaml.safe_dump({"schema_version": 1, "name": "hdri-test", "hdris": [entry]}))
    return out


@pytest.fixture
def hdri_lib(tmp_path, shared_assets):
    (tmp_path / "hdri").mkdir()
    hdr = tmp_path / HDRI
    shutil.copy(shared_assets / HDRI, hdr)
    return tmp_path, hdr


def plan_file(folder: Path, manifest: Path) -> Path:
    cfg = folder / "tiny.yaml"
    cfg.write_text(TINY)
    plan = folder / "plan.parquet"
    proc = run_cli("plan", "--config", cfg, "--manifest", manifest, "--num-videos", "1", "--out", plan)
    assert proc.returncode == 0, proc.stderr
    return plan


# ----------------------------------------------------------------------------- paths stay inside


def test_a_manifest_entry_may_not_leave_its_root(hdri_lib):
    folder, hdr = hdri_lib
    passwd = Path("/etc/passwd")
    bad = hdri_manifest(folder, hdr, sha256=file_sha256(passwd), path="../../../../etc/passwd")
    with pytest.raises(ConfigError, match="leaves the manifest's root"):
        load_manifest(bad)
    for args in (
        ("assets", "validate", bad),
        ("plan", "--manifest", bad, "--num-videos", "1", "--out", folder / "p.parquet"),
    ):
        proc = run_cli(*args)
        assert proc.returncode != 0
        line = one_line(proc.stderr)
        assert "etc/passwd" in line and "leaves the manifest's root" in line
    assert not (folder / "p.parquet").exists()
    for path in ("/etc/passwd", "hdri/../../x.hdr", ""):
        with pytest.raises(ConfigError):
            load_manifest(hdri_manifest(folder, hdr, path=path))
    assert load_manifest(hdri_manifest(folder, hdr, path="hdri/./venice_sunset_1k.hdr"))  # inside: fine


def test_a_config_manifest_path_may_not_leave_the_config_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "lib.yaml").write_text("name: x\n")
    for bad in ("../lib.yaml", "/etc/passwd", "../../../../etc/passwd"):
        cfg = tmp_path / "cfg" / "c.yaml"
        cfg.write_text(f"preset: preview\nassets: {{manifests: [{bad!r}]}}\n")
        with pytest.raises(ConfigError, match="leaves the folder") as err:
            load_config(config_file=cfg)
        assert "\n" not in err.value.one_line() and bad in err.value.one_line()
    (tmp_path / "cfg" / "sub").mkdir()
    (tmp_path / "cfg" / "sub" / "lib.yaml").write_text("name: x\n")
    cfg.write_text("preset: preview\nassets: {manifests: [sub/lib.yaml]}\n")
    assert load_config(config_file=cfg).assets.manifests == (str((tmp_path / "cfg/sub/lib.yaml").resolve()),)


# ----------------------------------------------------------------------------- digests at render time


def test_the_digest_cache_hashes_a_file_once_and_again_when_it_changes(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 1000)
    store = tmp_path / "cache" / "digests.jsonl"
    c = DigestCache(store)
    assert c.file_sha256(f) == hashlib.sha256(b"x" * 1000).hexdigest() and c.hashed == 1
    assert c.file_sha256(f) == c.file_sha256(f) and c.hashed == 1
    other = DigestCache(store)  # another worker sharing the run's cache file
    assert other.file_sha256(f) == c.file_sha256(f) and other.hashed == 0
    f.write_bytes(b"y" * 1000)  # same size: mtime/ctime change
    assert other.file_sha256(f) == hashlib.sha256(b"y" * 1000).hexdigest() and other.hashed == 1
    g = tmp_path / "b.bin"
    g.write_bytes(b"z" * 1000)
    os.replace(g, f)  # replaced by rename: a new inode
    assert DigestCache(store).file_sha256(f) == hashlib.sha256(b"z" * 1000).hexdigest()
    with open(store, "ab") as fh:
        fh.write(b'{"key": ["torn line"')  # a torn line is never trusted
    assert DigestCache(store).file_sha256(f) == hashlib.sha256(b"z" * 1000).hexdigest()


def test_a_wrong_asset_digest_fails_the_video_naming_file_and_both_digests(hdri_lib):
    folder, hdr = hdri_lib
    manifest = hdri_manifest(folder, hdr)
    cfg = load_config(config_file=None, overrides=yaml.safe_load(TINY.replace("preset: preview\n", "")))
    library = load_library([manifest])
    spec = make_plan(cfg, library, 0, 1)[0]
    read = verify_video_assets(spec, library)
    assert read["test-hdri"] == {"sha256": file_sha256(hdr), "path": str(hdr.resolve())}
    good = file_sha256(hdr)
    data = bytearray(hdr.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte deep in the pixels: the header still probes fine
    hdr.write_bytes(bytes(data))
    with pytest.raises(AssetMismatch) as err:
        verify_video_assets(spec, library, DigestCache(folder / "digests.jsonl"))
    line = err.value.one_line()
    assert str(hdr.resolve()) in line and good in line and file_sha256(hdr) in line and "\n" not in line


def test_render_one_refuses_an_asset_whose_sha256_differs(hdri_lib):
    """Was: rc 0, "QA passed", metadata.json with the manifest's (false) digest."""
    folder, hdr = hdri_lib
    wrong = "0" * 64
    plan = plan_file(folder, hdri_manifest(folder, hdr, sha256=wrong))
    out = folder / "video"
    proc = run_cli("render-one", "--plan", plan, "--index", "0", "--out", out, "--cache", folder / "cache")
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert str(hdr.resolve()) in line and wrong in line and file_sha256(hdr) in line
    assert not out.exists() and not list(folder.glob(".video.tmp-*"))


@pytest.mark.render
def test_render_one_records_the_digest_it_read_and_refuses_an_hdri_that_does_not_load(hdri_lib):
    folder, hdr = hdri_lib
    plan = plan_file(folder, hdri_manifest(folder, hdr))
    out = folder / "video"
    proc = run_cli("render-one", "--plan", plan, "--index", "0", "--out", out, "--cache", folder / "cache")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["assets"]["test-hdri"]["sha256"] == file_sha256(hdr)
    assert meta["assets"]["test-hdri"]["path"] == str(hdr.resolve())
    # A Radiance HDRI truncated to a third, listed with its own (matching) digest: was validated clean and
    # rendered black behind the person with "QA passed".
    hdr.write_bytes(hdr.read_bytes()[: hdr.stat().st_size // 3])
    manifest = hdri_manifest(folder, hdr)
    count, problems = validate(manifest)
    assert count == 1 and len(problems) == 1 and "truncated" in problems[0] and str(hdr) in problems[0]
    proc = run_cli("assets", "validate", manifest)
    assert proc.returncode == 1 and "truncated" in proc.stdout
    plan = plan_file(folder, manifest)
    proc = run_cli(
        "render-one", "--plan", plan, "--index", "0", "--out", folder / "video2", "--cache", folder / "cache"
    )
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "HDRI" in line and "did not load" in line and hdr.name in line
    assert not (folder / "video2").exists()


# ----------------------------------------------------------------------------- full decoding


def test_validate_decodes_every_file_in_full(tmp_path, shared_assets):
    hdr = tmp_path / "x.hdr"
    data = (shared_assets / HDRI).read_bytes()
    assert decode.decode_hdri(shared_assets / HDRI) == (1024, 512)
    for cut in (len(data) // 3, len(data) - 10):
        hdr.write_bytes(data[:cut])
        assert probes.hdri_size(hdr) == (1024, 512)  # the header alone says nothing is wrong
        with pytest.raises(UserError, match="truncated"):
            decode.decode_hdri(hdr)
    import numpy as np
    import OpenEXR

    exr = tmp_path / "x.exr"
    pixels = np.random.default_rng(0).uniform(0.1, 4.0, (64, 128, 3)).astype(np.float32)
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"RGB": pixels}) as f:
        f.write(str(exr))
    assert decode.decode_hdri(exr) == (128, 64)
    exr.write_bytes(exr.read_bytes()[: exr.stat().st_size // 2])
    assert probes.hdri_size(exr) == (128, 64)
    with pytest.raises(UserError, match="OpenEXR"):
        decode.decode_hdri(exr)
    fbx = shared_assets / "characters" / "Smooth_Male_Casual.fbx"
    assert decode.decode_model(fbx).startswith("binary FBX")
    cut = tmp_path / "cut.fbx"
    cut.write_bytes(fbx.read_bytes()[: fbx.stat().st_size // 2])
    assert probes.model_info(cut).rigged  # the header probe still sees a rigged character
    with pytest.raises(UserError, match="truncated"):
        decode.decode_model(cut)
    blend = shared_assets / "scenes" / "Streets_all.blend"
    assert ".blend" in decode.decode_model(blend)
    cut = tmp_path / "cut.blend"
    cut.write_bytes(blend.read_bytes()[:-5000])
    with pytest.raises(UserError, match="truncated"):
        decode.decode_model(cut)
    kit = next(p for p in (shared_assets / "scenes" / "kenney_furniture_kit").glob("*.fbx"))
    assert decode.decode_model(kit).startswith("ASCII FBX")
    cut = tmp_path / "kit.fbx"
    cut.write_bytes(kit.read_bytes()[: kit.stat().st_size // 2])
    with pytest.raises(UserError):
        decode.decode_model(cut)


def test_glb_buffers_and_accessors_must_lie_within_the_file(tmp_path):
    import numpy as np

    verts = np.zeros((3, 3), np.float32).tobytes()
    doc = {
        "asset": {"version": "2.0"},
        "buffers": [{"byteLength": len(verts)}],
        "bufferViews": [{"buffer": 0, "byteLength": len(verts)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "type": "VEC3", "count": 3}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
    }

    def glb(d: dict, binary: bytes) -> bytes:
        js = json.dumps(d).encode()
        js += b" " * (-len(js) % 4)
        body = struct.pack("<I4s", len(js), b"JSON") + js + struct.pack("<I4s", len(binary), b"BIN\x00") + binary
        return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body

    path = tmp_path / "m.glb"
    path.write_bytes(glb(doc, verts))
    assert "1 meshes" in decode.decode_model(path)
    path.write_bytes(glb(doc, verts)[:-8])
    with pytest.raises(UserError, match="truncated"):
        decode.decode_model(path)
    doc["accessors"][0]["count"] = 4
    path.write_bytes(glb(doc, verts))
    with pytest.raises(UserError, match="accessor 0"):
        decode.decode_model(path)


def test_a_bvh_with_an_absurd_root_fails_validation(tmp_path, shared_assets):
    text = (shared_assets / "mocap" / "cmu" / "02_01.bvh").read_text()
    head, motion = text.split("MOTION", 1)
    lines = motion.strip().splitlines()
    body = [ln.split() for ln in lines[2:]]
    for row in body:
        row[0] = row[1] = row[2] = "1e30"  # finite: it parses
    bad = tmp_path / "far.bvh"
    bad.write_text(head + "MOTION\n" + "\n".join(lines[:2]) + "\n" + "\n".join(" ".join(r) for r in body) + "\n")
    probes.bvh_info(bad)  # the header is fine
    with pytest.raises(UserError, match="from the origin"):
        decode.decode_bvh(bad)


# ----------------------------------------------------------------------------- compressed .blend


def test_gzip_and_zstd_blend_files_are_recognised(tmp_path, shared_assets):
    plain = (shared_assets / "scenes" / "Streets_all.blend").read_bytes()
    gz = tmp_path / "gz.blend"
    gz.write_bytes(gzip.compress(plain))
    import zstandard as zstd

    zs = tmp_path / "zs.blend"
    zs.write_bytes(zstd.ZstdCompressor(level=3).compress(plain))
    for path in (gz, zs):
        assert probes.model_info(path) == probes.ModelInfo(False, "auto")
        assert decode.decode_model(path).startswith(".blend 276")
    junk = tmp_path / "junk.blend"
    junk.write_bytes(zstd.ZstdCompressor().compress(b"not a blend file" * 100))
    with pytest.raises(UserError, match="not a .blend file"):
        probes.model_info(junk)


def test_blender5_zstd_header_is_read_without_a_zstd_decoder():
    # The first bytes of a .blend saved by Blender 5.0.1 (compression on): a zstd frame whose first
    # block stores its literals raw, so the header is read with the standard library alone.
    head = bytes.fromhex(
        "28b52ffd601905ed0600e40a424c454e44455231372d3031763035303052454e4400000000100008010000fa000000536365"
    )
    assert probes._zstd_literals_peek(head).startswith(b"BLENDER17-01v0500")


@pytest.mark.render
def test_a_scan_takes_a_blender5_compressed_blend_as_a_scene(tmp_path):
    from thfm_synth.blender.runtime import RenderRuntime

    script = tmp_path / "save.py"
    script.write_text(
        "import bpy, sys\nbpy.ops.wm.read_factory_settings(use_empty=True)\n"
        "bpy.ops.mesh.primitive_cube_add()\n"
        "bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1], compress=True)\n"
    )
    lib = tmp_path / "lib" / "room"
    lib.mkdir(parents=True)
    out = lib / "cube.blend"
    proc = RenderRuntime.detect().run_file(script, [str(out)], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_bytes()[:4] == decode.ZSTD_MAGIC
    from thfm_synth.assets.scan import scan

    result = scan(tmp_path / "lib", tmp_path)
    assert [e.id for e in result.manifest.scenes] == ["room-cube"] and not result.skipped
    assert decode.decode_model(out).startswith(".blend 0500")


def test_radiance_pixels_decode_exactly_flat_and_run_length_coded(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    px = rng.integers(1, 255, (3, 16, 4), dtype=np.uint8)
    px[..., 3] = 128 + rng.integers(-2, 3, (3, 16))
    head = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 3 +X 16\n"
    want = (px[..., :3] + 0.5) * np.ldexp(1.0, px[..., 3:].astype(int) - 136)
    flat = tmp_path / "flat.hdr"
    flat.write_bytes(head + px.tobytes())
    assert np.allclose(decode.decode_radiance(flat), want)
    rle = bytearray(head)
    for row in px:  # new-style RLE: per channel, one literal run of 8 and one repeat run of 8
        rle += bytes([2, 2, 0, 16])
        for c in range(4):
            rle += bytes([8]) + row[:8, c].tobytes() + bytes([128 + 8, row[8, c]])
    coded = tmp_path / "rle.hdr"
    coded.write_bytes(bytes(rle))
    expect = px.copy()
    expect[:, 8:] = px[:, 8:9]
    assert np.allclose(
        decode.decode_radiance(coded), (expect[..., :3] + 0.5) * np.ldexp(1.0, expect[..., 3:].astype(int) - 136)
    )
    for path in (flat, coded):
        path.write_bytes(path.read_bytes()[:-3])
        with pytest.raises(UserError, match="truncated"):
            decode.decode_radiance(path)
