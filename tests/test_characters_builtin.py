"""Built-in anny bodies: deterministic, diverse, fully weighted and fully labelled; manifests and caching."""

from __future__ import annotations

import numpy as np
import pytest

from thfm_synth.assets.manifest import file_sha256, load_manifest
from thfm_synth.assets.characters import (
    NUM_PARTS,
    bake_builtin,
    build_characters,
    load_character,
    save_character,
    validate_character,
)
from thfm_synth.assets.characters.anny_body import bake_anny
from thfm_synth.assets.characters.format import ARRAY_KEYS, WEIGHT_QUANTUM, quantize_weights
from thfm_synth.assets.characters.rigs import REQUIRED
from thfm_synth.errors import UserError

SEED = 11


@pytest.fixture(scope="module")
def bodies():
    return [bake_anny(SEED, i) for i in range(6)]


def test_same_seed_and_index_give_identical_arrays(bodies):
    again = bake_anny(SEED, 2)
    for key in ARRAY_KEYS:
        a, b = getattr(bodies[2], key), getattr(again, key)
        assert np.array_equal(np.asarray(a), np.asarray(b)), key
    assert again.materials == bodies[2].materials and again.meta == bodies[2].meta
    # a different index is a different person
    assert not np.array_equal(bodies[2].vertices[:100], bodies[3].vertices[:100])


def test_characters_are_diverse(bodies):
    heights = np.array([c.height_m for c in bodies])
    assert heights.max() - heights.min() > 0.05, heights
    assert np.all((heights > 1.35) & (heights < 2.15)), heights  # adults, with shoes/hair
    params = [c.meta["params"] for c in bodies]
    skins = {tuple(p["appearance"]["skin"]["srgb"]) for p in params}
    assert len(skins) == len(bodies)
    assert len({p["appearance"]["skin"]["fitzpatrick"] for p in params}) >= 3
    assert len({p["phenotype"]["sex"] for p in params}) == 2
    if params[0]["appearance"].get("source") == "makehuman":  # real assets (tests/conftest.py)
        assert len({(p["appearance"]["outfit"]["asset"], p["appearance"]["hair"]["asset"]) for p in params}) >= 3
        wanted = {"skin", "eyes", "hair", "eyebrows", "eyelashes", "outfit", "shoes", "teeth"}
    else:
        assert len({(p["appearance"]["top"]["type"], p["appearance"]["bottom"]["type"]) for p in params}) >= 3
        wanted = {"skin", "eyes", "hair", "headwear", "top", "bottom", "shoes"}
    # garments change the vertex count, i.e. the silhouette geometry differs
    assert len({len(c.vertices) for c in bodies}) >= 4
    for p in params:  # every sampled choice is recorded
        assert {"age_years", "gender", "height", "weight", "muscle", "proportions"} <= set(p["phenotype"])
        assert wanted <= set(p["appearance"])


def test_wide_age_range_has_children_and_elderly():
    ages = [bake_anny(3, i, "wide") for i in range(10)]
    bands = {c.meta["params"]["phenotype"]["age_band"] for c in ages}
    assert {"child", "adult"} <= bands or {"child", "elderly"} <= bands, bands
    heights = [c.height_m for c in ages]
    assert min(heights) < 1.45 < max(heights), heights


def test_every_vertex_is_weighted_and_labelled(bodies):
    for c in bodies:
        validate_character(c)
        w = c.skin_weights.astype(np.float64)
        assert np.all(w.sum(1) == 1.0)  # exact: multiples of 1/4096
        assert np.all(w[:, 0] > 0)
        assert np.array_equal(np.rint(w * WEIGHT_QUANTUM), w * WEIGHT_QUANTUM)
        assert set(np.unique(c.vertex_part)) == set(range(1, NUM_PARTS + 1))
        assert set(np.unique(c.face_part)) == set(range(1, NUM_PARTS + 1))
        uv = c.vertex_part_uv
        assert uv.min() >= 0.0 and uv.max() <= 1.0
        assert c.corner_part_uv.min() >= 0.0 and c.corner_part_uv.max() <= 1.0
        can = c.vertex_canonical
        assert np.array_equal(can.min(0), np.zeros(3)) and np.array_equal(can.max(0), np.ones(3))
        assert abs(c.vertices[:, 2].min()) < 1e-6  # on the ground
        garments = c.vertex_garment > 0
        assert garments.any() and (~garments).any()


def test_parts_follow_the_body_layout(bodies):
    c = bodies[0]
    v, part = c.vertices.astype(np.float64), c.vertex_part  # garment vertices carry the part under them
    # left parts are on +X (the character's left), fronts towards -Y
    for left, right in ((4, 3), (5, 6), (10, 9), (14, 13), (15, 16), (19, 20), (24, 23)):
        assert v[part == left, 0].mean() > 0 > v[part == right, 0].mean()
    assert v[part == 2, 1].mean() < v[part == 1, 1].mean()  # torso front vs back
    assert v[part == 10, 1].mean() < v[part == 8, 1].mean()  # left thigh front vs back
    mean_z = [v[np.isin(part, ps), 2].mean() for ps in ([23, 24], [1, 2], [5, 6])]
    assert mean_z[0] > mean_z[1] > mean_z[2]
    # part UVs use the whole chart: V from proximal to distal, U across the half
    for p in (2, 10, 15):
        uv = c.vertex_part_uv[part == p]
        assert uv[:, 0].max() - uv[:, 0].min() > 0.7 and uv[:, 1].max() - uv[:, 1].min() > 0.9


def test_skeleton_is_canonical(bodies):
    c = bodies[0]
    have = set(c.joint_names)
    for req in REQUIRED:
        assert (have & set(req)) if isinstance(req, tuple) else req in have
    assert c.joint_names[0] == "Hips" and "LeftHandIndex1" in have  # cmu_mb's HandFinger1 renamed
    r = c.joint_rest_rotations.astype(np.float64)
    d = c.joint_tails - c.joint_heads
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    assert np.abs(np.einsum("jk,jk->j", r[:, :, 1], d) - 1).max() < 1e-5  # Y along the bone


def test_npz_round_trip_and_validation(tmp_path, bodies):
    c = bodies[1]
    p = save_character(tmp_path / "c.npz", c)
    back = load_character(p)
    for key in ARRAY_KEYS:
        assert np.array_equal(np.asarray(getattr(back, key)), np.asarray(getattr(c, key))), key
    assert back.materials == c.materials and back.garments == c.garments
    with np.load(p, allow_pickle=False) as z:  # loadable without pickles
        assert z["vertices"].dtype == np.float32
    c.skin_weights = c.skin_weights.copy()
    c.skin_weights[5] = 0.0
    with pytest.raises(UserError, match="1 vertices have skin weights that do not sum to 1"):
        save_character(tmp_path / "bad.npz", c)
    c.skin_weights = back.skin_weights


def test_quantize_weights_is_exact_and_reports_unweighted():
    rng = np.random.default_rng(0)
    w = rng.random((500, 7)) ** 3
    w[7] = 0.0
    idx = rng.integers(0, 30, (500, 7))
    qi, qw, unweighted = quantize_weights(idx, w, k=4)
    assert unweighted.tolist() == [i == 7 for i in range(500)]
    ok = ~unweighted
    assert np.all(qw[ok].astype(np.float64).sum(1) == 1.0)
    assert np.all(np.diff(qw, axis=1) <= 0)
    top = np.argmax(w, axis=1)
    assert np.array_equal(qi[ok, 0], idx[ok, top[ok]])


def test_build_characters_writes_manifest_and_is_byte_reproducible(tmp_path):
    m = build_characters(2, 5, tmp_path / "a")
    loaded = load_manifest(tmp_path / "a" / "manifest.yaml").manifest
    assert [e.id for e in loaded.characters] == ["anny-5-00000", "anny-5-00001"]
    for e in loaded.characters:
        f = tmp_path / "a" / e.path
        assert e.format == "npz" and e.licence == "CC0-1.0" and "anny" in e.source
        assert e.sha256 == file_sha256(f)
        assert e.params["seed"] == 5 and "appearance" in e.params and "phenotype" in e.params
        assert abs(e.height_m - load_character(f).height_m) < 1e-3
    m2 = build_characters(2, 5, tmp_path / "b")
    assert [e.sha256 for e in m.characters] == [e.sha256 for e in m2.characters]


def test_bake_builtin_caches_the_default_library_entry(tmp_path):
    from thfm_synth.assets.library import BUILTIN_MANIFEST

    entry = load_manifest(BUILTIN_MANIFEST).manifest.characters[3]
    assert entry.format == "anny" and entry.path is None
    p = bake_builtin(entry, tmp_path)
    assert entry.sha256[:16] in p.name
    mtime = p.stat().st_mtime_ns
    assert bake_builtin(entry, tmp_path) == p and p.stat().st_mtime_ns == mtime
    c = load_character(p)
    ref = bake_anny(entry.params["seed"], 0, entry.params["age_range"])
    assert np.array_equal(c.vertices, ref.vertices)
    assert c.meta["id"] == entry.id
    with pytest.raises(UserError, match="not a built-in anny character"):
        bake_builtin(entry.model_copy(update={"format": "npz"}), tmp_path)
