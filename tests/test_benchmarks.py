"""The paper's benchmarks (model/benchmarks): each loader on a tiny folder in the dataset's own layout,
a perfect prediction scoring perfectly and a known perturbation giving the hand-computed metric;
bad folders and mismatched checkpoints as one-line errors; the tables; the CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import benchmark_data as bd
from model.benchmarks import run_benchmark
from model.benchmarks.bodymodel import BodyModel, rodrigues
from model.benchmarks.common import CheckpointMismatch, Letterbox, LayoutError, windows
from model.benchmarks.keypoints import H36M17_TO_14, H36M32_TO_17
from model.benchmarks.mesh import rasterize, read_obj, read_ply

# ----------------------------------------------------------------------------- oracles


def dense_from_alpha(alpha):
    """A mask prediction (T, H, W, 3) in [-1, 1] whose alpha is exactly ``alpha``."""
    a = np.asarray(alpha, np.float64)
    return np.repeat((a * 2 - 1)[..., None], 3, -1)


def alpha_oracle(perturb=None):
    def predict(sample, task):
        assert task == "mask"
        a = sample.truth["alpha"]
        a = a[None] if a.ndim == 2 else a
        a = a.copy()
        if perturb is not None:
            perturb(sample, a)
        return dense_from_alpha(a)

    return predict


# ----------------------------------------------------------------------------- matting


def test_ppm100_perfect_and_perturbed(tmp_path):
    truth = bd.ppm100(tmp_path)
    perfect = run_benchmark("ppm100", tmp_path, predictor=alpha_oracle(), progress=False)
    assert perfect.groups["all"] == {"mad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    assert [s["key"] for s in perfect.samples] == sorted(truth)

    def plus(sample, a):  # a 4x4 block of background gains alpha 51/255 = 0.2 (on the 8-bit grid)
        a[0, 0:4, 0:4] += 0.2

    res = run_benchmark("ppm100", tmp_path, predictor=alpha_oracle(plus), progress=False)
    n = 24 * 32
    assert res.groups["all"]["mad"] == pytest.approx(16 * 0.2 / n)
    assert res.groups["all"]["mse"] == pytest.approx(16 * 0.04 / n)
    # Conn: the block is not connected to the person -> every block pixel: |phi_gt - phi_pred| = 0.2
    assert res.groups["all"]["conn"] == pytest.approx(16 * 0.2 / 1000)
    assert res.groups["all"]["grad"] > 0
    table = res.table.splitlines()
    assert table[0].startswith("Soft foreground segmentation on PPM-100") and "MAD↓" in table[1]
    row = table[3].split()
    assert row[-4] == f"{16 * 0.2 / n * 1e3:.2f}" and row[-3] == f"{16 * 0.04 / n * 1e3:.2f}"  # MAD, MSE x1e3


def test_photomatte85_composites_and_scores(tmp_path):
    from model.benchmarks.matting import default_background

    truth = bd.photomatte85(tmp_path)
    seen = {}

    def keep(sample, task):
        seen[sample.key] = sample.frames
        return dense_from_alpha(sample.truth["alpha"][None])

    res = run_benchmark("photomatte85", tmp_path, predictor=keep, progress=False)
    assert res.groups["all"]["mse"] == 0.0 and set(seen) == set(truth)
    # the documented composite: uint8(fgr * a + bgr * (1 - a)) on the fixed background
    from PIL import Image

    rgba = np.asarray(Image.open(tmp_path / "portrait0.png")).astype(np.float64)
    a = rgba[..., 3:] / 255
    want = (rgba[..., :3] * a + default_background(24, 20) * (1 - a)).astype(np.uint8)
    assert np.array_equal(seen["portrait0"][0], want)
    lines = res.table.splitlines()
    ref = next(line for line in lines if line.startswith("THFM (paper)"))
    assert "0.90" in ref and "—" in ref and "wizwand" in res.table  # the published MSE, others not found


def test_videomatte_dtssd_follows_rvm(tmp_path):
    bd.videomatte(tmp_path)
    perfect = run_benchmark("videomatte", tmp_path / "", predictor=alpha_oracle(), progress=False)
    assert all(v == 0.0 for v in perfect.groups["all"].values())

    def flicker(sample, a):  # frame 2 of each clip: +0.2 on a 4x4 background block
        a[2, 0:4, 0:4] += 0.2

    res = run_benchmark("videomatte", tmp_path, predictor=alpha_oracle(flicker), progress=False).groups["all"]
    n = 18 * 32
    per = np.sqrt(16 * 0.04 / n)  # frames 2 and 3 see the change (+0.2, then -0.2)
    assert res["dtssd"] == pytest.approx((0 + 0 + per + per) / 4)  # RVM: frame 0 counts as 0
    assert res["mad"] == pytest.approx(16 * 0.2 / n / 4) and res["mse"] == pytest.approx(16 * 0.04 / n / 4)


# ----------------------------------------------------------------------------- normals and depth


def test_rasterizer_and_mesh_readers(tmp_path):
    v, f = bd.quad(-1, 1, -1, 1, 2.0)
    bd.write_obj(tmp_path / "m.obj", v, f)
    v2, f2 = read_obj(tmp_path / "m.obj")
    assert np.allclose(v2, v) and np.array_equal(f2, f)
    v3, f3 = read_ply(bd.ply_bytes(v, f))
    assert np.allclose(v3, v) and np.array_equal(f3, f)
    k = np.array([[10.0, 0, 7.5], [0, 10.0, 5.5], [0, 0, 1]])
    depth, fid, _ = rasterize(v, f, k, 12, 16)
    # the square spans u, v in 7.5 +- 5 and 5.5 +- 5: pixel centres 3..12 x 1..10
    assert (depth > 0).sum() == 10 * 10 and np.allclose(depth[depth > 0], 2.0) and fid.max() == 1
    # a nearer quad hides the far one
    vn, fn = bd.quad(-0.2, 0.2, -0.2, 0.2, 1.0)
    d2, _, _ = rasterize(np.concatenate([v, vn]), np.concatenate([f, fn + 4]), k, 12, 16)
    assert d2[5, 7] == pytest.approx(1.0) and d2[1, 3] == pytest.approx(2.0)


def test_hi4d_normals_perfect_and_rotated(tmp_path):
    cam = bd.hi4d(tmp_path)
    got = {}

    def oracle(angle_deg):
        r = rodrigues(np.array([0.0, np.radians(angle_deg), 0.0]))

        def predict(sample, task):
            assert task == "human_normals"
            got[sample.key] = sample
            return sample.truth["normals"] @ r.T

        return predict

    res = run_benchmark("hi4d", tmp_path, predictor=oracle(0.0), progress=False).groups["all"]
    assert res["mean"] == pytest.approx(0, abs=1e-6) and res["within_11.25"] == 100.0
    s = got["pair28/hug05/000000"]
    valid = s.truth["valid"]
    assert set(got) == {f"{p}/hug05/000000" for p in ("pair28", "pair32", "pair37")} and s.frames.shape == (
        2,
        32,
        24,
        3,
    )
    # the rendered plane: its normal in camera 4's frame is -z (it faces the camera), only inside the mask
    assert valid[:, :, 12:].sum() == 0 and valid[:, :, :12].sum() > 200
    assert np.allclose(s.truth["normals"][valid], [0, 0, -1], atol=1e-6)
    res = run_benchmark("hi4d", tmp_path, predictor=oracle(15.0), progress=False).groups["all"]
    assert res["mean"] == pytest.approx(15.0, abs=1e-4) and res["median"] == pytest.approx(15.0, abs=0.01)
    assert (res["within_11.25"], res["within_22.5"], res["within_30"]) == (0.0, 100.0, 100.0)
    del cam


def test_goliath_depth_crops_and_alignment(tmp_path):
    data = bd.goliath(tmp_path)
    samples = {}

    def oracle(kind):
        def predict(sample, task):
            assert task == "human_depth"
            samples[sample.key] = sample
            d = sample.truth["depth"]
            disp = np.where(d > 0, 1.0 / np.maximum(d, 1e-9), 0.0)
            if kind == "affine":
                disp = 0.3 * disp + 0.1  # any scale and shift of the disparity scores perfectly
            elif kind == "constant":
                disp = np.full_like(disp, 0.5)
            return np.repeat((disp * 2 - 1)[None, ..., None], 3, -1)

        return predict

    res = run_benchmark("goliath", tmp_path, predictor=oracle("affine"), progress=False)
    assert set(res.groups) == {"face", "upper", "full"}
    for g in res.groups.values():
        assert g["rmse"] == pytest.approx(0, abs=1e-9) and g["absrel"] == pytest.approx(0, abs=1e-9)
    assert len(samples) == 2 * 2 * 3  # 2 cameras x 2 frames x 3 crops
    full = samples["m--20240101--0000--TEST--Body/cam401/000010/full"]
    d, v = full.truth["depth"], full.truth["valid"]
    assert set(np.round(np.unique(d[v]), 6)) == {1.0, 2.0}  # millimetres -> metres
    # a constant prediction aligns to the mean ground-truth disparity: hand-computed from the pixel counts
    res = run_benchmark("goliath", tmp_path, predictor=oracle("constant"), progress=False)
    n1, n2 = np.isclose(d[v], 1.0).sum(), np.isclose(d[v], 2.0).sum()
    assert n1 + n2 == v.sum() and n1 > 0 and n2 > 0
    mean_disp = (n1 * 1.0 + n2 * 0.5) / (n1 + n2)
    pred = 1.0 / mean_disp
    rmse = np.sqrt((n1 * (pred - 1) ** 2 + n2 * (pred - 2) ** 2) / (n1 + n2))
    absrel = (n1 * abs(pred - 1) / 1 + n2 * abs(pred - 2) / 2) / (n1 + n2)
    full_scores = next(s for s in res.samples if s["key"].endswith("cam401/000010/full"))
    assert full_scores["rmse"] == pytest.approx(rmse) and full_scores["absrel"] == pytest.approx(absrel)
    assert "FullBody RMSE↓" in res.table and "0.037" in res.table and "0.021" in res.table
    del data


# ----------------------------------------------------------------------------- keypoints


def test_body_model_forward_kinematics(tmp_path):
    bd.body_model_npz(tmp_path / "SMPL_NEUTRAL.npz", bd.SMPL_PARENTS, bd.REST24)
    m = BodyModel.load(tmp_path / "SMPL_NEUTRAL.npz")
    zero = m.joints(np.zeros((1, 72)), np.zeros(10), np.array([[1.0, 2, 3]]))[0]
    assert np.allclose(zero, bd.REST24 + [1, 2, 3])
    # 90 degrees about the root's z axis turns the whole skeleton about the pelvis
    turned = m.joints(np.concatenate([[0, 0, np.pi / 2], np.zeros(69)])[None], np.zeros(10))[0]
    assert np.allclose(turned, bd.REST24 @ rodrigues(np.array([0, 0, np.pi / 2])).T, atol=1e-12)
    # a knee rotation moves only the knee's descendants (ankle, foot)
    knee = np.zeros(72)
    knee[4 * 3] = 1.0
    bent = m.joints(knee[None], np.zeros(10))[0]
    moved = np.nonzero(np.abs(bent - bd.REST24).sum(1) > 1e-9)[0].tolist()
    assert moved == [7, 10] and np.allclose(
        np.linalg.norm(bent[7] - bent[4]), np.linalg.norm(bd.REST24[7] - bd.REST24[4])
    )
    # betas change the skeleton through the shape directions
    assert not np.allclose(m.joints(np.zeros((1, 72)), np.ones(10))[0], zero - [1, 2, 3])


def umeyama_error(x, y):
    """Mean joint error of x after the least-squares similarity transform onto y (Umeyama 1991)."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    cov = yc.T @ xc / len(x)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(3)
    s[2, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    r = u @ s @ vt
    c = np.trace(np.diag(d) @ s) / (xc**2).sum(1).mean()
    aligned = c * xc @ r.T + my
    return np.linalg.norm(aligned - y, axis=1).mean()


def kp_oracle(dx_mm=0.0, frame=None, joint=10):
    def predict(sample, task):
        assert task == "keypoints_3d"
        j = sample.truth["joints"].copy()
        if dx_mm:
            sl = slice(None) if frame is None else frame
            j[sl, joint, 0] += dx_mm / 1000.0
        return j

    return predict


@pytest.mark.parametrize("name", ["emdb", "h36m", "rich"])
def test_keypoint_benchmarks_perfect_and_perturbed(name, tmp_path):
    body = tmp_path / "body"
    data = tmp_path / "data"
    data.mkdir()
    opts = {}
    if name == "emdb":
        bd.emdb(data, body)
        opts["body_model"] = body
    elif name == "rich":
        bd.rich(data, body)
        opts["body_model"] = body
    else:
        bd.h36m(data)
    perfect = run_benchmark(name, data, predictor=kp_oracle(), progress=False, **opts)
    g = perfect.groups["all"]
    assert g["mpjpe"] == pytest.approx(0, abs=1e-12) and g["pa_mpjpe"] == pytest.approx(0, abs=1e-9)
    assert g["accel"] == pytest.approx(0, abs=1e-12)
    # one joint off by 24 mm in one frame: hand-computed MPJPE and Accel (the pelvis - the hips - unmoved)
    j = 24 if name != "h36m" else 14
    joint = 10 if name != "h36m" else 6
    frame = 3 if name == "rich" else 2  # RICH's frame 2 has no body file: invalid
    res = run_benchmark(name, data, predictor=kp_oracle(24.0, frame=frame, joint=joint), progress=False, **opts)
    g = res.groups["all"]
    seqs, valid_frames = {"emdb": (1, 6), "h36m": (4, 4 * 4), "rich": (1, 5)}[name]
    assert len(res.samples) == seqs and g["frames"] == valid_frames
    assert g["mpjpe"] == pytest.approx(seqs * 0.024 / j / valid_frames)
    # PA-MPJPE of the moved frame, by Umeyama's closed form (an implementation independent of model.metrics)
    got = {}
    run_benchmark(
        name, data, predictor=lambda smp, t: got.setdefault(smp.key, smp.truth["joints"]), progress=False, **opts
    )
    gt = next(iter(got.values()))[frame]
    moved = gt.copy()
    moved[joint, 0] += 0.024
    pa = umeyama_error(moved, gt)
    assert g["pa_mpjpe"] == pytest.approx(seqs * pa / valid_frames, rel=1e-6) if name != "h36m" else g["pa_mpjpe"] > 0
    # second differences centred next to the moved frame see +24, -48, +24 mm at that joint
    if name == "emdb":  # 6 frames: 4 second differences, centres 1..4
        assert g["accel"] == pytest.approx((0.024 + 0.048 + 0.024) / j / 4)
    elif name == "h36m":  # 4 fed frames per sequence: centres 1, 2
        assert g["accel"] == pytest.approx((0.024 + 0.048) / j / 2)
    else:  # of the centres 1..4 only 4 (frames 3, 4, 5) avoids the invalid frame 2: +24 mm at the joint
        assert g["accel"] == pytest.approx(0.024 / j / 1)
    assert "PA-MPJPE↓" in res.table and "THFM (paper)" in res.table


def test_h36m_joint_subsets():
    assert len(H36M32_TO_17) == 17 and len(H36M17_TO_14) == 14
    assert H36M17_TO_14[2] == 1 and H36M17_TO_14[3] == 4  # right and left hip: the pelvis of the 14


def test_rich_ground_truth_and_invalid_frames(tmp_path):
    bd.rich(tmp_path / "d", tmp_path / "b")
    got = {}

    def oracle(sample, task):
        got[sample.key] = sample
        return sample.truth["joints"]

    run_benchmark("rich", tmp_path / "d", predictor=oracle, progress=False, body_model=tmp_path / "b")
    s = got["Gym_010_pushup1/cam_00"]
    assert s.truth["valid"].tolist() == [True, True, False, True, True, True] and s.frames.shape[0] == 6
    # frame 0: no rotation -> the rest skeleton (22 body joints + the middle-finger bases), 2.5 m ahead
    parents, rest = bd.smplx_parents()
    want = rest[list(range(22)) + [28, 43]] + [0, 0, 2.5]
    assert np.allclose(s.truth["joints"][0], want, atol=1e-6)


# ----------------------------------------------------------------------------- bad input


def test_wrong_or_incomplete_folders_are_one_line_errors(tmp_path):
    bd.ppm100(tmp_path / "ppm")
    (tmp_path / "ppm" / "matte" / "p01.png").unlink()
    with pytest.raises(LayoutError) as e:
        run_benchmark("ppm100", tmp_path / "ppm", predictor=alpha_oracle(), progress=False)
    msg = str(e.value)
    assert "matte/p01.png not found" in msg and "DATA/image/<name>.jpg" in msg and "\n" not in msg
    with pytest.raises(LayoutError, match="pair28"):
        run_benchmark("hi4d", tmp_path, predictor=alpha_oracle(), progress=False)
    with pytest.raises(LayoutError, match="videomatte_static"):
        run_benchmark("videomatte", tmp_path / "ppm", predictor=alpha_oracle(), progress=False)
    bd.h36m(tmp_path / "h")
    (tmp_path / "h" / "S11" / "Videos" / "Walking.54138969.mp4").unlink()
    with pytest.raises(LayoutError, match=r"S11/Videos/Walking\.54138969\.mp4 not found"):
        run_benchmark("h36m", tmp_path / "h", predictor=kp_oracle(), progress=False)
    bd.emdb(tmp_path / "e", tmp_path / "body")
    with pytest.raises(FileNotFoundError, match="--body-model"):
        run_benchmark("emdb", tmp_path / "e", predictor=kp_oracle(), progress=False)
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL.npz"):
        run_benchmark("emdb", tmp_path / "e", predictor=kp_oracle(), progress=False, body_model=tmp_path / "nope")


def test_annotation_pickles_cannot_run_code(tmp_path):
    from model.benchmarks import safe_pickle

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"smpl": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system|refusing to load os.system"):
        safe_pickle.load(tmp_path / "evil.pkl")
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"a": np.arange(3.0), "b": [1, "x"], "c": np.float32(2)}))
    d = safe_pickle.load(tmp_path / "ok.pkl")
    assert np.array_equal(d["a"], [0, 1, 2]) and d["b"] == [1, "x"] and d["c"] == 2


def test_letterbox_and_windows():
    box = Letterbox.fit((100, 50), (48, 64))  # portrait into landscape: height-bound
    assert box.inner == (48, 24) and box.left == 20 and box.top == 0
    yy, xx = np.mgrid[0:100, 0:50] / 100.0
    img = np.stack([yy, xx, yy * xx], -1)[None].astype(np.float32)  # smooth: survives the 2x round trip
    out = box.apply(img)
    assert out.shape == (1, 48, 64, 3) and np.allclose(out[:, :, 0], out[:, :, 19])  # replicated border
    back = box.invert(out)
    assert back.shape == img.shape and np.abs(back - img)[:, 2:-2, 2:-2].max() < 0.02
    assert [w.tolist() for w in windows(5, 3)] == [[0, 1, 2], [3, 4, 4]]


# ----------------------------------------------------------------------------- a real checkpoint, the CLI


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from model.data import write_synthetic_shards
    from model.train import train

    root = tmp_path_factory.mktemp("bench_ckpt")
    write_synthetic_shards(
        root / "shards",
        num_videos=4,
        num_frames=9,
        height=32,
        width=32,
        num_keypoints=5,
        text_dim=32,
        pixel_targets=False,
    )
    train(
        {
            "data": {"shard_dir": str(root / "shards"), "tasks": ["mask", "keypoints_3d"], "num_threads": 1},
            "batch_size": 2,
            "steps": 2,
            "run_dir": str(root / "run"),
            "checkpoint_every": 2,
            "log_every": 1,
            "peak_flops_per_device": 1e11,
            "async_checkpointing": False,
        },
        quiet=True,
    )
    return root / "run" / "checkpoints"


def test_cli_scores_a_checkpoint_and_names_mismatches(tiny_checkpoint, tmp_path, capsys):
    from thfm_synth.cli import main

    bd.photomatte85(tmp_path / "pm")
    out = tmp_path / "res.json"
    code = main(
        [
            "evaluate",
            "--benchmark",
            "photomatte85",
            "--data",
            str(tmp_path / "pm"),
            "--checkpoint",
            str(tiny_checkpoint),
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "Soft foreground segmentation on PhotoMatte85" in text and "THFM (paper)" in text
    assert "this checkpoint (checkpoints, tiny, task mask)" in text
    res = json.loads(out.read_text())
    assert res["task"] == "mask" and len(res["samples"]) == 2
    assert all(np.isfinite(res["groups"]["all"][k]) and res["groups"]["all"][k] >= 0 for k in ("mad", "mse"))
    # a benchmark whose task the checkpoint was not trained for
    bd.hi4d(tmp_path / "hi4d")
    assert (
        main(
            ["evaluate", "--benchmark", "hi4d", "--data", str(tmp_path / "hi4d"), "--checkpoint", str(tiny_checkpoint)]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert "trained for tasks ['mask', 'keypoints_3d']" in err and "'human_normals'" in err and "\n" not in err
    # another model size, and keypoints of another convention
    with pytest.raises(CheckpointMismatch, match="model size 'tiny'.*'wan21_1_3b'"):
        run_benchmark(
            "photomatte85", tmp_path / "pm", checkpoint=tiny_checkpoint, model_size="wan21_1_3b", progress=False
        )
    bd.h36m(tmp_path / "h")
    with pytest.raises(CheckpointMismatch, match="predicts 5 keypoints"):
        run_benchmark("h36m", tmp_path / "h", checkpoint=tiny_checkpoint, progress=False)
    with pytest.raises(CheckpointMismatch, match="coco17 keypoints .*h36m14"):
        run_benchmark("h36m", tmp_path / "h", checkpoint=tiny_checkpoint, keypoint_convention="coco17", progress=False)
    # the layout help names the files and where to get the data
    assert main(["evaluate", "--benchmark", "h36m", "--layout"]) == 0
    assert "D3_Positions_mono" in capsys.readouterr().out
