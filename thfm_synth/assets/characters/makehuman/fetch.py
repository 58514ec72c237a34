"""`thfm-synth assets fetch makehuman`: the full-resolution CC0 MakeHuman system assets, from GitHub.

What is fetched is `fetch_index.tsv` beside this module: one row per file of the asset folder
our built-in characters use (skins, 12 outfits, 6 shoes, 8 hairstyles, 12 eyebrows, 4
eyelash sets, eyes in 9 colours, teeth and the hm08 base mesh), with its source repository,
pinned commit, path there, size and sha256, and whether the repository stores it in Git LFS.

* `makehumancommunity/makehuman-assets` @ 8cf9645b (CC0 1.0 since September 2020): every
  asset file; its textures are Git-LFS objects, fetched through the LFS batch API
  (`POST <lfs_base>/<owner>/<repo>.git/info/lfs/objects/batch`, `operation: download`,
  basic transfer) and verified against the pointer's sha256 (the LFS object id);
* `makehumancommunity/makehuman` @ a8bc2d54 (assets CC0): `3dobjs/base.obj` and the eyes.

Plain files come from `<raw_base>/<owner>/<repo>/<commit>/<path>`. Every file goes through
`thfm_synth.download` (resumed with HTTP Range, sha256-verified, renamed into place),
files already present and intact are kept, a tqdm bar counts bytes, and `MANIFEST.tsv` /
`MANIFEST.json` (per-file source, commit, path, sha256) are written last, atomically. The
default destination (`makehuman/assets.py: default_dir()`) is where built-in characters look.

The index is generated from local clones of the two repositories by
`python -m thfm_synth.assets.characters.makehuman.fetch --build-index ASSETS_CLONE MAKEHUMAN_CLONE FILE_LIST`
(FILE_LIST: the relative paths wanted, one per line).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from thfm_synth.errors import UserError

INDEX_FILE = Path(__file__).with_name("fetch_index.tsv")
REPOS = {  # key -> (owner/name, commit)
    "assets": ("makehumancommunity/makehuman-assets", "8cf9645b975a98eea056b140df11a1d278da0d10"),
    "makehuman": ("makehumancommunity/makehuman", "a8bc2d54ff0ac92e78ff71431b1023eda42bf482"),
}
RAW_BASE = "https://raw.githubusercontent.com"
LFS_BASE = "https://github.com"
LFS_MEDIA = "application/vnd.git-lfs+json"
BATCH = 100  # objects per LFS batch request
FIX_NET = (
    "check the network connection (GitHub must be reachable), or copy a MakeHuman asset folder there and "
    "set THFM_MAKEHUMAN to it"
)


@dataclass(frozen=True)
class IndexEntry:
    file: str  # path in the destination folder
    repo: str  # key of REPOS
    path: str  # path in that repository
    size: int
    sha256: str
    lfs: bool


def read_index(path: str | Path | None = None) -> list[IndexEntry]:
    with open(INDEX_FILE if path is None else path, newline="", encoding="utf-8") as fh:
        return [
            IndexEntry(r["file"], r["repo"], r["path"], int(r["size"]), r["sha256"], r["lfs"] == "1")
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def _lfs_batch(repo: str, entries: list[IndexEntry], lfs_base: str, timeout: float) -> dict[str, dict]:
    """oid -> download action {"href", "header"} for LFS objects of `repo` (owner/name)."""
    url = f"{lfs_base.rstrip('/')}/{repo}.git/info/lfs/objects/batch"
    out: dict[str, dict] = {}
    for k in range(0, len(entries), BATCH):
        body = {
            "operation": "download",
            "transfers": ["basic"],
            "objects": [{"oid": e.sha256, "size": e.size} for e in entries[k : k + BATCH]],
        }
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Accept": LFS_MEDIA, "Content-Type": LFS_MEDIA, "User-Agent": "thfm-synth"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                doc = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise UserError(f"Git LFS batch request to {url} failed: HTTP {exc.code} {exc.reason}", FIX_NET) from None
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"Git LFS batch request to {url} failed: {getattr(exc, 'reason', exc)}", FIX_NET) from None
        for obj in doc.get("objects", []):
            if obj.get("error"):
                err = obj["error"]
                raise UserError(
                    f"Git LFS object {obj.get('oid')} of {repo}: {err.get('message', 'error')} "
                    f"(code {err.get('code')})",
                    "the repository no longer serves it; report this",
                )
            action = (obj.get("actions") or {}).get("download")
            if action and action.get("href"):
                out[obj["oid"]] = action
    missing = [e.file for e in entries if e.sha256 not in out]
    if missing:
        raise UserError(f"Git LFS server {url} gave no download for {len(missing)} file(s), e.g. {missing[0]}", FIX_NET)
    return out


def fetch_makehuman(
    dest: str | os.PathLike,
    *,
    raw_base: str = RAW_BASE,
    lfs_base: str = LFS_BASE,
    index: list[IndexEntry] | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Download (or verify) every index file into `dest`; returns {"files", "bytes", "downloaded"}.

    progress(done_bytes, total_bytes) is called as bytes arrive and as present files are verified.
    """
    from thfm_synth.download import Hints, download_file
    from thfm_synth.atomic import write_text
    from thfm_synth.assets.characters.makehuman.assets import file_digest

    dest = Path(dest).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the MakeHuman folder {dest}: {exc.strerror}", "choose a writable folder"
        ) from None
    index = read_index() if index is None else index
    total = sum(e.size for e in index)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    todo = []
    for e in index:
        final = dest / e.file
        if final.is_file() and final.stat().st_size == e.size and file_digest(final) == e.sha256:
            tick(e.size)
        else:
            todo.append(e)
    actions: dict[str, dict] = {}
    for key in sorted({e.repo for e in todo if e.lfs}):
        actions.update(_lfs_batch(REPOS[key][0], [e for e in todo if e.lfs and e.repo == key], lfs_base, timeout))
    for e in todo:
        final = dest / e.file
        final.parent.mkdir(parents=True, exist_ok=True)
        if e.lfs:
            action = actions[e.sha256]
            url, headers = action["href"], dict(action.get("header") or {})
        else:
            repo, commit = REPOS[e.repo]
            url, headers = f"{raw_base.rstrip('/')}/{repo}/{commit}/{e.path}", {}
        download_file(
            url,
            final,
            sha256=e.sha256,
            size=e.size,
            what=f"MakeHuman file {e.file}",
            timeout=timeout,
            headers=headers,
            on_bytes=tick,
            hints=Hints(
                network=FIX_NET,
                missing="the pinned commit is gone from the mirror; check --base-url",
                mismatch="the server sent a different file; check the mirror (--base-url), then "
                "run again to download it afresh",
            ),
        )
    rows = [
        {
            "file": e.file,
            "bytes": e.size,
            "sha256": e.sha256,
            "source_repo": REPOS[e.repo][0],
            "commit": REPOS[e.repo][1],
            "source_path": e.path,
            "note": "CC0 1.0 (Git LFS object)" if e.lfs else "CC0 1.0",
        }
        for e in index
    ]
    header = ["file", "bytes", "sha256", "source_repo", "commit", "source_path", "note"]
    tsv = "\t".join(header) + "\n" + "".join("\t".join(str(r[h]) for h in header) + "\n" for r in rows)
    write_text(dest / "MANIFEST.json", json.dumps(rows, indent=1) + "\n", "MakeHuman manifest")
    write_text(dest / "MANIFEST.tsv", tsv, "MakeHuman manifest")
    return {"files": len(index), "bytes": total, "downloaded": len(todo), "dest": str(dest)}


# ---------------------------------------------------------------------------------------- index
def _git(repo_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo_dir), *args], check=True, capture_output=True).stdout


def build_index(assets_clone: Path, makehuman_clone: Path, wanted: list[str]) -> list[IndexEntry]:
    """Index rows for `wanted` destination paths, read from local clones at the pinned commits.

    A destination path `X` is looked up as `base/X` in makehuman-assets, else (base mesh, eyes,
    licences) in makehuman under `makehuman/data/X` or its root. LFS pointer files give the
    object's sha256 and size; other files are hashed.
    """
    import hashlib

    trees = {}
    for key, clone in (("assets", assets_clone), ("makehuman", makehuman_clone)):
        listing = _git(clone, "ls-tree", "-r", "--long", REPOS[key][1]).decode().splitlines()
        trees[key] = {line.split("\t", 1)[1]: line.split()[2] for line in listing}
    special = {
        "LICENSE-CC0.txt": ("assets", "LICENSE.txt"),
        "makehuman-assets-README.md": ("assets", "README.md"),
        "LICENSE.ASSETS.md": ("makehuman", "LICENSE.ASSETS.md"),
        "makehuman-LICENSE.md": ("makehuman", "LICENSE.md"),
    }
    rows = []
    for file in wanted:
        cands = (
            [special[file]]
            if file in special
            else [("assets", f"base/{file}"), ("makehuman", f"makehuman/data/{file}")]
        )
        for key, path in cands:
            if path in trees[key]:
                break
        else:
            raise FileNotFoundError(f"{file}: in neither repository")
        blob = _git(assets_clone if key == "assets" else makehuman_clone, "cat-file", "blob", trees[key][path])
        if blob.startswith(b"version https://git-lfs.github.com/spec/v1"):
            fields = dict(line.split(" ", 1) for line in blob.decode().splitlines() if " " in line)
            rows.append(IndexEntry(file, key, path, int(fields["size"]), fields["oid"].split(":", 1)[1], True))
        else:
            rows.append(IndexEntry(file, key, path, len(blob), hashlib.sha256(blob).hexdigest(), False))
    return rows


def write_index(rows: list[IndexEntry], out=sys.stdout) -> None:
    out.write("file\trepo\tpath\tsize\tsha256\tlfs\n")
    for r in rows:
        out.write(f"{r.file}\t{r.repo}\t{r.path}\t{r.size}\t{r.sha256}\t{int(r.lfs)}\n")


if __name__ == "__main__":  # python -m thfm_synth.assets.characters.makehuman.fetch --build-index A M LIST
    if len(sys.argv) != 5 or sys.argv[1] != "--build-index":
        raise SystemExit(__doc__)
    names = [ln.strip() for ln in Path(sys.argv[4]).read_text().splitlines() if ln.strip()]
    write_index(build_index(Path(sys.argv[2]), Path(sys.argv[3]), names))
