"""Content digests of files and folders (sha256), in one place. Standard library only.

* `file_sha256(path)`: the digest of a file's bytes;
* `folder_sha256(path)`: a folder's digest (scene kits): the digest of its sorted
  `relative-path sha256` lines, so it changes when any file is added, removed, renamed or edited;
* `DigestCache`: digests remembered by (path, size, mtime, ctime, inode) in an append-only
  JSON-lines file, so a farm that renders 20,000 videos from one HDRI hashes it once, not 20,000
  times, while an edited or replaced file (new size, mtime, ctime or inode) is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_sha256(path: str | os.PathLike, file_digest: Callable[[Path], str] = file_sha256) -> str:
    path = Path(path)
    lines = [f"{p.relative_to(path).as_posix()} {file_digest(p)}\n" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def content_sha256(path: str | os.PathLike, file_digest: Callable[[Path], str] = file_sha256) -> str:
    """A file's digest, or a folder's (see `folder_sha256`)."""
    return folder_sha256(path, file_digest) if Path(path).is_dir() else file_digest(Path(path))


class DigestCache:
    """sha256 of files, remembered while they do not change.

    The key is (real path, size, mtime_ns, ctime_ns, inode): a rewritten file changes its mtime
    and ctime, a replaced one its inode, and ctime cannot be set back by hand. `path=None` keeps
    the digests in memory only; with a file, every process that shares it (the farm's workers, on
    any node of a shared filesystem) appends what it hashed and reads what the others did. Lines
    are short single `write`s in append mode; a torn or foreign line is skipped, never trusted.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self._known: dict[tuple, str] = {}
        self._read_upto = 0
        self.hashed = 0  # files hashed by this object (the rest came from the cache)

    @staticmethod
    def _key(path: Path) -> tuple:
        st = os.stat(path)
        return (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def _load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._read_upto)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._read_upto += end
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
                key, digest = tuple(rec["key"]), rec["sha256"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(digest, str) and len(digest) == 64:
                self._known[key] = digest

    def _store(self, key: tuple, digest: str) -> None:
        self._known[key] = digest
        if self.path is None:
            return
        line = (json.dumps({"key": list(key), "sha256": digest}) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:  # a cache that cannot be written costs time, never correctness
            pass

    def file_sha256(self, path: str | os.PathLike) -> str:
        path = Path(path)
        key = self._key(path)
        if key not in self._known:
            self._load()
        if key not in self._known:
            digest = file_sha256(path)
            self.hashed += 1
            if self._key(path) == key:  # unchanged while it was read: worth remembering
                self._store(key, digest)
            return digest
        return self._known[key]

    def content_sha256(self, path: str | os.PathLike) -> str:
        return content_sha256(path, self.file_sha256)
