"""3D keypoints on EMDB, RICH and Human3.6M: MPJPE, PA-MPJPE and Accel, as the HMR papers report them.

Protocol shared by the three (EMDB's evaluation code, VIBE/WHAM for Accel):

- joints in the camera frame; both prediction and ground truth are **pelvis-aligned** (the pelvis
  is the midpoint of the two hip joints) before MPJPE; PA-MPJPE after a per-frame similarity
  Procrustes fit of the prediction to the ground truth (model.metrics.procrustes_align);
- Accel: per sequence, the norm of the difference of the second finite differences of the aligned
  joints (mm per frame^2 at the fed frame rate), a sample dropped when any of its three frames is
  invalid (VIBE's compute_error_accel);
- all in millimetres; means over every valid frame (Accel: every valid second difference) of
  every sequence.

THFM predicts keypoints for the joint convention it was trained on (smpl24 by default, recorded in
the checkpoint). EMDB and RICH are scored on the 24 SMPL joints (needs an smpl24 checkpoint);
Human3.6M on the 14 "LSP" joints of the H36M 17-joint skeleton (HMR/SPIN's H36M_TO_J14): from an
h36m17 checkpoint exactly, from an smpl24 one by SMPL's nearest joints (ankles, knees, hips,
wrists, elbows, shoulders, neck, head - the hips, neck and head are defined differently by the two
skeletons, a known few-cm bias PA-MPJPE partly absorbs).

Clips are fed to the model in windows of its frame count at the dataset's frame rate (EMDB, RICH
30 fps; Human3.6M's 50 fps videos at every 2nd frame, 25 fps) and shrunk on read to at most 1024 px
(keypoints are metric, independent of image size).

emdb - EMDB 1
-------------
Obtain: EMDB (Kaufmann et al., ICCV 2023) from emdb.ait.ethz.ch after registration. Needs the SMPL
body model (``--body-model DIR``, see model/benchmarks/bodymodel.py). Expected layout (as unpacked)::

    DATA/P0 ... P9/<sequence>/
        images/00000.jpg ...                    the frames
        P<k>_<sequence>_data.pkl                SMPL parameters (poses_root, poses_body, trans, betas),
                                                camera (intrinsics, extrinsics = world-to-camera per
                                                frame), good_frames_mask, emdb1 flag, gender

The sequences flagged ``emdb1`` are evaluated on their ``good_frames_mask`` frames (EMDB's own
evaluation). Ground-truth joints: the SMPL (gendered) body's 24 joints.

rich - RICH test split
----------------------
Obtain: RICH (Huang et al., CVPR 2022) from rich.is.tue.mpg.de; needs SMPL-X (``--body-model DIR``).
Expected layout (the release, as the RICH toolkit arranges it)::

    DATA/images/test/<SCENE>_<SUBJECT>_<ACTION>/cam_<CC>/<FFFFF>_<CC>.<jpeg|jpg|png|bmp>
    DATA/bodies/test/<SCENE>_<SUBJECT>_<ACTION>/<FFFFF>/<SUBJECT>.pkl   SMPL-X parameters (world frame)
    DATA/scan_calibration/<SCENE>/calibration/<CCC>.xml                  CameraMatrix (world-to-camera),
                                                                         Intrinsics, Distortion
    DATA/gender.json                                                     optional {"<subject id>": "male"}

Every test sequence and camera present under images/test is evaluated, frames without a body
file are invalid. The 24 joints are SMPL-X's 22 body joints (SMPL's order) plus its left/right
middle-finger base joints for SMPL's hand joints (the knuckle SMPL's "hand" joint sits near).

h36m - Human3.6M, protocol 2
----------------------------
Obtain: Human3.6M (Ionescu et al., TPAMI 2014) from vision.imar.ro/human3.6m after registration:
the "Videos" and "D3 Positions mono" archives of S9 and S11. Expected layout (as unpacked)::

    DATA/S9/Videos/<Action>.54138969.mp4
    DATA/S9/MyPoseFeatures/D3_Positions_mono/<Action>.54138969.cdf     32 joints x 3 (mm, camera frame)
    DATA/S11/...

Subjects S9 and S11, the frontal camera 54138969, every action whose video and poses are both
present (HMR/SPIN's protocol 2 subsamples every 5th frame for PA-MPJPE; we score every fed frame,
i.e. every 2nd). The H36M-17 joints are the standard subset [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15,
17, 18, 19, 25, 26, 27] of the 32; the 14 scored joints H36M_TO_J14.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from model import metrics as M
from model.benchmarks import safe_pickle
from model.benchmarks.bodymodel import BodyModel, find_model
from model.benchmarks.common import (
    REFERENCE_SOURCE,
    Benchmark,
    CheckpointMismatch,
    Column,
    LayoutError,
    Reference,
    Sample,
    image_files,
)
from model.benchmarks.frames import ImageFrames, VideoFrames

COLUMNS = (
    Column("mpjpe", "MPJPE", 1e3, "{:.1f}"),
    Column("pa_mpjpe", "PA-MPJPE", 1e3, "{:.1f}"),
    Column("accel", "Accel", 1e3, "{:.1f}"),
)
MAX_SIDE = 1024

H36M32_TO_17 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
H36M17_TO_14 = np.array([3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10])
SMPL24_TO_14 = np.array([8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, 15])
SMPLX_TO_SMPL24 = np.array(list(range(22)) + [28, 43])  # body joints + left/right middle-finger base


def pelvis_align(joints: np.ndarray, left: int, right: int) -> np.ndarray:
    return joints - 0.5 * (joints[:, left : left + 1] + joints[:, right : right + 1])


def sequence_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, hips: tuple[int, int]) -> dict:
    """Sums and counts of the per-frame errors of one sequence (metres), see the module doc."""
    valid = np.asarray(valid, bool)
    p, g = pelvis_align(pred, *hips), pelvis_align(gt, *hips)
    per = np.linalg.norm(p - g, axis=-1).mean(-1)  # (N,)
    pa = np.array([M.mpjpe(M.procrustes_align(p[i], g[i]), g[i]) if valid[i] else np.nan for i in range(len(p))])
    acc = np.diff(p, n=2, axis=0) - np.diff(g, n=2, axis=0)
    acc_err = np.linalg.norm(acc, axis=-1).mean(-1) if len(acc) else np.zeros(0)
    keep = valid[:-2] & valid[1:-1] & valid[2:] if len(valid) > 2 else np.zeros(0, bool)
    return {
        "mpjpe_sum": float(per[valid].sum()),
        "pa_mpjpe_sum": float(pa[valid].sum()),
        "frames": int(valid.sum()),
        "accel_sum": float(acc_err[keep].sum()),
        "accel_n": int(keep.sum()),
    }


class _Keypoints(Benchmark):
    kind = "keypoints"
    tasks = ("keypoints_3d",)
    columns = COLUMNS
    joints = "smpl24"
    hips = (1, 2)
    notes = (REFERENCE_SOURCE, "mm; MPJPE pelvis-aligned, PA-MPJPE after Procrustes, Accel mm/frame^2")

    def check_keypoints(self, convention: str, num_keypoints: int, checkpoint) -> None:
        ok = {"smpl24": ("smpl24",), "h36m14": ("h36m17", "smpl24")}[self.joints]
        if convention not in ok:
            raise CheckpointMismatch(
                f"{checkpoint} predicts {convention} keypoints ({num_keypoints} joints); the "
                f"{self.name} benchmark scores {self.joints} joints, from {' or '.join(ok)}"
            )

    def adapt_keypoints(self, kp: np.ndarray, convention: str) -> np.ndarray:
        if self.joints == "smpl24":
            return kp
        return kp[:, H36M17_TO_14] if convention == "h36m17" else kp[:, SMPL24_TO_14]

    def score(self, sample: Sample, pred: np.ndarray) -> dict:
        gt, valid = sample.truth["joints"], sample.truth["valid"]
        if pred.shape != gt.shape:
            raise ValueError(f"{self.name} {sample.key}: prediction {pred.shape}, ground truth {gt.shape}")
        return sequence_errors(np.asarray(pred, np.float64), gt, valid, self.hips)

    def aggregate(self, scored):
        tot = {k: sum(m[k] for _, m in scored) for k in ("mpjpe_sum", "pa_mpjpe_sum", "frames", "accel_sum", "accel_n")}
        f, a = max(tot["frames"], 1), tot["accel_n"]
        return {
            "all": {
                "mpjpe": tot["mpjpe_sum"] / f,
                "pa_mpjpe": tot["pa_mpjpe_sum"] / f,
                "accel": tot["accel_sum"] / a if a else float("nan"),
                "frames": float(tot["frames"]),
            }
        }


def world_to_camera(joints: np.ndarray, rt: np.ndarray) -> np.ndarray:
    """(N, J, 3) world joints, (N, 3|4, 4) or (3|4, 4) world-to-camera -> camera-frame joints."""
    rt = np.asarray(rt, np.float64)
    if rt.ndim == 2:
        rt = np.broadcast_to(rt, (joints.shape[0], *rt.shape))
    return np.einsum("nij,nkj->nki", rt[:, :3, :3], joints) + rt[:, None, :3, 3]


class EMDB(_Keypoints):
    name = "emdb"
    title = "3D keypoints on EMDB 1 (24 SMPL joints)"
    layout = "DATA/P<k>/<sequence>/{images/00000.jpg, P<k>_<sequence>_data.pkl} (EMDB as unpacked)"
    references = (Reference("THFM (paper)", {"all": {"pa_mpjpe": 35.2}}, "wizwand.com"),)

    def sequences(self, root: Path) -> list[Path]:
        seqs = sorted(d for p in sorted(root.glob("P*")) if p.is_dir() for d in p.iterdir() if d.is_dir())
        if not seqs:
            raise LayoutError(self.name, root / "P0" / "<sequence>", self.layout)
        return seqs

    def samples(self, root: Path, body_model: str | Path | None = None, all_sequences: bool = False, **options):
        self.unknown_options(options)
        root = Path(root)
        models: dict[str, BodyModel] = {}
        for seq in self.sequences(root):
            subject = seq.parent.name
            pkl = self.require(seq / f"{subject}_{seq.name}_data.pkl")
            data = safe_pickle.load(pkl)
            if not (all_sequences or data.get("emdb1", False)):
                continue
            n = int(data["n_frames"])
            images = image_files(self.require(seq / "images"))
            if len(images) < n:
                missing = seq / "images" / f"{len(images):05d}.jpg"
                raise LayoutError(self.name, missing, self.layout)
            gender = str(data.get("gender", "neutral"))
            if gender not in models:
                models[gender] = BodyModel.load(find_model(body_model, "SMPL", gender, self.name))
            smpl = data["smpl"]
            pose = np.concatenate([np.asarray(smpl["poses_root"]), np.asarray(smpl["poses_body"])], axis=-1)
            world = models[gender].joints(pose, smpl["betas"], smpl["trans"])[:, :24]
            cam = world_to_camera(world, np.asarray(data["camera"]["extrinsics"]))
            valid = np.asarray(data.get("good_frames_mask", np.ones(n, bool)), bool)
            yield Sample(
                key=f"{subject}/{seq.name}",
                frames=ImageFrames(images[:n], MAX_SIDE),
                truth={"joints": cam, "valid": valid},
                fps=30.0,
            )


def rich_camera(xml_path: Path) -> np.ndarray:
    """(3, 4) world-to-camera of a RICH calibration file (CameraMatrix, row-major 3x4)."""
    tree = ET.parse(xml_path)
    m = np.array([float(x) for x in tree.find("./CameraMatrix/data").text.split()], np.float64)
    return m[:12].reshape(3, 4)


class RICH(_Keypoints):
    name = "rich"
    title = "3D keypoints on RICH (test split, 24 joints)"
    layout = (
        "DATA/{images/test/<SEQ>/cam_<CC>/<FFFFF>_<CC>.<ext>, bodies/test/<SEQ>/<FFFFF>/<SUBJECT>.pkl, "
        "scan_calibration/<SCENE>/calibration/<CCC>.xml} (RICH as released)"
    )
    references = (Reference("THFM (paper)", {"all": {"pa_mpjpe": 34.7}}, "wizwand.com"),)

    def samples(self, root: Path, body_model: str | Path | None = None, **options):
        self.unknown_options(options)
        root = Path(root)
        seqs = (
            sorted(p for p in (root / "images" / "test").iterdir() if p.is_dir())
            if (root / "images" / "test").is_dir()
            else []
        )
        if not seqs:
            raise LayoutError(self.name, root / "images" / "test" / "<SEQ>", self.layout)
        genders = json.loads((root / "gender.json").read_text()) if (root / "gender.json").is_file() else {}
        models: dict[str, BodyModel] = {}
        for seq in seqs:
            scene, subject = seq.name.split("_")[:2]
            gender = str(genders.get(str(int(subject)) if subject.isdigit() else subject, "neutral"))
            if gender not in models:
                models[gender] = BodyModel.load(find_model(body_model, "SMPLX", gender, self.name))
            for cam_dir in sorted(p for p in seq.iterdir() if p.is_dir() and p.name.startswith("cam_")):
                cam_id = int(cam_dir.name[4:])
                rt = rich_camera(self.require(root / "scan_calibration" / scene / "calibration" / f"{cam_id:03d}.xml"))
                images = image_files(cam_dir)
                if not images:
                    raise LayoutError(self.name, cam_dir / f"00000_{cam_id:02d}.jpeg", self.layout)
                joints, valid = [], []
                for img in images:
                    body = root / "bodies" / "test" / seq.name / img.stem.split("_")[0] / f"{subject}.pkl"
                    if not body.is_file():
                        joints.append(np.zeros((24, 3)))
                        valid.append(False)
                        continue
                    p = {k: np.asarray(v, np.float64) for k, v in safe_pickle.load(body).items()}
                    pose = np.concatenate([p["global_orient"].reshape(1, 3), p["body_pose"].reshape(1, -1)], axis=1)
                    world = models[gender].joints(
                        pose, p["betas"], p.get("transl", np.zeros(3)), expression=p.get("expression")
                    )[:, SMPLX_TO_SMPL24]
                    joints.append(world_to_camera(world, rt)[0])
                    valid.append(True)
                if not any(valid):
                    raise LayoutError(
                        self.name,
                        root / "bodies" / "test" / seq.name / images[0].stem.split("_")[0] / f"{subject}.pkl",
                        self.layout,
                    )
                yield Sample(
                    key=f"{seq.name}/{cam_dir.name}",
                    frames=ImageFrames(images, MAX_SIDE),
                    truth={"joints": np.stack(joints), "valid": np.array(valid)},
                    fps=30.0,
                )


class H36M(_Keypoints):
    name = "h36m"
    title = "3D keypoints on Human3.6M (protocol 2: S9, S11, camera 54138969, 14 joints)"
    joints = "h36m14"
    hips = (2, 3)  # right and left hip in the 14-joint order
    camera = "54138969"
    subjects = ("S9", "S11")
    step = 2  # 50 fps videos fed at 25 fps
    layout = (
        "DATA/S9|S11/{Videos/<Action>.54138969.mp4, MyPoseFeatures/D3_Positions_mono/<Action>.54138969.cdf} "
        "(Human3.6M as unpacked)"
    )
    references = (Reference("THFM (paper)", {"all": {"pa_mpjpe": 27.7}}, "wizwand.com"),)

    def samples(self, root: Path, **options):
        self.unknown_options(options)
        import cdflib

        root = Path(root)
        for subject in self.subjects:
            poses_dir = self.require(root / subject / "MyPoseFeatures" / "D3_Positions_mono")
            cdfs = sorted(poses_dir.glob(f"*.{self.camera}.cdf"))
            if not cdfs:
                raise LayoutError(self.name, poses_dir / f"Directions.{self.camera}.cdf", self.layout)
            for cdf in cdfs:
                video = root / subject / "Videos" / (cdf.name[: -len(".cdf")] + ".mp4")
                self.require(video)
                pose = np.asarray(cdflib.CDF(str(cdf)).varget("Pose"), np.float64).reshape(-1, 32, 3)
                gt = pose[:, H36M32_TO_17][:, H36M17_TO_14][:: self.step] / 1000.0  # mm -> m
                frames = VideoFrames(video, count=len(gt), step=self.step, max_side=MAX_SIDE)
                yield Sample(
                    key=f"{subject}/{cdf.stem}",
                    frames=frames,
                    truth={"joints": gt, "valid": np.ones(len(gt), bool)},
                    fps=50.0 / self.step,
                )


__all__ = [
    "EMDB",
    "RICH",
    "H36M",
    "sequence_errors",
    "pelvis_align",
    "world_to_camera",
    "rich_camera",
    "H36M32_TO_17",
    "H36M17_TO_14",
    "SMPL24_TO_14",
    "SMPLX_TO_SMPL24",
]
