"""How the main environment reaches Blender: a child process, never an import.

The child is either the render environment's Python (`.venv-render`, which has
`bpy==5.0.1`) running a script from `blender_scripts/`, or the user's own Blender
binary (`--blender PATH` or `THFM_BLENDER`) running the same script with
`--background --python`. A child process also contains Blender crashes and its
memory growth. Scripts receive their arguments after `--`, read JSON/npz inputs and
write files; they import only bpy, numpy and the standard library.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from thfm_synth import bootstrap
from thfm_synth.errors import UserError

SCRIPTS = bootstrap.REPO / "blender_scripts"


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
                raise UserError(f"Blender binary {exe} not found or not executable",
                                "pass --blender with the path of a Blender 5.x executable")
            return cls(exe, "blender")
        python = bootstrap.venv_python(bootstrap.render_venv())
        if not python.exists():
            raise UserError(f"render environment {bootstrap.render_venv()} is missing",
                            "run `python3 -m thfm_synth doctor` to create it, or pass --blender PATH")
        return cls(python, "bpy")

    def command(self, script: str | os.PathLike, args: list[str] | tuple[str, ...] = ()) -> list[str]:
        script = Path(script)
        if not script.is_absolute():
            script = SCRIPTS / script
        if self.kind == "blender":
            return [str(self.executable), "--background", "--factory-startup", "--python-exit-code", "1",
                    "--python", str(script), "--", *map(str, args)]
        return [str(self.executable), str(script), "--", *map(str, args)]

    @staticmethod
    def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment for the child: the main environment's PYTHONPATH/VIRTUAL_ENV
        would put numpy 2 in front of the render environment's numpy 1."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(extra or {})
        return env

    def run(self, script: str | os.PathLike, args: list[str] | tuple[str, ...] = (), timeout: float | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(script, args), capture_output=True, text=True, timeout=timeout,
                              env=self.child_env(env))

    def probe(self, timeout: float = 120) -> dict:
        """Blender version, Python and numpy of the render child (raises UserError if it fails)."""
        proc = self.run("probe.py", timeout=timeout)
        for line in proc.stdout.splitlines():
            if line.startswith("THFM_PROBE "):
                return json.loads(line[len("THFM_PROBE "):])
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"the render child ({self.executable}) did not start Blender: {tail[0]}",
                        "delete .venv-render and rerun `python3 -m thfm_synth doctor`, or pass --blender PATH")
