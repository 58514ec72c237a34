"""A dressed MakeHuman character rendered by render_scene.py: textures load, alpha cards give a
fractional matte, and the labels of every modality follow one rule (first surface with alpha >= 0.5)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from thfm_synth.assets.characters import load_character, save_character
from thfm_synth.assets.characters.anny_body import bake_anny
from thfm_synth.render import outputs
from thfm_synth.render.description import Camera, Light, Object, RenderSettings, SceneDescription, World
from thfm_synth.render.imagefiles import read_exr
from thfm_synth.render.runner import render
from thfm_synth.render.scene.animate import AnimatedCharacter
from thfm_synth.render.scene.assemble import _character_materials

pytestmark = pytest.mark.render
SIZE = 96


@pytest.fixture(scope="module")
def character(shared_makehuman, tmp_path_factory):
    c = bake_anny(5, 3, makehuman=shared_makehuman)  # bob02 hair: alpha cards
    assert c.meta["params"]["appearance"]["hair"]["asset"] == "bob02"
    path = save_character(tmp_path_factory.mktemp("char") / "c.npz", c)
    return path, load_character(path)


def _head_camera(c, view_from_back: bool):
    """Frame 0: the head from the front; frame 1: the back of the head (bob hair)."""
    head = c.joint_heads[c.joint("Head")].astype(np.float64) + [0.0, 0.0, 0.08]
    ks, rs, ts = [], [], []
    for back in (False, True) if view_from_back else (False,):
        fwd = np.array([0.0, -1.0, 0.0]) if back else np.array([0.0, 1.0, 0.0])
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        r = np.stack([right, [0.0, 0.0, -1.0], fwd])
        centre = head - fwd * 0.9
        ks.append(np.array([[150.0, 0, SIZE / 2], [0, 150.0, SIZE / 2], [0, 0, 1]]))
        rs.append(r)
        ts.append(-r @ centre)
    return Camera(k=np.stack(ks), r=np.stack(rs), t=np.stack(ts), width=SIZE, height=SIZE)


def _render(path, c, tmp, alpha_mode=None):
    mats = _character_materials(AnimatedCharacter(path, c, None, {}))
    if alpha_mode is not None:
        mats = [
            dataclasses.replace(m, alpha_mode=alpha_mode) if m.kind in ("hair", "brows", "lashes") else m for m in mats
        ]
    cam = _head_camera(c, True)
    desc = SceneDescription(
        camera=cam,
        objects=[Object(name="subject", kind="mesh_npz", mesh_path=str(path), materials=mats, subject=True)],
        world=World(kind="color", color=(0.4, 0.42, 0.45), strength=1.0),
        lights=[Light(kind="area", position=(0.5, -2.0, 2.2), target=(0.0, 0.0, 1.6), power_w=300.0, size_m=1.0)],
        render=RenderSettings(samples=16, denoise=False),
        seed=3,
    )
    desc.save(tmp / "scene")
    info = render(tmp / "scene", tmp / "out")
    frames = [outputs.decode_raw(read_exr(tmp / "out" / "raw" / f"{f:05d}.exr"), cam.r[f]) for f in range(2)]
    return info, frames, desc


@pytest.fixture(scope="module")
def rendered(character, tmp_path_factory):
    path, c = character
    return _render(path, c, tmp_path_factory.mktemp("render"))


def test_textures_load_and_nothing_is_magenta(rendered):
    info, frames, _ = rendered
    assert not info["warnings"]
    for fr in frames:
        lin = fr.rgb_linear[fr.mask > 0.5]
        assert len(lin) > 500
        magenta = (lin[:, 0] > 0.6) & (lin[:, 2] > 0.6) & (lin[:, 1] < 0.25 * lin[:, 0])
        assert magenta.mean() < 0.001
        # skin, hair and cloth: more than one colour on the person
        assert lin.std(axis=0).max() > 0.02


def test_labels_follow_one_rule_at_alpha_cards(rendered):
    _, frames, desc = rendered
    subject = desc.objects[0].instance
    for fr in frames:
        labelled = fr.part > 0
        assert np.array_equal(labelled, fr.instance == subject)  # part ids exactly where the id pass hits it
        assert np.all(fr.depth[labelled] > 0) and np.all(fr.canonical[labelled].max(axis=-1) > 0)
        n = np.linalg.norm(fr.normal[labelled], axis=-1)
        assert np.abs(n - 1).max() < 2e-3
        # the mask's first sample is the label ray: covered wherever the labels hit the person
        assert (fr.mask[labelled] > 0).mean() > 0.99
        assert np.all(fr.mask[~labelled & (fr.depth == 0)] < 1.0)  # no full coverage where nothing was hit
        assert set(np.unique(fr.part[labelled])) <= set(range(1, 25))


def test_cut_out_card_texels_are_neither_labelled_nor_covered(character, rendered, tmp_path):
    path, c = character
    _, frames, _ = rendered
    _, opaque, _ = _render(path, c, tmp_path, alpha_mode="opaque")
    back, back_opaque = frames[1], opaque[1]  # the back of a bob: hair cards over the background
    assert (back.part > 0).sum() < (back_opaque.part > 0).sum()
    assert back.mask.sum() < back_opaque.mask.sum()


def _card_npz(path, z_back=None):
    """A 1 m x 1 m card facing -Y at y = 0 (and optionally an opaque one behind it at y = z_back)."""
    quads = [0.0] if z_back is None else [0.0, z_back]
    v, f, fuv = [], [], []
    for k, y in enumerate(quads):
        v += [[-0.5, y, 0.0], [0.5, y, 0.0], [0.5, y, 1.0], [-0.5, y, 1.0]]
        o = 4 * k
        f += [[o, o + 1, o + 2], [o, o + 2, o + 3]]
        fuv += [[0, 1, 2], [0, 2, 3]]
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    n = len(f)
    np.savez(
        path,
        vertices=np.array(v, np.float32),
        faces=np.array(f, np.int32),
        uv=uv,
        face_uv=np.array(fuv, np.int32),
        face_material=np.array([0, 0, 1, 1][:n], np.int16),
        face_part=np.array([23, 23, 2, 2][:n], np.int32),
        corner_part_uv=np.full((n, 3, 2), 0.5, np.float32),
        vertex_canonical=np.full((len(v), 3), 0.5, np.float32),
    )


def test_alpha_card_matte_is_its_alpha_and_labels_start_at_half(tmp_path):
    """A card whose alpha ramps 0 -> 1 left to right over the background, and over an opaque card."""
    from PIL import Image

    from thfm_synth.render.description import Material

    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    rgba = np.stack([np.full_like(ramp, 200), np.full_like(ramp, 150), np.full_like(ramp, 90), ramp], -1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "card.png")
    card = Material(
        name="card",
        base_color=(0.5, 0.4, 0.2),
        texture=str(tmp_path / "card.png"),
        kind="hair",
        alpha_mode="blend",
        alpha_map=str(tmp_path / "card.png"),
    )
    plain = Material(name="plain", base_color=(0.2, 0.3, 0.6))
    _card_npz(tmp_path / "one.npz")
    _card_npz(tmp_path / "two.npz", z_back=0.3)
    fx = 64.0 / 1.0 * 2.0  # the 1 m card fills the middle half of a 128 px frame at 2 m
    cam = Camera(
        k=np.array([[fx, 0, 64], [0, fx, 32], [0, 0, 1]]),
        r=np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
        t=np.array([0.0, 0.5, 2.0]),
        width=128,
        height=64,
    )
    for name, expect_behind in (("one", 0.0), ("two", 1.0)):
        desc = SceneDescription(
            camera=cam,
            objects=[
                Object(
                    name="card",
                    kind="mesh_npz",
                    mesh_path=str(tmp_path / f"{name}.npz"),
                    materials=[card, plain],
                    subject=True,
                    shade_smooth=False,
                )
            ],
            world=World(kind="color", color=(0.3, 0.3, 0.3)),
            render=RenderSettings(samples=64, denoise=False),
            seed=1,
        )
        desc.save(tmp_path / name)
        render(tmp_path / name, tmp_path / f"{name}_out")
        fr = outputs.decode_raw(read_exr(tmp_path / f"{name}_out" / "raw" / "00000.exr"), cam.r[0])
        cols = np.arange(40, 88)  # inside the card, away from its edges
        u = (cols + 0.5 - 32) / 64.0  # texture u = alpha at the pixel centre
        rows = slice(8, 56)
        mask = fr.mask[rows, cols]
        expect = u + (1 - u) * expect_behind  # alpha over nothing, or over an opaque subject card
        assert np.abs(mask.mean(axis=0) - expect).max() < 0.12, (name, mask.mean(axis=0), expect)
        assert np.abs(mask.mean() - expect.mean()) < 0.03
        # labels: the card where alpha >= 0.5 (part 23), else what is behind (part 2 or nothing)
        front = fr.part[rows, cols] == 23
        assert np.array_equal(front.all(axis=0) | ~front.any(axis=0), np.ones(len(cols), bool))
        edge = cols[front[0]].min()
        assert abs((edge + 0.5 - 32) / 64.0 - 0.5) <= 1.0 / 64.0
        behind = fr.part[rows, cols][:, ~front[0]]
        assert np.all(behind == (2 if name == "two" else 0))
        d = fr.depth[rows, cols]
        assert np.allclose(d[:, front[0]], 2.0, atol=1e-3) and np.allclose(
            d[:, ~front[0]], 2.3 if name == "two" else 0.0, atol=1e-3
        )
