"""Each metric on a case small enough to compute by hand."""

import numpy as np
import pytest

from model import metrics as m


def test_normal_errors_hand_case():
    gt = np.array([[0, 0, 1.0]] * 4)
    pred = np.array(
        [
            [0, 0, 1.0],
            [0, np.sin(np.radians(10)), np.cos(np.radians(10))],
            [0, np.sin(np.radians(20)), np.cos(np.radians(20))],
            [1.0, 0, 0],
        ]
    )
    e = m.normal_errors(pred, gt)
    assert e["mean"] == pytest.approx((0 + 10 + 20 + 90) / 4)
    assert e["median"] == pytest.approx(15.0)
    assert e["within_11.25"] == 50.0 and e["within_22.5"] == 75.0 and e["within_30"] == 75.0


def test_depth_errors_are_invariant_to_scale_and_shift():
    gt = np.array([1.0, 2.0, 4.0, 5.0])
    pred_disp = 3.0 * (1 / gt) + 0.7  # exact up to scale and shift in disparity
    e = m.depth_errors(pred_disp, gt)
    assert e["rmse"] < 1e-9 and e["absrel"] < 1e-9
    e = m.depth_errors(np.array([1.0, 2.0, 3.0, 6.0]), np.array([1.0, 2.0, 3.0, 4.0]), space="depth")
    # best line through (1,1),(2,2),(3,3),(6,4): hand-solved s=29/50... check via the normal equations
    a = np.array([[1, 1], [2, 1], [3, 1], [6, 1.0]])
    s, b = np.linalg.solve(a.T @ a, a.T @ np.array([1, 2, 3, 4.0]))
    res = a @ [s, b] - [1, 2, 3, 4]
    assert e["rmse"] == pytest.approx(np.sqrt(np.mean(res**2)))
    assert e["absrel"] == pytest.approx(np.mean(np.abs(res) / [1, 2, 3, 4]))
    # disparity space: an aligned disparity below 1 / (farthest ground truth) is floored there (MiDaS' cap)
    gt = np.array([1.0, 2.0, 4.0])
    e = m.depth_errors(np.array([1.0, 0.5, -1.0]), gt)  # LSQ line through (1, 1), (0.5, .5), (-1, .25)
    a = np.array([[1.0, 1], [0.5, 1], [-1.0, 1]])
    s, b = np.linalg.lstsq(a, 1 / gt, rcond=None)[0]
    depth = 1 / np.maximum(a @ [s, b], 1 / 4.0)
    assert e["rmse"] == pytest.approx(np.sqrt(np.mean((depth - gt) ** 2)))


def test_matte_errors_hand_case():
    gt = np.zeros((6, 6))
    gt[2:4, 2:4] = 1.0
    assert m.matte_errors(gt, gt) == {"mse": 0.0, "mad": 0.0, "grad": 0.0, "conn": 0.0}
    pred = gt.copy()
    pred[0, 0] = 0.5  # one wrong pixel, disconnected from the foreground
    e = m.matte_errors(pred, gt)
    assert e["mse"] == pytest.approx(0.25 / 36) and e["mad"] == pytest.approx(0.5 / 36)
    # Conn: at thresholds 0.1..0.5 pixel (0,0) is in pred>=t but not connected (gt is 0): round-down 0 for it;
    # phi_gt = 1 - 0 = 1 (gt_d = 0 < 0.15), phi_pred = 1 - 0.5 = 0.5 -> |diff| = 0.5
    assert e["conn"] == pytest.approx(0.5 / 1000)
    assert e["grad"] > 0


def test_dtssd_hand_case():
    gt = np.zeros((3, 2, 2))
    pred = gt.copy()
    pred[1, 0, 0] = 0.3  # appears at t=1, gone at t=2
    # d1 = 0.3 at one of 4 pixels -> sqrt(0.09 / 4) = 0.15; d2 = -0.3 -> 0.15; mean 0.15
    assert m.dtssd(pred, gt) == pytest.approx(0.15)
    assert m.dtssd(pred, gt, include_first=True) == pytest.approx(0.1)  # RVM: frame 0 counts as 0


def test_keypoint_errors_hand_case():
    gt = np.zeros((3, 2, 3))
    gt[:, 1, 0] = 1.0
    pred = gt + np.array([0.0, 0.0, 0.1])
    assert m.mpjpe(pred, gt) == pytest.approx(0.1)
    rot = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    similar = 2.0 * gt @ rot.T + 5.0
    assert m.pa_mpjpe(similar, gt) < 1e-9
    moving = gt.copy()
    moving[:, :, 2] = np.array([0.0, 1.0, 4.0])[:, None]  # accel 2 units per frame^2 vs 0
    assert m.acceleration_error(moving, gt, fps=1.0) == pytest.approx(2.0)
    assert m.acceleration_error(moving, gt, fps=10.0) == pytest.approx(200.0)
    # VIBE: a second difference next to an invisible frame is left out
    longer = np.zeros((5, 2, 3))
    jump = longer.copy()
    jump[3, :, 0] = 1.0  # second differences centred on t = 1, 2, 3: 0, 1, -2
    assert m.acceleration_error(jump, longer) == pytest.approx((0 + 1 + 2) / 3)
    vis = np.array([True, True, True, True, False])  # the one centred on 3 touches frame 4
    assert m.acceleration_error(jump, longer, valid=vis) == pytest.approx((0 + 1) / 2)


def test_grad_filter_and_error_hand_case():
    fx, fy = m.gauss_derivative_filter(1.4)
    assert fx.shape == (9, 9) and np.allclose(fy, fx.T) and np.sum(fx**2) == pytest.approx(1.0)
    assert np.allclose(fx[:, 4], 0) and np.all(fx[4, :4] > 0) and np.allclose(fx[:, ::-1], -fx)
    ramp = np.tile(np.linspace(0, 1, 20), (12, 1))
    assert m.grad_error(ramp, ramp) == 0.0
    # min-max normalisation: a matte and its affine rescaling have the same gradient term
    assert m.grad_error(0.5 * ramp + 0.2, ramp) == pytest.approx(0.0, abs=1e-12)
    # an independent evaluation: explicit correlation over the edge-padded image
    flat = np.zeros_like(ramp)
    pad = np.pad(ramp, 4, mode="edge")
    gx = np.array([[np.sum(fx * pad[y : y + 9, x : x + 9]) for x in range(20)] for y in range(12)])
    gy = np.array([[np.sum(fy * pad[y : y + 9, x : x + 9]) for x in range(20)] for y in range(12)])
    assert m.grad_error(flat, ramp) == pytest.approx(np.sum(gx**2 + gy**2) / 1000)
    assert np.allclose(gy, 0) and gx[:, 4:16].std() < 1e-12  # interior: the ramp's constant slope
