"""The Blender probe of a scene file or kit folder: its mesh objects and layered height maps, cached.

`blender_scripts/scene_probe.py` imports the file(s) safely and ray-casts the height maps;
`probe_scene` runs it once per content sha256 under `CACHE/scenes/<sha256>-p<version>/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError

PROBE_VERSION = 1
PROBE_LAYERS = 6


@dataclass(frozen=True)
class ProbedObject:
    file: str  # the probe's file key (path relative to a kit folder, or the file's name)
    name: str
    aabb_min: tuple[float, float, float]
    aabb_max: tuple[float, float, float]
    triangles: int
    materials: tuple[str, ...] = ()


@dataclass
class HeightMap:
    """One object's layered height map in its file frame (see blender_scripts/scene_probe.py)."""

    origin: np.ndarray  # (2,) x0, y0
    cell: float
    z: np.ndarray  # (K, ny, nx) float32, NaN = no hit; top first
    n: np.ndarray  # (K, ny, nx, 3) float32 face normals


@dataclass
class Probe:
    path: Path  # the file, or the kit folder
    kind: str  # file | folder
    files: list[str]
    objects: list[ProbedObject]
    heightmaps: dict[tuple[str, str], HeightMap]
    safety: dict
    cell: float | None
    doc: dict = field(repr=False, default_factory=dict)

    def file_path(self, key: str) -> Path:
        return self.path / key if self.kind == "folder" else self.path

    def objects_of(self, key: str, names=None) -> list[ProbedObject]:
        return [o for o in self.objects if o.file == key and (names is None or o.name in names)]

    def bounds(self, key: str, names=None) -> tuple[np.ndarray, np.ndarray]:
        objs = self.objects_of(key, names)
        if not objs:
            raise UserError(
                f"{self.file_path(key)} holds no mesh object{' named ' + str(names) if names else ''}",
                "check the scene file and the object names in the manifest params",
            )
        return (np.min([o.aabb_min for o in objs], axis=0), np.max([o.aabb_max for o in objs], axis=0))


def _run_probe(path: Path, out: Path, cell: float | None, selection: dict | None, timeout: float) -> None:
    from thfm_synth.blender import contract
    from thfm_synth.blender.call import BlenderCrash, BlenderTimeout, call

    out.mkdir(parents=True, exist_ok=True)
    job = contract.SceneProbeJob(
        path=str(path.resolve()),
        out=str(out.resolve()),
        layers=PROBE_LAYERS,
        cell=None if cell is None else float(cell),
        objects=selection,
    )
    try:
        call(contract.SCRIPT_SCENE_PROBE, job, job_dir=out / "_job", timeout=timeout)
    except BlenderTimeout:
        raise UserError(
            f"{path}: the Blender scene probe took longer than {timeout:.0f} s",
            "use a smaller scene, or a coarser walkability grid (params.cell_m)",
        ) from None
    except BlenderCrash as exc:
        raise UserError(
            f"{path}: the Blender scene probe failed: {str(exc)[:400]}",
            "check the file opens in Blender 5.0; run `python3 -m thfm_synth doctor` if Blender itself fails",
        ) from None


def probe_scene(
    path: str | os.PathLike,
    sha256: str,
    cache_dir: str | os.PathLike,
    cell: float | None = None,
    objects: dict[str, list[str] | None] | None = None,
    timeout: float = 1800,
) -> Probe:
    """Probe a scene file or kit folder (cached per sha256): objects always; height maps with `cell`.

    cell: height-map cell edge in the file's units (after the importer's unit conversion);
    objects: {file key: [names] or None} limits the height maps (None = every object).
    """
    path = Path(path)
    base = Path(cache_dir) / "scenes" / f"{sha256[:32]}-p{PROBE_VERSION}"
    if cell is None:
        key = "objects"
    else:
        sel = json.dumps(objects, sort_keys=True)
        key = f"hm-{float(cell):.6g}-{hashlib.sha1(sel.encode()).hexdigest()[:12]}"
    final = base / key
    if not (final / "probe.json").is_file():
        tmp = base / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _run_probe(path, tmp, cell, objects, timeout)
            try:
                os.replace(tmp, final)
            except OSError:  # another worker finished first
                if not (final / "probe.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return read_probe(final, path)


def read_probe(folder: str | os.PathLike, path: str | os.PathLike) -> Probe:
    folder = Path(folder)
    doc = json.loads((folder / "probe.json").read_text())
    objects = [
        ProbedObject(
            f["file"],
            o["name"],
            tuple(o["aabb_min"]),
            tuple(o["aabb_max"]),
            int(o["triangles"]),
            tuple(o.get("materials", ())),
        )
        for f in doc["files"]
        for o in f["objects"]
    ]
    hms = {}
    hm = doc.get("heightmap")
    if hm:
        with np.load(folder / hm["file"], allow_pickle=False) as z:
            for e in hm["entries"]:
                hms[(e["file"], e["object"])] = HeightMap(
                    np.asarray(e["origin"], np.float64),
                    float(hm["cell"]),
                    z[e["key"] + "_z"].astype(np.float32),
                    z[e["key"] + "_n"].astype(np.float32),
                )
    return Probe(
        Path(path),
        doc["kind"],
        [f["file"] for f in doc["files"]],
        objects,
        hms,
        doc.get("safety", {}),
        float(hm["cell"]) if hm else None,
        doc,
    )
