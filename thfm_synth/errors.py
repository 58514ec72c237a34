"""User-facing errors: one line that names the thing at fault and the fix."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment. The CLI prints `error: <what> (fix: <fix>)` and exits non-zero."""

    exit_code = 1

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = " ".join(self.what.split())
        if self.fix:
            text += f" (fix: {' '.join(self.fix.split())})"
        return text


class ConfigError(UserError):
    """An invalid configuration value or argument: exit code 2, like argparse."""

    exit_code = 2


class DiskFullError(UserError):
    """No space left while writing an output: stop (the farm stops the run), never retry or skip."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (still a FileNotFoundError for callers)."""
