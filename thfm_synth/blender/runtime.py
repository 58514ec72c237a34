"""Which Blender runs our scripts, and the command line that starts it.

The main environment reaches Blender only through a child process, never an import: either
the render environment's Python (`.venv-render`, which has `bpy==5.0.1`) running a script
from `blender_scripts/`, or the user's own Blender binary (`--blender PATH` or
`THFM_BLENDER`) running the same script with `--background --python`. A child process also
contains Blender crashes and its memory growth. What the child is asked and answers travels
as JSON documents (`thfm_synth/blender/contract.py`); see `call.py` and `child.py`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import thfm_synth
from thfm_synth import bootstrap
from thfm_synth.blender import contract
from thfm_synth.errors import UserError

# blender_scripts/ sits beside the package both in the repository and in an installed copy
# (it is installed as package data, see pyproject.toml), so no source tree is needed to render.
SCRIPTS = Path(thfm_synth.__file__).resolve().parents[1] / "blender_scripts"


@dataclass(frozen=True)
class RenderRuntime:
    executable: Path
    kind: str  # "bpy" (render environment python) or "blender" (a Blender binary)

    @classmethod
    def detect(cls, blender: str | os.PathLike | None = None) -> "RenderRuntime":
        blender = blender or os.environ.get("THFM_BLENDER")
        if blender:
            exe = Path(blender)
            if not (exe.is_file() and os.access(exe, os.X_OK)):
                raise UserError(
                    f"Blender binary {exe} not found or not executable",
                    "pass --blender with the path of a Blender 5.x executable",
                )
            return cls(exe, "blender")
        python = bootstrap.venv_python(bootstrap.render_venv())
        if not python.exists():
            raise UserError(
                f"render environment {bootstrap.render_venv()} is missing",
                "run `python3 -m thfm_synth doctor` to create it, or pass --blender PATH",
            )
        return cls(python, "bpy")

    def command(self, script: str | os.PathLike, args: list[str] | tuple[str, ...] = ()) -> list[str]:
        """The command that runs blender_scripts/`script` (or a script file given by absolute path)
        with `args` after `--`."""
        path = Path(script) if Path(script).is_absolute() else SCRIPTS / script
        if self.kind == "blender":
            return [
                str(self.executable),
                "--background",
                "--factory-startup",
                "--python-exit-code",
                "1",
                "--python",
                str(path),
                "--",
                *map(str, args),
            ]
        return [str(self.executable), str(path), "--", *map(str, args)]

    @staticmethod
    def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment for the child: the main environment's PYTHONPATH/VIRTUAL_ENV
        would put numpy 2 in front of the render environment's numpy 1."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(extra or {})
        return env

    def run_file(
        self, path: str | os.PathLike, args: list[str] | tuple[str, ...] = (), timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run an ad-hoc bpy script file (tests make their own test files this way); the scripts
        of blender_scripts/ are called with jobs through `thfm_synth.blender.call` instead."""
        return subprocess.run(
            self.command(Path(path).resolve(), args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.child_env(),
        )

    def probe(self, timeout: float = 120) -> dict:
        """Blender version, Python and numpy of the render child (raises UserError if it fails)."""
        from thfm_synth.blender.call import call

        try:
            return call(contract.SCRIPT_PROBE, contract.ProbeJob(), runtime=self, timeout=timeout)
        except UserError:
            raise
        except RuntimeError as exc:
            raise UserError(
                f"the render child ({self.executable}) did not start Blender: {str(exc)[:300]}",
                "delete .venv-render and rerun `python3 -m thfm_synth doctor`, or pass --blender PATH",
            ) from None
