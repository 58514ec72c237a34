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


def _run_pip(python: Path, args: list[str], what: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        _fail(f"installing {what} failed (pip exit {proc.returncode}, output above); "
              f"fix the network/index access and rerun, or delete {python.parents[1]} to start clean")


def _ensure(venv: Path, base_python: str, stamp_value: str, install_args: list[str], what: str) -> Path:
    python = venv_python(venv)
    with _locked(venv):
        stamp = venv / STAMP
        if _python_works(python) and stamp.exists() and stamp.read_text().strip() == stamp_value:
            return python
        if not _python_works(python):
            if venv.exists():
                shutil.rmtree(venv)
            _say(f"creating {what} in {venv} (first run only)")
            proc = subprocess.run([base_python, "-m", "venv", str(venv)], capture_output=True, text=True)
            if proc.returncode != 0:
                _fail(f"cannot create a virtual environment at {venv}: {proc.stderr.strip()} "
                      f"(fix: install the venv module, e.g. `apt-get install python3-venv`)")
        _say(f"installing {what} (a few minutes the first time)")
        _run_pip(python, install_args, what)
        # The stamp is written last: an interrupted install is redone next time.
        stamp.write_text(stamp_value + "\n")
        return python


def ensure_main() -> Path:
    """The main environment: this package (editable) with its dev extras."""
    if sys.version_info < (3, 11):
        _fail(f"Python >= 3.11 is required, this is {sys.version.split()[0]} (fix: run with python3.11)")
    pyproject = (REPO / "pyproject.toml").read_bytes()
    stamp = _digest(pyproject, sys.version.encode())
    return _ensure(main_venv(), sys.executable, stamp, ["-e", f"{REPO}[dev]"], "the main environment")


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
        _fail("the render environment needs Python 3.11 (bpy 5.0.1 is built for CPython 3.11 only); "
              "fix: install python3.11, or set THFM_BLENDER=/path/to/blender to use your own Blender 5.x")
    req = render_requirements()
    stamp = _digest(req.read_bytes(), b"3.11")
    return _ensure(render_venv(), base, stamp, ["-r", str(req)], "the render environment (Blender as bpy)")


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
