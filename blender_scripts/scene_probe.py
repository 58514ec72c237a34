"""Probe a 3D scene file (or a kit folder of piece files): objects, boxes and a walkability height map.

Usage (render child): `scene_probe.py -- JOB_FILE`, a `SceneProbeJob` (thfm_synth/blender/contract.py):
path (INPUT), out (OUT_DIR), layers (K), cell (C or null), objects (selection or null).

INPUT is a `.blend`, `.fbx`, `.glb`/`.gltf` file, or a folder (a modular kit): then every such
file in it (sorted, recursively) is probed on its own, each in a fresh Blender state. Files are
imported by `scene_import.import_scene_file` (safe `.blend` loading: library append with
Python auto-execution disabled, never opened as the main file - see that module).

Writes OUT_DIR/probe.json:

    format_version 1; input; kind file|folder; blender_version;
    safety {use_scripts_auto_execute (always false), autoexec_fail, blend_loader, texts_loaded}
    files [{file (relative to the folder, or the file name), format, importer, seconds,
            objects [{name, aabb_min, aabb_max (world, metres after the importer's unit
                      conversion), obb_center, obb_axes (3 unit row vectors), obb_half_extents,
                      vertices, triangles, materials}]}]
    heightmap null | {cell, layers, entries [{file, object, key, origin [x0, y0], shape [ny, nx]}]}

and, with a cell C (the cell edge in the file's units), OUT_DIR/heightmap.npz: per probed object
`KEY_z` (K, ny, nx) float32 and `KEY_n` (K, ny, nx, 3) float16. Cell (i, j) of an object's grid
is centred at origin + ((j + 0.5) C, (i + 0.5) C) over its world AABB; a ray cast straight down
from above the object through the cell centre records up to K successive hits, top first:
their height z (NaN = no further hit) and the hit face's world normal. Layer 0 is the highest
surface; an upward normal (n_z > 0) marks a surface one could stand on. `objects`
({"file": [names] | null}) limits the height maps to those objects (the object list is always
complete). One ray cast per cell and layer through a world-space BVH of the evaluated mesh
(modifiers applied).

The job's result is a summary {files, objects, heightmaps}; bad input is reported as a
`JobInputError` (what + fix). Imports only bpy, numpy, the standard library and its siblings.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Vector  # noqa: E402
from mathutils.bvhtree import BVHTree  # noqa: E402

import scene_import  # noqa: E402
from bridge import contract  # noqa: E402


def fail(what, fix):
    raise contract.JobInputError(what, fix)


def scene_files(path):
    if os.path.isdir(path):
        out = []
        for d, _, names in os.walk(path):
            for n in names:
                if os.path.splitext(n)[1].lower() in scene_import.SUFFIXES:
                    out.append(os.path.relpath(os.path.join(d, n), path))
        return sorted(out)
    return [os.path.basename(path)]


def importer_name(full):
    ext = os.path.splitext(full)[1].lower()
    if ext == ".blend":
        return "bpy.data.libraries.load(link=False)"
    if ext == ".fbx":
        return "scene_import.read_ascii_fbx" if scene_import.is_ascii_fbx(full) else "bpy.ops.import_scene.fbx"
    return "bpy.ops.import_scene.gltf"


def describe(src, ob, depsgraph):
    v, tri, mats = scene_import.world_triangles(ob, depsgraph)
    lo = v.min(axis=0) if len(v) else np.zeros(3)
    hi = v.max(axis=0) if len(v) else np.zeros(3)
    ev = ob.evaluated_get(depsgraph)
    local = np.array([list(c) for c in ev.bound_box], np.float64)
    mw = np.array(ev.matrix_world, np.float64)
    cols = mw[:3, :3]
    norms = np.linalg.norm(cols, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    centre_local = (local.min(0) + local.max(0)) / 2
    half = (local.max(0) - local.min(0)) / 2 * norms
    return {
        "name": src,
        "aabb_min": lo.tolist(),
        "aabb_max": hi.tolist(),
        "obb_center": (cols @ centre_local + mw[:3, 3]).tolist(),
        "obb_axes": (cols / norms).T.tolist(),
        "obb_half_extents": half.tolist(),
        "vertices": int(len(v)),
        "triangles": int(len(tri)),
        "materials": [m for m in mats if m],
    }, (v, tri)


def height_map(v, tri, cell, layers):
    """Multi-hit downward ray casts over the object's AABB (see module doc)."""
    lo, hi = v.min(axis=0), v.max(axis=0)
    nx = max(1, int(np.ceil((hi[0] - lo[0]) / cell - 1e-4)))  # float32 slivers are not a cell
    ny = max(1, int(np.ceil((hi[1] - lo[1]) / cell - 1e-4)))
    z = np.full((layers, ny, nx), np.nan, np.float32)
    n = np.zeros((layers, ny, nx, 3), np.float32)
    if len(tri) == 0:
        return lo[:2], z, n.astype(np.float16)
    bvh = BVHTree.FromPolygons([tuple(p) for p in v.tolist()], [tuple(t) for t in tri.tolist()], all_triangles=True)
    rc = bvh.ray_cast
    down = Vector((0.0, 0.0, -1.0))
    top = float(hi[2]) + 1.0 + 1e-3 * float(np.ptp(v, axis=0).max())
    eps = 1e-6 * max(1.0, float(np.abs(v).max()))
    xs = lo[0] + (np.arange(nx) + 0.5) * cell
    ys = lo[1] + (np.arange(ny) + 0.5) * cell
    for i in range(ny):
        y = float(ys[i])
        for j in range(nx):
            o = Vector((float(xs[j]), y, top))
            for k in range(layers):
                loc, nrm, _, _ = rc(o, down)
                if loc is None:
                    break
                z[k, i, j] = loc.z
                n[k, i, j] = nrm
                loc.z -= eps
                o = loc
    return lo[:2], z, n.astype(np.float16)


def probe(job):
    inp, out_dir = os.path.abspath(job.path), job.out
    if not os.path.exists(inp):
        fail(f"scene {inp} not found", "fix the manifest path")
    os.makedirs(out_dir, exist_ok=True)
    cell = float(job.cell) if job.cell else None
    layers = int(job.layers)
    selection = job.objects
    folder = os.path.isdir(inp)
    files = scene_files(inp)
    if not files:
        fail(f"scene folder {inp} holds no .blend/.fbx/.glb/.gltf file", "put the kit's piece files in it")
    doc = {
        "format_version": 1,
        "input": inp,
        "kind": "folder" if folder else "file",
        "blender_version": bpy.app.version_string,
        "files": [],
        "heightmap": None,
    }
    arrays = {}
    entries = []
    texts = 0
    safety = None
    for rel in files:
        full = os.path.join(inp, rel) if folder else inp
        t0 = time.perf_counter()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        safety = scene_import.disable_autoexec()
        try:
            meshes = scene_import.import_scene_file(full)
        except scene_import.SceneImportError as exc:
            fail(exc.what, exc.fix)
        texts += len(bpy.data.texts)
        dg = bpy.context.evaluated_depsgraph_get()
        objects = []
        want = None if selection is None else selection.get(rel, [])
        for src, ob in sorted(meshes, key=lambda m: m[0]):
            info, (v, tri) = describe(src, ob, dg)
            objects.append(info)
            if cell is not None and len(v) and (want is None or src in want):
                key = f"hm{len(entries)}"
                origin, z, n = height_map(v, tri, cell, layers)
                arrays[key + "_z"] = z
                arrays[key + "_n"] = n
                entries.append(
                    {
                        "file": rel,
                        "object": src,
                        "key": key,
                        "origin": [float(x) for x in origin],
                        "shape": list(z.shape[1:]),
                    }
                )
        doc["files"].append(
            {
                "file": rel,
                "format": os.path.splitext(rel)[1].lower().lstrip("."),
                "importer": importer_name(full),
                "seconds": time.perf_counter() - t0,
                "objects": objects,
            }
        )
    safety = dict(safety or {})
    safety.update(
        blend_loader="bpy.data.libraries.load(link=False): objects only, never wm.open_mainfile",
        texts_loaded=texts,
        use_scripts_auto_execute=bool(bpy.context.preferences.filepaths.use_scripts_auto_execute),
    )
    doc["safety"] = safety
    if cell is not None:
        doc["heightmap"] = {"cell": cell, "layers": layers, "file": "heightmap.npz", "entries": entries}
        tmp = os.path.join(out_dir, ".heightmap.npz.tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, os.path.join(out_dir, "heightmap.npz"))
    tmp = os.path.join(out_dir, ".probe.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, os.path.join(out_dir, "probe.json"))
    return {"files": len(files), "objects": sum(len(f["objects"]) for f in doc["files"]), "heightmaps": len(entries)}


if __name__ == "__main__":
    contract.script_main(contract.SCRIPT_SCENE_PROBE, probe)
