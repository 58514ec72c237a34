"""Dress an anny body with MakeHuman assets: fitted pieces, their materials, textures and provenance.

`dress(folder, app, body)` turns the asset choices of `appearance.sample_makehuman_appearance`
into geometry and materials for `anny_body.bake_anny`:

* every proxy (outfit, shoes, hair, eyebrows, eyelashes, high-poly eyes, teeth) is fitted to
  the body (fitting.py, with the helpers rebuilt on it: helpers.py) and skinned with the
  weights of the body vertices it is bound to (blended by the binding coefficients), so it
  follows every pose the body takes;
* body vertices named by a proxy's `delete_verts` are hidden (the caller drops body faces all
  of whose vertices are hidden), and anny's own low-poly eyeballs give way to the high-poly
  eyes; the cornea shells of the eyes (fully transparent in MakeHuman's eye texture) are
  dropped, the eyeball material gets a clear coat instead;
* the scalp (scalp_vertices) gets its own material under a hairstyle: the skin dyed towards
  the hair colour, so gaps between hair cards show roots, not bare skin;
* where an outfit's hem and a shoe interpenetrate, the hem is moved 4 mm outside the shoe
  (MakeHuman only orders them when drawing; `push_outside`);
* outfits are split into a top and a bottom material by UV island (each island is one panel
  of cloth: an island whose median height on the body is below the waist is "bottom"), so
  shirt and trousers are dyed independently;
* materials follow the schema of characters/materials.py; textures are referenced by digest
  (characters/textures.py) and returned as `texture_sources` for the caller's store.
  Every texture is decoded once (an unreadable one is a UserError naming it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from thfm_synth.assets.characters import materials as matschema
from thfm_synth.assets.characters.appearance import srgb_to_linear
from thfm_synth.assets.characters.format import quantize_weights
from thfm_synth.assets.characters.labels import SEGMENT_NAMES
from thfm_synth.assets.characters.makehuman.assets import AssetFolder
from thfm_synth.assets.characters.makehuman.fitting import FittedProxy, dominant_vertex, fit_proxy
from thfm_synth.assets.characters.makehuman.helpers import HelperBinding, bind_helpers
from thfm_synth.assets.characters.makehuman.obj import read_obj_groups
from thfm_synth.assets.characters.textures import check_image, image_rgba, sample_texture, texture_ref
from thfm_synth.errors import UserError

# material slots of a dressed body (fixed, so ids are stable whatever is worn)
SLOTS = ("skin", "mouth", "eyes", "teeth", "top", "bottom", "shoes", "hair", "eyebrows", "eyelashes", "scalp")
SLOT = {n: i for i, n in enumerate(SLOTS)}
CARD_KINDS = {"hair": "hair", "eyebrows": "brows", "eyelashes": "lashes"}
# skin optics: Principled random-walk subsurface, mean free path per channel (metres); skin
# scatters red light furthest. The weight is kept low: at 16 samples a full-weight random walk
# lit by a sun (a sky's or an HDRI's) leaves speckles that the denoiser keeps on thin limbs.
SKIN_SSS_RADIUS = [0.007, 0.0025, 0.0013]
SKIN_SSS_WEIGHT = 0.2
WAIST = 0.22  # torso height (0 = pelvis joint, 1 = neck joint) below which an island is "bottom"

_BINDINGS: dict[tuple[str, int], HelperBinding] = {}
_GROUPS: dict[str, dict] = {}


def binding_for(folder: AssetFolder, anny_indices: np.ndarray, anny_faces: np.ndarray) -> HelperBinding:
    key = (str(folder.base_obj), int(len(anny_indices)))
    if key not in _BINDINGS:
        _BINDINGS[key] = bind_helpers(folder.base_obj, anny_indices, anny_faces)
    return _BINDINGS[key]


def scalp_vertices(folder: AssetFolder, body: Body) -> np.ndarray:
    """(V,) the scalp: head skin where hair grows, located from the eyes (anny's eye helpers).

    Above a hairline 6 cm over the eye centres, and behind the ears (7 cm behind the eyes)
    down to 3 cm below them; not the face, the ears' front or the neck.
    """
    groups = base_groups(folder)
    anny_of = np.full(19158, -1, np.int64)
    anny_of[body.anny_indices] = np.arange(len(body.anny_indices))
    eyes = np.concatenate([anny_of[groups.get(g, np.zeros(0, np.int64))] for g in ("helper-l-eye", "helper-r-eye")])
    eyes = eyes[eyes >= 0]
    if not len(eyes):
        return np.zeros(len(body.vertices), bool)
    ey, ez = body.vertices[eyes, 1].mean(), body.vertices[eyes, 2].mean()
    v = body.vertices
    head = body.segment == SEGMENT_NAMES.index("head")
    return head & ((v[:, 2] > ez + 0.06) | ((v[:, 1] > ey + 0.07) & (v[:, 2] > ez - 0.03)))


def base_groups(folder: AssetFolder) -> dict[str, np.ndarray]:
    key = str(folder.base_obj)
    if key not in _GROUPS:
        _GROUPS[key] = read_obj_groups(folder.base_obj)
    return _GROUPS[key]


@dataclass
class Body:
    """What dressing needs of an undressed anny body (anny frame, before any shift)."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    skin_indices: np.ndarray  # (V, K)
    skin_weights: np.ndarray  # (V, K)
    num_joints: int
    segment: np.ndarray  # (V,) labels.SEGMENT_NAMES index
    anny_indices: np.ndarray  # (V,) hm08 index of each vertex
    uv: np.ndarray  # (U, 2) the body's texture coordinates (base.obj's)
    face_uv: np.ndarray  # (F, 3)
    hips_z: float
    neck_z: float
    _dense: np.ndarray | None = None


@dataclass
class Piece:
    """One fitted proxy, ready to append to the body."""

    name: str  # outfit, shoes, hair, eyebrows, eyelashes, eyes, teeth
    asset: str
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    face_uv: np.ndarray
    face_material: np.ndarray  # (m,) material slot per face
    skin_indices: np.ndarray  # (n, 8) quantised
    skin_weights: np.ndarray
    surface_source: np.ndarray  # (n,) dominant bound body vertex
    bind_indices: np.ndarray  # (n, 9)
    bind_weights: np.ndarray  # (n, 9)
    label_head: bool  # hair / brows / lashes: labelled as the head
    info: dict = field(default_factory=dict)


@dataclass
class Dressing:
    pieces: list[Piece]
    materials: list[dict]
    texture_sources: dict[str, str]  # sha256 -> source file
    hidden: np.ndarray  # (V,) bool: body vertices under garments (delete_verts)
    removed_body_faces: np.ndarray  # (F,) bool: anny's low-poly eyeballs (replaced)
    body_face_material: np.ndarray  # (F,) slot of each body face (skin / mouth)
    assets: list[dict]  # provenance of every file used


class _Textures:
    def __init__(self, folder: AssetFolder):
        self.folder = folder
        self.sources: dict[str, str] = {}
        self.files: list[dict] = []

    def ref(self, path) -> dict:
        check_image(path)
        r = texture_ref(path)
        if r["sha256"] not in self.sources:
            self.sources[r["sha256"]] = str(path)
        return r


def dense_weights(body: Body) -> np.ndarray:
    """(V, J) skin weights of the body (computed once per body)."""
    if body._dense is None:
        dense = np.zeros((len(body.vertices), body.num_joints))
        rows = np.repeat(np.arange(len(body.vertices)), body.skin_indices.shape[1])
        np.add.at(dense, (rows, np.asarray(body.skin_indices).ravel()), np.asarray(body.skin_weights).ravel())
        body._dense = dense
    return body._dense


def _blend_weights(body: Body, fitted: FittedProxy) -> tuple[np.ndarray, np.ndarray]:
    """Quantised skin weights of fitted vertices: their binding coefficients times the weights
    of the body vertices they are bound to."""
    w = np.einsum("nk,nkj->nj", fitted.bind_weights, dense_weights(body)[fitted.bind_indices])
    qi, qw, unweighted = quantize_weights(
        np.broadcast_to(np.arange(body.num_joints), w.shape), w, k=body.skin_indices.shape[1]
    )
    if unweighted.any():
        raise UserError(
            f"{fitted.proxy.path}: {int(unweighted.sum())} vertices bound to no weighted body vertex",
            "use a MakeHuman 1.x (hm08) proxy",
        )
    k = body.skin_indices.shape[1]
    out_i = np.zeros((len(qi), k), np.int64)
    out_w = np.zeros((len(qi), k), np.float32)
    out_i[:, : qi.shape[1]] = qi
    out_w[:, : qw.shape[1]] = qw
    return out_i, out_w


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb) @ np.array([0.2126, 0.7152, 0.0722])


def _face_samples(mesh, faces_sel: np.ndarray) -> np.ndarray:
    """UVs of 4 points per face (centroid and towards each corner) of the selected faces."""
    tri = mesh.uv[mesh.face_uv[faces_sel]]  # (m, 3, 2)
    w = np.array([[1 / 3, 1 / 3, 1 / 3], [2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]])
    return np.einsum("pk,mki->mpi", w, tri).reshape(-1, 2)


def _mean_luminance(img: np.ndarray, mesh, faces_sel: np.ndarray) -> float:
    px = sample_texture(img, _face_samples(mesh, faces_sel))
    keep = px[:, 3] > 0.5
    return float(max(_luminance(px[keep, :3]).mean() if keep.any() else 0.18, 1e-3))


def push_outside(outer: Piece, inner: Piece, gap: float = 0.004, band: float = 0.012) -> int:
    """Move `outer` vertices that lie within `band` inside (or closer than `gap` outside) the
    `inner` piece's surface to `gap` outside it, along that surface's normal; returns how many.

    MakeHuman layers proxies by render order (z_depth: trousers 50 over shoes 5); as geometry the
    fitted trouser hem and the shoe collar interpenetrate by a few millimetres and the shoe's
    lining showed through the jeans. Deeper vertices (a hem tucked well inside a boot) stay.
    """
    from thfm_synth.assets.characters.makehuman.helpers import closest_points_on_triangles

    tri = inner.vertices[inner.faces]
    lo, hi = inner.vertices.min(axis=0) - band, inner.vertices.max(axis=0) + band
    near = np.flatnonzero(((outer.vertices >= lo) & (outer.vertices <= hi)).all(axis=1))
    if not len(near):
        return 0
    p = outer.vertices[near]
    _, cand = cKDTree(tri.mean(axis=1)).query(p, k=min(16, len(tri)))
    t = tri[cand]
    bary = closest_points_on_triangles(p[:, None], t[:, :, 0], t[:, :, 1], t[:, :, 2])
    foot = np.einsum("hkm,hkmi->hki", bary, t)
    j = np.argmin(np.linalg.norm(foot - p[:, None], axis=2), axis=1)
    rows = np.arange(len(p))
    tt, ff = t[rows, j], foot[rows, j]
    n = np.cross(tt[:, 1] - tt[:, 0], tt[:, 2] - tt[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    sd = np.einsum("hi,hi->h", p - ff, n)
    move = (sd > -band) & (sd < gap)
    outer.vertices = outer.vertices.copy()
    outer.vertices[near[move]] += (gap - sd[move])[:, None] * n[move]
    return int(move.sum())


def _region_material(name: str, kind: str, region: dict, diffuse: dict, normal: dict | None, luminance: float) -> dict:
    fields = {"base_color_map": diffuse, "roughness": float(region.get("roughness", 0.8))}
    if normal is not None:
        fields["normal_map"] = normal
    if kind == "cloth":
        fields["sheen"] = {"weight": float(region.get("sheen", 0.3)), "roughness": 0.5, "tint": [1.0, 1.0, 1.0]}
    if region.get("mode") == "dye":
        fields["recolor"] = {
            "color": srgb_to_linear(region["srgb"]),
            "amount": float(region["amount"]),
            "luminance": round(luminance, 5),
        }
        pat = region.get("pattern")
        if pat and pat.get("type", "solid") != "solid":
            fields["pattern"] = {
                "type": pat["type"],
                "color2": srgb_to_linear(pat["srgb2"]),
                "scale_m": float(pat["scale_m"]),
                "axis": pat.get("axis", "z"),
                "amount": 1.0,
            }
    else:
        fields["hsv"] = [float(region.get("hue", 0.0)), 1.0, float(region.get("value", 1.0))]
    return matschema.material(name, kind, **fields)


def _proxy_maps(folder: AssetFolder, proxy, tex: _Textures, need_diffuse: bool = True):
    if proxy.material_path is None:
        raise UserError(f"{proxy.path}: names no material", "use the .mhclo of the MakeHuman release")
    mat = folder.material(proxy.material_path)
    diffuse = mat.maps.get("diffuse")
    if diffuse is None and need_diffuse:
        gone = mat.missing.get("diffuse")
        raise UserError(
            f"{mat.path}: its diffuse texture {gone or '(none named)'} is missing",
            "restore the file from the MakeHuman asset release (thfm-synth assets fetch makehuman --dest DIR)",
        )
    normal = mat.maps.get("normal")
    return mat, (tex.ref(diffuse) if diffuse else None), (tex.ref(normal) if normal else None), diffuse


def _fit(
    folder: AssetFolder,
    path,
    binding: HelperBinding,
    hm08: np.ndarray,
    body: Body,
    name: str,
    asset: str,
    label_head: bool,
    material: np.ndarray | int,
    provenance: list,
    keep_faces: np.ndarray | None = None,
) -> tuple[Piece, FittedProxy]:
    proxy = folder.proxy(path)
    mesh = folder.mesh(proxy.obj_path)
    fitted = fit_proxy(proxy, mesh, binding, hm08)
    faces, face_uv = mesh.faces, mesh.face_uv
    fmat = np.broadcast_to(np.asarray(material, np.int16), (len(faces),)).copy()
    verts, bi, bw = fitted.vertices, fitted.bind_indices, fitted.bind_weights
    si, sw = _blend_weights(body, fitted)
    src = dominant_vertex(fitted)
    if keep_faces is not None:  # drop faces (and then-unused vertices)
        faces, face_uv, fmat = faces[keep_faces], face_uv[keep_faces], fmat[keep_faces]
        used = np.zeros(len(verts), bool)
        used[faces.ravel()] = True
        remap = np.cumsum(used) - 1
        faces = remap[faces]
        verts, bi, bw, si, sw, src = verts[used], bi[used], bw[used], si[used], sw[used], src[used]
    for p in (proxy.path, proxy.obj_path):
        provenance.append({"role": name, "asset": asset, **folder.provenance(p)})
    return Piece(
        name,
        asset,
        verts,
        faces,
        mesh.uv,
        face_uv,
        fmat,
        si,
        sw,
        src,
        bi,
        bw,
        label_head,
        info={
            "kind": "makehuman",
            "asset": asset,
            "vertices": int(len(verts)),
            "faces": int(len(faces)),
            "scales": [round(float(x), 4) for x in fitted.scales],
            "hides": int(len(fitted.hidden)),
        },
    ), fitted


def dress(folder: AssetFolder, app: dict, body: Body) -> Dressing:
    folder.check_catalogue()
    binding = binding_for(folder, body.anny_indices, body.faces)
    hm08 = binding.rebuild(body.vertices)
    tex = _Textures(folder)
    provenance: list[dict] = [{"role": "base_mesh", "asset": "hm08", **folder.provenance(folder.base_obj)}]
    materials: list[dict | None] = [None] * len(SLOTS)
    pieces: list[Piece] = []
    hidden = np.zeros(len(body.vertices), bool)

    # ---- skin: the texture's mean colour over torso and limbs (not the painted scalp) -> tint
    skin_asset = folder.skins[app["skin"]["asset"]]
    skin_mat = folder.material(skin_asset.mhmat)
    diffuse = skin_mat.maps.get("diffuse")
    if diffuse is None:
        raise UserError(
            f"{skin_asset.mhmat}: its diffuse texture {skin_mat.missing.get('diffuse', '(none named)')} is missing",
            "restore the file from the MakeHuman asset release (thfm-synth assets fetch makehuman --dest DIR)",
        )
    provenance += [
        {"role": "skin", "asset": skin_asset.key, **folder.provenance(p)} for p in (skin_asset.mhmat, diffuse)
    ]

    limbs = [SEGMENT_NAMES.index(s) for s in SEGMENT_NAMES if not s.startswith(("head", "hand", "foot"))]
    img = image_rgba(diffuse)
    groups = base_groups(folder)
    body_faces = body.faces
    skin_faces = np.isin(body.segment[body_faces], limbs).all(axis=1)
    px = sample_texture(img, _face_samples(body, np.flatnonzero(skin_faces)))[:, :3]
    mean = np.maximum(px.mean(axis=0), 1e-4)
    target = np.asarray(srgb_to_linear(app["skin"]["srgb"]))
    tint = np.clip(target / mean, 0.05, 4.0)
    materials[SLOT["skin"]] = matschema.material(
        "skin",
        "skin",
        base_color=[round(float(x), 5) for x in target],
        base_color_map=tex.ref(diffuse),
        tint=[round(float(x), 5) for x in tint],
        roughness=float(app["skin"]["roughness"]),
        specular=0.5,
        ior=1.4,
        subsurface={"weight": SKIN_SSS_WEIGHT, "radius": SKIN_SSS_RADIUS, "color": None},
    )
    materials[SLOT["mouth"]] = matschema.material(
        "mouth",
        "mouth",
        base_color=srgb_to_linear((150, 62, 62)),
        roughness=0.35,
        subsurface={"weight": SKIN_SSS_WEIGHT, "radius": SKIN_SSS_RADIUS, "color": None},
    )

    # ---- anny's own eyeballs go; body faces: skin, tongue -> mouth
    anny_of = binding.anny_of_hm08
    in_group = np.zeros(len(body.vertices), np.int8)
    for g, code in (("helper-l-eye", 1), ("helper-r-eye", 1), ("helper-tongue", 2)):
        a = anny_of[groups.get(g, np.zeros(0, np.int64))]
        in_group[a[a >= 0]] = code
    fg = in_group[body_faces]
    removed = (fg == 1).all(axis=1)
    body_fmat = np.where((fg == 2).all(axis=1), SLOT["mouth"], SLOT["skin"]).astype(np.int16)

    # ---- eyes: eyeball shells only (the cornea shells map to the texture's transparent corner)
    eye_mat = folder.material(folder.eye_materials[app["eyes"]["asset"]])
    eye_tex = eye_mat.maps.get("diffuse")
    if eye_tex is None:
        raise UserError(
            f"{eye_mat.path}: its diffuse texture {eye_mat.missing.get('diffuse', '(none)')} is missing",
            "restore the file from the MakeHuman asset release (thfm-synth assets fetch makehuman --dest DIR)",
        )
    eyes_proxy = folder.proxy(folder.eyes)
    eyes_mesh = folder.mesh(eyes_proxy.obj_path)
    alpha = sample_texture(image_rgba(eye_tex), eyes_mesh.uv[eyes_mesh.face_uv].mean(axis=1))[:, 3]
    piece, _ = _fit(
        folder,
        folder.eyes,
        binding,
        hm08,
        body,
        "eyes",
        app["eyes"]["asset"],
        False,
        SLOT["eyes"],
        provenance,
        keep_faces=alpha >= 0.5,
    )
    pieces.append(piece)
    provenance += [
        {"role": "eyes", "asset": app["eyes"]["asset"], **folder.provenance(p)} for p in (eye_mat.path, eye_tex)
    ]
    materials[SLOT["eyes"]] = matschema.material(
        "eyes",
        "eyes",
        base_color_map=tex.ref(eye_tex),
        roughness=0.4,
        specular=0.5,
        coat={"weight": 1.0, "roughness": 0.03, "ior": 1.376},
        subsurface={"weight": 0.2, "radius": [0.002, 0.001, 0.001], "color": None},
    )

    # ---- teeth
    piece, _ = _fit(folder, folder.teeth, binding, hm08, body, "teeth", "teeth_base", False, SLOT["teeth"], provenance)
    pieces.append(piece)
    tmat, tdiff, tnorm, _ = _proxy_maps(folder, folder.proxy(folder.teeth), tex)
    provenance.append({"role": "teeth", "asset": "teeth_base", **folder.provenance(tmat.path)})
    materials[SLOT["teeth"]] = matschema.material(
        "teeth",
        "teeth",
        base_color_map=tdiff,
        roughness=0.25,
        specular=0.5,
        subsurface={"weight": 0.25, "radius": [0.001, 0.0007, 0.0005], "color": None},
    )

    # ---- outfit: top / bottom by UV island
    outfit = app["outfit"]
    opath = folder.outfits[outfit["asset"]]
    piece, fitted = _fit(folder, opath, binding, hm08, body, "outfit", outfit["asset"], False, SLOT["top"], provenance)
    mesh = fitted.mesh
    n_uv = len(mesh.uv)
    fu = mesh.face_uv
    adj = coo_matrix((np.ones(fu.size), (fu.ravel(), np.roll(fu, 1, axis=1).ravel())), shape=(n_uv, n_uv))
    _, island = connected_components(adj, directed=False)
    face_island = island[fu[:, 0]]
    h = (fitted.vertices[mesh.faces].mean(axis=1)[:, 2] - body.hips_z) / max(body.neck_z - body.hips_z, 1e-6)
    bottom = np.zeros(len(mesh.faces), bool)
    for c in np.unique(face_island):
        sel = face_island == c
        bottom[sel] = np.median(h[sel]) < WAIST
    piece.face_material = np.where(bottom, SLOT["bottom"], SLOT["top"]).astype(np.int16)
    piece.info["bottom_faces"] = int(bottom.sum())
    pieces.append(piece)
    hidden[fitted.hidden] = True
    omat, odiff, onorm, odiff_path = _proxy_maps(folder, fitted.proxy, tex)
    provenance += [
        {"role": "outfit", "asset": outfit["asset"], **folder.provenance(p)}
        for p in [omat.path, odiff_path] + ([omat.maps["normal"]] if "normal" in omat.maps else [])
    ]
    oimg = image_rgba(odiff_path)
    for region, sel in (("top", ~bottom), ("bottom", bottom)):
        lum = _mean_luminance(oimg, mesh, np.flatnonzero(sel)) if sel.any() else 0.18
        materials[SLOT[region]] = _region_material(region, "cloth", outfit[region], odiff, onorm, lum)

    # ---- shoes
    shoes = app["shoes"]
    piece, fitted = _fit(
        folder,
        folder.shoes[shoes["asset"]],
        binding,
        hm08,
        body,
        "shoes",
        shoes["asset"],
        False,
        SLOT["shoes"],
        provenance,
    )
    pieces.append(piece)
    hidden[fitted.hidden] = True
    smat, sdiff, snorm, sdiff_path = _proxy_maps(folder, fitted.proxy, tex)
    provenance += [
        {"role": "shoes", "asset": shoes["asset"], **folder.provenance(p)}
        for p in [smat.path, sdiff_path] + ([smat.maps["normal"]] if "normal" in smat.maps else [])
    ]
    outfit_piece = next(p for p in pieces if p.name == "outfit")
    outfit_piece.info["pushed_over_shoes"] = push_outside(outfit_piece, piece)
    simg = image_rgba(sdiff_path)
    lum = _mean_luminance(simg, fitted.mesh, np.arange(len(fitted.mesh.faces)))
    materials[SLOT["shoes"]] = _region_material("shoes", "shoes", shoes, sdiff, snorm, lum)

    # ---- hair, eyebrows, eyelashes: alpha cards, dyed, labelled as the head
    for role, table in (("hair", folder.hair), ("eyebrows", folder.eyebrows), ("eyelashes", folder.eyelashes)):
        choice = app[role]
        kind = CARD_KINDS[role]
        if choice.get("asset") is None:
            materials[SLOT[role]] = matschema.material(role, kind, base_color=srgb_to_linear(choice["srgb"]))
            continue
        piece, fitted = _fit(
            folder, table[choice["asset"]], binding, hm08, body, role, choice["asset"], True, SLOT[role], provenance
        )
        pieces.append(piece)
        hidden[fitted.hidden] = True
        hmat, hdiff, hnorm, hdiff_path = _proxy_maps(folder, fitted.proxy, tex)
        provenance += [
            {"role": role, "asset": choice["asset"], **folder.provenance(p)}
            for p in [hmat.path, hdiff_path] + ([hmat.maps["normal"]] if "normal" in hmat.maps else [])
        ]
        himg = image_rgba(hdiff_path)
        opaque = himg[..., 3] > 0.5
        lum = float(max(_luminance(himg[opaque][:, :3]).mean() if opaque.any() else 0.05, 1e-3))
        cutout = bool((himg[..., 3] < 0.5).mean() > 0.01)
        fields = dict(
            base_color=srgb_to_linear(choice["srgb"]),
            base_color_map=hdiff,
            recolor={
                "color": srgb_to_linear(choice["srgb"]),
                "amount": float(choice.get("amount", 0.95)),
                "luminance": round(lum, 5),
            },
            roughness=float(choice.get("roughness", 0.45)),
            specular=0.5,
        )
        if hnorm is not None:
            fields["normal_map"] = hnorm
        if cutout:
            fields.update(alpha_mode="blend", alpha_map=hdiff, alpha_channel="a", alpha_cutoff=0.5)
        materials[SLOT[role]] = matschema.material(role, kind, **fields)

    # ---- scalp: the skin under the hair, dyed towards the hair colour, so gaps between hair
    # cards show roots, not bare (often pale) skin; bald heads keep plain skin
    if any(p.name == "hair" for p in pieces):
        scalp = scalp_vertices(folder, body)
        body_fmat = np.where(
            scalp[body.faces].all(axis=1) & (body_fmat == SLOT["skin"]), SLOT["scalp"], body_fmat
        ).astype(np.int16)
    skin_lum = float(max(_luminance(target), 1e-3))  # the dye reads the map after its tint
    materials[SLOT["scalp"]] = matschema.material(
        "scalp",
        "skin",
        **{k: v for k, v in materials[SLOT["skin"]].items() if k not in ("name", "kind")},
        recolor={"color": srgb_to_linear(app["hair"]["srgb"]), "amount": 0.75, "luminance": round(skin_lum, 5)},
    )
    return Dressing(pieces, materials, tex.sources, hidden, removed, body_fmat, _dedupe(provenance))


def _dedupe(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for it in items:
        key = (it["role"], it["file"])
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out
