"""The SMPL-X body model in numpy: safe loading of the user's model files and the exact forward pass.

The model files are the user's own (`SMPLX_NEUTRAL.npz`, `SMPLX_MALE.npz`, `SMPLX_FEMALE.npz`,
downloaded by them from https://smpl-x.is.tue.mpg.de under the SMPL-X licence: non-commercial
scientific research only). Nothing is downloaded or redistributed here.

Loading never unpickles: the official `.npz` files carry a few pickled Python objects
(`joint2num`, `part2num`, `allow_pickle`) next to the numeric arrays. We open the archive with
`allow_pickle=False` and read only the numeric arrays we need, so those members are never
touched. (The `smplx` package's own loader uses `allow_pickle=True` and reads every member;
it is used in the tests as the reference implementation, never on user files.) `.pkl` model
files are refused: unpickling a file can run arbitrary code. `PKL_TO_NPZ` is a one-line
conversion the user runs once in their own environment.

Keys read (the official layout; V vertices, F faces, 55 joints):

  v_template (V, 3)        rest template, metres, model frame (Y up, facing +Z)
  f (F, 3)                 triangles
  shapedirs (V, 3, S)      shape blend shapes; expression blend shapes appended: S = 20 (10 + 10,
                           v1.1 files) or 400 (300 + 100, 2020 files), split as `smplx` splits them
  posedirs (V, 3, 486)     pose-corrective blend shapes (54 joints x 9 entries of R - I)
  J_regressor (55, V)      joint regressor (dense)
  weights (V, 55)          skinning weights
  kintree_table (2, 55)    row 0: parent of each joint (root's entry ignored)
  hands_meanl/r (45,)      optional: mean (relaxed) hand pose, axis-angle per finger joint
  vt (T, 2), ft (F, 3)     optional: texture coordinates

The forward pass (`SmplxModel.forward`) is SMPL-X's linear blend skinning with shape,
expression and pose-corrective blend shapes, written to match `smplx.lbs.lbs` term by term,
in float64. Pose parameters are per-joint rotations in the model's joint order (SMPLX_JOINT_NAMES);
joint 0's rotation is the global orientation, applied about the rest pelvis joint J0:
X = R0 (x - J0) + J0 + transl for points rigid with the pelvis.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.assets.motion.joints import SMPL24_NAMES
from thfm_synth.errors import UserError

SMPLX_JOINT_NAMES: tuple[str, ...] = (
    *SMPL24_NAMES[:22],  # the body joints SMPL-X shares with SMPL, in its order
    "jaw",
    "left_eye_smplhf",
    "right_eye_smplhf",
    *(f"left_{f}{k}" for f in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3)),
    *(f"right_{f}{k}" for f in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3)),
)
SMPLX_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
    + [
        p
        for base in (20, 21)
        for k in range(5)
        for p in (base, 25 + 15 * (base - 20) + 3 * k, 26 + 15 * (base - 20) + 3 * k)
    ],
    np.int64,
)
NUM_JOINTS = 55
BODY_JOINTS = slice(1, 22)  # body_pose: 21 joints
JAW, LEYE, REYE = 22, 23, 24
LEFT_HAND = slice(25, 40)  # left_hand_pose: 15 joints
RIGHT_HAND = slice(40, 55)
NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9
SHAPE_SPACE_DIM, EXPRESSION_SPACE_DIM = 300, 100
NUM_BETAS, NUM_EXPRESSION = 10, 10

#: SMPL's 24 joints from SMPL-X's 55: the first 22 are the same joints; SMPL's hand joints
#: (knuckles) are taken as the index-finger base joints (left_index1, right_index1).
SMPL24_FROM_SMPLX = np.array(list(range(22)) + [25, 40], np.int64)

GENDERS = ("neutral", "male", "female")
MODEL_FILES = {g: f"SMPLX_{g.upper()}.npz" for g in GENDERS}
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
LICENCE = "LicenseRef-SMPL-X-NC"
LICENCE_TEXT = (
    "SMPL-X model licence (non-commercial scientific research only; model files supplied by the user, "
    "https://smpl-x.is.tue.mpg.de/modellicense.html)"
)

#: Run once, in your own Python environment (it unpickles the official .pkl, which is what this
#: project refuses to do), next to the .pkl files: writes SMPLX_<GENDER>.npz for each one.
PKL_TO_NPZ = (
    "python -c \"import glob,pickle,numpy as n;[n.savez(p[:-4]+'.npz',**{k:(v.toarray() "
    "if hasattr(v,'toarray') else n.asarray(v)) for k,v in pickle.load(open(p,'rb'),encoding='latin1')"
    ".items() if k not in('joint2num','part2num')}) for p in glob.glob('SMPLX_*.pkl')]\""
)

# Vertex ids of the COCO face points on the official SMPL-X topology (as the smplx package's
# vertex_ids['smplx']): nose, left eye, right eye, left ear, right ear.
FACE_VERTEX_IDS = np.array([9120, 9448, 9929, 6, 616], np.int64)
OFFICIAL_NUM_VERTICES = 10475


def _expected_files_text() -> str:
    return ", ".join(MODEL_FILES[g] for g in GENDERS)


def _pkl_error(pkl: Path) -> UserError:
    return UserError(
        f"{pkl}: SMPL-X .pkl model files are not loaded: unpickling a file can execute arbitrary code, so this "
        f"project reads the .npz model files only (numpy, allow_pickle=False)",
        f"download the .npz model files from https://smpl-x.is.tue.mpg.de, or convert your .pkl files once in your "
        f"own Python environment, in their folder: {PKL_TO_NPZ}",
    )


def model_candidates(model_dir: str | Path) -> list[Path]:
    """Folders searched for the model files: the folder itself and its `smplx/` (the smplx package layout)."""
    d = Path(model_dir).expanduser()
    return [d, d / "smplx"]


def find_model_file(model_dir: str | Path, gender: str) -> Path:
    """The `.npz` model file of `gender` in `model_dir` (a folder, or a model file itself).

    A missing or wrong folder, or a folder that holds only `.pkl` files, is a one-line
    UserError naming the expected files."""
    if gender not in GENDERS:
        raise UserError(f"unknown SMPL-X gender {gender!r}", f"use one of {', '.join(GENDERS)}")
    path = Path(model_dir).expanduser()
    if path.is_file():
        if path.suffix == ".pkl":
            raise _pkl_error(path)
        if path.suffix != ".npz":
            raise UserError(
                f"{path} is not an SMPL-X model file (.npz)", f"point at the folder holding {_expected_files_text()}"
            )
        return path
    if not path.is_dir():
        raise UserError(
            f"SMPL-X model folder {path} not found (it must hold {_expected_files_text()})",
            "pass the folder of your SMPL-X model files (from https://smpl-x.is.tue.mpg.de; "
            "nothing is downloaded for you)",
        )
    name = MODEL_FILES[gender]
    for d in model_candidates(path):
        if (d / name).is_file():
            return d / name
    for d in model_candidates(path):
        if (d / (name[:-4] + ".pkl")).is_file():
            raise _pkl_error(d / (name[:-4] + ".pkl"))
    present = sorted(p.name[:40] for d in model_candidates(path) if d.is_dir() for p in d.iterdir())[:6]
    raise UserError(
        f"SMPL-X model folder {path} has no {name} (expected {_expected_files_text()}; "
        f"found: {', '.join(present) or 'nothing'})",
        "pass the folder that holds the SMPL-X .npz model files (the `models/smplx` folder of the official download)",
    )


def available_genders(model_dir: str | Path) -> tuple[str, ...]:
    """Genders whose `.npz` file is in `model_dir` (raises the one-line error when there is none)."""
    path = Path(model_dir).expanduser()
    if path.is_file() or not path.is_dir():  # a model file itself (its name says the gender), or no folder
        file = find_model_file(path, "neutral")
        return tuple(g for g in GENDERS if file.name == MODEL_FILES[g]) or ("neutral",)
    out = []
    for g in GENDERS:
        name = MODEL_FILES[g]
        if any((d / name).is_file() for d in model_candidates(path)):
            out.append(g)
        else:
            pkl = [d / (name[:-4] + ".pkl") for d in model_candidates(path) if (d / (name[:-4] + ".pkl")).is_file()]
            if pkl:  # the user has this model, as a pickle: say how to convert it rather than skip it
                raise _pkl_error(pkl[0])
    if not out:
        find_model_file(path, "neutral")  # raises, naming the expected files
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _digest_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a model file, computed once per process for an unchanged file."""
    st = os.stat(path)
    return _digest_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) -> rotation matrices (..., 3, 3)."""
    r = np.asarray(rotvec, np.float64)
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = r / np.where(angle > 0, angle, 1.0)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(r.shape[:-1] + (3, 3))
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def axis_angle(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle vectors (..., 3), angle in [0, pi]."""
    from thfm_synth.assets.characters.skinning import matrix_to_quat
    from thfm_synth.assets.motion import quat

    return quat.to_axis_angle(matrix_to_quat(m))


@dataclass(frozen=True, eq=False)
class SmplxModel:
    path: Path
    sha256: str
    gender: str
    v_template: np.ndarray  # (V, 3) float64, model frame
    faces: np.ndarray  # (F, 3) int64
    shapedirs: np.ndarray  # (V, 3, NUM_BETAS)
    exprdirs: np.ndarray  # (V, 3, NUM_EXPRESSION)
    posedirs: np.ndarray  # (486, V * 3): smplx's layout
    j_regressor: np.ndarray  # (55, V)
    weights: np.ndarray  # (V, 55)
    parents: np.ndarray  # (55,) int64, -1 for the pelvis
    hands_mean: np.ndarray  # (2, 15, 3) left, right: relaxed hand pose (zeros if the file has none)
    vt: np.ndarray | None = None  # (T, 2) texture coordinates
    ft: np.ndarray | None = None  # (F, 3)
    info: dict = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return len(self.v_template)

    @property
    def official_topology(self) -> bool:
        return self.num_vertices == OFFICIAL_NUM_VERTICES

    def shaped(self, betas: np.ndarray, expression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(v_shaped (V, 3), rest joints J (55, 3)) for one body shape and expression."""
        b = np.zeros(self.shapedirs.shape[-1])
        b[: len(betas)] = betas
        e = np.zeros(self.exprdirs.shape[-1])
        e[: len(expression)] = expression
        v = self.v_template + self.shapedirs @ b + self.exprdirs @ e
        return v, self.j_regressor @ v

    def forward(
        self,
        betas: np.ndarray,
        expression: np.ndarray,
        rotations: np.ndarray,
        transl: np.ndarray,
        extra_points: np.ndarray | None = None,
        extra_weights: np.ndarray | None = None,
        extra_offsets_from: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Posed vertices for F frames: `rotations` (F, 55, 3, 3) (joint 0 = global orientation), `transl` (F, 3).

        Returns {"vertices" (F, V, 3), "joints" (F, 55, 3) (LBS joints, as smplx returns),
        "transforms" (F, 55, 4, 4), "v_shaped", "rest_joints"}. Extra points (garments) are
        skinned with the same transforms and their own `extra_weights` (P, 55); each also gets
        the pose-corrective offset of body vertex `extra_offsets_from[p]` (if >= 0), so cloth
        follows the body's corrected surface.
        """
        rot = np.asarray(rotations, np.float64)
        nf = rot.shape[0]
        v_shaped, joints = self.shaped(betas, expression)
        transforms, posed_joints = rigid_transforms(rot, joints, self.parents)
        t = np.asarray(transl, np.float64).reshape(nf, 1, 3)
        out = {
            "vertices": np.empty((nf, self.num_vertices, 3)),
            "joints": posed_joints + t,
            "transforms": transforms,
            "v_shaped": v_shaped,
            "rest_joints": joints,
        }
        if extra_points is not None:
            out["extra"] = np.empty((nf,) + np.shape(extra_points))
            src = None if extra_offsets_from is None else np.asarray(extra_offsets_from, np.int64)
        for a in range(0, nf, 32):  # blocks of frames bound the (frames, vertices, 16) temporaries
            b = slice(a, min(a + 32, nf))
            n = b.stop - a
            offsets = (((rot[b, 1:] - np.eye(3)).reshape(n, -1)) @ self.posedirs).reshape(n, -1, 3)
            out["vertices"][b] = skin(transforms[b], self.weights, v_shaped[None] + offsets) + t[b]
            if extra_points is not None:
                pts = np.broadcast_to(np.asarray(extra_points, np.float64), (n,) + np.shape(extra_points)).copy()
                if src is not None:
                    pts[:, src >= 0] += offsets[:, src[src >= 0]]
                out["extra"][b] = skin(transforms[b], np.asarray(extra_weights, np.float64), pts) + t[b]
        return out

    def regress(self, vertices: np.ndarray) -> np.ndarray:
        """(..., 55, 3) joints regressed from (..., V, 3) vertices with the model's J_regressor."""
        return np.einsum("jv,...vk->...jk", self.j_regressor, np.asarray(vertices, np.float64))


def rigid_transforms(rot: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """smplx's batch_rigid_transform: relative transforms A (F, J, 4, 4) and posed joints (F, J, 3)."""
    nf, nj = rot.shape[:2]
    rel = joints.copy()
    rel[1:] -= joints[parents[1:]]
    local = np.zeros((nf, nj, 4, 4))
    local[..., :3, :3] = rot
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1.0
    chain = np.empty_like(local)
    chain[:, 0] = local[:, 0]
    for i in range(1, nj):
        chain[:, i] = chain[:, parents[i]] @ local[:, i]
    posed = chain[..., :3, 3].copy()
    a = chain.copy()
    a[..., :3, 3] -= np.einsum("fjab,jb->fja", chain[..., :3, :3], joints)
    return a, posed


def skin(transforms: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Linear blend skinning: (F, P, 3) points with (P, J) weights and (F, J, 4, 4) transforms."""
    nf, nj = transforms.shape[:2]
    # one (P, J) x (J, F*12) product: much faster than a stacked per-frame matmul
    a = np.ascontiguousarray(transforms[:, :, :3, :].transpose(1, 0, 2, 3)).reshape(nj, nf * 12)
    t = (weights @ a).reshape(len(weights), nf, 3, 4)
    p = np.asarray(points).transpose(1, 0, 2)  # (P, F, 3)
    out = np.einsum("pfij,pfj->pfi", t[..., :3], p) + t[..., 3]
    return out.transpose(1, 0, 2)


def _npz_members(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, OSError):
        raise UserError(f"{path} is not a readable .npz archive", "download the SMPL-X .npz model file again") from None


def _array(z, key: str, path: Path) -> np.ndarray:
    try:
        a = z[key]
    except ValueError:  # an object array: it would need unpickling
        raise UserError(
            f"{path}: member {key!r} is a pickled object, not a numeric array",
            "use the official SMPL-X .npz model files",
        ) from None
    if a.dtype.kind not in "fiub":
        raise UserError(
            f"{path}: member {key!r} has dtype {a.dtype}, not numeric", "use the official SMPL-X .npz files"
        )
    return a


@functools.lru_cache(maxsize=6)
def _load_cached(path: str, size: int, mtime_ns: int, gender: str) -> SmplxModel:
    return _load(Path(path), gender)


def load_model(model_dir: str | Path, gender: str = "neutral") -> SmplxModel:
    """The SMPL-X model of `gender` from the user's folder (cached per process while the file is unchanged)."""
    path = find_model_file(model_dir, gender).resolve()
    st = path.stat()
    return _load_cached(str(path), st.st_size, st.st_mtime_ns, gender)


def load_model_file(path: str | Path, gender: str, sha256: str | None = None) -> SmplxModel:
    """A model file by path, checked against the sha256 recorded when a character was baked."""
    path = Path(path)
    if path.suffix == ".pkl":
        raise _pkl_error(path)
    if not path.is_file():
        raise UserError(
            f"SMPL-X model file {path} not found",
            "set THFM_SMPLX_MODEL_DIR to the folder holding your SMPL-X .npz model files",
        )
    model = _load_cached(str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns, gender)
    if sha256 is not None and model.sha256 != sha256:
        raise UserError(
            f"SMPL-X model file {path} (sha256 {model.sha256[:12]}) is not the file the character was "
            f"baked with (sha256 {sha256[:12]})",
            "restore the original model file, or bake the characters again",
        )
    return model


def _load(path: Path, gender: str) -> SmplxModel:
    members = _npz_members(path)
    missing = [k for k in REQUIRED_KEYS if k not in members]
    if missing:
        raise UserError(
            f"{path} is not an SMPL-X model file: it lacks {', '.join(missing)}",
            f"point at the official SMPL-X .npz model files ({_expected_files_text()})",
        )
    with np.load(path, allow_pickle=False) as z:
        a = {k: _array(z, k, path) for k in REQUIRED_KEYS}
        opt = {k: _array(z, k, path) for k in ("hands_meanl", "hands_meanr", "vt", "ft") if k in members}

    def bad(what: str) -> UserError:
        return UserError(
            f"{path} is not a valid SMPL-X model file: {what}",
            "use the official SMPL-X .npz model files (re-download or re-convert them)",
        )

    v = np.asarray(a["v_template"], np.float64)
    nv = len(v)
    if v.ndim != 2 or v.shape[1] != 3 or nv < 4 or not np.isfinite(v).all():
        raise bad(f"v_template has shape {v.shape}")
    faces = np.asarray(a["f"], np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= nv:
        raise bad("f does not index v_template")
    kin = np.asarray(a["kintree_table"]).astype(np.int64)
    if kin.shape != (2, NUM_JOINTS):
        raise bad(f"kintree_table has shape {kin.shape}, SMPL-X has (2, {NUM_JOINTS})")
    parents = kin[0].copy()
    parents[0] = -1
    if not np.array_equal(parents, SMPLX_PARENTS):
        raise bad("its kinematic tree is not SMPL-X's 55-joint tree")
    sd = np.asarray(a["shapedirs"], np.float64)
    if sd.ndim == 2:
        sd = sd[:, :, None]
    if sd.shape[:2] != (nv, 3) or sd.shape[2] < NUM_BETAS + NUM_EXPRESSION:
        raise bad(f"shapedirs has shape {sd.shape}, expected ({nv}, 3, >= {NUM_BETAS + NUM_EXPRESSION})")
    # the split smplx makes: 10 + 10 components (v1.1 files) or 300 + 100 (2020 files)
    if sd.shape[2] < SHAPE_SPACE_DIM + EXPRESSION_SPACE_DIM:
        betas_dirs, expr_dirs = sd[:, :, :NUM_BETAS], sd[:, :, 10 : 10 + NUM_EXPRESSION]
    else:
        betas_dirs, expr_dirs = sd[:, :, :NUM_BETAS], sd[:, :, SHAPE_SPACE_DIM : SHAPE_SPACE_DIM + NUM_EXPRESSION]
    pd = np.asarray(a["posedirs"], np.float64)
    if pd.shape != (nv, 3, NUM_POSE_BASIS):
        raise bad(f"posedirs has shape {pd.shape}, expected ({nv}, 3, {NUM_POSE_BASIS})")
    jr = np.asarray(a["J_regressor"], np.float64)
    if jr.shape != (NUM_JOINTS, nv):
        raise bad(f"J_regressor has shape {jr.shape}, expected ({NUM_JOINTS}, {nv})")
    w = np.asarray(a["weights"], np.float64)
    if w.shape != (nv, NUM_JOINTS) or np.abs(w.sum(1) - 1).max() > 1e-3:
        raise bad("weights must be (V, 55) with rows summing to 1")
    hands = np.zeros((2, 15, 3))
    if "hands_meanl" in opt and "hands_meanr" in opt:
        hands = np.stack(
            [
                np.asarray(opt["hands_meanl"], np.float64).reshape(15, 3),
                np.asarray(opt["hands_meanr"], np.float64).reshape(15, 3),
            ]
        )
    vt = ft = None
    if "vt" in opt and "ft" in opt:
        vt, ft = np.asarray(opt["vt"], np.float64), np.asarray(opt["ft"], np.int64)
        if vt.ndim != 2 or vt.shape[1] != 2 or ft.shape != faces.shape or ft.min() < 0 or ft.max() >= len(vt):
            vt = ft = None
    return SmplxModel(
        path=path,
        sha256=file_digest(path),
        gender=gender,
        v_template=v,
        faces=faces,
        shapedirs=betas_dirs.copy(),
        exprdirs=expr_dirs.copy(),
        posedirs=np.ascontiguousarray(pd.reshape(-1, NUM_POSE_BASIS).T),
        j_regressor=jr,
        weights=w,
        parents=parents,
        hands_mean=hands,
        vt=vt,
        ft=ft,
        info={"shape_components": int(sd.shape[2]), "num_vertices": nv, "num_faces": len(faces)},
    )
