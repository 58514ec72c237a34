"""Each metric on a case small enough to compute by hand."""

import numpy as np
import pytest

from model import metrics as m


def test_normal_errors_hand_case():
    gt = np.array([[0, 0, 1.0]] * 4)
    pred = np.array([[0, 0, 1.0], [0, np.sin(np.radians(10)), np.cos(np.radians(10))],
                     [0, np.sin(np.radians(20)), np.cos(np.radians(20))], [1.0, 0, 0]])
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
    # d1 = 0.3 at one pixel -> sqrt(0.09) = 0.3; d2 = -0.3 -> 0.3; mean 0.3
    assert m.dtssd(pred, gt) == pytest.approx(0.3)


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
