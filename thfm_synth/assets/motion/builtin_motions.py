"""Procedural built-in motions, so the offline default needs no mocap files.

Five clips on `canonical_skeleton()` (120 fps, 960 frames = 8 s by default), all
deterministic: `builtin-walk` (1.3 m/s), `builtin-run` (2.8 m/s, flight phases),
`builtin-turn` (walking a 180 degree left turn then a 90 degree right turn),
`builtin-reach` (standing reaches forward-up, down-left, overhead) and
`builtin-squat` (four squats, feet turned out).

How they stay physically plausible:
* feet are planned first and legs solved by exact two-bone IK, so a planted foot does
  not move at all: each stance rolls heel -> flat -> ball with the contact point fixed
  (the virtual heel point, then the ToeBase joint and toe tip, which stay flat);
* the pelvis height is the gait's nominal height lowered wherever a leg could not
  reach its foot (min-filtered then smoothed, so the result never exceeds the limit);
* the gait is periodic (cycle period T, duty factor = stance fraction), with pelvis
  bob, sway, rotation and list, counter-rotating chest, swinging arms and a head that
  keeps looking along the path.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import MotionClip, Skeleton, canonical_skeleton, local_from_global

FPS = 120.0
NUM_FRAMES = 960
BUILTIN_IDS = ("builtin-walk", "builtin-run", "builtin-turn", "builtin-reach", "builtin-squat")

_X, _Y, _Z = np.eye(3)
_SIDES = (("Left", 1.0), ("Right", -1.0))  # name prefix, sign of x (the subject's left is +X)


def list_builtin_motions() -> tuple[str, ...]:
    return BUILTIN_IDS


def builtin_motion(motion_id: str, num_frames: int = NUM_FRAMES, fps: float = FPS) -> MotionClip:
    """One built-in clip by id (see BUILTIN_IDS)."""
    makers: dict[str, Callable[[np.ndarray], "_Pose"]] = {
        "builtin-walk": lambda t: _locomotion(t, _WALK, _straight(_WALK.speed)),
        "builtin-run": lambda t: _locomotion(t, _RUN, _straight(_RUN.speed)),
        "builtin-turn": lambda t: _locomotion(t, _TURN_WALK, _turning_path(_TURN_WALK.speed)),
        "builtin-reach": _reach,
        "builtin-squat": _squat,
    }
    if motion_id not in makers:
        raise ValueError(f"unknown built-in motion {motion_id!r}; known: {', '.join(BUILTIN_IDS)}")
    t = np.arange(int(num_frames)) / float(fps)
    pose = makers[motion_id](t)
    return pose.to_clip(fps, motion_id)


# ---------------------------------------------------------------- skeleton geometry


@functools.lru_cache(maxsize=1)
def _geometry() -> dict:
    sk = canonical_skeleton()
    off = {n: sk.offsets[i] for i, n in enumerate(sk.names)}
    rest = {n: sk.rest_positions[i] for i, n in enumerate(sk.names)}
    return {
        "sk": sk,
        "off": off,
        "thigh": float(np.linalg.norm(off["LeftLeg"])),
        "shin": float(np.linalg.norm(off["LeftFoot"])),
        "upper_arm": float(np.linalg.norm(off["LeftForeArm"])),
        "forearm": float(np.linalg.norm(off["LeftHand"])),
        "ankle_height": float(rest["LeftFoot"][2]),
        # foot points relative to the ankle at rest; the heel is a virtual point on the
        # floor behind the ankle (no joint there), used only as the heel-strike pivot
        "ball": off["LeftToeBase"].copy(),
        "heel": np.array([0.0, 0.05, -float(rest["LeftFoot"][2])]),
        "hip": {s: off[f"{'L' if s == 'Left' else 'R'}HipJoint"] + off[f"{s}UpLeg"] for s, _ in _SIDES},
        "shoulder": {s: off[f"{s}Shoulder"] + off[f"{s}Arm"] for s, _ in _SIDES},
        "spine": off["Spine"],
        "chest": off["Spine1"],
        "pelvis_height": float(rest["Hips"][2]),
    }


def _rz(angle: np.ndarray) -> np.ndarray:
    return quat.from_axis_angle(_Z, angle)


def _rx(angle: np.ndarray) -> np.ndarray:
    return quat.from_axis_angle(_X, angle)


def _rot_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return quat.from_axis_angle(np.broadcast_to(axis, np.shape(angle) + (3,)), angle)


def _aim(rest_dir: np.ndarray, rest_ref: np.ndarray, direction: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotation taking rest_dir to direction and rest_ref as close as possible to ref."""

    def basis(d: np.ndarray, r: np.ndarray) -> np.ndarray:
        e1 = d / np.linalg.norm(d, axis=-1, keepdims=True)
        r = r - np.sum(r * e1, axis=-1, keepdims=True) * e1
        e2 = r / np.linalg.norm(r, axis=-1, keepdims=True)
        return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)

    d = np.asarray(direction, dtype=float)
    r0 = basis(np.broadcast_to(rest_dir, d.shape), np.broadcast_to(rest_ref, d.shape))
    return quat.from_matrix(basis(d, np.asarray(ref, dtype=float)) @ np.swapaxes(r0, -1, -2))


def _two_bone(root: np.ndarray, target: np.ndarray, l1: float, l2: float, pole: np.ndarray) -> np.ndarray:
    """Middle joint of a two-bone chain reaching `target`, bending towards `pole`."""
    d_vec = target - root
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    u = d_vec / d
    d = np.clip(d, abs(l1 - l2) + 1e-6, (l1 + l2) * (1 - 1e-9))
    a = (l1 * l1 - l2 * l2 + d * d) / (2 * d)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    n = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return root + a * u + h * n


def _minjerk(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (10 - 15 * s + 6 * s * s)


def _heading_vectors(psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and left unit vectors for heading psi (0 = facing -Y)."""
    fwd = np.stack([np.sin(psi), -np.cos(psi), np.zeros_like(psi)], axis=-1)
    left = np.stack([np.cos(psi), np.sin(psi), np.zeros_like(psi)], axis=-1)
    return fwd, left


# ---------------------------------------------------------------- pose assembly


@dataclasses.dataclass
class _Pose:
    """Per-frame targets; `to_clip` solves legs and arms and builds local rotations."""

    pelvis: np.ndarray  # (F, 3) Hips position (z is the nominal height before the reach limit)
    pelvis_rot: np.ndarray  # (F, 4)
    spine_rot: np.ndarray
    chest_rot: np.ndarray
    head_rot: np.ndarray
    ankle: dict  # side -> (F, 3)
    foot_rot: dict  # side -> (F, 4)
    toe_rot: dict  # side -> (F, 4)
    knee_pole: dict  # side -> (F, 3)
    arms: dict  # side -> ("angles", upper (F,4) global, elbow (F,)) or ("ik", wrist (F,3), pole (F,3))

    def to_clip(self, fps: float, source: str) -> MotionClip:
        g = _geometry()
        sk: Skeleton = g["sk"]
        nf = self.pelvis.shape[0]
        pelvis = self.pelvis.copy()
        pelvis[:, 2] = _reachable_height(pelvis, self.pelvis_rot, self.ankle, fps)
        glob = {
            "Hips": self.pelvis_rot,
            "Spine": self.spine_rot,
            "Spine1": self.chest_rot,
            "Neck1": quat.slerp(self.chest_rot, self.head_rot, 0.5),
            "Head": self.head_rot,
        }
        down, fwd = -_Z, -_Y
        for side, sx in _SIDES:
            hip = pelvis + quat.rotate(self.pelvis_rot, g["hip"][side])
            pole = self.knee_pole[side]
            knee = _two_bone(hip, self.ankle[side], g["thigh"], g["shin"], pole)
            glob[f"{side}UpLeg"] = _aim(down, fwd, knee - hip, pole)
            glob[f"{side}Leg"] = _aim(down, fwd, self.ankle[side] - knee, pole)
            glob[f"{side}Foot"] = self.foot_rot[side]
            glob[f"{side}ToeBase"] = self.toe_rot[side]
            kind, a, b = self.arms[side]
            arm_dir = np.array([sx, 0.0, 0.0])
            if kind == "angles":
                upper = a
                fore = quat.mul(upper, quat.from_axis_angle(np.array([0.0, 0.0, -sx]), b))
            else:
                chest_pos = pelvis + quat.rotate(self.pelvis_rot, g["spine"]) + quat.rotate(self.spine_rot, g["chest"])
                shoulder = chest_pos + quat.rotate(self.chest_rot, g["shoulder"][side])
                elbow = _two_bone(shoulder, a, g["upper_arm"], g["forearm"], b)
                u = elbow - shoulder
                u /= np.linalg.norm(u, axis=-1, keepdims=True)
                f = a - elbow
                f /= np.linalg.norm(f, axis=-1, keepdims=True)
                # the forearm bends away from the elbow's pole side; a straight arm uses the pole
                n = b - np.sum(b * u, axis=-1, keepdims=True) * u
                ref_u = -n / np.linalg.norm(n, axis=-1, keepdims=True)
                axis = np.cross(u, ref_u)
                upper = _aim(arm_dir, fwd, u, ref_u)
                fore = _aim(arm_dir, fwd, f, np.cross(axis, f))
            glob[f"{side}Arm"] = upper
            glob[f"{side}ForeArm"] = fore
            glob[f"{side}Hand"] = fore
        full = np.empty((nf, sk.num_joints, 4))
        for j, name in enumerate(sk.names):
            full[:, j] = glob[name] if name in glob else full[:, sk.parents[j]] if j else quat.IDENTITY
        local = local_from_global(sk, full)
        local = quat.make_continuous(quat.positive_w(local), axis=0)
        return MotionClip(sk, fps, pelvis, local, source=source)


def _reachable_height(pelvis: np.ndarray, pelvis_rot: np.ndarray, ankles: dict, fps: float) -> np.ndarray:
    """Nominal pelvis height, lowered where a leg cannot reach its ankle target.

    Each leg may extend to 99.5 % of its length (a knee never fully locks). The limit
    is min-filtered over +-3 sigma and then Gaussian-smoothed with sigma, which keeps
    the curve smooth and provably at or below the limit at every frame.
    """
    g = _geometry()
    reach = 0.995 * (g["thigh"] + g["shin"])
    z = pelvis[:, 2].copy()
    for side, _ in _SIDES:
        hip_off = quat.rotate(pelvis_rot, g["hip"][side])
        d_xy = np.linalg.norm(pelvis[:, :2] + hip_off[:, :2] - ankles[side][:, :2], axis=1)
        d_xy = np.minimum(d_xy, reach - 1e-3)
        z = np.minimum(z, ankles[side][:, 2] + np.sqrt(reach * reach - d_xy * d_xy) - hip_off[:, 2])
    sigma = 0.03 * fps
    w = int(np.ceil(3 * sigma))
    eroded = minimum_filter1d(z, size=2 * w + 1, mode="nearest")
    return gaussian_filter1d(eroded, sigma, mode="nearest", truncate=w / sigma)


def _arm_angles(
    chest_rot: np.ndarray, side: str, flex: np.ndarray, abduct: np.ndarray, elbow: np.ndarray
) -> tuple[str, np.ndarray, np.ndarray]:
    """Upper arm hanging from the chest, flexed forward, abducted outward; elbow flexion."""
    sx = 1.0 if side == "Left" else -1.0
    hang = quat.from_axis_angle(_Y, np.radians(90.0) * sx)  # T-pose arm -> hanging down
    flexed = quat.mul(_rx(-flex), hang)
    out = quat.mul(_rot_about(-_Y, sx * abduct), flexed)
    return ("angles", quat.mul(chest_rot, out), elbow)


# ---------------------------------------------------------------- locomotion


@dataclasses.dataclass(frozen=True)
class _Gait:
    speed: float  # m/s
    period: float  # s per cycle (two steps)
    duty: float  # stance fraction of the cycle
    step_width: float  # m between the feet
    crouch: float  # nominal pelvis drop below standing, m
    bob: float  # vertical pelvis amplitude, m
    bob_sign: float  # +1: highest at mid-stance (walk), -1: lowest at mid-stance (run)
    sway: float  # lateral pelvis amplitude, m
    yaw: float  # pelvis rotation amplitude, rad
    roll: float  # pelvis list amplitude, rad
    lean: float  # forward trunk lean, rad
    heel_pitch: float  # toes-up angle at heel strike, rad
    toe_pitch: float  # heel-up angle at toe off, rad
    heel_end: float  # stance fraction where the heel rocker ends (foot flat)
    flat_end: float  # stance fraction where the heel starts rising
    lift: float  # extra ankle height in swing, m
    lift_peak: float  # swing fraction of the highest ankle point
    plant: float  # stance fraction at which the hip passes over the flat foot's ankle
    arm_swing: float  # shoulder flexion amplitude, rad
    arm_flex: float  # mean shoulder flexion, rad
    elbow: float  # mean elbow flexion, rad
    elbow_swing: float  # elbow flexion amplitude, rad


_WALK = _Gait(
    speed=1.3,
    period=1.1,
    duty=0.62,
    step_width=0.16,
    crouch=0.01,
    bob=0.02,
    bob_sign=1.0,
    sway=0.02,
    yaw=np.radians(5),
    roll=np.radians(3),
    lean=np.radians(4),
    heel_pitch=np.radians(15),
    toe_pitch=np.radians(55),
    heel_end=0.15,
    flat_end=0.55,
    lift=0.06,
    lift_peak=0.45,
    plant=0.4,
    arm_swing=np.radians(16),
    arm_flex=np.radians(3),
    elbow=np.radians(18),
    elbow_swing=np.radians(8),
)
_RUN = _Gait(
    speed=2.8,
    period=0.70,
    duty=0.36,
    step_width=0.08,
    crouch=0.05,
    bob=0.035,
    bob_sign=-1.0,
    sway=0.01,
    yaw=np.radians(8),
    roll=np.radians(4),
    lean=np.radians(9),
    heel_pitch=np.radians(6),
    toe_pitch=np.radians(40),
    heel_end=0.12,
    flat_end=0.45,
    lift=0.30,
    lift_peak=0.35,
    plant=0.5,
    arm_swing=np.radians(30),
    arm_flex=np.radians(8),
    elbow=np.radians(85),
    elbow_swing=np.radians(15),
)
_TURN_WALK = dataclasses.replace(_WALK, speed=1.1, period=1.15)


def _straight(speed: float) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def path(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy = np.stack([np.zeros_like(t), -speed * t], axis=-1)  # facing -Y
        return xy, np.zeros_like(t)

    return path


def _turning_path(speed: float) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Straight, a 180 degree left turn (1.5-5 s), straight, a 90 degree right turn (6-7.5 s)."""

    def rate(t: np.ndarray) -> np.ndarray:
        def box(a: float, b: float) -> np.ndarray:  # smooth 0 -> 1 -> 0 over [a, b]
            ramp = 0.4
            return _minjerk((t - a) / ramp) * (1 - _minjerk((t - (b - ramp)) / ramp))

        return np.pi / 3.1 * box(1.5, 5.0) - (np.pi / 2) / 1.1 * box(6.0, 7.5)

    def path(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = min(t.min(), 0.0) - 1.0, t.max() + 1.0
        dense = np.arange(lo, hi, 1.0 / 600.0)
        psi = np.concatenate([[0.0], np.cumsum((rate(dense[1:]) + rate(dense[:-1])) / 2 * np.diff(dense))])
        psi -= np.interp(0.0, dense, psi)
        fwd, _ = _heading_vectors(psi)
        xy = (
            np.concatenate(
                [[[0.0, 0.0]], np.cumsum((fwd[1:, :2] + fwd[:-1, :2]) / 2 * np.diff(dense)[:, None], axis=0)]
            )
            * speed
        )
        xy -= np.array([np.interp(0.0, dense, xy[:, 0]), np.interp(0.0, dense, xy[:, 1])])
        return np.stack([np.interp(t, dense, xy[:, 0]), np.interp(t, dense, xy[:, 1])], -1), np.interp(t, dense, psi)

    return path


def _stance_foot(anchor: np.ndarray, psi: np.ndarray, sigma: np.ndarray, gait: _Gait) -> tuple:
    """Ankle position, foot and toe rotations during stance (sigma in [0, 1])."""
    g = _geometry()
    heel_phase = sigma < gait.heel_end
    toe_phase = sigma > gait.flat_end
    theta = np.where(heel_phase, gait.heel_pitch * (1 - _minjerk(sigma / gait.heel_end)), 0.0)
    theta = np.where(toe_phase, -gait.toe_pitch * _minjerk((sigma - gait.flat_end) / (1 - gait.flat_end)), theta)
    yaw = _rz(psi)
    foot_rot = quat.mul(yaw, _rx(-theta))  # toes up for theta > 0
    # pivot about the heel (theta > 0) or the ball (theta < 0); either stays put
    pivot_rest = np.where(heel_phase[:, None], g["heel"], g["ball"])
    pivot = anchor + quat.rotate(yaw, pivot_rest)
    ankle = pivot - quat.rotate(foot_rot, pivot_rest)
    toe_rot = np.where(toe_phase[:, None], yaw, foot_rot)  # toes stay flat while the heel rises
    return ankle, foot_rot, toe_rot, theta


def _locomotion(t: np.ndarray, gait: _Gait, path_fn) -> _Pose:
    g = _geometry()
    T, beta = gait.period, gait.duty
    xy, psi = path_fn(t)
    fwd, left = _heading_vectors(psi)
    phase = t / T
    ankles, foot_rots, toe_rots, poles = {}, {}, {}, {}
    for (side, sx), offset in zip(_SIDES, (0.0, 0.5)):
        cyc = np.floor(phase - offset)
        local = phase - offset - cyc  # 0 = heel strike of this foot
        in_stance = local < beta

        def anchor(k: np.ndarray, offset: float = offset, sx: float = sx) -> tuple[np.ndarray, np.ndarray]:
            t_mid = (k + offset + beta * gait.plant) * T  # the flat ankle is under the hip then
            a_xy, a_psi = path_fn(t_mid)
            _, a_left = _heading_vectors(a_psi)
            pos = np.concatenate([a_xy, np.full((len(k), 1), g["ankle_height"])], axis=1)
            return pos + a_left * sx * gait.step_width / 2, a_psi

        # stance of this cycle, and the swing from it to the next stance
        a0, p0 = anchor(cyc)
        a1, p1 = anchor(cyc + 1)
        s_st = np.clip(local / beta, 0, 1)
        st = _stance_foot(a0, p0, s_st, gait)
        off_ = _stance_foot(a0, p0, np.ones_like(t), gait)  # toe-off pose
        on_ = _stance_foot(a1, p1, np.zeros_like(t), gait)  # next heel strike
        s_sw = np.clip((local - beta) / (1 - beta), 0, 1)
        m = _minjerk(s_sw)
        # s^a (1-s)^b bump peaking at lift_peak; a, b >= 2 so the foot leaves and lands
        # with zero vertical speed and finite acceleration
        a_ = max(2.0, 2.0 * gait.lift_peak / (1.0 - gait.lift_peak))
        b_ = a_ * (1.0 - gait.lift_peak) / gait.lift_peak
        lift_shape = s_sw**a_ * (1 - s_sw) ** b_ / (gait.lift_peak**a_ * (1 - gait.lift_peak) ** b_)
        sw_ankle = off_[0] + (on_[0] - off_[0]) * m[:, None] + _Z * (gait.lift * lift_shape)[:, None]
        sw_theta = off_[3] + (on_[3] - off_[3]) * _minjerk(s_sw)
        sw_psi = p0 + (p1 - p0) * m
        sw_foot = quat.mul(_rz(sw_psi), _rx(-sw_theta))
        bend = gait.toe_pitch * (1 - _minjerk(s_sw / 0.5))  # toes straighten in early swing
        sw_toe = quat.mul(_rz(sw_psi), _rx(-(sw_theta + bend)))
        ankles[side] = np.where(in_stance[:, None], st[0], sw_ankle)
        foot_rots[side] = np.where(in_stance[:, None], st[1], sw_foot)
        toe_rots[side] = np.where(in_stance[:, None], st[2], sw_toe)
        foot_psi = np.where(in_stance, p0, sw_psi)
        poles[side] = _heading_vectors(foot_psi)[0]

    # pelvis: phases relative to the left foot's mid-stance
    mid = 2 * np.pi * (phase - beta / 2)
    stand = g["pelvis_height"] - gait.crouch
    height = stand + gait.bob_sign * gait.bob * np.cos(2 * mid)
    pelvis = np.concatenate([xy, height[:, None]], axis=1) + left * (gait.sway * np.cos(mid))[:, None]
    omega = np.gradient(np.unwrap(psi), t) if len(t) > 1 else np.zeros_like(t)
    turn_lean = -np.arctan(gait.speed * omega / 9.81) * 0.7  # lean into turns
    yaw_osc = -gait.yaw * np.cos(2 * np.pi * phase)  # left hip forward at left heel strike
    roll = gait.roll * np.cos(mid) + turn_lean
    pelvis_rot = quat.mul(quat.mul(_rz(psi + yaw_osc), _rx(np.full_like(t, gait.lean * 0.5))), _rot_about(-_Y, roll))
    spine_rot = quat.mul(
        quat.mul(_rz(psi + 0.3 * yaw_osc), _rx(np.full_like(t, gait.lean * 0.8))), _rot_about(-_Y, 0.5 * turn_lean)
    )
    chest_rot = quat.mul(
        quat.mul(_rz(psi - 0.6 * yaw_osc), _rx(np.full_like(t, gait.lean))), _rot_about(-_Y, 0.3 * turn_lean)
    )
    head_rot = quat.mul(_rz(psi + 0.25 * omega), _rx(np.full_like(t, -0.3 * gait.lean)))
    arms = {}
    for side, _ in _SIDES:
        # each arm swings with the opposite leg: the left arm is back at left heel strike
        c = np.cos(2 * np.pi * phase) * (1.0 if side == "Left" else -1.0)
        flex = gait.arm_flex - gait.arm_swing * c
        elbow = gait.elbow - gait.elbow_swing * c
        arms[side] = _arm_angles(chest_rot, side, flex, np.full_like(t, np.radians(8)), elbow)
    return _Pose(pelvis, pelvis_rot, spine_rot, chest_rot, head_rot, ankles, foot_rots, toe_rots, poles, arms)


# ---------------------------------------------------------------- standing motions


def _keyframes(t: np.ndarray, keys: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Minimum-jerk blend between (time, value) keys, holding before/after."""
    times = np.array([k[0] for k in keys])
    vals = np.stack([np.asarray(k[1], dtype=float) for k in keys])
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(keys) - 2)
    s = _minjerk((t - times[i]) / (times[i + 1] - times[i]))
    s = s.reshape(s.shape + (1,) * (vals.ndim - 1))
    return vals[i] + (vals[i + 1] - vals[i]) * s


def _swing_keyframes(t: np.ndarray, keys: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Like `_keyframes` for points around a pivot: direction along the great circle,
    distance linearly, so a hand swings round the shoulder instead of cutting through it."""
    times = np.array([k[0] for k in keys])
    vals = np.stack([k[1] for k in keys])
    dist = np.linalg.norm(vals, axis=1)
    dirs = vals / dist[:, None]
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(keys) - 2)
    s = _minjerk((t - times[i]) / (times[i + 1] - times[i]))
    rot = quat.between(dirs[i], dirs[i + 1])
    partial = quat.slerp(np.broadcast_to(quat.IDENTITY, rot.shape), rot, s)
    r = dist[i] + (dist[i + 1] - dist[i]) * s
    return quat.rotate(partial, dirs[i]) * r[:, None]


def _planted_feet(nf: int, half_width: float, toe_out: float) -> tuple[dict, dict, dict, dict]:
    g = _geometry()
    ankles, feet, toes, poles = {}, {}, {}, {}
    for side, sx in _SIDES:
        psi = np.full(nf, sx * toe_out)
        ankles[side] = np.tile([sx * half_width, 0.0, g["ankle_height"]], (nf, 1))
        feet[side] = toes[side] = _rz(psi)
        poles[side] = _heading_vectors(psi)[0]
    return ankles, feet, toes, poles


def _squat(t: np.ndarray) -> _Pose:
    g = _geometry()
    nf = len(t)
    ankles, feet, toes, poles = _planted_feet(nf, 0.15, np.radians(12))
    depth = 0.5 * (1 - np.cos(2 * np.pi * t / 2.0))  # 0..1, one squat every 2 s, standing at t = 0
    pelvis = np.stack([np.zeros(nf), 0.16 * depth, g["pelvis_height"] - 0.005 - 0.40 * depth], axis=1)
    pelvis_rot = _rx(np.radians(25) * depth)
    spine_rot = _rx(np.radians(33) * depth)
    chest_rot = _rx(np.radians(38) * depth)
    head_rot = _rx(np.radians(5) * depth)
    arms = {
        side: _arm_angles(
            chest_rot, side, np.radians(10 + 75 * depth), np.full(nf, np.radians(6)), np.full(nf, np.radians(10))
        )
        for side, _ in _SIDES
    }
    return _Pose(pelvis, pelvis_rot, spine_rot, chest_rot, head_rot, ankles, feet, toes, poles, arms)


def _reach(t: np.ndarray) -> _Pose:
    g = _geometry()
    nf = len(t)
    ankles, feet, toes, poles = _planted_feet(nf, 0.11, np.radians(6))
    # Wrist targets are relative to the shoulder (world axes; -Y is forward), which keeps
    # every key within arm's reach; the torso carries the shoulder towards the target.
    hang_l, hang_r = np.array([0.05, 0.0, -0.53]), np.array([-0.05, 0.0, -0.53])
    keys = [  # time, pelvis (x, y, dz), pelvis/spine/chest pitch, chest yaw, left wrist, right wrist
        (0.0, (0, 0, 0), (0, 0, 0), 0.0, hang_l, hang_r),
        (0.8, (0, 0, 0), (0, 0, 0), 0.0, hang_l, hang_r),
        (2.0, (0, 0.02, -0.01), (5, 12, 15), -0.25, hang_l, (-0.08, -0.42, 0.28)),
        (2.6, (0, 0.02, -0.01), (5, 12, 15), -0.25, hang_l, (-0.08, -0.42, 0.28)),
        (3.6, (0, 0, 0), (0, 0, 0), 0.0, hang_l, hang_r),
        (5.0, (0.03, 0.10, -0.14), (20, 30, 35), 0.3, (0.22, -0.32, -0.35), hang_r),
        (5.5, (0.03, 0.10, -0.14), (20, 30, 35), 0.3, (0.22, -0.32, -0.35), hang_r),
        (6.4, (0, 0, 0), (0, 0, 0), 0.0, hang_l, hang_r),
        (7.3, (0, 0, 0), (-2, -3, -5), 0.0, (0.10, -0.04, 0.52), (-0.10, -0.04, 0.52)),
        (8.0, (0, 0, 0), (0, 0, 0), 0.0, hang_l, hang_r),
    ]
    pel = _keyframes(t, [(k[0], np.array(k[1], dtype=float)) for k in keys])
    pitch = np.radians(_keyframes(t, [(k[0], np.array(k[2], dtype=float)) for k in keys]))
    yaw = _keyframes(t, [(k[0], np.array(k[3], dtype=float)) for k in keys])
    wl = _swing_keyframes(t, [(k[0], np.array(k[4], dtype=float)) for k in keys])
    wr = _swing_keyframes(t, [(k[0], np.array(k[5], dtype=float)) for k in keys])
    pelvis = np.stack([pel[:, 0], pel[:, 1], g["pelvis_height"] - 0.005 + pel[:, 2]], axis=1)
    pelvis_rot = _rx(pitch[:, 0])
    spine_rot = quat.mul(_rz(0.4 * yaw), _rx(pitch[:, 1]))
    chest_rot = quat.mul(_rz(yaw), _rx(pitch[:, 2]))
    head_rot = quat.mul(_rz(0.5 * yaw), _rx(0.3 * pitch[:, 2]))
    chest_pos = pelvis + quat.rotate(pelvis_rot, g["spine"]) + quat.rotate(spine_rot, g["chest"])
    arms = {}
    for (side, sx), wrist in zip(_SIDES, (wl, wr)):
        shoulder = chest_pos + quat.rotate(chest_rot, g["shoulder"][side])
        pole = np.tile(np.array([0.35 * sx, 0.5, -0.8]), (nf, 1))
        arms[side] = ("ik", shoulder + wrist, pole)
    return _Pose(pelvis, pelvis_rot, spine_rot, chest_rot, head_rot, ankles, feet, toes, poles, arms)
