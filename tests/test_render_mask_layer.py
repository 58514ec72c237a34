"""The mask's own fixed-sample view layer: exact k/N coverage while the RGB adapts its samples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from thfm_synth.blender import contract
from thfm_synth.config.schema import RenderSettings
from thfm_synth.render import outputs
from thfm_synth.render.description import Camera, Material, Object, SceneDescription, World
from thfm_synth.render.imagefiles import read_exr
from thfm_synth.render.runner import render

pytestmark = pytest.mark.render

N = 8  # mask samples


def _card_npz(path):
    """Two 1 m x 1 m cards facing -Y: an alpha card at y = 0 over an opaque one at y = 0.3, narrower."""
    v, f = [], []
    for k, (y, half) in enumerate(((0.0, 0.5), (0.3, 0.3))):
        v += [[-half, y, 0.0], [half, y, 0.0], [half, y, 1.0], [-half, y, 1.0]]
        o = 4 * k
        f += [[o, o + 1, o + 2], [o, o + 2, o + 3]]
    np.savez(
        path,
        vertices=np.array(v, np.float32),
        faces=np.array(f, np.int32),
        uv=np.array([[0, 0], [1, 0], [1, 1], [0, 1]] * 2, np.float32),
        face_uv=np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], np.int32),
        face_material=np.array([0, 0, 1, 1], np.int16),
        face_part=np.array([23, 23, 2, 2], np.int32),
        corner_part_uv=np.full((4, 3, 2), 0.5, np.float32),
        vertex_canonical=np.full((len(v), 3), 0.5, np.float32),
    )


def _scene(tmp, name, render_settings, **job):
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    rgba = np.stack([np.full_like(ramp, 200), np.full_like(ramp, 150), np.full_like(ramp, 90), ramp], -1)
    Image.fromarray(rgba, "RGBA").save(tmp / "card.png")
    card = Material(
        name="card",
        base_color=(0.5, 0.4, 0.2),
        texture=str(tmp / "card.png"),
        kind="hair",
        alpha_mode="blend",  # the stochastic per-sample gate: the hardest coverage to keep exact
        alpha_map=str(tmp / "card.png"),
    )
    _card_npz(tmp / "cards.npz")
    fx = 96.0
    desc = SceneDescription(
        camera=Camera(
            k=np.array([[fx, 0, 48], [0, fx, 32], [0, 0, 1]]),
            r=np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
            t=np.array([0.0, 0.5, 2.0]),
            width=96,
            height=64,
        ),
        objects=[
            Object(
                name="cards",
                kind="mesh_npz",
                mesh_path=str(tmp / "cards.npz"),
                materials=[card, Material(name="plain", base_color=(0.2, 0.3, 0.6))],
                subject=True,
                shade_smooth=False,
            ),
            Object(name="wall", kind="plane", size=(4.0, 4.0, 1.0), pose=_wall_pose()),  # not a subject
        ],
        world=World(kind="color", color=(0.3, 0.3, 0.3)),
        render=render_settings,
        seed=3,
    )
    desc.save(tmp / name)
    info = render(tmp / name, tmp / f"{name}_out", timeout=300, **job)
    channels = {k: v for path in info["frames"][0]["files"] for k, v in read_exr(path).items()}
    return info, channels, outputs.decode_raw(channels, desc.camera.r[0])


def _wall_pose():
    pose = np.eye(4)
    pose[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # the plane's normal +Z turned to -Y, facing the camera
    pose[:3, 3] = [0.9, 1.0, 0.5]  # behind the cards, off to one side: subject edges over a non-subject
    return pose


def test_adaptive_rgb_keeps_the_mask_exact_and_the_labels_unchanged(tmp_path):
    fixed_info, fixed_ch, fixed = _scene(tmp_path, "fixed", RenderSettings(samples=N, denoise=False))
    assert fixed_info["frames"][0]["renders"] == 1 and contract.CH_MASK_FG not in fixed_ch
    adaptive = RenderSettings(samples=4 * N, mask_samples=N, adaptive_sampling=True, adaptive_threshold=0.2)
    info, ch, fr = _scene(tmp_path, "adaptive", adaptive)
    # the RGB adapts in its own call; labels and mask come from a second, fixed-sample call
    assert [[layer["name"] for layer in call] for call in info["layers"]] == [["rgb"], ["labels", "mask"]]
    assert len(info["frames"][0]["call_cpu_seconds"]) == 2
    assert contract.CH_MASK_FG in ch
    k = fr.mask * N
    assert np.array_equal(k, np.round(k)) and 0 < fr.mask.mean() < 1
    assert ((fr.mask > 0) & (fr.mask < 1)).sum() > 50  # soft edges and the card's alpha ramp
    # the same coverage, sample for sample, as the fixed N-sample render's RGB-layer AOV
    np.testing.assert_array_equal(fr.mask, fixed.mask)
    for name in ("depth", "normal", "instance", "part", "part_uv", "canonical"):
        np.testing.assert_array_equal(getattr(fr, name), getattr(fixed, name), err_msg=name)
    # the adapted RGB layer's own AOV is not k/N: why the mask needs its own layer
    rgb_fg = ch[contract.CH_FG] * N
    assert not np.array_equal(rgb_fg, np.round(rgb_fg))


def test_fewer_mask_samples_than_rgb_samples_is_one_call_with_a_mask_layer(tmp_path):
    info, ch, fr = _scene(tmp_path, "fewer", RenderSettings(samples=2 * N, mask_samples=N, denoise=False))
    assert [[layer["name"] for layer in call] for call in info["layers"]] == [["rgb", "labels", "mask"]]
    _, _, fixed = _scene(tmp_path, "fixed", RenderSettings(samples=N, denoise=False))
    np.testing.assert_array_equal(fr.mask, fixed.mask)
    np.testing.assert_array_equal(fr.part, fixed.part)


def test_without_a_mask_the_labels_still_render_apart_from_the_adaptive_rgb(tmp_path):
    adaptive = RenderSettings(samples=4 * N, adaptive_sampling=True, adaptive_threshold=0.2)
    info, ch, fr = _scene(tmp_path, "nomask", adaptive, modalities=("rgb", "depth", "part"))
    assert [[layer["name"] for layer in call] for call in info["layers"]] == [["rgb"], ["labels"]]
    _, _, fixed = _scene(tmp_path, "fixed", RenderSettings(samples=N, denoise=False))
    np.testing.assert_array_equal(fr.depth, fixed.depth)
    np.testing.assert_array_equal(fr.part, fixed.part)


def test_the_mask_layer_switch_and_its_defaults_stay_out_of_the_config_dump():
    assert not RenderSettings().mask_layer() and not RenderSettings(mask_samples=16).mask_layer()
    assert RenderSettings(adaptive_sampling=True).mask_layer() and RenderSettings(mask_samples=8).mask_layer()
    dumped = RenderSettings().model_dump(mode="json")
    assert not {"adaptive_threshold", "adaptive_min_samples", "mask_samples", "denoise_prefilter"} & set(dumped)
    changed = RenderSettings(mask_samples=8, denoise_prefilter="ACCURATE")
    assert RenderSettings.model_validate(changed.model_dump(mode="json")) == changed
