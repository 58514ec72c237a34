"""`thfm-synth assets fetch test-assets` against a local HTTP server, and the committed list of test assets
against the copy the CI machines hold."""

from __future__ import annotations

import hashlib
import re
import urllib.parse

import numpy as np
import pytest

from thfm_synth.assets import testassets
from thfm_synth.assets.manifest import load_manifest
from thfm_synth.errors import UserError

from conftest import REPO, run_cli
from http_testserver import serve

HEADER = "path\tbytes\tsha256\turl\tlicence\tnote\n"
# Notes written by hand beside the shared copy: no public source; the fetcher writes its own (url `generated`)
HAND_WRITTEN = {
    "README.md",
    "mocap/cmu/README.md",
    "hdri/LICENSE.md",
    "scenes/LICENSE.md",
    "characters/LICENSE.md",
    "makehuman/README.md",
    "makehuman/MANIFEST.tsv",
    "makehuman/MANIFEST.json",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def source(tmp_path):
    """Three files of random bytes in nested folders, served on 127.0.0.1, and their list."""
    rng = np.random.default_rng(18)
    files = {"mocap/cmu/01_01.bvh": 3_000, "hdri/sky_1k.hdr": 300_000, "makehuman/skins/textures/a b.png": 40_000}
    root = tmp_path / "source"
    for rel, size in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.bytes(size))
    with serve(root) as (url, handler):
        rows = [
            f"{rel}\t{size}\t{_sha((root / rel).read_bytes())}\t{url}/{urllib.parse.quote(rel)}\tCC0-1.0\tnote {i}"
            for i, (rel, size) in enumerate(files.items())
        ]
        rows.append("hdri/LICENSE.md\t-\t-\tgenerated\tCC0-1.0\tTest HDRIs")
        listing = tmp_path / "list.tsv"
        listing.write_text("# a test list\n" + HEADER + "\n".join(rows) + "\n")
        yield root, listing, handler


def test_fetch_lays_out_verifies_and_keeps_verified_files(source, tmp_path):
    root, listing, handler = source
    dest = tmp_path / "dest"
    result = testassets.fetch_test_assets(dest, list_path=listing, progress=False)
    s = result.summary
    assert (s.files, s.downloaded, s.present, s.failed) == (3, 3, 0, {})
    assert s.bytes == 343_000 and "3 downloaded" in s.lines()[0]
    for rel in ("mocap/cmu/01_01.bvh", "hdri/sky_1k.hdr", "makehuman/skins/textures/a b.png"):
        assert (dest / rel).read_bytes() == (root / rel).read_bytes()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part") or ".tmp" in p.name]
    assert (dest / testassets.MARKER).is_file()  # complete: the marker, written last
    # the generated note lists the files of its folder with their licence (the asset scanner reads it)
    assert result.notes == ["hdri/LICENSE.md"]
    note = (dest / "hdri/LICENSE.md").read_text()
    assert note.startswith("# Test HDRIs") and "CC0 1.0 Universal" in note
    assert "| sky_1k.hdr | 300,000 |" in note and "01_01" not in note
    # a second run verifies what is there and downloads nothing
    handler.log.clear()
    again = testassets.fetch_test_assets(dest, list_path=listing, progress=False).summary
    assert handler.log == [] and (again.downloaded, again.present) == (0, 3)
    # a damaged file is downloaded again
    (dest / "hdri/sky_1k.hdr").write_bytes(b"damaged")
    again = testassets.fetch_test_assets(dest, list_path=listing, progress=False).summary
    assert (again.downloaded, again.present) == (1, 2) and handler.log == [("/hdri/sky_1k.hdr", None)]
    assert (dest / "hdri/sky_1k.hdr").read_bytes() == (root / "hdri/sky_1k.hdr").read_bytes()


def test_resumes_a_partial_download_with_a_range_request(source, tmp_path):
    root, listing, handler = source
    dest = tmp_path / "dest"
    full = (root / "hdri/sky_1k.hdr").read_bytes()
    (dest / "hdri").mkdir(parents=True)
    (dest / "hdri/.sky_1k.hdr.part").write_bytes(full[:120_000])
    s = testassets.fetch_test_assets(dest, list_path=listing, only=["hdri"], progress=False).summary
    assert handler.log == [("/hdri/sky_1k.hdr", "bytes=120000-")]
    assert (dest / "hdri/sky_1k.hdr").read_bytes() == full and not (dest / "hdri/.sky_1k.hdr.part").exists()
    assert (s.files, s.downloaded) == (1, 1) and not (dest / "mocap").exists()
    assert not (dest / testassets.MARKER).exists()  # a part of the list only
    # a server that ignores Range sends the whole file: the partial one is replaced, not appended to
    handler.honour_range = False
    (dest / "hdri/sky_1k.hdr").unlink()
    (dest / "hdri/.sky_1k.hdr.part").write_bytes(b"x" * 1000)
    testassets.fetch_test_assets(dest, list_path=listing, only=["hdri/*.hdr"], progress=False)
    assert (dest / "hdri/sky_1k.hdr").read_bytes() == full


def test_a_corrupt_file_is_refused_with_a_one_line_error_and_nothing_half_written(source, tmp_path):
    root, listing, _ = source
    (root / "hdri/sky_1k.hdr").write_bytes(b"not the listed file" * 100)  # the server now sends other bytes
    dest = tmp_path / "dest"
    proc = run_cli("assets", "fetch", "test-assets", "--dest", dest, "--list", listing)
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("thfm-synth: error: 1 of 3 test-asset files could not be fetched")
    assert "hdri/sky_1k.hdr: checksum mismatch" in error and "(fix:" in error
    assert f"failed: {dest / 'hdri/sky_1k.hdr'}: checksum mismatch" in proc.stderr
    assert "3 files: 2 downloaded" in proc.stdout and "1 failed" in proc.stdout
    assert not (dest / "hdri/sky_1k.hdr").exists() and not (dest / "hdri/.sky_1k.hdr.part").exists()
    assert (dest / "mocap/cmu/01_01.bvh").read_bytes() == (root / "mocap/cmu/01_01.bvh").read_bytes()
    assert not (dest / "hdri/LICENSE.md").exists()  # notes list only verified files: none here
    assert not (dest / testassets.MARKER).exists()


def test_bad_lists_and_selections_are_one_line_errors(source, tmp_path):
    _, listing, _ = source
    bad = tmp_path / "bad.tsv"
    for body, match in (
        ("../x.bin\t3\t" + "0" * 64 + "\thttp://h/x\tCC0-1.0\tn", "line 2: .* not a relative path"),
        ("x.bin\tthree\t" + "0" * 64 + "\thttp://h/x\tCC0-1.0\tn", "line 2: expected a size"),
        ("x.bin\t3\tCC0-1.0", "line 2: 3 tab-separated fields"),
    ):
        bad.write_text(HEADER + body + "\n")
        with pytest.raises(UserError, match=match) as info:
            testassets.read_list(bad)
        assert "\n" not in str(info.value) and str(bad) in str(info.value)
    with pytest.raises(UserError, match="matches no file"):
        testassets.fetch_test_assets(tmp_path / "d", list_path=listing, only=["nothing/*"], progress=False)
    proc = run_cli("assets", "fetch", "cmu")
    assert proc.returncode == 2 and "needs --dest" in proc.stderr


def test_the_tests_find_the_assets_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(testassets.ENV, str(tmp_path / "absent"))
    assert testassets.find_test_assets() is None
    reason = testassets.missing_reason()
    assert testassets.FETCH_COMMAND in reason and str(tmp_path / "absent") in reason and testassets.ENV in reason
    (tmp_path / "absent").mkdir()  # an explicit folder counts as it is
    assert testassets.find_test_assets() == tmp_path / "absent" == testassets.default_dest()


def test_the_default_folder_counts_once_a_fetch_completed_it(source, tmp_path, monkeypatch):
    _, listing, _ = source
    monkeypatch.delenv(testassets.ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(testassets, "SHARED", tmp_path / "no-shared")
    default = testassets.default_dest()
    assert default == tmp_path / "home/.cache/thfm-synth/test-assets"
    # an interrupted fetch: the folder exists, but the tests skip (saying so) rather than fail on missing files
    testassets.fetch_test_assets(list_path=listing, only=["hdri"], progress=False)
    assert default.is_dir() and testassets.find_test_assets() is None
    assert "(incomplete: a fetch did not finish)" in testassets.missing_reason()
    testassets.fetch_test_assets(list_path=listing, progress=False)
    assert testassets.find_test_assets() == default and (default / testassets.MARKER).is_file()


def test_committed_list_is_every_shared_file_with_its_source(shared_assets):
    rows = testassets.read_list()
    files = [r for r in rows if not r.generated]
    assert len(files) == 375 and {r.path for r in rows if r.generated} <= HAND_WRITTEN
    for r in files:
        data = (shared_assets / r.path).read_bytes()
        assert (len(data), _sha(data)) == (r.size, r.sha256), r.path
        assert re.fullmatch(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+", r.url), r.url
        assert r.licence in testassets.LICENCE_TEXT
    on_disk = {p.relative_to(shared_assets).as_posix() for p in shared_assets.rglob("*") if p.is_file()}
    assert on_disk - {r.path for r in files} == HAND_WRITTEN & on_disk
    # the MakeHuman files come from the repository, commit and path their own MANIFEST.tsv records
    manifest = {}
    for line in (shared_assets / "makehuman/MANIFEST.tsv").read_text().splitlines()[1:]:
        file, _, _, repo, commit, path, _ = line.split("\t")
        manifest[f"makehuman/{file}"] = f"https://raw.githubusercontent.com/{repo}/{commit}/{urllib.parse.quote(path)}"
    assert {r.path: r.url for r in files if r.path.startswith("makehuman/")} == manifest


def test_fetched_assets_scan_like_the_shared_ones(shared_assets, tmp_path):
    """A fetched copy (a subset, from a local mirror of the shared folder) gives the committed manifest's
    entries: the generated notes carry the licences and the motion tags the scanner reads."""
    from thfm_synth.assets.scan import scan

    dest = tmp_path / "fetched"
    with serve(shared_assets) as (url, _):
        proc = run_cli(
            "assets",
            "fetch",
            "test-assets",
            "--dest",
            dest,
            "--base-url",
            url,
            "--only",
            "mocap/cmu/0[29]_0*",
            "--only",
            "hdri/venice*",
            "--only",
            "characters",
            "--only",
            "scenes",
        )
    assert proc.returncode == 0, proc.stderr
    assert "0 failed" in proc.stdout and f"export {testassets.ENV}={dest}" in proc.stdout
    fetched = {e.id: e for _, e in scan(dest, tmp_path).manifest.entries()}
    committed = {e.id: e for _, e in load_manifest(REPO / "assets_manifest/shared_test_assets.yaml").manifest.entries()}
    assert {"cmu-02_01", "cmu-09_05", "hdri-venice_sunset_1k", "characters-smooth_male_casual"} <= set(fetched)
    assert len(fetched) == 7 + 1 + 2 + 3
    for aid, entry in fetched.items():
        want = committed[aid].model_dump(exclude={"source"})
        assert entry.model_dump(exclude={"source"}) == want, aid


def test_many_failures_stop_early_instead_of_one_line_per_file(tmp_path, capsys):
    """No network (here: nothing listening on the port) ends after `max_failures` lines, not one per file."""
    from thfm_synth.download import Download, download_all

    items = [Download(path=f"x/{i}.bin", url=f"http://127.0.0.1:9/{i}.bin", sha256="0" * 64, size=10) for i in range(6)]
    s = download_all(items, tmp_path / "d", workers=1, timeout=2, progress=False, max_failures=2)
    assert len(s.failed) == 2 and s.not_tried == 4 and s.downloaded == 0
    assert "2 failed, 4 not tried (stopped after 2 failures)" in s.lines()[0]
    assert [line.startswith("failed: ") for line in capsys.readouterr().err.splitlines()] == [True, True]
