"""`assets fetch makehuman` against a local server: raw files, a Git LFS batch endpoint, resumes."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading

import pytest

from thfm_synth.assets.characters.makehuman.fetch import REPOS, IndexEntry, fetch_makehuman, read_index
from thfm_synth.errors import UserError

FILES = {  # destination path -> (repository key, path in it, content, stored in LFS)
    "3dobjs/base.obj": ("makehuman", "makehuman/data/3dobjs/base.obj", b"v 0 0 0\n" * 4000, False),
    "hair/bob02/bob02.mhclo": ("assets", "base/hair/bob02/bob02.mhclo", b"name bob02\n" * 300, False),
    "hair/bob02/bob02_diffuse.png": ("assets", "base/hair/bob02/bob02_diffuse.png", bytes(range(256)) * 700, True),
    "skins/textures/x_diffuse.png": ("assets", "base/skins/textures/x_diffuse.png", b"\x89PNG" + b"7" * 90000, True),
}


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _index() -> list[IndexEntry]:
    return [IndexEntry(f, repo, path, len(data), _sha(data), lfs) for f, (repo, path, data, lfs) in FILES.items()]


class _Handler(http.server.BaseHTTPRequestHandler):
    """GitHub in miniature: /<owner>/<repo>/<commit>/<path> raw files (LFS ones as pointers),
    POST /<owner>/<repo>.git/info/lfs/objects/batch and /lfs/<oid> objects, with single ranges."""

    log: list = []
    port = 0

    def log_message(self, *args):
        pass

    def _send(self, data: bytes, content_type="application/octet-stream"):
        rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(rng.group(1)) if rng else 0
        if start >= len(data) and rng:
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def do_GET(self):
        self.log.append(("GET", self.path, self.headers.get("Range"), self.headers.get("Authorization")))
        by_oid = {_sha(d): d for _, (_, _, d, lfs) in FILES.items() if lfs}
        if self.path.startswith("/lfs/"):
            if self.headers.get("Authorization") != "RemoteAuth token":
                return self.send_error(401)
            data = by_oid.get(self.path[5:])
            return self._send(data) if data is not None else self.send_error(404)
        for repo_key, path, data, lfs in FILES.values():
            owner_repo, commit = REPOS[repo_key]
            if self.path == f"/{owner_repo}/{commit}/{path}":
                if lfs:  # what raw.githubusercontent serves for an LFS file
                    data = f"version https://git-lfs.github.com/spec/v1\noid sha256:{_sha(data)}\nsize {len(data)}\n".encode()
                return self._send(data)
        self.send_error(404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.log.append(("POST", self.path, body["operation"], len(body["objects"])))
        assert self.headers["Accept"] == "application/vnd.git-lfs+json"
        objs = [
            {
                "oid": o["oid"],
                "size": o["size"],
                "actions": {
                    "download": {
                        "href": f"http://127.0.0.1:{self.port}/lfs/{o['oid']}",
                        "header": {"Authorization": "RemoteAuth token"},
                    }
                },
            }
            for o in body["objects"]
        ]
        out = json.dumps({"transfer": "basic", "objects": objs}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.git-lfs+json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture()
def github():
    handler = type("H", (_Handler,), {"log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{handler.port}", handler
    finally:
        httpd.shutdown()


def test_fetches_raw_and_lfs_files_verifies_and_writes_a_manifest(github, tmp_path):
    url, handler = github
    seen = []
    info = fetch_makehuman(
        tmp_path, raw_base=url, lfs_base=url, index=_index(), progress=lambda done, total: seen.append((done, total))
    )
    assert info["files"] == 4 and info["downloaded"] == 4
    for f, (_, _, data, _) in FILES.items():
        assert (tmp_path / f).read_bytes() == data
    # LFS files came from the batch API's href with its header, never the raw pointer
    posts = [e for e in handler.log if e[0] == "POST"]
    assert posts == [("POST", "/makehumancommunity/makehuman-assets.git/info/lfs/objects/batch", "download", 2)]
    assert sum(1 for e in handler.log if e[1].startswith("/lfs/") and e[3] == "RemoteAuth token") == 2
    rows = {r["file"]: r for r in json.loads((tmp_path / "MANIFEST.json").read_text())}
    assert rows["3dobjs/base.obj"]["source_repo"] == "makehumancommunity/makehuman"
    assert rows["hair/bob02/bob02_diffuse.png"]["sha256"] == _sha(FILES["hair/bob02/bob02_diffuse.png"][2])
    assert (tmp_path / "MANIFEST.tsv").read_text().count("\n") == 5
    assert seen[-1][0] == seen[-1][1] == sum(len(d) for _, _, d, _ in FILES.values())
    assert not list(tmp_path.rglob(".*.part"))
    # a second run downloads nothing
    handler.log.clear()
    assert fetch_makehuman(tmp_path, raw_base=url, lfs_base=url, index=_index())["downloaded"] == 0
    assert handler.log == []


def test_resumes_a_partial_lfs_download(github, tmp_path):
    url, handler = github
    name = "skins/textures/x_diffuse.png"
    data = FILES[name][2]
    part = tmp_path / "skins" / "textures" / ".x_diffuse.png.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:40000])
    fetch_makehuman(tmp_path, raw_base=url, lfs_base=url, index=[e for e in _index() if e.file == name])
    assert (tmp_path / name).read_bytes() == data and not part.exists()
    assert [e[2] for e in handler.log if e[1].startswith("/lfs/")] == ["bytes=40000-"]


def test_checksum_mismatch_and_missing_file_are_one_line_errors(github, tmp_path):
    url, _ = github
    bad = [
        IndexEntry(
            "3dobjs/base.obj",
            "makehuman",
            "makehuman/data/3dobjs/base.obj",
            len(FILES["3dobjs/base.obj"][2]),
            "0" * 64,
            False,
        )
    ]
    with pytest.raises(UserError, match="checksum mismatch") as exc:
        fetch_makehuman(tmp_path, raw_base=url, lfs_base=url, index=bad)
    assert "\n" not in str(exc.value) and not (tmp_path / "3dobjs" / "base.obj").exists()
    assert not list(tmp_path.rglob(".*.part")) and not (tmp_path / "MANIFEST.tsv").exists()
    gone = [IndexEntry("x/y.obj", "assets", "base/x/y.obj", 10, "0" * 64, False)]
    with pytest.raises(UserError, match="HTTP 404"):
        fetch_makehuman(tmp_path, raw_base=url, lfs_base=url, index=gone)
    with pytest.raises(UserError, match="failed"):
        fetch_makehuman(tmp_path, raw_base="http://127.0.0.1:9", lfs_base="http://127.0.0.1:9", index=_index())


def test_the_index_covers_the_folder_the_characters_use(shared_makehuman):
    index = read_index()
    files = {e.file for e in index}
    for need in (
        "3dobjs/base.obj",
        "eyes/high-poly/high-poly.mhclo",
        "teeth/teeth_base/teeth_base.mhclo",
        "skins/textures/young_darkskinned_female_diffuse.png",
    ):
        assert need in files
    local = {p.relative_to(shared_makehuman).as_posix() for p in shared_makehuman.rglob("*") if p.is_file()}
    assert files <= local | {"LICENSE-CC0.txt"}
    # every skin texture is an LFS object (the full-resolution original, not the 512-px stand-in)
    assert all(e.lfs and e.size > 1_000_000 for e in index if e.file.startswith("skins/textures/"))


def test_cli_fetch_makehuman(github, tmp_path):
    url, _ = github
    # the CLI fetches the packaged index; point it at a tiny one through the module's INDEX_FILE
    idx = tmp_path / "index.tsv"
    idx.write_text(
        "file\trepo\tpath\tsize\tsha256\tlfs\n"
        + "".join(f"{e.file}\t{e.repo}\t{e.path}\t{e.size}\t{e.sha256}\t{int(e.lfs)}\n" for e in _index())
    )
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; import thfm_synth.assets.characters.makehuman.fetch as f; "
        f"f.INDEX_FILE = Path({str(idx)!r}); "
        "from thfm_synth.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "assets",
            "fetch",
            "makehuman",
            "--dest",
            str(tmp_path / "mh"),
            "--base-url",
            url,
            "--lfs-url",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 MakeHuman files verified" in proc.stdout and (tmp_path / "mh" / "MANIFEST.tsv").is_file()
