"""`thfm-synth doctor`: what is installed, what is missing, and how to fix it."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from thfm_synth import bootstrap
from thfm_synth.errors import UserError
from thfm_synth.blender.runtime import RenderRuntime

MAIN_PACKAGES = (
    "numpy",
    "scipy",
    "pydantic",
    "pyyaml",
    "pyarrow",
    "tqdm",
    "jax",
    "flax",
    "optax",
    "orbax-checkpoint",
    "grain",
    "array-record",
    "ray",
    "torch",
    "anny",
    "openexr",
    "pillow",
    "imageio-ffmpeg",
)
REINSTALL = "run `python3 -m thfm_synth doctor` from the repository (it re-installs what is missing)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok     " if self.ok else "MISSING"
        return f"{mark} {self.name:<22} {self.detail}" + ("" if self.ok or not self.fix else f"  (fix: {self.fix})")


def _package(name: str) -> Check:
    try:
        return Check(f"main: {name}", True, importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        return Check(f"main: {name}", False, "not installed", REINSTALL)


def _jax() -> Check:
    try:
        import jax

        devices = ", ".join(f"{d.platform}:{d.id}" for d in jax.devices())
        return Check("main: jax devices", True, devices)
    except Exception as exc:  # any import/backend failure is what the doctor reports
        return Check("main: jax devices", False, f"{type(exc).__name__}: {exc}"[:120], REINSTALL)


def _render(blender: str | None) -> list[Check]:
    try:
        runtime = RenderRuntime.detect(blender)
        info = runtime.probe()
    except UserError as exc:
        return [Check("render: blender", False, exc.what, exc.fix or "")]
    where = "your Blender" if runtime.kind == "blender" else str(bootstrap.render_venv())
    return [
        Check("render: environment", True, f"{where} (python {info['python']}, numpy {info['numpy']})"),
        Check("render: blender", True, info["blender_version"]),
    ]


def _disk(path: Path, min_free_gb: float) -> Check:
    probe = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    free_gb = shutil.disk_usage(probe).free / 1e9
    ok = free_gb >= min_free_gb
    return Check("disk: free", ok, f"{free_gb:,.1f} GB at {probe}", f"free space (at least {min_free_gb:g} GB)")


def run_checks(blender: str | None = None, out: Path = Path("."), min_free_gb: float = 5.0) -> list[Check]:
    checks = [
        Check(
            "main: python",
            sys.version_info >= (3, 11),
            f"{sys.version.split()[0]} at {sys.executable}",
            "use Python >= 3.11",
        )
    ]
    checks += [_package(p) for p in MAIN_PACKAGES]
    checks.append(_jax())
    checks += _render(blender)
    checks.append(_disk(out, min_free_gb))
    return checks
