"""Plan row -> renderer-agnostic scene description (Kubric-style: all geometry decided here).

Order matters and is the whole algorithm:
1. animate the character (scene/animate.py): retargeted motion window + joint sets;
2. place it: for set scenes (rooms, streets) move its whole root path onto free floor
   (scene/layout.py); scenes from files and kits (scene/scene_files.py) onto walkable cells
   of their height map, feet at the walkable surface's height; open backgrounds (sky, HDRI)
   keep it where the motion put it;
3. skin the mesh per frame in numpy (the renderer gets baked vertices, never a rig);
4. fit the camera trajectory to the placed joints (scene/camera.py), its azimuth measured from
   the placed subject's own facing (scene/facing.py) unless the plan predates that;
5. cut away set walls (file scenes: objects, by name) between the camera and the subject;
   add ground, world, lights.
The returned arrays (camera, joints, vertices) are exactly what Blender renders, so the
annotations written from them align with the pixels by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.assets.library import Library
from thfm_synth.assets.characters.skinning import forward_kinematics, linear_blend_skinning
from thfm_synth.config.schema import RenderSettings
from thfm_synth.conventions import yaw_matrix
from thfm_synth.errors import UserError
from thfm_synth.plan.spec import AZIMUTH_FROM_WORLD, VideoSpec
from thfm_synth.render.description import Camera, Light, Material, Object, SceneDescription, World
from thfm_synth.render.scene.animate import AnimatedCharacter, animate
from thfm_synth.render.scene.camera import HDRI_CAPTURE_HEIGHT_M, CameraTrack, SubjectTrack, camera_track
from thfm_synth.render.scene import daylight, facing, furnish, scene_files
from thfm_synth.render.scene.people import place_others
from thfm_synth.render.scene.layout import SetLayout, build_set, cutaway, place_path

GROUNDS = {  # linear RGB base colour, roughness, optional checker colour
    "grass": ((0.075, 0.12, 0.035), 0.95, None),
    "asphalt": ((0.045, 0.045, 0.05), 0.85, None),
    "sand": ((0.42, 0.34, 0.22), 0.95, None),
    "tiles": ((0.55, 0.53, 0.5), 0.4, (0.32, 0.31, 0.3)),
    "concrete": ((0.33, 0.32, 0.3), 0.8, None),
    "checker": ((0.6, 0.6, 0.6), 0.6, (0.18, 0.18, 0.18)),
}
# procedural PBR surface (blender contract.SURFACES) of the open ground, tinted by its colour: a flat
# colour reads as a studio floor; grass and the checker (a deliberate test floor) keep their look
GROUND_SURFACES = {"asphalt": "asphalt", "sand": "plaster", "tiles": "tiles", "concrete": "concrete"}
GROUND_SIZE_M = 400.0
SUBJECT = "subject"


@dataclass
class AssembledScene:
    description: SceneDescription
    anim: AnimatedCharacter
    camera: CameraTrack
    placement: np.ndarray  # (4, 4) applied to the animated character (identity for open backgrounds)
    joints_world: dict[str, np.ndarray]  # convention -> (F, K, 3), placed
    vertices: np.ndarray  # (F, V, 3) posed, placed
    layout: SetLayout | None
    file_scene: scene_files.FileScene | None = None  # scenes from files / kits: parts, boxes, height map
    hidden: dict | None = None  # file scenes: {part index: object names cut away}
    body_annotations: dict | None = None  # SMPL-X characters: parameters in world/camera frames (annotations.npz)
    view: dict | None = None  # realised camera azimuth and face angles (scene/facing.py view_record)
    others: list = field(default_factory=list)  # scene/people.py PlacedPerson: persons 1, 2, ...
    people: list = field(default_factory=list)  # a record per planned other person (placed or why not)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:3, :3].T + m[:3, 3]


def _character_materials(anim: AnimatedCharacter) -> list[Material]:
    """The character's schema materials (characters/materials.py) as renderer materials.

    Texture references resolve against the character's npz folder (its texture store) with
    their sha256 verified, so a missing or altered texture stops here with its name, never
    as a magenta render. Print scales become periods across the canonical box.
    """
    from thfm_synth.assets.characters.materials import normalise
    from thfm_synth.assets.characters.textures import resolve_texture

    c = anim.character
    box = np.maximum(np.asarray(c.canonical_max, np.float64) - np.asarray(c.canonical_min, np.float64), 1e-6)

    def tex(ref):
        if ref is None:
            return None
        if ref.get("sha256") is None:  # format 1: an absolute path
            return str(ref["path"])
        return str(resolve_texture(anim.character_file, ref))

    out = []
    for raw in c.materials:
        m = normalise(raw)
        pattern = m["pattern"] or {}
        ptype = pattern.get("type") if pattern.get("type") in ("stripes", "checker", "dots") else None
        recolor = m["recolor"] or {}
        sss, sheen, coat = m["subsurface"] or {}, m["sheen"] or {}, m["coat"] or {}
        out.append(
            Material(
                name=m.get("name", "m"),
                base_color=tuple(m["base_color"]),
                roughness=float(m["roughness"]),
                metallic=float(m["metallic"]),
                specular=float(m["specular"]),
                texture=tex(m["base_color_map"]),
                kind=m["kind"],
                base_tint=tuple(m["tint"]),
                recolor_color=tuple(recolor["color"]) if recolor.get("color") else None,
                recolor_amount=float(recolor.get("amount", 0.0)),
                recolor_luminance=float(recolor.get("luminance", 0.18)),
                hsv=tuple(m["hsv"]),
                pattern_type=ptype,
                pattern_color=tuple(pattern.get("color2", (0.0, 0.0, 0.0))),
                pattern_scale=tuple(float(x) for x in box / float(pattern.get("scale_m", 0.05))),
                pattern_axis=pattern.get("axis", "z"),
                normal_map=tex(m["normal_map"]),
                normal_strength=float(m["normal_strength"]),
                roughness_map=tex(m["roughness_map"]),
                roughness_is_gloss=bool(m["roughness_is_gloss"]),
                metallic_map=tex(m["metallic_map"]),
                ior=float(m["ior"]),
                alpha_mode=m["alpha_mode"],
                alpha_map=tex(m["alpha_map"]),
                alpha_channel=m["alpha_channel"],
                alpha_cutoff=float(m["alpha_cutoff"]),
                opacity=float(m["opacity"]),
                subsurface_weight=float(sss.get("weight", 0.0)),
                subsurface_radius=tuple(sss.get("radius", (0.0045, 0.0017, 0.0009))),
                sheen_weight=float(sheen.get("weight", 0.0)),
                sheen_roughness=float(sheen.get("roughness", 0.5)),
                sheen_tint=tuple(sheen.get("tint", (1.0, 1.0, 1.0))),
                coat_weight=float(coat.get("weight", 0.0)),
                coat_roughness=float(coat.get("roughness", 0.03)),
                coat_ior=float(coat.get("ior", 1.5)),
            )
        )
    return out or [Material()]


def hdri_eye_height(entry) -> float:
    """The camera height for an HDRI backdrop: its manifest `params.capture_height_m` (metres)."""
    h = entry.params.get("capture_height_m", HDRI_CAPTURE_HEIGHT_M)
    if not isinstance(h, (int, float)) or not 0.1 <= float(h) <= 50.0:
        raise UserError(
            f"HDRI {entry.id}: params.capture_height_m = {h!r} is not a height in metres (0.1-50)",
            "set it to the height the panorama was shot from (tripod: about 1.7) or remove it",
        )
    return float(h)


def _ground(kind: str, catcher: bool) -> Object:
    color, rough, checker = GROUNDS.get(kind, GROUNDS["concrete"])
    surface = None if catcher else GROUND_SURFACES.get(kind)
    mat = Material(
        name=f"ground_{kind}",
        base_color=color,
        roughness=rough,
        checker_color=None if surface else checker,
        checker_scale=GROUND_SIZE_M,
        surface=surface,
    )
    return Object(
        name="ground", kind="plane", size=(GROUND_SIZE_M, GROUND_SIZE_M, 0.0), materials=[mat], shadow_catcher=catcher
    )


def _set_objects(layout: SetLayout) -> list[Object]:
    objs = []
    for box in layout.boxes:
        if box.piece_file is not None:  # a kit piece (scene/furnish.py)
            objs.append(
                Object(
                    name=f"set_{box.name}",
                    kind="scene_file",
                    mesh_path=box.piece_file,
                    pose=np.array(box.piece_pose),
                    materials=[],
                )
            )
            continue
        pose = np.eye(4)
        pose[:3, :3] = yaw_matrix(box.yaw_deg)
        pose[:3, 3] = box.center
        objs.append(
            Object(
                name=f"set_{box.name}",
                kind="box",
                pose=pose,
                size=tuple(box.size),
                materials=[
                    Material(name=f"set_{box.name}", base_color=box.color, roughness=box.roughness, surface=box.surface)
                ],
            )
        )
    return objs


def _sky_world(params: dict, spec: VideoSpec) -> World:
    return World(
        kind="sky",
        sky_model=params.get("sky_type", "MULTIPLE_SCATTERING"),
        sun_elevation_deg=spec.sun_elevation_deg,
        sun_azimuth_deg=spec.sun_azimuth_deg,
        strength=spec.background_strength,
        turbidity=float(params.get("turbidity", 2.2)),
        ground_albedo=float(params.get("ground_albedo", 0.3)),
        air_density=float(params.get("air_density", 1.0)),
        aerosol_density=float(params.get("aerosol_density", 1.0)),
        ozone_density=float(params.get("ozone_density", 1.0)),
    )


def _add_daylight(world: World, centre: np.ndarray) -> Light | None:
    """The sun of an analytic sky (scene/daylight.py); scales `world.strength` to go with it."""
    day = daylight.daylight(world.sky_model, world.turbidity, world.sun_elevation_deg, world.strength)
    if day is None:
        return None
    world.strength, sun = day
    return Light(
        kind="sun",
        position=tuple(centre + 100.0 * daylight.sun_direction(world.sun_elevation_deg, world.sun_azimuth_deg)),
        target=tuple(centre),
        power_w=sun,
        temperature_k=daylight.sun_temperature_k(world.sun_elevation_deg),
        size_m=daylight.SUN_ANGLE_DEG,
    )


def _lights(spec: VideoSpec, centre: np.ndarray, front_yaw_deg: float) -> list[Light]:
    out = []
    for light in spec.lights:
        az = np.radians(light.azimuth_deg + front_yaw_deg)
        el = np.radians(light.elevation_deg)
        d = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
        out.append(
            Light(
                kind=light.type,
                position=tuple(centre + light.distance_m * d),
                target=tuple(centre),
                power_w=light.power_w,
                temperature_k=light.temperature_k,
                size_m=light.size_m if light.type == "area" else 0.05,
            )
        )
    return out


def assemble(spec: VideoSpec, library: Library, render_cfg: RenderSettings, cache_dir: str | Path) -> AssembledScene:
    anim = animate(spec, library, cache_dir)
    character = anim.character
    clip = anim.clip
    bg = library.entry(spec.background_id)
    placement = np.eye(4)
    layout = None
    fscene = None
    if anim.body is not None:  # SMPL-X: the mesh as the model poses it (pose correctives, exact weights)
        posed = anim.body.vertices
    else:
        posed = linear_blend_skinning(
            character, forward_kinematics(character, clip.local_rotations, clip.root_translation)
        )
    if spec.background_kind == "scene":
        path = np.asarray(clip.root_translation)[:, :2]
        ground_z = 0.0
        if bg.format == "procedural":
            layout = build_set(bg.params, spec.render_seed)
            kit = furnish.room_kit(library, bg, spec.render_seed)
            if kit is not None:
                probe = scene_files.probe_scene(library.path_of(kit), kit.sha256, cache_dir)
                pieces = furnish.kit_pieces_of(probe, dict(kit.params or {}))
                layout = furnish.furnish(layout, tuple(bg.params["size_m"][:2]), pieces, spec.render_seed)
            offset, yaw = place_path(layout, path, spec.placement_u, spec.placement_v)
        else:
            fscene = scene_files.load_file_scene(bg, library.path_of(bg), spec.render_seed, cache_dir)
            # head room: the body's highest point over its feet during the clip, plus a margin
            clearance = max(scene_files.MIN_CLEARANCE_M, float(posed[..., 2].max() - posed[..., 2].min()) + 0.15)
            offset, yaw, layout = scene_files.place_subject(fscene, path, spec.placement_u, spec.placement_v, clearance)
            ground_z = layout.walk.ground_z - float(posed[..., 2].min())  # lowest foot point on the surface
        centre = path.mean(axis=0)
        placement[:3, :3] = yaw_matrix(yaw)
        placement[:3, 3] = np.array([*offset, ground_z]) - yaw_matrix(yaw) @ np.array([*centre, 0.0])

    placed = _apply(placement, posed)
    vertices = placed.astype(np.float32)
    joints_world = {name: _apply(placement, js.positions) for name, js in anim.joints.items()}
    if anim.body is not None:  # regressed from the placed mesh itself, not moved after the fact
        joints_world.update(anim.body.regressor_joints(placed[:, : anim.body.num_body_vertices]))
    positions, _ = clip.forward_kinematics()
    subject = SubjectTrack(_apply(placement, positions), tuple(clip.skeleton.names), joints_world["coco17"][:, :5])
    cam = camera_track(spec, subject, hdri_eye_height(bg) if spec.background_kind == "hdri" else None)
    others, people_records = [], []
    if spec.others:
        hips = subject.index("Hips") if "Hips" in subject.names else 0
        others, people_records = place_others(
            spec,
            library,
            cache_dir,
            subject.joints[:, hips, :2],
            layout,
            layout.walk.ground_z if fscene is not None else None,
            camera_xy=np.einsum("fji,fj->fi", cam.r, -cam.t)[:, :2],
        )
    view = facing.view_record(
        cam.k,
        cam.r,
        cam.t,
        joints_world["smpl24"],
        joints_world["coco17"],
        spec.width,
        spec.height,
        spec.camera_azimuth_reference,
    )

    objects = [
        Object(
            name=SUBJECT,
            kind="mesh_npz",
            mesh_path=str(Path(anim.character_file).resolve()),
            vertex_animation_key="subject_vertices",
            materials=_character_materials(anim),
            subject=True,
            person=1 if others else 0,
        )
    ]
    extra_arrays = {"subject_vertices": vertices}
    for p in others:
        key = f"person{p.slot}_vertices"
        objects.append(
            Object(
                name=f"person{p.slot}",
                kind="mesh_npz",
                vertex_animation_key=key,
                mesh_path=str(Path(p.anim.character_file).resolve()),
                materials=_character_materials(p.anim),
                subject=True,
                person=p.slot + 1,
            )
        )
        extra_arrays[key] = p.vertices
    if spec.background_kind == "sky":
        world = _sky_world(bg.params, spec)
        objects.append(_ground(bg.params.get("ground", "concrete"), catcher=False))
    elif spec.background_kind == "hdri":
        world = World(
            kind="hdri",
            hdri_path=str(library.path_of(bg)),
            rotation_deg=spec.background_rotation_deg,
            strength=spec.background_strength,
        )
        objects.append(_ground("concrete", catcher=True))
    else:
        keep = [subject.index(n) for n in ("Head", "Hips") if n in subject.names]
        pts = subject.joints[:, keep]
        feet = vertices[:, vertices[0, :, 2].argsort()[:1]]
        world = _sky_world({"sky_type": "HOSEK_WILKIE", "turbidity": 3.0}, spec)
        if fscene is None:
            layout = cutaway(layout, cam.centers, np.concatenate([pts, feet], axis=1))
            objects += _set_objects(layout)
        else:
            root_xy = _apply(placement, np.asarray(clip.root_translation))[:, :2]
            protect = scene_files.protected_boxes(fscene, layout, root_xy, clearance)
            # besides head, pelvis and feet: points beside the pelvis (across the line of sight), so
            # walls at the edge of the view next to the subject go too (file scenes are cluttered)
            hips = subject.joints[:, subject.index("Hips")] if "Hips" in subject.names else pts[:, -1]
            sight = hips[:, :2] - cam.centers[:, :2]
            side = np.stack([-sight[:, 1], sight[:, 0], np.zeros(len(sight))], 1)
            side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-9)
            beside = hips[:, None] + scene_files.CUTAWAY_SIDE_M * np.stack([side, -side], 1)
            hidden = scene_files.cutaway_parts(
                fscene, cam.centers, np.concatenate([pts, feet, beside], axis=1), layout.walk.ground_z, protect
            )
            objects += scene_files.description_objects(fscene, hidden)
            plane = _ground(fscene.ground, catcher=False)
            plane.pose = np.eye(4)
            plane.pose[2, 3] = fscene.ground_plane_z
            objects.append(plane)
    centre = subject.joints[:, subject.index("Hips")].mean(axis=0)
    if spec.camera_azimuth_reference == AZIMUTH_FROM_WORLD:
        front_yaw = float(np.degrees(np.arctan2(placement[1, 0], placement[0, 0])))
    else:  # lights' azimuths, like the camera's, from the body's facing at the first frame
        front_yaw = float(facing.yaw_of(facing.body_forward_smpl24(joints_world["smpl24"][:1]))[0])
    lights = _lights(spec, centre, front_yaw)
    street = (bg.params or {}).get("generator") == "street" or (fscene is not None and fscene.kind == "street")
    outdoors = spec.background_kind == "sky" or (spec.background_kind == "scene" and street)
    if outdoors:
        lights.append(_add_daylight(world, centre))
    description = SceneDescription(
        camera=Camera.from_track(cam),
        objects=objects,
        world=world,
        lights=[light for light in lights if light is not None],
        render=render_cfg,
        seed=spec.render_seed,
        fps=spec.fps,
        extra_arrays=extra_arrays,
        meta={"video_id": spec.video_id, "spec": spec.to_row()},
    )
    body = None if anim.body is None else anim.body.annotations(placement, description.camera.r, description.camera.t)
    return AssembledScene(
        description,
        anim,
        cam,
        placement,
        joints_world,
        vertices,
        layout,
        fscene,
        hidden if fscene is not None else None,
        body,
        view,
        others,
        people_records,
    )
