"""Bad MakeHuman input is a one-line error and writes nothing; no folder -> the procedural look;
the texture store beside baked characters is content-addressed and verified."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from thfm_synth.assets.characters import anny_body, build_characters, load_character
from thfm_synth.assets.characters.appearance import sample_makehuman_appearance
from thfm_synth.assets.characters.makehuman.assets import AssetFolder
from thfm_synth.assets.characters.textures import resolve_texture, verify_folder
from thfm_synth.errors import UserError

SEED = 3


def _mirror(src, dst, replace: dict):
    """dst: a tree of symlinks to src's files, except `replace` (relative path -> bytes)."""
    for p in src.rglob("*"):
        if p.is_file():
            rel = p.relative_to(src).as_posix()
            q = dst / rel
            q.parent.mkdir(parents=True, exist_ok=True)
            if rel in replace:
                q.write_bytes(replace[rel])
            else:
                q.symlink_to(p)
    return dst


def _choices(shared_makehuman):
    rng = np.random.default_rng([SEED, 0])
    phen = anny_body.sample_phenotype(rng, "adult")
    return sample_makehuman_appearance(rng, phen, AssetFolder.get(shared_makehuman))


def _corrupt_cases(mh, app):
    outfit = f"clothes/{app['outfit']['asset']}/{app['outfit']['asset']}"
    mhclo = (mh / f"{outfit}.mhclo").read_text().splitlines()
    at = mhclo.index("verts 0") + 1
    mhclo[at] = "99999 " + " ".join(mhclo[at].split()[1:])
    obj = (mh / f"{outfit}.obj").read_bytes()
    skin_tex = AssetFolder.get(mh).material(AssetFolder.get(mh).skins[app["skin"]["asset"]].mhmat).maps["diffuse"]
    return {
        "hm08": ({f"{outfit}.mhclo": ("\n".join(mhclo) + "\n").encode()}, "hm08"),
        "obj": ({f"{outfit}.obj": obj[: len(obj) // 2]}, ".obj"),
        "texture": (
            {skin_tex.relative_to(mh).as_posix(): b"\x89PNG\r\n\x1a\nnot really a png" * 10},
            "cannot be read as an image",
        ),
    }


@pytest.mark.parametrize("case", ["hm08", "obj", "texture"])
def test_corrupt_asset_is_a_one_line_error_and_nothing_is_written(shared_makehuman, tmp_path, monkeypatch, case):
    app = _choices(shared_makehuman)
    replace, expect = _corrupt_cases(shared_makehuman, app)[case]
    mh = _mirror(shared_makehuman, tmp_path / "mh", replace)
    monkeypatch.setenv("THFM_MAKEHUMAN", str(mh))
    out = tmp_path / "out"
    with pytest.raises(UserError) as exc:
        build_characters(1, SEED, out)
    msg = exc.value.one_line()
    assert expect in msg and "\n" not in msg and "fix:" in msg
    assert next(iter(replace)).split("/")[-1] in msg  # names the file
    assert not out.exists() or not any(out.rglob("*"))


def test_no_makehuman_folder_keeps_the_procedural_look_with_one_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("THFM_MAKEHUMAN", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(anny_body, "_WARNED", False)
    c = anny_body.bake_anny(SEED, 0)
    again = anny_body.bake_anny(SEED, 1)
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "thfm-synth assets fetch makehuman" in err and err.count("\n") == 1
    for ch in (c, again):
        assert ch.meta["params"]["look"] == "procedural" and "makehuman" not in ch.meta
        assert not ch.textures and all("base_color_map" not in m for m in ch.materials)
    assert anny_body.look_tag() == "proc"
    monkeypatch.setenv("THFM_MAKEHUMAN", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="THFM_MAKEHUMAN"):
        anny_body.bake_anny(SEED, 0)


def test_texture_store_is_content_addressed_shared_and_verified(shared_makehuman, tmp_path, monkeypatch):
    monkeypatch.setenv("THFM_MAKEHUMAN", str(shared_makehuman))
    build_characters(2, SEED, tmp_path / "lib")
    store = tmp_path / "lib" / "textures"
    files = sorted(store.iterdir())
    assert files and all(hashlib.sha256(f.read_bytes()).hexdigest() == f.stem for f in files)
    refs = verify_folder(tmp_path / "lib")
    assert refs["characters"] == 2 and refs["verified"] == refs["references"] >= 10
    # no absolute path anywhere in the materials
    c = load_character(tmp_path / "lib" / "anny-3-00000.npz")
    assert str(shared_makehuman) not in str(c.materials) and "/" + "work" not in str(c.materials)
    # the library folder moves as a whole
    shutil.copytree(tmp_path / "lib", tmp_path / "moved")
    assert verify_folder(tmp_path / "moved")["verified"] == refs["verified"]
    ref = next(m["base_color_map"] for m in c.materials if m.get("base_color_map"))
    moved = tmp_path / "moved" / "anny-3-00000.npz"
    assert resolve_texture(moved, ref) == (tmp_path / "moved" / ref["path"]).resolve()
    (tmp_path / "moved" / ref["path"]).write_bytes(b"tampered")
    with pytest.raises(UserError, match="does not match its sha256"):
        resolve_texture(moved, ref)
    (tmp_path / "moved" / ref["path"]).unlink()
    with pytest.raises(UserError, match="is missing") as exc:
        verify_folder(tmp_path / "moved")
    assert "textures/ folder" in exc.value.one_line()
