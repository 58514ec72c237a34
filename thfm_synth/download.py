"""Download files over HTTP(S): resumed, verified, renamed into place. One downloader for every fetch command.

A file is written to `.<name>.part` beside its destination, resumed with an HTTP Range request
when an earlier attempt left a partial file, checked against its size and sha256, and renamed
onto the destination with os.replace: the destination never holds a half-written or unverified
file. A checksum mismatch deletes the partial file (the next run starts afresh); a network error
keeps it (the next run resumes). Errors are one-line `UserError`s naming the file and the fix.

`download_file` fetches one file; `download_all` fetches a list of `Download`s (URL, path below a
destination folder, sha256, size) with a few threads, one byte-progress bar and a summary, and
reports failures per file instead of stopping at the first. Callers (`thfm_synth/assets/motion/fetch.py`,
`thfm_synth/assets/testassets.py`) only build lists and say what the files are.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from thfm_synth.digests import file_sha256
from thfm_synth.errors import UserError

_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Hints:
    """The fix part of each error, in the caller's words (which flag to change, where else to get the file)."""

    network: str = "check the network connection, then run the same command again (partial downloads resume)"
    missing: str = "check the URL"
    mismatch: str = "the server sent a different file; run again to download it afresh, or check the source URL"


@dataclasses.dataclass(frozen=True)
class Download:
    """One file to fetch: `path` is relative to the destination folder (POSIX separators)."""

    path: str
    url: str
    sha256: str | None = None
    size: int | None = None


class _Cancelled(Exception):
    pass


def _part_of(final: Path) -> Path:
    return final.with_name(f".{final.name}.part")


def verified(final: Path, sha256: str | None, size: int | None) -> bool:
    """True when `final` exists with the expected size and sha256 (a file without a digest only has to exist)."""
    if not final.is_file():
        return False
    if size is not None and final.stat().st_size != size:
        return False
    return sha256 is None or file_sha256(final) == sha256


def download_file(
    url: str,
    final: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    what: str = "",
    timeout: float = 60.0,
    on_bytes: Callable[[int], None] | None = None,
    hints: Hints = Hints(),
    cancel: threading.Event | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """Fetch `url` into `final` through its `.part` sibling, resuming and verifying; returns the sha256.

    `what` names the file in errors ("CMU clip 02_01"); `on_bytes(n)` is told of every n bytes that
    reach the disk (bytes of a resumed partial file count once the server agrees to resume);
    `headers`: extra request headers (a Git LFS download action's authorisation)."""
    final = Path(final)
    label = f" for {what}" if what else ""
    part = _part_of(final)
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        if on_bytes:
            on_bytes(offset)  # complete already: verify below
    else:
        request_headers = {"User-Agent": "thfm-synth", "Accept-Encoding": "identity", **(headers or {})}
        if offset:
            request_headers["Range"] = f"bytes={offset}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=request_headers), timeout=timeout) as resp:
                resumed = resp.status == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
                if offset and not resumed:
                    offset = 0  # the server sent the whole file: start over
                if offset and on_bytes:
                    on_bytes(offset)
                try:  # only now: a failed request leaves no empty folders behind
                    final.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise UserError(
                        f"cannot create the folder {final.parent}: {exc.strerror}", "choose a writable folder"
                    ) from None
                with open(part, "ab" if offset else "wb") as fh:
                    written = offset
                    for chunk in iter(lambda: resp.read(_CHUNK), b""):
                        if cancel is not None and cancel.is_set():
                            raise _Cancelled
                        fh.write(chunk)
                        written += len(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                        if size is not None and written > size:
                            break  # longer than the listed file: not it (refused below), read no further
                    fh.flush()
                    os.fsync(fh.fileno())
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                pass  # nothing past our partial file: it may already be complete; verify below
            elif exc.code == 404:
                raise UserError(f"{url} does not exist (HTTP 404){label}", hints.missing) from None
            else:
                raise UserError(
                    f"downloading {url}{label} failed: HTTP {exc.code} {exc.reason}", hints.network
                ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            kept = f" (partial data kept in {part} for resuming)" if part.is_file() and part.stat().st_size else ""
            raise UserError(f"downloading {url}{label} failed: {reason}{kept}", hints.network) from None
    # The response ended normally (a dropped connection raises above and keeps the partial file):
    # whatever arrived is the server's whole file, and it must be the listed one.
    got_size = part.stat().st_size
    got = file_sha256(part)
    if (sha256 is not None and got != sha256) or (size is not None and got_size != size):
        part.unlink()
        expected = f"sha256 {sha256}" if sha256 else f"{size:,} bytes"
        raise UserError(
            f"{final}: checksum mismatch{label} from {url} (got sha256 {got}, {got_size:,} bytes; "
            f"expected {expected}); nothing was kept",
            hints.mismatch,
        )
    os.replace(part, final)
    return got


def safe_relative(path: str) -> PurePosixPath:
    """A list's path as a relative path that stays inside the destination folder."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
        raise UserError(
            f"download path {path!r} is not a relative path inside the destination folder", "fix the download list"
        )
    return p


@dataclasses.dataclass
class DownloadSummary:
    files: int
    downloaded: int
    present: int
    failed: dict[str, str]  # path -> one-line reason
    bytes: int
    seconds: float
    not_tried: int = 0  # left out after too many failures

    def lines(self) -> list[str]:
        rate = self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0
        files = f"{self.files} file" + ("s" if self.files != 1 else "")
        stopped = f", {self.not_tried} not tried (stopped after {len(self.failed)} failures)" if self.not_tried else ""
        return [
            f"{files}: {self.downloaded} downloaded ({self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s, "
            f"{rate:.1f} MB/s), {self.present} already present and verified, {len(self.failed)} failed{stopped}"
        ]


def download_all(
    items: Sequence[Download],
    dest: str | os.PathLike,
    *,
    workers: int = 4,
    timeout: float = 60.0,
    progress: bool = True,
    desc: str = "downloading",
    hints: Hints = Hints(),
    max_failures: int | None = 10,
) -> DownloadSummary:
    """Fetch every item into `dest` (files already there and verified are kept). Failures are listed in
    the summary, one line each, and printed as they happen; the other files carry on, up to
    `max_failures` failures (no network: ten lines, not one per file)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder {dest}: {exc.strerror}", "choose a writable --dest") from None
    finals = [dest / safe_relative(item.path) for item in items]
    todo = [(item, final) for item, final in zip(items, finals) if not verified(final, item.sha256, item.size)]
    present = len(items) - len(todo)
    failed: dict[str, str] = {}
    lock = threading.Lock()
    cancel = threading.Event()
    fetched = [0]
    with tqdm(
        total=sum(item.size or 0 for item, _ in todo),
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not progress or not todo,
        dynamic_ncols=True,
    ) as bar:

        def on_bytes(n: int) -> None:
            with lock:
                fetched[0] += n
                bar.update(n)

        def one(item: Download, final: Path) -> None:
            download_file(
                item.url,
                final,
                sha256=item.sha256,
                size=item.size,
                what=item.path,
                timeout=timeout,
                on_bytes=on_bytes,
                hints=hints,
                cancel=cancel,
            )

        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="download")
        try:
            futures = {pool.submit(one, item, final): item for item, final in todo}
            for future in as_completed(futures):
                try:
                    future.result()
                except UserError as exc:
                    failed[futures[future].path] = exc.one_line()
                    bar.write(f"failed: {exc.one_line()}", file=sys.stderr)
                    if max_failures is not None and len(failed) >= max_failures:
                        break
                except _Cancelled:
                    pass
            if max_failures is not None and len(failed) >= max_failures:
                cancel.set()  # the running downloads stop at their next chunk, keeping their partial files
                for future in futures:
                    future.cancel()
        except BaseException:
            cancel.set()  # Ctrl-C: the threads stop at their next chunk and keep their partial files
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    done = sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None)
    return DownloadSummary(
        files=len(items),
        downloaded=done,
        present=present,
        failed=failed,
        bytes=fetched[0],
        seconds=time.perf_counter() - t0,
        not_tried=len(todo) - done - len(failed),
    )
