"""CMU downloader against a local HTTP server serving shared/assets/mocap/cmu."""

from __future__ import annotations

import hashlib

import pytest

from http_testserver import serve
from motion_testdata import CMU_DIR, needs_cmu
from thfm_synth.errors import UserError
from thfm_synth.assets.motion.fetch import CMU_INDEX, FLAT_LAYOUT, CmuClip, fetch_cmu

pytestmark = needs_cmu


@pytest.fixture()
def server():
    with serve(CMU_DIR) as served:
        yield served


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_index_matches_the_local_copies():
    local = {p.stem: p for p in CMU_DIR.glob("*.bvh")}
    assert {c.clip for c in CMU_INDEX} == set(local)
    for c in CMU_INDEX:
        assert c.size == local[c.clip].stat().st_size and c.sha256 == _sha(local[c.clip])


def test_download_verify_and_records(server, tmp_path):
    url, handler = server
    seen = []
    records = fetch_cmu(
        tmp_path, url, ["09_05", "02_03.bvh"], layout=FLAT_LAYOUT, on_record=seen.append, with_activity=True
    )
    assert [r.id for r in records] == ["cmu-09_05", "cmu-02_03"] and seen == records
    for r in records:
        clip = r.id.removeprefix("cmu-")
        assert (tmp_path / f"{clip}.bvh").read_bytes() == (CMU_DIR / f"{clip}.bvh").read_bytes()
        assert r.sha256 == _sha(CMU_DIR / f"{clip}.bvh") and r.fps == 120.0 and "run" in r.tags
        assert r.activity and len(r.activity) == 2
        d = r.as_dict()
        assert d["path"] == str(tmp_path / f"{clip}.bvh") and isinstance(d["tags"], list)
    assert records[0].num_frames == 143  # 144 declared, minus the T-pose frame
    assert not list(tmp_path.glob(".*.part"))
    # a second run verifies the files and downloads nothing
    handler.log.clear()
    again = fetch_cmu(tmp_path, url, ["09_05"], layout=FLAT_LAYOUT)
    assert handler.log == [] and again[0].sha256 == records[0].sha256


def test_resumes_a_partial_download(server, tmp_path):
    url, handler = server
    full = (CMU_DIR / "09_11.bvh").read_bytes()
    (tmp_path / ".09_11.bvh.part").write_bytes(full[:50_000])
    records = fetch_cmu(tmp_path, url, ["09_11"], layout=FLAT_LAYOUT)
    assert handler.log == [("/09_11.bvh", "bytes=50000-")]
    assert (tmp_path / "09_11.bvh").read_bytes() == full and records[0].sha256 == _sha(CMU_DIR / "09_11.bvh")
    assert not (tmp_path / ".09_11.bvh.part").exists()


def test_server_without_range_support_restarts(server, tmp_path):
    url, handler = server
    handler.honour_range = False
    full = (CMU_DIR / "09_01.bvh").read_bytes()
    (tmp_path / ".09_01.bvh.part").write_bytes(b"garbage" * 100)
    fetch_cmu(tmp_path, url, ["09_01"], layout=FLAT_LAYOUT)
    assert (tmp_path / "09_01.bvh").read_bytes() == full


def test_checksum_mismatch_is_a_clear_error(server, tmp_path):
    url, _ = server
    bad = [CmuClip("09_05", "0" * 64, None, ("run",))]
    with pytest.raises(UserError) as info:
        fetch_cmu(tmp_path, url, ["09_05"], layout=FLAT_LAYOUT, index=bad)
    msg = str(info.value)
    assert "checksum mismatch" in msg and "09_05" in msg and "\n" not in msg and "fix:" in msg
    assert not (tmp_path / "09_05.bvh").exists() and not (tmp_path / ".09_05.bvh.part").exists()
    # a corrupted existing file is replaced by a verified download
    (tmp_path / "09_05.bvh").write_bytes(b"corrupt")
    fetch_cmu(tmp_path, url, ["09_05"], layout=FLAT_LAYOUT)
    assert (tmp_path / "09_05.bvh").read_bytes() == (CMU_DIR / "09_05.bvh").read_bytes()


def test_missing_clip_and_unreachable_server(server, tmp_path):
    url, _ = server
    with pytest.raises(UserError, match="HTTP 404"):
        fetch_cmu(tmp_path, url, ["99_99"], layout=FLAT_LAYOUT)
    with pytest.raises(UserError, match="downloading .* failed"):
        fetch_cmu(tmp_path, "http://127.0.0.1:9", ["09_05"], layout=FLAT_LAYOUT, timeout=2)


def test_default_layout_uses_subject_folders(server, tmp_path):
    url, handler = server
    with pytest.raises(UserError, match="404"):
        fetch_cmu(tmp_path, url, ["09_05"])
    assert handler.log[-1][0] == "/09/09_05.bvh"
