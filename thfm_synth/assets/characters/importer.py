"""Rigged character files (FBX, GLB/glTF) -> baked character npz.

`import_character(path, out_npz, rig="auto")` runs `blender_scripts/character_import.py`
in the render child to read the file (Blender's importers; FBX unit scale applied), then
here, in numpy: maps the bones onto the canonical skeleton (`rigs.map_rig`, one error
naming every missing required bone), cleans the skeleton (`skeleton.build_skeleton`),
fills vertices left without skin weights from their nearest weighted vertex (counted in
`meta.unweighted_filled`), brings the character into the world frame, and computes the
labels with the same code as built-in bodies (`labels.compute_labels`).

World frame: rotated so the character's left (left limbs minus right limbs) is +X and up
(pelvis -> neck) is +Z, i.e. it faces -Y; the pelvis is centred over the origin and the
lowest vertex put on z = 0. Height: if `height_m` is given the character is scaled to it;
otherwise a height between 0.9 and 2.3 m is kept as the file says, and anything else is
taken as a unit mistake and scaled to 1.75 m (`meta.rescaled` records it). The
Quaternius test characters are 4.84 "m" tall after their FBX unit scale (1 cm) and are
rescaled so.

Imported meshes are one surface: every vertex is "body" (`vertex_garment` 0) and clothing
is labelled with the body part of its dominant bone.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from thfm_synth.assets.characters.format import Character, quantize_weights, save_character
from thfm_synth.assets.characters.labels import compute_labels
from thfm_synth.assets.characters.materials import material
from thfm_synth.assets.characters.textures import texture_ref
from thfm_synth.assets.characters.rigs import map_rig
from thfm_synth.assets.characters.armature import build_skeleton
from thfm_synth.errors import UserError

PLAUSIBLE_HEIGHT_M = (0.9, 2.3)
DEFAULT_HEIGHT_M = 1.75
SUPPORTED = (".fbx", ".glb", ".gltf")


# a file whose height is off by a unit: the factor (metres per file "metre") that fits, in this order;
# the first one giving a plausible height wins, so the character keeps its real height
UNIT_GUESSES = (
    ("centimetres", 0.01),
    ("decimetres", 0.1),
    ("millimetres", 0.001),
    ("inches", 0.0254),
    ("a scale 10x too small", 10.0),
    ("a scale 100x too small", 100.0),
)


def guess_unit(height: float) -> tuple[str, float] | None:
    """(unit name, factor) that turns a wrong-unit height into a plausible one, or None."""
    for name, factor in UNIT_GUESSES:
        if PLAUSIBLE_HEIGHT_M[0] <= height * factor <= PLAUSIBLE_HEIGHT_M[1]:
            return name, factor
    return None


def run_import_child(path: Path, raw_npz: Path, texture_dir: Path, timeout: float = 300) -> dict:
    """Run character_import.py; returns its info dict or raises the child's one-line UserError."""
    from thfm_synth.blender import contract
    from thfm_synth.blender.call import BlenderBadInput, BlenderCrash, call

    job = contract.CharacterImportJob(
        path=str(Path(path).resolve()),
        raw_npz=str(Path(raw_npz).resolve()),
        texture_dir=str(Path(texture_dir).resolve()),
    )
    try:
        return call(contract.SCRIPT_CHARACTER_IMPORT, job, timeout=timeout)
    except BlenderBadInput as exc:
        raise UserError(f"{path} {exc.what}", exc.fix) from None
    except BlenderCrash as exc:
        raise UserError(
            f"{path}: the Blender import child failed: {str(exc)[:300]}",
            "check the file opens in Blender 5.0; run `python3 -m thfm_synth doctor` if Blender itself fails",
        ) from None


def _axis_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation taking unit vector a onto unit vector b (a != -b handled)."""
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -0.999999:
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _frame_rotation(heads: dict[str, np.ndarray]) -> np.ndarray:
    """Rotation into the world frame: the file's up axis (the principal axis nearest pelvis -> neck)
    onto +Z, then a turn about Z that brings the character's left onto +X (snapped to a quarter
    turn when within 10 degrees of one, so a slightly asymmetric rest pose is not rotated)."""
    up = heads["Neck"] - heads["Hips"]
    k = int(np.argmax(np.abs(up)))
    axis = np.zeros(3)
    axis[k] = np.sign(up[k])
    r_up = _axis_rotation(axis, np.array([0.0, 0.0, 1.0]))
    left = r_up @ ((heads["LeftArm"] + heads["LeftUpLeg"]) - (heads["RightArm"] + heads["RightUpLeg"]))
    yaw = float(np.arctan2(left[1], left[0]))
    quarter = np.round(yaw / (np.pi / 2)) * (np.pi / 2)
    if abs(yaw - quarter) < np.radians(10):
        yaw = quarter
    c, s = np.cos(-yaw), np.sin(-yaw)
    r_yaw = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return r_yaw @ r_up


def character_from_raw(
    raw: dict,
    source: str,
    rig: str = "auto",
    height_m: float | None = None,
    scratch: Path | None = None,
    bone_map: dict[str, str] | None = None,
) -> Character:
    names = [str(s) for s in raw["bone_names"]]
    wb = np.asarray(raw["weight_bones"], np.int64)
    wv = np.asarray(raw["weight_values"], np.float64)
    weighted = np.zeros(len(names), bool)
    weighted[np.unique(wb[(wb >= 0) & (wv > 0)])] = True
    mapping = map_rig(names, rig, source=source, bone_map=bone_map)
    skel = build_skeleton(
        names, raw["bone_parents"], raw["bone_heads"], raw["bone_tails"], raw["bone_rotations"], weighted, mapping
    )
    new_of_old = np.full(len(names) + 1, 0, np.int64)
    new_of_old[skel.old_index] = np.arange(len(skel.names))
    valid = (wb >= 0) & (wv > 0)
    s_idx, s_w, unweighted = quantize_weights(
        np.where(valid, new_of_old[np.where(valid, wb, 0)], 0), np.where(valid, wv, 0.0)
    )
    verts = np.asarray(raw["vertices"], np.float64)
    n_unweighted = int(unweighted.sum())
    if n_unweighted == len(verts):
        raise UserError(
            f"{source}: no vertex carries a skin weight of a deforming bone",
            "skin the mesh to the armature (e.g. Blender: Parent > With Automatic Weights) and re-export",
        )
    if n_unweighted:
        tree = cKDTree(verts[~unweighted])
        _, nn = tree.query(verts[unweighted])
        donors = np.flatnonzero(~unweighted)[nn]
        s_idx[unweighted] = s_idx[donors]
        s_w[unweighted] = s_w[donors]

    # world frame
    jh = {n: skel.heads[i] for i, n in enumerate(skel.names)}
    rot = _frame_rotation(jh)
    verts = verts @ rot.T
    heads = skel.heads @ rot.T
    tails = skel.tails @ rot.T
    rots = rot[None] @ skel.rotations
    height = float(verts[:, 2].max() - verts[:, 2].min())
    rescaled = None
    if height_m is not None:
        scale = float(height_m) / height
    elif PLAUSIBLE_HEIGHT_M[0] <= height <= PLAUSIBLE_HEIGHT_M[1]:
        scale = 1.0
    else:
        unit = guess_unit(height)
        scale = unit[1] if unit else DEFAULT_HEIGHT_M / height
        rescaled = {
            "from_m": round(height, 4),
            "to_m": round(height * scale, 4),
            "unit": unit[0] if unit else None,
            "reason": f"height outside {PLAUSIBLE_HEIGHT_M} m after the file's unit scale"
            + (f"; read as {unit[0]}" if unit else f"; no unit fits, set to {DEFAULT_HEIGHT_M} m"),
        }
    shift = np.array([-heads[0, 0], -heads[0, 1], -verts[:, 2].min()]) * scale
    verts = verts * scale + shift
    heads = heads * scale + shift
    tails = tails * scale + shift

    tri = np.asarray(raw["tri_vertices"], np.int64)
    tri_uv = np.asarray(raw["tri_uv"], np.float32).reshape(-1, 2)
    uv, face_uv = np.unique(np.round(tri_uv, 6), axis=0, return_inverse=True)
    face_uv = face_uv.reshape(-1, 3)
    labels = compute_labels(verts, tri, s_idx, s_w, skel.names, skel.parents, heads, tails)
    materials, textures = [], {}
    for m in json.loads(str(raw["materials_json"])):
        fields = {
            "base_color": [round(float(x), 5) for x in m["base_color"]],
            "roughness": float(m["roughness"]),
            "metallic": float(m["metallic"]),
        }
        if m.get("texture"):
            # into the content-addressed store beside the npz (textures.py): relative, digest-covered
            ref = texture_ref(m["texture"])
            textures[ref["sha256"]] = m["texture"]
            fields["base_color_map"] = ref
        fields.update(_map_fields(m.get("maps") or {}, textures, scratch))
        materials.append(material(m["name"], "source", **fields))
    info = json.loads(str(raw["info_json"]))
    angle = float(np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
    meta = {
        "source_file": source,
        "rig": mapping.rig,
        "rig_map": {s: c for s, c in mapping.to_canonical.items()},
        "bone_map": dict(bone_map) if bone_map else None,
        "skeleton": {"reparented": skel.reparented, "dropped": skel.dropped},
        "unweighted_filled": n_unweighted,
        "rotation_to_world": rot.round(6).tolist(),
        "rotation_deg": round(angle, 3),
        "scale": scale,
        "rescaled": rescaled,
        "height_m": round(float(verts[:, 2].max()), 4),
        "has_uv": bool(raw["has_uv"]),
        "import": info,
    }
    return Character(
        vertices=verts.astype(np.float32),
        faces=tri.astype(np.int32),
        uv=uv.astype(np.float32),
        face_uv=face_uv.astype(np.int32),
        joint_names=skel.names,
        joint_source_names=skel.source_names,
        joint_parents=skel.parents,
        joint_heads=heads.astype(np.float32),
        joint_tails=tails.astype(np.float32),
        joint_rest_rotations=rots.astype(np.float32),
        skin_indices=s_idx,
        skin_weights=s_w,
        vertex_garment=np.zeros(len(verts), np.int16),
        face_material=np.asarray(raw["tri_material"], np.int16),
        vertex_part=labels.vertex_part,
        vertex_part_uv=labels.vertex_part_uv,
        vertex_canonical=labels.vertex_canonical,
        canonical_min=labels.canonical_min,
        canonical_max=labels.canonical_max,
        face_part=labels.face_part,
        corner_part_uv=labels.corner_part_uv,
        materials=materials or [material("default", "source", base_color=[0.6, 0.6, 0.6])],
        garments=[],
        meta=meta,
        textures=textures,
    )


def _channel_image(src: str, channel: str, scratch: Path | None) -> str:
    """`src` itself when the wanted channel is its red one, else a grey PNG of that channel
    (the schema reads roughness and metallic from red; glTF packs them in green and blue)."""
    if channel in ("r", "rgb"):
        return src
    from PIL import Image

    scratch = Path(scratch or tempfile.mkdtemp(prefix="thfm-maps-"))
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / f"{Path(src).stem}_{channel}.png"
    with Image.open(src) as im:
        im.convert("RGBA").getchannel("RGBA".index(channel.upper())).save(out)
    return str(out)


def _map_fields(maps: dict, textures: dict, scratch: Path | None) -> dict:
    """Schema fields (materials.py) for the normal, roughness, metallic and alpha maps the
    import child found, and subsurface; alpha follows the alpha-card label rule (blend, 0.5)."""

    def ref_of(src):
        ref = texture_ref(src)
        textures[ref["sha256"]] = src
        return ref

    out = {}
    if "normal" in maps:
        out["normal_map"] = ref_of(maps["normal"]["path"])
    for key in ("roughness", "metallic"):
        if key in maps:
            out[f"{key}_map"] = ref_of(_channel_image(maps[key]["path"], maps[key]["channel"], scratch))
    if maps.get("roughness", {}).get("invert"):
        out["roughness_is_gloss"] = True
    if "alpha" in maps:
        a = maps["alpha"]
        if a["channel"] == "a":
            out["alpha_map"], out["alpha_channel"] = ref_of(a["path"]), "a"
        else:
            out["alpha_map"], out["alpha_channel"] = ref_of(_channel_image(a["path"], a["channel"], scratch)), "r"
        out["alpha_mode"] = "blend"
    elif float(maps.get("opacity", 1.0)) < 1.0:
        out["opacity"], out["alpha_mode"] = float(maps["opacity"]), "blend"
    if maps.get("subsurface"):
        s = maps["subsurface"]
        out["subsurface"] = {"weight": float(s["weight"]), "radius": [float(r) for r in s["radius"]], "color": None}
    return out


def import_character(
    path: str | Path,
    out_npz: str | Path,
    rig: str = "auto",
    height_m: float | None = None,
    timeout: float = 300,
    bone_map: dict[str, str] | None = None,
) -> Character:
    """Import a rigged FBX/GLB/glTF character and write its baked npz (returns the Character).
    `bone_map`: our joint name -> their bone name (rigs.load_bone_map), laid over the rig table."""
    path = Path(path)
    out_npz = Path(out_npz)
    if not path.is_file():
        raise UserError(f"character file {path} not found", "give the path of an existing .fbx/.glb/.gltf file")
    if path.suffix.lower() not in SUPPORTED:
        raise UserError(f"{path}: unsupported character format {path.suffix}", "use .fbx, .glb or .gltf")
    # packed textures are unpacked into the temporary folder and copied into the library's
    # content-addressed store by save_character, so a failed import leaves nothing behind
    with tempfile.TemporaryDirectory(prefix="thfm-import-") as tmp:
        raw_path = Path(tmp) / "raw.npz"
        run_import_child(path.resolve(), raw_path, (Path(tmp) / "textures").resolve(), timeout=timeout)
        with np.load(raw_path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
        c = character_from_raw(
            raw, str(path), rig=rig, height_m=height_m, scratch=Path(tmp) / "maps", bone_map=bone_map
        )
        c.meta["id"] = out_npz.stem
        save_character(out_npz, c)
    return c
