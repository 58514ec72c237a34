"""Tiny benchmark folders in each dataset's own layout, with known ground truth (no tests here).

The real datasets cannot be downloaded here nor redistributed; these builders write a few frames
in exactly the layout each loader documents (model/benchmarks/*.py), so the loaders, protocols and
metrics are tested end to end.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL's rest joints (metres, roughly): enough structure for Procrustes and the pelvis
REST24 = np.array(
    [
        [0, 0, 0],
        [0.08, -0.08, 0],
        [-0.08, -0.08, 0],
        [0, 0.1, 0],
        [0.1, -0.45, 0],
        [-0.1, -0.45, 0],
        [0, 0.22, 0],
        [0.1, -0.85, 0],
        [-0.1, -0.85, 0],
        [0, 0.28, 0.02],
        [0.1, -0.9, 0.1],
        [-0.1, -0.9, 0.1],
        [0, 0.45, 0],
        [0.08, 0.38, 0],
        [-0.08, 0.38, 0],
        [0, 0.55, 0.02],
        [0.18, 0.4, 0],
        [-0.18, 0.4, 0],
        [0.42, 0.4, 0],
        [-0.42, 0.4, 0],
        [0.65, 0.4, 0],
        [-0.65, 0.4, 0],
        [0.72, 0.4, 0],
        [-0.72, 0.4, 0],
    ],
    np.float64,
)


def png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def disk_alpha(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    """An 8-bit soft disk (antialiased edge) as a float matte on the 1/255 grid."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0, 1)
    return np.round(a * 255) / 255


# ----------------------------------------------------------------------------- matting


def ppm100(root: Path, n: int = 2, h: int = 24, w: int = 32) -> dict[str, np.ndarray]:
    truth = {}
    for i in range(n):
        name = f"p{i:02d}"
        a = disk_alpha(h, w, 12 + i, 14 + i, 7)
        png(root / "image" / f"{name}.png", rgb(h, w, i))
        png(root / "matte" / f"{name}.png", np.round(a * 255).astype(np.uint8))
        truth[name] = a
    return truth


def photomatte85(root: Path, n: int = 2, h: int = 24, w: int = 20) -> dict[str, np.ndarray]:
    truth = {}
    for i in range(n):
        a = disk_alpha(h, w, 12, 10, 6 + i)
        rgba = np.concatenate([rgb(h, w, 10 + i), np.round(a * 255).astype(np.uint8)[..., None]], -1)
        png(root / f"portrait{i}.png", rgba)
        truth[f"portrait{i}"] = a
    return truth


def videomatte(root: Path, clips: int = 2, frames: int = 4, h: int = 18, w: int = 32) -> dict[str, np.ndarray]:
    truth = {}
    for c in range(clips):
        base = root / "videomatte_static" / f"{c:04d}"
        alphas = []
        for t in range(frames):
            a = disk_alpha(h, w, 9, 10 + 2 * t + c, 5)
            png(base / "com" / f"{t:04d}.png", rgb(h, w, 100 * c + t))
            png(base / "pha" / f"{t:04d}.png", np.round(a * 255).astype(np.uint8))
            alphas.append(a)
        truth[f"{c:04d}"] = np.stack(alphas)
    return truth


# ----------------------------------------------------------------------------- meshes and cameras


def write_obj(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in faces]  # textured-style records
    path.write_text("# scan\nmtllib MatLib.mtl\n" + "\n".join(lines) + "\n")


def ply_bytes(verts: np.ndarray, faces: np.ndarray) -> bytes:
    head = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(verts)}\nproperty float x\n"
        f"property float y\nproperty float z\nelement face {len(faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    ).encode()
    v = np.asarray(verts, "<f4").tobytes()
    rec = np.zeros(len(faces), np.dtype([("n", "u1"), ("i", "<i4", (3,))]))
    rec["n"], rec["i"] = 3, faces
    return head + v + rec.tobytes()


def quad(x0, x1, y0, y1, z) -> tuple[np.ndarray, np.ndarray]:
    """A camera-facing rectangle at depth z (world = camera frame), wound to face -z."""
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)
    return v, np.array([[0, 2, 1], [0, 3, 2]])


def hi4d(root: Path, h: int = 32, w: int = 24, frames: int = 2) -> dict:
    """pair28/32/37 with one action each: a plane (facing camera 4, which has a tilt) as the scan,
    the people's mask covering the plane's left part."""
    k = np.array([[30.0, 0, (w - 1) / 2], [0, 30.0, (h - 1) / 2], [0, 0, 1]])
    ang = np.radians(20.0)
    rot = np.array([[1, 0, 0], [0, np.cos(ang), -np.sin(ang)], [0, np.sin(ang), np.cos(ang)]])
    rt4 = np.concatenate([rot, [[0.0], [0.0], [0.0]]], 1)
    out = {"K": k, "Rt": rt4}
    for p in ("pair28", "pair32", "pair37"):
        a = root / p / "hug05"
        (a / "cameras").mkdir(parents=True)
        np.savez(
            a / "cameras" / "rgb_cameras.npz",
            ids=np.array([4, 16]),
            intirnsics=np.stack([k, k]),
            extrinsics=np.stack([rt4, np.eye(3, 4)]),
            dist_coeffs=np.zeros((2, 5)),
        )
        for f in range(frames):
            png(a / "images" / "4" / f"{f:06d}.png", rgb(h, w, f))  # the loader reads any image suffix
            mask = np.zeros((h, w), np.uint8)
            mask[:, : w // 2] = 255
            png(a / "seg" / "img_seg_mask" / "4" / "all" / f"{f:06d}.png", mask)
            # a plane at z = 2 in camera 4's frame -> world = rot^T (cam)
            v, fc = quad(-0.6, 0.6, -0.8, 0.8, 2.0)
            write_obj(a / "frames" / f"mesh-f{f:05d}.obj", v @ rot, fc)
    return out


def goliath(root: Path, h: int = 40, w: int = 32, cams=("401", "402"), frames=(10, 20)) -> dict:
    """One body capture: a scan of two planes (left half at 1 m, right half at 2 m, in mm) seen by two
    cameras at the origin (images at half the calibration's resolution, as Goliath ships them)."""
    cap = root / "m--20240101--0000--TEST--Body"
    cap.mkdir(parents=True)
    k_full = np.array([[60.0, 0, w - 0.5], [0, 60.0, h - 0.5], [0, 0, 1]])  # calibration at 2x the images
    krt = [{"cameraId": c, "K": k_full.T.tolist(), "T": np.eye(4).T.tolist()} for c in cams]
    (cap / "camera_calibration.json").write_text(json.dumps({"KRT": krt}))
    (cap / "frame_splits_list.csv").write_text("frame,split\n" + "".join(f"{f},test\n" for f in frames) + "5,train\n")
    v1, f1 = quad(-2000, 0, -2000, 2000, 1000.0)
    v2, f2 = quad(0, 2000, -2000, 2000, 2000.0)
    verts, faces = np.concatenate([v1, v2]), np.concatenate([f1, f2 + 4])
    for sub in ("image", "segmentation_fgbg", "scan_mesh"):
        (cap / sub).mkdir()
    with zipfile.ZipFile(cap / "scan_mesh" / "scan_mesh.zip", "w") as z:
        for f in frames:
            z.writestr(f"{f:06d}.ply", ply_bytes(verts, faces))
    mask = np.zeros((h, w), np.uint8)
    mask[6:36, 4:28] = 255  # the person
    for c in cams:
        with (
            zipfile.ZipFile(cap / "image" / f"cam{c}.zip", "w") as zi,
            zipfile.ZipFile(cap / "segmentation_fgbg" / f"cam{c}.zip", "w") as zm,
        ):
            for f in frames:
                b = io.BytesIO()
                Image.fromarray(rgb(h, w, f)).save(b, "AVIF")
                zi.writestr(f"cam{c}/{f:06d}.avif", b.getvalue())
                b = io.BytesIO()
                Image.fromarray(mask).save(b, "PNG")
                zm.writestr(f"cam{c}/{f:06d}.png", b.getvalue())
    return {"capture": cap, "mask": mask > 0}


# ----------------------------------------------------------------------------- body models and keypoints


def body_model_npz(path: Path, parents: list[int], rest: np.ndarray, n_betas: int = 10, extra: int = 0) -> None:
    """A tiny body model: one vertex per joint (J_regressor = identity), shape directions that move
    every vertex along y (so betas change the skeleton)."""
    j = len(parents)
    shapedirs = np.zeros((j, 3, n_betas + extra))
    shapedirs[:, 1, 0] = rest[:, 1] * 0.1  # beta 0 stretches vertically
    kintree = np.stack([np.array(parents, np.int64) % (2**32), np.arange(j)]).astype(np.uint32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, v_template=rest, shapedirs=shapedirs, J_regressor=np.eye(j), kintree_table=kintree)


def smplx_parents() -> tuple[list[int], np.ndarray]:
    parents = SMPL_PARENTS[:22] + [15, 15, 15]
    for base, wrist in ((25, 20), (40, 21)):
        for finger in range(5):
            b = base + 3 * finger
            parents += [wrist, b, b + 1]
    rest = np.zeros((55, 3))
    rest[:22] = REST24[:22]
    rest[22:25] = REST24[15] + [0, 0.05, 0.05]
    for base, wrist in ((25, 20), (40, 21)):
        side = np.sign(REST24[wrist, 0])
        for finger in range(5):
            for s in range(3):
                rest[base + 3 * finger + s] = REST24[wrist] + [side * (0.05 + 0.02 * s), 0.0, 0.01 * finger]
    return parents, rest


def write_images(folder: Path, n: int, names=None, h: int = 16, w: int = 24, suffix: str = ".jpg") -> None:
    for i in range(n):
        name = names[i] if names else f"{i:05d}{suffix}"
        png(folder / name, rgb(h, w, i))


def emdb(root: Path, body_dir: Path, n: int = 6) -> dict:
    """P0/01_walk with n frames: a walking SMPL body (root moves, knees bend), camera 3 m in front."""
    body_model_npz(body_dir / "SMPL_NEUTRAL.npz", SMPL_PARENTS, REST24)
    seq = root / "P0" / "01_walk"
    write_images(seq / "images", n)
    pose = np.zeros((n, 72))
    pose[:, 4 * 3] = np.linspace(0, 0.6, n)  # left knee bends
    pose[:, 0:3] = [0, 0.1, 0]
    trans = np.stack([np.linspace(0, 0.3, n), np.zeros(n), np.zeros(n)], 1)
    ext = np.repeat(np.eye(4)[None], n, 0)
    ext[:, 2, 3] = 3.0
    data = {
        "gender": "neutral",
        "name": "P0_01_walk",
        "emdb1": True,
        "emdb2": False,
        "n_frames": n,
        "good_frames_mask": np.ones(n, bool),
        "camera": {"intrinsics": np.eye(3), "extrinsics": ext, "width": 24, "height": 16},
        "smpl": {"poses_root": pose[:, :3], "poses_body": pose[:, 3:], "trans": trans, "betas": np.zeros(10)},
        "kp2d": np.zeros((n, 24, 2)),
        "bboxes": {"bboxes": np.zeros((n, 4)), "invalid_idxs": np.zeros(0)},
    }
    with open(seq / "P0_01_walk_data.pkl", "wb") as fh:
        pickle.dump(data, fh)  # the dataset's own format (read back by a restricted unpickler)
    # a second, non-EMDB-1 sequence that must be skipped
    other = root / "P0" / "02_run"
    write_images(other / "images", 3)
    with open(other / "P0_02_run_data.pkl", "wb") as fh:
        pickle.dump(dict(data, emdb1=False, n_frames=3), fh)
    return {"pose": pose, "trans": trans, "extrinsics": ext}


def rich(root: Path, body_dir: Path, n: int = 6) -> dict:
    parents, rest = smplx_parents()
    body_model_npz(body_dir / "SMPLX_NEUTRAL.npz", parents, rest, n_betas=300, extra=100)
    seq = "Gym_010_pushup1"
    cam_dir = root / "images" / "test" / seq / "cam_00"
    write_images(cam_dir, n, [f"{i:05d}_00.jpeg" for i in range(n)])
    cm = np.eye(3, 4)
    cm[2, 3] = 2.5
    calib = root / "scan_calibration" / "Gym" / "calibration"
    calib.mkdir(parents=True)
    (calib / "000.xml").write_text(
        "<?xml version='1.0'?><opencv_storage>"
        f"<CameraMatrix type_id='opencv-matrix'><rows>3</rows><cols>4</cols><dt>f</dt><data>"
        f"{' '.join(str(x) for x in cm.reshape(-1))}</data></CameraMatrix>"
        "<Intrinsics type_id='opencv-matrix'><rows>3</rows><cols>3</cols><dt>f</dt><data>"
        "500 0 12 0 500 8 0 0 1</data></Intrinsics>"
        "<Distortion type_id='opencv-matrix'><rows>5</rows><cols>1</cols><dt>f</dt><data>0 0 0 0 0</data>"
        "</Distortion></opencv_storage>"
    )
    poses = []
    for i in range(n):
        if i == 2:
            continue  # a frame without a body file: invalid
        body = np.zeros((1, 63))
        body[0, 17 * 3 + 2] = 0.3 * i  # the left elbow bends over time (joint 18 - 1)
        p = {
            "global_orient": np.array([[0.0, 0.2 * i, 0.0]], np.float32),
            "body_pose": body.astype(np.float32),
            "betas": np.zeros((1, 10), np.float32),
            "transl": np.array([[0.1 * i, 0, 0]], np.float32),
            "expression": np.zeros((1, 10), np.float32),
            "left_hand_pose": np.zeros((1, 12), np.float32),
        }
        d = root / "bodies" / "test" / seq / f"{i:05d}"
        d.mkdir(parents=True)
        with open(d / "010.pkl", "wb") as fh:
            pickle.dump(p, fh)
        poses.append(p)
    return {"camera": cm}


def h36m_pose32(n: int) -> np.ndarray:
    """(1, n, 96) mm: a 32-joint skeleton whose 17 standard joints follow REST24-like positions."""
    rng = np.random.default_rng(5)
    base = rng.normal(0, 300, (32, 3)) + [0, 0, 4000]
    t = np.arange(n)[:, None, None]
    pose = base[None] + t * np.array([5.0, 0, 0]) + rng.normal(0, 10, (n, 32, 3))
    return pose.reshape(1, n, 96)


def h36m(root: Path, n: int = 8, h: int = 16, w: int = 16) -> dict:
    import cdflib.cdfwrite
    import imageio_ffmpeg

    poses = {}
    for subject in ("S9", "S11"):
        vdir = root / subject / "Videos"
        pdir = root / subject / "MyPoseFeatures" / "D3_Positions_mono"
        vdir.mkdir(parents=True)
        pdir.mkdir(parents=True)
        for action in ("Directions 1", "Walking"):
            writer = imageio_ffmpeg.write_frames(
                str(vdir / f"{action}.54138969.mp4"), (w, h), fps=50, macro_block_size=1, ffmpeg_log_level="error"
            )
            writer.send(None)
            for i in range(n):
                writer.send(np.ascontiguousarray(rgb(h, w, i)))
            writer.close()
            pose = h36m_pose32(n)
            c = cdflib.cdfwrite.CDF(str(pdir / f"{action}.54138969.cdf"))
            c.write_var(
                {"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": [n, 96]},
                var_data=pose.astype(np.float32),
            )
            c.close()
            poses[f"{subject}/{action}.54138969"] = pose
        # another camera's files are ignored
        (pdir / "Walking.55011271.cdf").write_bytes(b"not read")
    return poses
