"""A contact sheet of baked characters, rendered by the production renderer, for a person to look at.

`preview_characters(folder, out_png, count=24)` takes the first `count` characters of a
folder (its manifest.yaml order, else the npz files sorted), poses each at rest and at
mid-stride of the built-in walk (retargeted exactly as videos are, scene/animate.py's path),
and renders four tiles per character - front and left side, rest and walk - with
`blender_scripts/render_scene.py` (Cycles, the same materials and settings as videos:
16 samples + denoising by default, like the paper preset) under an outdoor sky with a sun,
standing on concrete. Characters are placed on a diagonal 20 m apart so no camera sees a
neighbour. One exposure for the whole sheet, metered on the people (the soft mask), so skin
tones compare truthfully between tiles. Each row of tiles is labelled with the character
id, sex, age, skin (Fitzpatrick type, texture) and outfit.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from thfm_synth.assets.characters.format import Character, load_character
from thfm_synth.assets.characters.skinning import forward_kinematics, linear_blend_skinning, motion_skeleton
from thfm_synth.errors import UserError

VIEWS = (("front", 0), ("side", 1))
POSES = ("rest", "walk")
SPACING_M = 20.0
BATCH = 6  # characters per Blender job (vertex animation memory stays small)


def character_files(folder: str | Path, count: int) -> list[Path]:
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".npz":
        return [folder]
    manifest = folder / "manifest.yaml"
    files: list[Path] = []
    if manifest.is_file():
        from thfm_synth.assets.manifest import load_manifest

        m = load_manifest(manifest).manifest
        files = [folder / e.path for e in m.characters if e.path and e.path.endswith(".npz")]
    if not files:
        files = sorted(folder.glob("*.npz"))
    if not files:
        raise UserError(
            f"{folder} holds no baked characters (*.npz)",
            "bake some first: thfm-synth assets build-characters --count 24 --out DIR",
        )
    return files[:count]


def walk_pose(c: Character) -> tuple[np.ndarray, np.ndarray]:
    """(local quaternions, root position) of the built-in walk at its widest stride."""
    from thfm_synth.assets.motion.builtin_motions import builtin_motion
    from thfm_synth.assets.motion.retarget import retarget

    clip = retarget(builtin_motion("builtin-walk"), motion_skeleton(c))
    positions, _ = clip.forward_kinematics()
    names = list(clip.skeleton.names)
    lf, rf = names.index("LeftFoot"), names.index("RightFoot")
    stride = np.linalg.norm(positions[:, lf, :2] - positions[:, rf, :2], axis=1)
    f = int(np.argmax(stride[: len(stride) // 2]))
    return clip.local_rotations[f], clip.root_translation[f]


def posed_vertices(c: Character) -> dict[str, np.ndarray]:
    """Rest and mid-walk vertices, pelvis over the origin (world metres)."""
    rest = np.asarray(c.vertices, np.float64)
    quats, root = walk_pose(c)
    walk = linear_blend_skinning(c, forward_kinematics(c, quats, root))
    walk = walk - np.array([root[0], root[1], 0.0])
    walk[:, 2] -= walk[:, 2].min()  # a foot on the ground, like the rest pose
    return {"rest": rest, "walk": walk}


def _camera(view: int, target: np.ndarray, height: float, width_px: int, height_px: int, focal_mm: float = 70.0):
    """K, R, t of a level camera looking at `target` from the front (view 0) or the left (1)."""
    fx = focal_mm / 36.0 * width_px
    # distance so the body (plus a margin) fills the frame's height
    dist = fx * (height * 1.12) / height_px
    fwd = np.array([0.0, 1.0, 0.0]) if view == 0 else np.array([-1.0, 0.0, 0.0])
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    r = np.stack([right, [0.0, 0.0, -1.0], fwd])
    centre = target - fwd * dist
    k = np.array([[fx, 0.0, width_px / 2.0], [0.0, fx, height_px / 2.0], [0.0, 0.0, 1.0]])
    return k, r, -r @ centre


def _description(chars, files, width, height, samples, denoise):
    from thfm_synth.render.description import (
        Camera,
        Material,
        Object,
        RenderSettings,
        SceneDescription,
        World,
        pose_matrix,
    )
    from thfm_synth.render.scene.assemble import _character_materials
    from thfm_synth.render.scene.animate import AnimatedCharacter

    ks, rs, ts, tiles = [], [], [], []
    objects = []
    extra = {}
    frames_per = len(POSES) * len(VIEWS)
    for ci, (c, path) in enumerate(zip(chars, files)):
        slot = np.array([SPACING_M * ci, SPACING_M * ci, 0.0])
        verts = posed_vertices(c)
        anim = np.zeros((len(chars) * frames_per, len(c.vertices), 3), np.float32)
        anim[:] = (verts["rest"] + slot).astype(np.float32)
        for pi, pose in enumerate(POSES):
            for vi, (vname, view) in enumerate(VIEWS):
                fr = ci * frames_per + pi * len(VIEWS) + vi
                anim[fr] = (verts[pose] + slot).astype(np.float32)
                h = float(verts[pose][:, 2].max())
                k, r, t = _camera(view, slot + [0.0, 0.0, h / 2], h, width, height)
                ks.append(k)
                rs.append(r)
                ts.append(t)
                tiles.append((ci, pose, vname))
        key = f"c{ci}_vertices"
        extra[key] = anim
        stub = AnimatedCharacter(Path(path).resolve(), c, None, {})
        objects.append(
            Object(
                name=f"character_{ci}",
                kind="mesh_npz",
                mesh_path=str(Path(path).resolve()),
                vertex_animation_key=key,
                materials=_character_materials(stub),
                subject=True,
            )
        )
    ground = Object(
        name="ground",
        kind="plane",
        size=(400.0, 400.0, 0.0),
        materials=[Material(name="ground", base_color=(0.33, 0.32, 0.3), roughness=0.8)],
        pose=pose_matrix(translation=(SPACING_M * (len(chars) - 1) / 2,) * 2 + (0.0,)),
    )
    world = World(kind="sky", sky_model="MULTIPLE_SCATTERING", sun_elevation_deg=35.0, sun_azimuth_deg=-115.0)
    desc = SceneDescription(
        camera=Camera(k=np.stack(ks), r=np.stack(rs), t=np.stack(ts), width=width, height=height),
        objects=objects + [ground],
        world=world,
        render=RenderSettings(samples=samples, denoise=denoise),
        seed=7,
        extra_arrays=extra,
        meta={"purpose": "character contact sheet"},
    )
    return desc, tiles


def _label(c: Character) -> str:
    p = c.meta.get("params", {})
    ph, app = p.get("phenotype", {}), p.get("appearance", {})
    skin = app.get("skin", {})
    outfit = (app.get("outfit") or {}).get("asset") or (app.get("top") or {}).get("type", "")
    hair = (app.get("hair") or {}).get("asset") or (app.get("hair") or {}).get("style", "")
    return (
        f"{c.meta.get('id', '?')}  {ph.get('sex', '?')} {ph.get('age_years', 0):.0f}y  "
        f"F{skin.get('fitzpatrick', '?')} {skin.get('asset', '')}  {outfit}  {hair or 'no hair'}"
    )


def preview_characters(
    folder: str | Path,
    out_png: str | Path,
    count: int = 24,
    width: int = 256,
    height: int = 384,
    samples: int = 16,
    denoise: bool = True,
    per_row: int = 4,
    progress=None,
    runtime=None,
) -> dict:
    """Render the contact sheet (see module doc); returns {"characters", "tiles", "seconds", "gain"}."""
    import time

    from PIL import Image, ImageDraw

    from thfm_synth.atomic import atomic_path
    from thfm_synth.render import exposure, outputs
    from thfm_synth.render.imagefiles import read_exr
    from thfm_synth.render.runner import render

    t0 = time.perf_counter()
    files = character_files(folder, count)
    chars = [load_character(f) for f in files]
    linear, masks, tiles_all = [], [], []
    work = Path(tempfile.mkdtemp(prefix="thfm-preview-"))
    try:
        for b in range(0, len(chars), BATCH):
            desc, tiles = _description(chars[b : b + BATCH], files[b : b + BATCH], width, height, samples, denoise)
            scene = desc.save(work / f"scene{b}")
            out = work / f"out{b}"
            render(scene, out, modalities=("rgb", "mask"), mode="single", runtime=runtime)
            for f in range(len(tiles)):
                ch = read_exr(out / "raw" / f"{f:05d}.exr")
                fr = outputs.decode_raw(ch, desc.camera.r[f])
                linear.append(fr.rgb_linear)
                masks.append(fr.mask)
            tiles_all += [(b + ci, pose, view) for ci, pose, view in tiles]
            if progress is not None:
                progress(min(b + BATCH, len(chars)), len(chars))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    people = np.concatenate([lin[m > 0.5] for lin, m in zip(linear, masks)]) if masks else np.zeros((0, 3))
    # people at middle grey on average (log mean), as a photographer exposing for the subject
    gain = exposure.metering_gain([people[None]], key=0.18) if len(people) else 1.0
    per_char = len(POSES) * len(VIEWS)
    label_h = 18
    cols = per_row * per_char
    rows = -(-len(chars) // per_row)
    sheet = Image.new("RGB", (cols * width, rows * (height + label_h)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for (ci, pose, view), lin in zip(tiles_all, linear):
        k = (POSES.index(pose) * len(VIEWS)) + [v for v, _ in VIEWS].index(view)
        x = ((ci % per_row) * per_char + k) * width
        y = (ci // per_row) * (height + label_h) + label_h
        sheet.paste(Image.fromarray(outputs.srgb_encode(lin * gain)), (x, y))
    for ci, c in enumerate(chars):
        x = (ci % per_row) * per_char * width + 4
        y = (ci // per_row) * (height + label_h) + 3
        draw.text((x, y), _label(c), fill=(235, 235, 235))
    out_png = Path(out_png)
    with atomic_path(out_png, "contact sheet") as tmp:
        sheet.save(tmp, format="PNG")
    info = {
        "characters": len(chars),
        "tiles": len(tiles_all),
        "seconds": round(time.perf_counter() - t0, 1),
        "gain": gain,
        "files": [str(f) for f in files],
    }
    out_png.with_suffix(".json").write_text(json.dumps(info, indent=1))
    return info
