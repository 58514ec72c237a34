"""Create and repair the two environments thfm-synth runs in. Standard library only.

Why two: Blender's Python module (`bpy==5.0.1`, CPython 3.11) pins `numpy<2`, while
JAX needs `numpy>=2`. The *main* environment (`.venv`) holds the package and
everything but Blender; the *render* environment (`.venv-render`) holds `bpy` and
only what `blender_scripts/` import. Renders run as child processes of the render
environment (or of the user's own Blender binary, `--blender PATH` / `THFM_BLENDER`).

Both are made on first use, and again whenever `pyproject.toml` or
`blender_scripts/requirements.txt` change (a stamp file records what was installed),
so the launcher is idempotent and cheap once set up.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from thfm_synth.atomic import locked

REPO = Path(__file__).resolve().parents[1]
STAMP = ".thfm-stamp"
RENDER_PYTHON_VERSION = (3, 11)  # bpy 5.0.1 ships cp311 wheels only


def main_venv() -> Path:
    return Path(os.environ.get("THFM_VENV", REPO / ".venv"))


def render_venv() -> Path:
    return Path(os.environ.get("THFM_RENDER_VENV", REPO / ".venv-render"))


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def render_requirements() -> Path:
    return REPO / "blender_scripts" / "requirements.txt"


def _say(msg: str) -> None:
    print(f"[thfm-synth setup] {msg}", file=sys.stderr, flush=True)


def _fail(msg: str) -> NoReturn:
    print(f"thfm-synth setup: error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _locked(venv: Path):
    """Serialise concurrent set-ups of one environment (two shells, pytest + demo)."""
    return locked(venv.parent / f"{venv.name}.lock")


def _python_works(python: Path) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", "import sys"], capture_output=True).returncode == 0


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class PipProgress:
    """Turns pip's output into a few lines a user can follow: each phase (resolving, downloading the large
    wheels, building, installing) with the elapsed time, and on a terminal a live status line. pip's
    whole output goes to a log file, whose tail is shown if it fails."""

    BIG = 20e6  # downloads at least this large get their own line
    UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1.0}

    def __init__(self, what: str, out=None, live: bool | None = None, clock=None):
        self.what = what
        self.out = out or sys.stderr
        self.live = self.out.isatty() if live is None else live
        self.clock = clock or time.monotonic
        self.t0 = self.clock()
        self.collected = 0
        self.downloaded = 0.0
        self.phase = ""
        self._status_len = 0

    def _line(self, msg: str) -> None:
        self._clear()
        print(f"[thfm-synth setup] {msg} ({_clock(self.clock() - self.t0)})", file=self.out, flush=True)

    def _status(self, msg: str) -> None:
        if self.live:
            text = f"[thfm-synth setup]   {msg} ({_clock(self.clock() - self.t0)})"[:120]
            print("\r" + text.ljust(self._status_len), end="", file=self.out, flush=True)
            self._status_len = len(text)

    def _clear(self) -> None:
        if self.live and self._status_len:
            print("\r" + " " * self._status_len + "\r", end="", file=self.out, flush=True)
            self._status_len = 0

    def _phase(self, name: str, msg: str) -> None:
        if self.phase != name:
            self.phase = name
            self._line(msg)

    def feed(self, line: str) -> None:
        line = line.rstrip()
        words = line.split()
        if not words:
            return
        if words[0] in ("Collecting", "Processing", "Obtaining") or line.startswith("Requirement already satisfied"):
            self.collected += 1
            self._phase("resolve", f"{self.what}: resolving and downloading packages")
            name = words[-1] if words[0] != "Requirement" else words[3]
            self._status(
                f"{self.collected} packages, {self.downloaded / 1e6:,.0f} MB downloaded: {name.split('/')[-1]}"
            )
        elif words[0] in ("Downloading", "Using") and line.endswith(")") and "(" in line:
            cached = words[0] == "Using"
            name = words[2 if cached else 1].split("/")[-1]
            size = line[line.rindex("(") + 1 : -1].split()
            try:
                nbytes = float(size[0].replace(",", "")) * self.UNITS.get(size[1], 1.0)
            except (ValueError, IndexError):
                nbytes = 0.0
            if not name.endswith(".metadata"):
                self.downloaded += 0.0 if cached else nbytes
                if nbytes >= self.BIG:
                    self._line(f"  {'from the pip cache:' if cached else 'downloading'} {name} ({' '.join(size)})")
        elif line.startswith(("Building wheels for", "Building editable for", "Building wheel for")):
            self._phase("build", f"{self.what}: building packages from source")
        elif line.startswith("Installing collected packages:"):
            count = len(line.split(":", 1)[1].split(","))
            self._phase(
                "install", f"{self.what}: installing {count} packages ({self.downloaded / 1e6:,.0f} MB downloaded)"
            )
        elif line.startswith("Successfully installed"):
            self._phase("done", f"{self.what}: installed {len(words) - 2} packages")

    def close(self) -> None:
        self._clear()


def _run_pip(python: Path, args: list[str], what: str) -> None:
    """pip install, with its progress shown (PipProgress) and its whole output in a log beside the environment."""
    venv = python.parents[1]
    log_path = venv.parent / f"{venv.name}.pip.log"
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *args]
    progress = PipProgress(what)
    tail: list[str] = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            for line in proc.stdout:
                log.write(line)
                tail = (tail + [line.rstrip()])[-15:]
                progress.feed(line)
            code = proc.wait()
        except BaseException:
            proc.kill()
            raise
        finally:
            progress.close()
    if code != 0:
        print("\n".join(tail), file=sys.stderr)
        _fail(
            f"installing {what} failed (pip exit {code}, output above, all of it in {log_path}); "
            f"fix the network/index access and rerun, or delete {venv} to start clean"
        )


def _ensure(
    venv: Path, base_python: str, stamp_value: str, install_args: list[str], what: str, holds: str = ""
) -> Path:
    python = venv_python(venv)
    with _locked(venv):
        stamp = venv / STAMP
        if _python_works(python) and stamp.exists() and stamp.read_text().strip() == stamp_value:
            return python
        t0 = time.monotonic()
        if not _python_works(python):
            if venv.exists():
                shutil.rmtree(venv)
            _say(f"creating {what} in {venv} (first run only)")
            proc = subprocess.run([base_python, "-m", "venv", str(venv)], capture_output=True, text=True)
            if proc.returncode != 0:
                _fail(
                    f"cannot create a virtual environment at {venv}: {proc.stderr.strip()} "
                    f"(fix: install the venv module, e.g. `apt-get install python3-venv`)"
                )
        _say(f"installing {what}" + (f": {holds}" if holds else ""))
        _run_pip(python, install_args, what)
        # The stamp is written last: an interrupted install is redone next time.
        stamp.write_text(stamp_value + "\n")
        _say(f"{what} is ready in {_clock(time.monotonic() - t0)}")
        return python


def ensure_main() -> Path:
    """The main environment: this package (editable) with its dev extras."""
    if sys.version_info < (3, 11):
        _fail(f"Python >= 3.11 is required, this is {sys.version.split()[0]} (fix: run with python3.11)")
    pyproject = (REPO / "pyproject.toml").read_bytes()
    stamp = _digest(pyproject, sys.version.encode())
    return _ensure(
        main_venv(),
        sys.executable,
        stamp,
        ["-e", f"{REPO}[dev]"],
        "the main environment",
        "thfm-synth with numpy 2, JAX, Ray, PyTorch 2.13 (CPU), anny and the test tools; about 3.1 GB "
        "and 3-5 minutes the first time",
    )


def find_render_base_python() -> str | None:
    if sys.version_info[:2] == RENDER_PYTHON_VERSION:
        return sys.executable
    name = "python%d.%d" % RENDER_PYTHON_VERSION
    return shutil.which(name)


def ensure_render() -> Path | None:
    """The render environment (bpy). Skipped when the user brings their own Blender."""
    if os.environ.get("THFM_BLENDER"):
        return None
    base = find_render_base_python()
    if base is None:
        _fail(
            "the render environment needs Python 3.11 (bpy 5.0.1 is built for CPython 3.11 only); "
            "fix: install python3.11, or set THFM_BLENDER=/path/to/blender to use your own Blender 5.x"
        )
    req = render_requirements()
    stamp = _digest(req.read_bytes(), b"3.11")
    return _ensure(
        render_venv(),
        base,
        stamp,
        ["-r", str(req)],
        "the render environment",
        "Blender 5.0 as the bpy module with numpy 1.26; about 1 GB and 1-2 minutes the first time",
    )


def inside_main_venv() -> bool:
    try:
        return Path(sys.prefix).resolve() == main_venv().resolve()
    except OSError:
        return False


def launch(argv: list[str]) -> None:
    """`python3 -m thfm_synth ARGS`: set up, then run `thfm-synth ARGS` in the main environment
    (`python3 -m thfm_synth test [--quick] [PYTEST ARGS]` runs the test suite)."""
    if os.environ.get("THFM_SKIP_RENDER_ENV") != "1":
        ensure_render()
    python = ensure_main()
    os.execv(str(python), [str(python), "-m", "thfm_synth.cli", *argv])
