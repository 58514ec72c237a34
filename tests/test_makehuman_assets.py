"""The MakeHuman asset layer on the shared CC0 files: parsers, helper rebuild, fitting, dressing, labels."""

from __future__ import annotations

import numpy as np
import pytest

from thfm_synth.assets.characters.anny_body import dress_input, rest_body
from thfm_synth.assets.characters.format import quantize_weights
from thfm_synth.assets.characters.labels import SEGMENT_NAMES, compute_labels
from thfm_synth.assets.characters.makehuman.assets import AssetFolder
from thfm_synth.assets.characters.makehuman.dress import SLOT, binding_for, dress
from thfm_synth.assets.characters.makehuman.fitting import fit_proxy
from thfm_synth.assets.characters.makehuman.helpers import mh_to_anny, signed_distance
from thfm_synth.assets.characters.makehuman.mhclo import HM08_VERTICES, read_mhclo
from thfm_synth.assets.characters.makehuman.mhmat import read_mhmat
from thfm_synth.assets.characters.makehuman.obj import read_obj

BODIES = {  # anny phenotypes: default, a thin woman, a heavy man
    "default": dict(gender=0.5, age=0.5, muscle=0.5, weight=0.5, height=0.5, proportions=0.5),
    "thin": dict(gender=1.0, age=0.5, muscle=0.2, weight=0.0, height=0.5, proportions=0.5),
    "heavy": dict(gender=0.0, age=0.6, muscle=0.5, weight=1.0, height=0.5, proportions=0.5),
}


@pytest.fixture(scope="module")
def folder(shared_makehuman):
    return AssetFolder.get(shared_makehuman)


@pytest.fixture(scope="module")
def bodies():
    return {k: rest_body(v) for k, v in BODIES.items()}


def _write_obj(mesh, path):
    lines = [f"v {float(x)!r} {float(y)!r} {float(z)!r}" for x, y, z in mesh.vertices]
    lines += [f"vt {float(u)!r} {float(v)!r}" for u, v in mesh.uv]
    lines += [" ".join(["f"] + [f"{a + 1}/{t + 1}" for a, t in zip(f, ft)]) for f, ft in zip(mesh.faces, mesh.face_uv)]
    path.write_text("\n".join(lines) + "\n")


def test_obj_parser_round_trips_every_shared_mesh(shared_makehuman, tmp_path):
    objs = sorted(shared_makehuman.rglob("*.obj"))
    assert len(objs) >= 40
    for p in objs:
        mesh = read_obj(p)
        text = p.read_text()
        polys = [ln.split()[1:] for ln in text.splitlines() if ln.startswith("f ")]
        assert len(mesh.vertices) == sum(1 for ln in text.splitlines() if ln.startswith("v "))
        assert len(mesh.faces) == sum(len(c) - 2 for c in polys)  # quads -> 2 triangles
        assert mesh.face_polygon.max() == len(polys) - 1
        # the first polygon's corners are the first triangle's (fan from corner 0)
        assert list(mesh.faces[0]) == [int(polys[0][k].split("/")[0]) - 1 for k in (0, 1, 2)]
        _write_obj(mesh, tmp_path / "x.obj")
        back = read_obj(tmp_path / "x.obj")
        for key in ("vertices", "uv", "faces", "face_uv"):
            assert np.array_equal(getattr(back, key), getattr(mesh, key)), (p, key)


def test_every_proxy_binds_each_vertex_of_its_mesh_within_hm08(shared_makehuman):
    proxies = sorted(shared_makehuman.rglob("*.mhclo"))
    assert len(proxies) >= 45
    for p in proxies:
        proxy = read_mhclo(p)
        mesh = read_obj(proxy.obj_path)
        assert len(proxy.ref_vertices) == len(mesh.vertices), p
        assert proxy.ref_vertices.min() >= 0 and proxy.ref_vertices.max() < HM08_VERTICES
        assert np.allclose(proxy.weights.sum(axis=1), 1.0, atol=1e-4), p
        assert all(s is not None for s in proxy.scale_refs), p
        d = proxy.delete_verts
        assert np.array_equal(d, np.unique(d)) and (not len(d) or d.max() < HM08_VERTICES)
        assert proxy.material_path is not None and proxy.material_path.is_file(), p


def test_mhclo_details(tmp_path):
    p = tmp_path / "t.mhclo"
    p.write_text(
        "# c\nname t\nobj_file t.obj\nx_scale 1 2 0.5\nverts 0\nmaterial t.mhmat\n"
        "5 6 7 0.25 0.25 0.5 0.1 0.2 0.3\n9\n\ndelete_verts\n3 - 6 10\n12 -\n14 20\n"
    )
    proxy = read_mhclo(p)
    assert proxy.material == "t.mhmat" and proxy.scale_refs[0] == (1, 2, 0.5) and proxy.scale_refs[1] is None
    assert proxy.ref_vertices.tolist() == [[5, 6, 7], [9, 9, 9]]
    assert proxy.weights.tolist() == [[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]]
    assert proxy.offsets.tolist() == [[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]]
    assert proxy.delete_verts.tolist() == [3, 4, 5, 6, 10, 12, 13, 14, 20]  # a range may wrap a line


def test_mhmat_maps(shared_makehuman):
    mats = sorted(shared_makehuman.rglob("*.mhmat"))
    no_ao = 0
    for p in mats:
        m = read_mhmat(p, shared_makehuman)
        assert "diffuse" in m.maps and m.maps["diffuse"].is_file(), p
        no_ao += "ao" in m.missing  # the folder leaves AO maps out on purpose (README)
    assert no_ao == 11
    skin = read_mhmat(shared_makehuman / "skins/young_african_male/young_african_male.mhmat", shared_makehuman)
    assert skin.flag("sssEnabled") and skin.value("sssRScale", 0) == 5.0
    hair = read_mhmat(shared_makehuman / "hair/bob02/bob02.mhmat", shared_makehuman)
    assert hair.flag("transparent") and not hair.flag("backfaceCull", True)


def test_helper_rebuild_reproduces_base_obj_on_the_template(folder):
    from thfm_synth.assets.characters.anny_body import anny_model

    model = anny_model()
    idx = model.base_mesh_vertex_indices.numpy()
    binding = binding_for(folder, idx, model.faces.numpy())
    base = read_obj(folder.base_obj).vertices
    template = model.template_vertices.numpy().astype(np.float64)
    assert np.abs(template - mh_to_anny(base[idx])).max() < 1e-12  # anny's template is hm08
    rebuilt = binding.rebuild(template)
    assert len(binding.bound) == HM08_VERTICES - len(idx)
    assert np.abs(rebuilt - mh_to_anny(base)).max() < 1e-12


@pytest.mark.parametrize("shape", list(BODIES))
def test_fitted_garments_sit_on_the_skin(folder, bodies, shape):
    b = bodies[shape]
    body = dress_input(b)
    binding = binding_for(folder, body.anny_indices, body.faces)
    hm08 = binding.rebuild(body.vertices)
    # the rebuilt tights helper hugs this body as it hugs MakeHuman's default
    tights = np.arange(13380, 13380 + 2674)
    d_help = signed_distance(hm08[tights], body.vertices, body.faces)
    assert 0.0 < np.median(d_help) < 0.02
    for key in ("male_casualsuit01", "female_casualsuit01", "female_elegantsuit01", "male_worksuit01"):
        proxy = folder.proxy(folder.outfits[key])
        fitted = fit_proxy(proxy, folder.mesh(proxy.obj_path), binding, hm08)
        d = signed_distance(fitted.vertices, body.vertices, body.faces) * 1000  # mm, > 0 outside
        assert 2.0 < d.mean() < 25.0, (shape, key, d.mean())
        assert (d < -5).mean() < 0.05, (shape, key)  # sunk parts are where delete_verts hide the skin
    proxy = folder.proxy(folder.shoes["shoes01"])
    d = (
        signed_distance(
            fit_proxy(proxy, folder.mesh(proxy.obj_path), binding, hm08).vertices, body.vertices, body.faces
        )
        * 1000
    )
    assert 3.0 < d.mean() < 25.0


def test_garments_are_skinned_and_labelled_from_their_bound_body_vertices(folder, bodies):
    b = bodies["default"]
    body = dress_input(b)
    app = {
        "skin": {"asset": "young_african_male", "srgb": [120, 80, 60], "roughness": 0.5},
        "eyes": {"asset": "brown"},
        "hair": {"asset": "long01", "srgb": [60, 40, 30], "amount": 0.9},
        "eyebrows": {"asset": "eyebrow003", "srgb": [40, 30, 20]},
        "eyelashes": {"asset": "eyelashes02", "srgb": [20, 15, 10]},
        "outfit": {
            "asset": "male_casualsuit03",
            "top": {"mode": "keep", "value": 1.0, "hue": 0.0},
            "bottom": {"mode": "dye", "srgb": [30, 40, 80], "amount": 1.0},
        },
        "shoes": {"asset": "shoes04", "mode": "keep", "value": 1.0, "hue": 0.0},
    }
    dressing = dress(folder, app, body)
    names = [p.name for p in dressing.pieces]
    assert names == ["eyes", "teeth", "outfit", "shoes", "hair", "eyebrows", "eyelashes"]
    dense = np.zeros((len(body.vertices), body.num_joints))
    for k in range(body.skin_indices.shape[1]):
        np.add.at(dense, (np.arange(len(dense)), body.skin_indices[:, k]), body.skin_weights[:, k])
    nv = len(body.vertices)
    vs, fs, si, sw, src, bi, bw, seg = (
        [b.vertices],
        [b.faces],
        [b.skin_indices],
        [b.skin_weights],
        [np.full(nv, -1)],
        [np.zeros((nv, 9), np.int64)],
        [np.zeros((nv, 9))],
        [np.full(nv, -1)],
    )
    off = nv
    for p in dressing.pieces:
        # weights: exactly the quantised blend of the bound body vertices' weights
        blend = sum(p.bind_weights[:, k, None] * dense[p.bind_indices[:, k]] for k in range(9))
        qi, qw, _ = quantize_weights(
            np.broadcast_to(np.arange(body.num_joints), blend.shape), blend, k=body.skin_indices.shape[1]
        )
        assert np.array_equal(p.skin_weights[:, : qw.shape[1]], qw) and np.array_equal(
            p.skin_indices[:, : qi.shape[1]], qi
        )
        assert np.allclose(p.skin_weights.sum(axis=1), 1.0) and np.allclose(p.bind_weights.sum(axis=1), 1.0)
        assert (p.bind_weights >= 0).all() and (p.bind_indices < nv).all()
        vs.append(p.vertices)
        fs.append(p.faces + off)
        si.append(p.skin_indices)
        sw.append(p.skin_weights)
        src.append(p.surface_source)
        bi.append(p.bind_indices)
        bw.append(p.bind_weights)
        seg.append(np.full(len(p.vertices), SEGMENT_NAMES.index("head") if p.label_head else -1))
        off += len(p.vertices)
    cat = np.concatenate
    labels = compute_labels(
        cat(vs),
        cat(fs),
        cat(si),
        cat(sw),
        b.skeleton.names,
        b.skeleton.parents,
        b.joint_heads,
        b.joint_tails,
        surface_source=cat(src),
        surface_bind=(cat(bi), cat(bw)),
        label_segment=cat(seg),
    )
    body_part = labels.vertex_part[:nv]
    assert np.array_equal(body_part, b.labels.vertex_part)  # the body's own labels do not change
    off = nv
    for p in dressing.pieces:
        part = labels.vertex_part[off : off + len(p.vertices)]
        can = labels.vertex_canonical[off : off + len(p.vertices)]
        if p.label_head:  # hair, brows and lashes are the head, even long hair on the back
            assert set(np.unique(part)) <= {23, 24}
        else:  # the part of the body vertex each garment vertex is bound to most
            assert np.array_equal(part, body_part[p.surface_source])
        # canonical coordinates: the blend of the bound body vertices'
        expect = np.einsum("nk,nki->ni", p.bind_weights, labels.vertex_canonical[:nv][p.bind_indices])
        assert np.abs(can - expect).max() < 1e-6
        off += len(p.vertices)
    outfit = dressing.pieces[names.index("outfit")]
    o = nv + sum(len(p.vertices) for p in dressing.pieces[: names.index("outfit")])
    outfit_parts = set(np.unique(labels.vertex_part[o : o + len(outfit.vertices)]))
    assert {15, 16, 17, 18, 19, 20, 21, 22} <= outfit_parts  # long sleeves are the arms
    assert {1, 2, 7, 8, 9, 10} <= outfit_parts  # shirt is the torso, trousers the legs
    assert set(np.unique(outfit.face_material)) == {SLOT["top"], SLOT["bottom"]}
    # delete_verts: the outfit and shoes hide the skin under them, never the head or hands
    hidden_parts = set(np.unique(body_part[dressing.hidden]))
    assert dressing.hidden.sum() > 3000 and not hidden_parts & {3, 4, 23, 24}


def test_baked_character_hides_body_faces_and_records_its_assets(folder):
    from thfm_synth.assets.characters.anny_body import bake_anny

    c = bake_anny(4, 1, makehuman=folder.root)
    mh = c.meta["makehuman"]
    roles = {a["role"] for a in mh["assets"]}
    assert {"base_mesh", "skin", "eyes", "teeth", "outfit", "shoes", "eyebrows", "eyelashes"} <= roles
    for a in mh["assets"]:
        assert a["licence"] == "CC0-1.0" and len(a["sha256"]) == 64 and (folder.root / a["file"]).is_file()
    assert c.meta["hidden_body_faces"] > 2000
    body_faces = (c.vertex_garment[c.faces] == 0).all(axis=1).sum()
    from thfm_synth.assets.characters.anny_body import anny_model

    assert body_faces == len(anny_model().faces) - c.meta["hidden_body_faces"]
    # every texture a material names is handed over for the store, with its digest
    from thfm_synth.assets.characters.materials import texture_refs

    refs = texture_refs(c.materials)
    assert refs and {r["sha256"] for _, _, r in refs} == set(c.textures)
    assert all(r["path"] == f"textures/{r['sha256']}.png" for _, _, r in refs)


def test_800_people_are_all_different_and_cover_every_skin_type(folder):
    from thfm_synth.assets.characters.anny_body import sample_phenotype
    from thfm_synth.assets.characters.appearance import sample_makehuman_appearance

    sigs, types, outfits, hair, tones = set(), [], set(), set(), []
    for i in range(800):
        rng = np.random.default_rng([0, i])
        a = sample_makehuman_appearance(rng, sample_phenotype(rng), folder)
        top, bottom = a["outfit"]["top"], a["outfit"]["bottom"]
        # what a viewer tells apart: skin, outfit and its colours/print, shoes, hairstyle and colour
        sigs.add(
            (
                a["skin"]["asset"],
                a["outfit"]["asset"],
                top.get("colour", "own"),
                (top.get("pattern") or {}).get("type"),
                bottom.get("colour", "own"),
                a["shoes"]["asset"],
                a["shoes"].get("colour", "own"),
                a["hair"]["asset"],
                a["hair"]["colour"],
            )
        )
        types.append(a["skin"]["fitzpatrick"])
        tones.append(a["skin"]["tone"])
        outfits.add(a["outfit"]["asset"])
        hair.add(a["hair"]["asset"])
    assert len(sigs) == 800
    counts = np.bincount(types, minlength=7)[1:]
    assert counts.min() > 800 / 6 * 0.7, counts  # every Fitzpatrick type, about equally often
    assert len(np.unique(np.round(tones, 2))) > 300  # continuous tone, not a few steps
    assert outfits == set(folder.outfits) and hair == set(folder.hair) | {None}


def test_garments_do_not_let_the_body_poke_through_in_cmu_motion(folder, shared_assets):
    """A dressed body retargeted to a CMU clip as videos are: < 1% of cloth pixels show skin;
    the same measure with the covered skin pushed 1 cm out shows it responds."""
    from thfm_synth.assets.characters.anny_body import bake_anny
    from thfm_synth.assets.characters.garments import vertex_normals
    from thfm_synth.assets.characters.pokethrough import clip_poses, pokethrough, under_cloth
    from thfm_synth.assets.characters.skinning import motion_skeleton
    from thfm_synth.assets.motion.bvh import read_bvh
    from thfm_synth.assets.motion.resample import resample
    from thfm_synth.assets.motion.retarget import retarget

    c = bake_anny(1, 0, makehuman=folder.root)  # a T-shirt and jeans
    clip = retarget(resample(read_bvh(shared_assets / "mocap" / "cmu" / "02_05.bvh"), 24.0), motion_skeleton(c))
    posed = clip_poses(c, clip, every=48)[:4]
    ratio = pokethrough(c, posed).ratio
    assert len(ratio) == 4 and ratio.max() < 0.01, ratio
    under = under_cloth(c)
    assert under.sum() > 50 and not under[c.vertex_garment > 0].any()
    pushed = posed.copy()
    pushed[:, under] += 0.01 * vertex_normals(c.vertices.astype(np.float64), c.faces)[under]
    assert pokethrough(c, pushed).ratio.mean() > 3 * max(ratio.mean(), 1e-3)
