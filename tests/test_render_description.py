"""The renderer-agnostic scene description: validation and the folder format (no Blender)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from thfm_synth.conventions import intrinsics, look_at
from thfm_synth.render.analytic import labelled_sphere_arrays, write_npz
from thfm_synth.render.description import (
    ARRAYS_NPZ,
    SCENE_JSON,
    Camera,
    DescriptionError,
    Light,
    Material,
    Object,
    RenderSettings,
    SceneDescription,
    World,
    blackbody_rgb,
    pose_matrix,
)


def _camera(n=3, w=64, h=48):
    k = intrinsics(50, 36, w, h)
    rs, ts = zip(*[look_at(np.array([0.1 * i, -4.0, 1.5]), np.array([0.0, 0.0, 1.0])) for i in range(n)])
    return Camera(k=k, r=np.array(rs), t=np.array(ts), width=w, height=h)


def _scene(tmp_path, n=3):
    write_npz(tmp_path / "meshes" / "ball.npz", labelled_sphere_arrays(0.3, 2))
    poses = np.stack([pose_matrix(translation=(0.1 * i, 0, 0.3)) for i in range(n)])
    return SceneDescription(
        camera=_camera(n),
        objects=[
            Object("ground", "plane", size=(10, 10, 0), materials=[Material("g", checker_color=(0, 0, 0))]),
            Object(
                "person",
                "mesh_npz",
                pose=poses,
                mesh_path="meshes/ball.npz",
                subject=True,
                vertex_animation_key="verts",
            ),
            Object("box", "box", pose=pose_matrix(np.eye(3), (1, 1, 0.5), 0.5), size=(1, 2, 1)),
        ],
        world=World(kind="sky", sky_model="PREETHAM", sun_elevation_deg=20.0),
        lights=[Light("area", position=(1, -2, 3), temperature_k=4500.0)],
        render=RenderSettings(samples=8, device="optix"),
        seed=7,
        extra_arrays={"verts": np.zeros((n, 642, 3), np.float32)},
        meta={"video_id": "v0001"},
    )


def test_save_load_round_trip_is_exact(tmp_path):
    desc = _scene(tmp_path)
    desc.save(tmp_path)
    back = SceneDescription.load(tmp_path)
    np.testing.assert_array_equal(back.camera.k, desc.camera.k)
    np.testing.assert_array_equal(back.camera.r, desc.camera.r)
    np.testing.assert_array_equal(back.camera.t, desc.camera.t)
    assert back.camera.k.dtype == np.float64 and back.camera.k.shape == (3, 3, 3)
    assert [o.name for o in back.objects] == ["ground", "person", "box"]
    assert [o.instance for o in back.objects] == [1, 2, 3]  # assigned on save
    np.testing.assert_array_equal(back.objects[1].pose, desc.objects[1].pose)
    assert back.objects[1].pose.shape == (3, 4, 4) and back.objects[2].pose.shape == (4, 4)
    assert back.objects[0].materials[0].checker_color == (0.0, 0.0, 0.0)
    assert back.world == desc.world and back.lights == desc.lights and back.render == desc.render
    assert back.seed == 7
    assert back.meta == {"video_id": "v0001"}
    np.testing.assert_array_equal(back.extra_arrays["verts"], desc.extra_arrays["verts"])


def test_folder_is_json_plus_npz_without_pickles(tmp_path):
    _scene(tmp_path).save(tmp_path)
    doc = json.loads((tmp_path / SCENE_JSON).read_text())
    assert doc["format_version"] == 1 and doc["num_frames"] == 3
    assert doc["camera"]["k"] == {"npz": "camera_k"}
    with zipfile.ZipFile(tmp_path / ARRAYS_NPZ) as z:
        assert all(n.endswith(".npy") for n in z.namelist())
    with np.load(tmp_path / ARRAYS_NPZ, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_a_copy_saved_elsewhere_still_finds_its_mesh(tmp_path):
    _scene(tmp_path).save(tmp_path)
    back = SceneDescription.load(tmp_path)
    back.save(tmp_path / "elsewhere")
    again = SceneDescription.load(tmp_path / "elsewhere")
    assert again.objects[1].mesh_path == str((tmp_path / "meshes" / "ball.npz").resolve())


def test_camera_from_a_camera_track():
    """The description's camera is the track's, frame by frame: K from the lens, R|t unchanged."""
    rs, ts = zip(
        *[
            look_at(np.array([2.0 * np.cos(a), 2.0 * np.sin(a), 1.5]), np.array([0.0, 0.0, 1.0]))
            for a in np.linspace(0, 1, 4)
        ]
    )

    class Track:  # the fields of thfm_synth.render.scene.camera.CameraTrack the renderer uses
        k = intrinsics(35, 36, 832, 480)
        r = np.array(rs)
        t = np.array(ts)
        width, height = 832, 480

    cam = Camera.from_track(Track())
    cam.validate()
    assert cam.num_frames == 4 and cam.k.shape == (4, 3, 3)
    for f in range(4):
        assert np.allclose(cam.k[f], [[35 / 36 * 832, 0, 416], [0, 35 / 36 * 832, 240], [0, 0, 1]])
        np.testing.assert_array_equal(cam.r[f], Track.r[f])
        np.testing.assert_array_equal(cam.t[f], Track.t[f])
        # the target projects to the image centre in every frame
        p = cam.k[f] @ (cam.r[f] @ np.array([0.0, 0.0, 1.0]) + cam.t[f])
        assert np.allclose(p[:2] / p[2], (416, 240))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: setattr(d.objects[0], "kind", "torus"), "kind"),
        (lambda d: setattr(d.objects[1], "name", "ground"), "unique"),
        (lambda d: setattr(d.objects[1], "pose", np.eye(4)[None].repeat(2, 0)), "pose"),
        (lambda d: setattr(d.objects[1], "mesh_path", "missing.npz"), "not found"),
        (lambda d: setattr(d.objects[1], "vertex_animation_key", "nope"), "vertex animation"),
        (lambda d: setattr(d.camera, "k", np.array([[[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]] * 3)), "skew"),
        (lambda d: setattr(d.camera, "r", d.camera.r * 2), "rotation"),
        (lambda d: setattr(d.world, "kind", "hdri"), "hdri_path"),
        (
            lambda d: setattr(
                d, "render", RenderSettings.model_construct(**{**d.render.model_dump(), "device": "metal"})
            ),
            "device",
        ),
        (lambda d: setattr(d, "seed", -1), "seed"),
        (lambda d: setattr(d.objects[2], "instance", 1) or setattr(d.objects[0], "instance", 1), "unique"),
    ],
)
def test_invalid_descriptions_name_the_field(tmp_path, mutate, match):
    desc = _scene(tmp_path)
    mutate(desc)
    with pytest.raises(DescriptionError, match=match):
        desc.save(tmp_path)


def test_blackbody_colours_run_from_red_to_blue():
    warm, white, cold = blackbody_rgb(2000), blackbody_rgb(6500), blackbody_rgb(15000)
    assert warm[0] == 1.0 and warm[2] < 0.1
    assert min(white) > 0.9
    assert cold[2] == 1.0 and cold[0] < 0.8


def test_a_set_surface_round_trips_and_an_unknown_one_is_refused(tmp_path):
    desc = _scene(tmp_path)
    desc.objects[2].materials = [Material("bricks", base_color=(0.5, 0.3, 0.2), surface="brick")]
    desc.save(tmp_path)
    assert SceneDescription.load(tmp_path).objects[2].materials[0].surface == "brick"
    desc.objects[2].materials = [Material("stone", surface="marble")]
    with pytest.raises(DescriptionError, match="marble"):
        desc.validate(tmp_path)
