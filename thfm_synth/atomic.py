"""Write-to-temporary-then-rename, so a reader never sees a half-written output; and a file lock,
so two processes never build the same output at once. Standard library only (the launcher uses it)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from pathlib import Path
from typing import Iterator

from thfm_synth.errors import DiskFullError, UserError


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare_parent(path: Path, what: str = "output") -> None:
    """Create the parent folder, turning OS errors into one-line UserErrors."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(
            f"cannot write {what} {path}: a parent of it is a file, not a folder",
            "choose an output path inside a folder",
        ) from None
    except PermissionError:
        raise UserError(f"cannot write {what} {path}: permission denied", "choose a writable output folder") from None
    if not os.access(parent, os.W_OK):
        raise UserError(
            f"cannot write {what} {path}: folder {parent} is not writable", "choose a writable output folder"
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    prepare_parent(path, what)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        _remove(tmp)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"disk full while writing {path}", "free space or choose another output folder"
            ) from None
        raise
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes, what: str = "output") -> None:
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str, what: str = "output") -> None:
    write_bytes(path, text.encode("utf-8"), what)


@contextlib.contextmanager
def locked(lock_path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_path` (created with its folder) for the block."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
