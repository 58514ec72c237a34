"""One resumable, verified, atomic HTTP download (shared by every `thfm-synth assets fetch`).

`download(url, final, sha256=..., size=...)` writes `final` via its hidden sibling
`.<name>.part`: a partial file left by an earlier attempt is resumed with an HTTP Range
request (a server that ignores the range sends the whole file and we start over; a 416 on a
complete partial file is fine), the result's sha256 is checked (a mismatch deletes the partial
file and is a UserError), and only then is it renamed onto `final` with os.replace. So the
destination never holds a half-written or unverified file. `progress(n)` is called with the
number of bytes received (for a tqdm bar). Errors are one-line UserErrors: `what` names the
thing being fetched, `fix_net` is the advice for network failures.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from thfm_synth.errors import UserError

CHUNK = 1 << 16


class NotFound(UserError):
    """HTTP 404: the caller usually knows a better fix (wrong id, wrong mirror)."""


def download(url: str, final: str | os.PathLike, *, sha256: str | None, size: int | None, what: str,
             fix_net: str, timeout: float = 60.0, headers: dict | None = None,
             progress: Callable[[int], None] | None = None) -> Path:
    final = Path(final)
    part = final.with_name(f".{final.name}.part")
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    complete = size is not None and offset == size
    if not complete:
        hdrs = {"User-Agent": "thfm-synth", "Accept-Encoding": "identity", **(headers or {})}
        if offset:
            hdrs["Range"] = f"bytes={offset}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=hdrs), timeout=timeout) as resp:
                status = resp.status
                content_range = resp.headers.get("Content-Range", "")
                resumed = status == 206 and content_range.startswith(f"bytes {offset}-")
                if offset and not resumed:
                    offset = 0  # the server sent the whole file: start over
                with open(part, "ab" if offset else "wb") as fh:
                    for chunk in iter(lambda: resp.read(CHUNK), b""):
                        fh.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
                    fh.flush()
                    os.fsync(fh.fileno())
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                pass  # nothing past our partial file: it may already be complete; verify below
            elif exc.code == 404:
                raise NotFound(f"{url} does not exist (HTTP 404) for {what}", fix_net) from None
            else:
                raise UserError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}", fix_net) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"downloading {url} failed: {reason} (partial data kept in {part} for resuming)",
                            fix_net) from None
    from thfm_synth.assets.manifest import file_sha256

    got = file_sha256(part)
    if sha256 is not None and got != sha256:
        part.unlink()
        raise UserError(f"{final}: checksum mismatch for {what} from {url} (sha256 {got}, expected {sha256})",
                        "the server sent a different file; check the mirror (--base-url), then run again to "
                        "download it afresh")
    os.replace(part, final)
    return final
