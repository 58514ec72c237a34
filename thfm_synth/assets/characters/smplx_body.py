"""SMPL-X bodies baked into our character format, from the user's own SMPL-X model files.

The second body backend (`anny` is the default, free one). Character i of seed S depends only on
(S, i, the model files): `numpy.random.default_rng([S, i])` draws

* sex (46% female, 46% male, 8% neutral; or fixed), which picks `SMPLX_FEMALE/MALE/NEUTRAL.npz`
  (the neutral file when a gendered one is absent), an age (18-78 years, for the appearance);
* a target height (adult means 1.63 m female, 1.77 m male, 1.70 m neutral, sd 7-9 cm) and BMI
  (log-normal, median 24.5, 17-40), so a target mass = BMI x height^2;
* betas: a random body (N(0, 0.8^2) per component), then the smallest change of the 10 shape
  components that gives the target height (soles to crown) and mass (mesh volume x 985 kg/m^3),
  by Gauss-Newton with the minimum-norm step, |beta| <= 3.5. The reached height and mass are
  recorded next to the targets;
* an expression (10 components, N(0, 0.4^2), clipped to 1.2) held for the whole video;
* the natural hand pose: the model's mean (relaxed) hand pose `hands_meanl/r` scaled by
  U(0.6, 1.0) (0: flat hand), which the fingers keep whatever the motion does;
* the appearance: skin, hair and procedural clothing exactly as for anny bodies
  (appearance.py, garments.py; they work on any labelled body), or, with `texture_dir`, one of
  the user's SMPL-X UV textures (e.g. BEDLAM's clothing textures) on the bare body.

The baked file holds the shaped body (all V model vertices first, in the model's order, so the
rendered vertex i is SMPL-X vertex i), the garments, SMPL-X's 55 joints (canonical names for the
mapped ones, rigs.py table `smplx`, the model's own names for fingers, jaw and eyes, in the model's
joint order), the model's skin weights (top 8, quantised, for labels and Blender) and labels by
the common rules (labels.py). `meta["smplx"]` records what re-poses it exactly: the model file
(path and sha256), gender, betas, expression, hand pose and `world_from_model` (x_world =
R x_model + t, R maps the model's Y-up/+Z-forward frame to ours, Z up/-Y forward, t puts the
pelvis over the origin and the soles on z = 0). Posing itself is `smplx_motion.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from thfm_synth.assets.characters import appearance as appearance_mod
from thfm_synth.assets.characters.armature import orthonormal_rest
from thfm_synth.assets.characters.format import Character, quantize_weights
from thfm_synth.assets.characters.garments import body_frame, build_garments
from thfm_synth.assets.characters.labels import canonical_coordinates, compute_labels
from thfm_synth.assets.characters.rigs import map_rig
from thfm_synth.assets.characters.smplx_model import (
    GENDERS,
    LICENCE,
    LICENCE_TEXT,
    NUM_BETAS,
    NUM_EXPRESSION,
    SMPLX_JOINT_NAMES,
    SMPLX_PARENTS,
    SmplxModel,
    available_genders,
    load_model,
)
from thfm_synth.errors import UserError

GENERATOR_VERSION = 1
RIG = "smplx"
#: model frame (Y up, facing +Z) -> world frame (Z up, facing -Y): a rotation of +90 degrees about X
WORLD_FROM_MODEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
DENSITY_KG_M3 = 985.0
BETA_LIMIT = 3.5
GENDER_CHOICES = ("mixed",) + GENDERS
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")
HEIGHT = {"female": (1.63, 0.07), "male": (1.77, 0.075), "neutral": (1.70, 0.09)}


def smplx_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("smplx")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def source_text(model: SmplxModel) -> str:
    return (
        f"SMPL-X model file {model.path.name} (sha256 {model.sha256[:16]}), supplied by the user; "
        f"thfm-synth SMPL-X body generator v{GENERATOR_VERSION}"
    )


def sample_phenotype(rng: np.random.Generator, genders: tuple[str, ...], gender: str = "mixed") -> dict:
    """Sex, model file gender, age and the height/BMI/mass targets (see module doc)."""
    if gender not in GENDER_CHOICES:
        raise UserError(f"unknown SMPL-X gender choice {gender!r}", f"use one of {', '.join(GENDER_CHOICES)}")
    u = rng.random()
    sex = gender if gender != "mixed" else ("female" if u < 0.46 else "male" if u < 0.92 else "neutral")
    model_gender = sex if sex in genders else ("neutral" if "neutral" in genders else None)
    if model_gender is None:
        raise UserError(
            f"the SMPL-X model folder has no {sex} or neutral model file (it has: {', '.join(genders)})",
            f"add SMPLX_{sex.upper()}.npz or SMPLX_NEUTRAL.npz, or choose --gender {genders[0]}",
        )
    age = float(rng.uniform(18.0, 78.0))
    mean, sd = HEIGHT[sex]
    height = float(np.clip(rng.normal(mean, sd), 1.45, 2.02))
    bmi = float(np.clip(np.exp(rng.normal(np.log(24.5), 0.15)), 17.0, 40.0))
    return {
        "sex": sex,
        "model_gender": model_gender,
        "age_years": round(age, 3),
        "gender": {"female": 0.9, "male": 0.1, "neutral": 0.5}[sex],
        "height_target_m": round(height, 4),
        "bmi_target": round(bmi, 3),
        "weight_target_kg": round(bmi * height * height, 3),
    }


def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (divergence theorem; any small openings of the mesh barely matter)."""
    v = vertices[faces]
    return float(abs(np.einsum("fi,fi->f", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum()) / 6.0)


def measures(model: SmplxModel, betas: np.ndarray, expression: np.ndarray) -> np.ndarray:
    """(height m, mass kg) of a shaped body at rest (model Y is up)."""
    v, _ = model.shaped(betas, expression)
    return np.array([v[:, 1].max() - v[:, 1].min(), DENSITY_KG_M3 * mesh_volume(v, model.faces)])


def fit_betas(
    model: SmplxModel, start: np.ndarray, expression: np.ndarray, height_m: float, mass_kg: float, iterations: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Betas near `start` with the target height and mass (minimum-norm Gauss-Newton steps); (betas, reached)."""
    beta = np.clip(np.asarray(start, np.float64), -BETA_LIMIT, BETA_LIMIT)
    target = np.array([height_m, mass_kg])
    scale = np.array([1.0, 1.0 / 60.0])  # metres and ~60 kg weigh alike
    for _ in range(iterations):
        cur = measures(model, beta, expression)
        r = (target - cur) * scale
        if np.abs(r).max() < 1e-4:
            break
        jac = np.empty((2, len(beta)))
        for k in range(len(beta)):
            d = np.zeros_like(beta)
            d[k] = 0.05
            jac[:, k] = (measures(model, beta + d, expression) - cur) * scale / 0.05
        step = np.linalg.lstsq(jac, r, rcond=None)[0]
        beta = np.clip(beta + step, -BETA_LIMIT, BETA_LIMIT)
    return beta, measures(model, beta, expression)


def joint_tails(heads: np.ndarray, parents: np.ndarray, vertices: np.ndarray, dominant: np.ndarray) -> np.ndarray:
    """Bone tails (world) for Blender-style bone frames and the label chart axes.

    One child: the child's head. Pelvis -> spine1, spine3 -> neck, wrist -> middle finger base
    (the axes the labels use); head: straight up to the crown (highest head vertex); a leaf: along
    its parent bone by half that bone's length (1-10 cm).
    """
    names = SMPLX_JOINT_NAMES
    idx = {n: i for i, n in enumerate(names)}
    pick = {"pelvis": "spine1", "spine3": "neck", "left_wrist": "left_middle1", "right_wrist": "right_middle1"}
    tails = heads.copy()
    children = [[c for c in range(len(names)) if parents[c] == j] for j in range(len(names))]
    for j, n in enumerate(names):
        if n in pick:
            tails[j] = heads[idx[pick[n]]]
        elif n == "head":
            head_v = vertices[
                np.isin(dominant, [idx["head"], idx["jaw"], idx["left_eye_smplhf"], idx["right_eye_smplhf"]])
            ]
            crown = head_v[:, 2].max() if len(head_v) else heads[j, 2] + 0.2
            tails[j] = [heads[j, 0], heads[j, 1], max(crown, heads[j, 2] + 0.05)]
        elif len(children[j]) == 1:
            tails[j] = heads[children[j][0]]
        else:
            p = parents[j]
            d = heads[j] - heads[p]
            length = np.linalg.norm(d)
            tails[j] = heads[j] + d / max(length, 1e-9) * float(np.clip(0.5 * length, 0.01, 0.1))
    return tails


def _body_materials(vertices: np.ndarray, faces: np.ndarray, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(face material, main-surface vertex mask): the largest connected component is skin; the
    other components are eyeballs (off the midline; their forward-facing cap is the iris) or, on
    the midline, mouth parts. `index`: material name -> slot (skin, sclera, iris, mouth)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(faces, np.int64)
    n = len(vertices)
    adj = coo_matrix((np.ones(f.size), (f.ravel(), np.roll(f, 1, axis=1).ravel())), shape=(n, n))
    lab = connected_components(adj, directed=False)[1]
    sizes = np.bincount(lab)
    main_c = int(np.argmax(sizes))
    fmat = np.full(len(f), index.get("skin", 0), np.int16)
    for c in np.flatnonzero(sizes):
        if c == main_c:
            continue
        fsel = np.flatnonzero(lab[f[:, 0]] == c)
        centre = vertices[lab == c].mean(axis=0)
        if abs(centre[0]) > 0.008:  # an eyeball: the cap looking forward (-Y) is the iris
            d = vertices - centre
            cosf = -d[:, 1] / np.maximum(np.linalg.norm(d, axis=1), 1e-12)
            cap = (cosf[f[fsel]] > np.cos(np.radians(38))).all(axis=1)
            fmat[fsel] = np.where(cap, index.get("iris", 0), index.get("sclera", 0))
        else:
            fmat[fsel] = index.get("mouth", 0)
    return fmat, lab == main_c


def _texture_files(texture_dir: str | Path) -> list[Path]:
    d = Path(texture_dir).expanduser()
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in TEXTURE_SUFFIXES) if d.is_dir() else []
    if not files:
        raise UserError(
            f"SMPL-X texture folder {d} has no image files ({', '.join(TEXTURE_SUFFIXES)})",
            "point --texture-dir at a folder of SMPL-X UV textures (e.g. BEDLAM's)",
        )
    return files


def bake_smplx(
    model_dir: str | Path,
    seed: int,
    index: int,
    gender: str = "mixed",
    texture_dir: str | Path | None = None,
    character_id: str | None = None,
) -> Character:
    """Sample, shape, dress, label and skin SMPL-X character `index` of `seed` (deterministic)."""
    rng = np.random.default_rng([int(seed), int(index)])
    phen = sample_phenotype(rng, available_genders(model_dir), gender)
    model = load_model(model_dir, phen["model_gender"])
    expression = np.clip(rng.normal(0.0, 0.4, NUM_EXPRESSION), -1.2, 1.2)
    start = rng.normal(0.0, 0.8, NUM_BETAS)
    betas, reached = fit_betas(model, start, expression, phen["height_target_m"], phen["weight_target_kg"])
    phen.update(height_m=round(float(reached[0]), 4), weight_kg=round(float(reached[1]), 3))
    hand_curl = float(rng.uniform(0.6, 1.0))
    textures = _texture_files(texture_dir) if texture_dir is not None else None
    if textures is not None and model.vt is None:
        raise UserError(
            f"{model.path} has no texture coordinates (vt/ft), so UV textures cannot be used",
            "use the official SMPL-X .npz model files, or leave --texture-dir out",
        )
    app = appearance_mod.sample_appearance(rng, phen)
    texture = str(textures[int(rng.integers(len(textures)))].resolve()) if textures is not None else None

    v_model, j_model = model.shaped(betas, expression)
    m = WORLD_FROM_MODEL
    verts = v_model @ m.T
    heads = j_model @ m.T
    shift = np.array([-heads[0, 0], -heads[0, 1], 0.0])
    verts, heads = verts + shift, heads + shift
    nvb = len(verts)
    faces = model.faces
    if model.vt is not None:
        uv, face_uv = model.vt.astype(np.float32), model.ft
    else:
        uv, face_uv = np.zeros((1, 2), np.float32), np.zeros_like(faces)

    parents = SMPLX_PARENTS.astype(np.int32)
    mapping = map_rig(list(SMPLX_JOINT_NAMES), RIG, source=f"SMPL-X model {model.path.name}")
    names = [mapping.to_canonical.get(n, n) for n in SMPLX_JOINT_NAMES]
    dominant = np.argmax(model.weights, axis=1)
    tails = joint_tails(heads, SMPLX_PARENTS, verts, dominant)
    rots, tails = orthonormal_rest(heads, tails, np.tile(np.eye(3), (len(names), 1, 1)))
    s_idx, s_w, unweighted = quantize_weights(np.tile(np.arange(len(names)), (nvb, 1)), model.weights)
    if unweighted.any():
        raise UserError(
            f"{model.path}: {int(unweighted.sum())} vertices have no skin weight", "use the official SMPL-X model files"
        )

    if texture is not None:  # the texture paints skin, eyes and clothes: one material, no garments
        mats = [
            {
                "name": "skin",
                "kind": "skin",
                "base_color": [0.8, 0.8, 0.8],
                "roughness": 0.6,
                "metallic": 0.0,
                "texture": texture,
                "pattern": None,
            }
        ]
        pieces = []
        body_fmat = np.zeros(len(faces), np.int16)
        app = {"texture": texture}
    else:
        mats = appearance_mod.material_table(app)
        mat_index = {m["name"]: i for i, m in enumerate(mats)}
        body_fmat, main = _body_materials(verts, faces, mat_index)
        body_labels = compute_labels(verts, faces, s_idx, s_w, names, parents, heads, tails)
        frame = body_frame(verts, faces, body_labels.vertex_segment, names, heads, tails, main)
        pieces = build_garments(app, frame, uv, face_uv, s_idx, s_w, names, mat_index)

    k = s_idx.shape[1]
    all_v, all_f, all_uv, all_fuv = [verts], [faces], [uv], [face_uv]
    all_si, all_sw = [s_idx.astype(np.int64)], [s_w]
    garment_id, surface, fmat = [np.zeros(nvb, np.int16)], [np.full(nvb, -1, np.int64)], [body_fmat]
    hidden = np.zeros(nvb, bool)
    garments = []
    v_off, uv_off = nvb, len(uv)
    for g, p in enumerate(pieces, start=1):
        qi, qw, _ = quantize_weights(p.skin_indices, p.skin_weights)
        if qi.shape[1] > k:
            qi, qw, _ = quantize_weights(qi[:, :k], qw[:, :k])
        qi2 = np.zeros((len(qi), k), np.int64)
        qw2 = np.zeros((len(qw), k), np.float32)
        qi2[:, : qi.shape[1]], qw2[:, : qw.shape[1]] = qi, qw
        all_v.append(p.vertices)
        all_f.append(p.faces + v_off)
        if p.uv is uv:
            all_fuv.append(np.asarray(p.face_uv))
        else:
            all_uv.append(np.asarray(p.uv, np.float32))
            all_fuv.append(np.asarray(p.face_uv) + uv_off)
            uv_off += len(p.uv)
        all_si.append(qi2)
        all_sw.append(qw2)
        garment_id.append(np.full(len(p.vertices), g, np.int16))
        surface.append(np.asarray(p.surface_source, np.int64))
        fmat.append(np.full(len(p.faces), p.material, np.int16))
        if p.covers is not None:
            hidden |= p.covers
        garments.append({"id": g, "name": p.name, "material": int(p.material), **p.info})
        v_off += len(p.vertices)
    V, F = np.concatenate(all_v), np.concatenate(all_f)
    SI, SW = np.concatenate(all_si), np.concatenate(all_sw)
    SRC = np.concatenate(surface)
    labels = compute_labels(V, F, SI, SW, names, parents, heads, tails, surface_source=SRC)

    # body faces under opaque garments go (they would poke through); every vertex stays, so the
    # first V vertices are the model's, in its order
    is_body_face = np.arange(len(F)) < len(faces)
    keep_f = ~(is_body_face & hidden[np.minimum(F, nvb - 1)].all(axis=1) & (F < nvb).all(axis=1))
    lift = np.array([0.0, 0.0, -float(V[:, 2].min())])
    V = V + lift
    heads, tails = heads + lift, tails + lift
    canonical, cmin, cmax = canonical_coordinates(V)
    world_from_model = np.eye(4)
    world_from_model[:3, :3] = m
    world_from_model[:3, 3] = shift + lift
    params = {
        "generator": "smplx",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "index": int(index),
        "gender": gender,
        "phenotype": phen,
        "appearance": app,
        "betas": [round(float(b), 6) for b in betas],
        "expression": [round(float(e), 6) for e in expression],
        "hand_curl": round(hand_curl, 4),
    }
    # the exact values used for the mesh (the rounded copies above are for people reading the manifest)
    smplx_meta = {
        "model_file": str(model.path),
        "model_sha256": model.sha256,
        "gender": model.gender,
        "num_body_vertices": nvb,
        "num_joints": len(names),
        "betas": betas.tolist(),
        "expression": expression.tolist(),
        "hand_pose": (model.hands_mean * hand_curl).tolist(),
        "world_from_model": world_from_model.tolist(),
        "model_info": model.info,
        "smplx_package": smplx_version(),
    }
    meta = {
        "id": character_id or f"smplx-{seed}-{index:05d}",
        "generator": "smplx",
        "source": source_text(model),
        "licence": LICENCE,
        "licence_text": LICENCE_TEXT,
        "rig": RIG,
        "params": params,
        "height_m": round(float(V[:, 2].max()), 4),
        "body_height_m": round(float(verts[:, 2].max() - verts[:, 2].min()), 4),
        "skeleton": {"reparented": [], "dropped": []},
        "hidden_body_faces": int((~keep_f).sum()),
        "has_uv": model.vt is not None,
        "smplx": smplx_meta,
    }
    json.dumps(meta)  # fail here, not in the writer, if anything is not JSON-able
    return Character(
        vertices=V.astype(np.float32),
        faces=F[keep_f].astype(np.int32),
        uv=np.concatenate(all_uv).astype(np.float32),
        face_uv=np.concatenate(all_fuv)[keep_f].astype(np.int32),
        joint_names=names,
        joint_source_names=list(SMPLX_JOINT_NAMES),
        joint_parents=parents,
        joint_heads=heads.astype(np.float32),
        joint_tails=tails.astype(np.float32),
        joint_rest_rotations=rots.astype(np.float32),
        skin_indices=SI.astype(np.int16),
        skin_weights=SW.astype(np.float32),
        vertex_garment=np.concatenate(garment_id),
        face_material=np.concatenate(fmat)[keep_f],
        vertex_part=labels.vertex_part,
        vertex_part_uv=labels.vertex_part_uv,
        vertex_canonical=canonical,
        canonical_min=cmin,
        canonical_max=cmax,
        face_part=labels.face_part[keep_f],
        corner_part_uv=labels.corner_part_uv[keep_f],
        materials=mats,
        garments=garments,
        meta=meta,
    )
