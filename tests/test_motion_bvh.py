"""BVH reader: every CMU clip, robustness to formatting, and one-line errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motion_testdata import CMU_DIR, clip, cmu_params, needs_cmu
from thfm_synth.errors import UserError
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.bvh import parse_bvh, read_bvh, read_bvh_header

CMU_JOINTS = 31


@pytest.mark.parametrize("clip_id", cmu_params())
def test_every_cmu_clip_parses(clip_id):
    c = clip(clip_id)
    header = read_bvh_header(CMU_DIR / f"{clip_id}.bvh")
    assert len(header.joint_names) == CMU_JOINTS and header.num_channels == 96
    assert header.fps == 120.0 and c.fps == 120.0
    # the synthetic T-pose frame 0 is detected and dropped
    assert c.num_frames == header.num_frames - 1
    assert c.source_start == pytest.approx(header.frame_time)
    assert c.skeleton.names[:1] == ("Hips",) and c.skeleton.num_joints == CMU_JOINTS + 7  # + End Sites
    pos, _ = c.forward_kinematics()
    # world frame: Z up, metres; head above hips, feet near the floor
    head = pos[:, c.skeleton.index["Head"], 2]
    hips = pos[:, 0, 2]
    assert np.median(head - hips) > 0.3
    assert 0.6 < np.median(hips) < 1.3 or clip_id in ("01_14", "03_01")


def _text(clip_id="09_05"):
    return (CMU_DIR / f"{clip_id}.bvh").read_text()


def _same_motion(a, b, atol=1e-9):
    pa, _ = a.forward_kinematics()
    pb, _ = b.forward_kinematics()
    common = [n for n in a.skeleton.names if n in b.skeleton.index]
    ia = [a.skeleton.index[n] for n in common]
    ib = [b.skeleton.index[n] for n in common]
    np.testing.assert_allclose(pa[:, ia], pb[:, ib], atol=atol)


@needs_cmu
@pytest.mark.parametrize("newline", ["\r\n", "\r", "mixed"])
def test_line_endings_parse_to_the_same_motion(newline):
    text = _text()
    ref = parse_bvh(text, "lf.bvh")
    lines = text.split("\n")
    if newline == "mixed":  # the release zip itself mixes CRLF and LF
        out = "".join(line + ("\r\n" if i % 3 else "\n") for i, line in enumerate(lines))
    else:
        out = newline.join(lines)
    _same_motion(ref, parse_bvh(out, "other.bvh"))


@needs_cmu
def test_tabs_and_extra_whitespace():
    text = _text()
    messy = re.sub(r"\t", "  \t ", text).replace(" ", "   ").replace("{", "  {  ")
    messy = messy.replace("Frames:   ", "Frames:").replace("Frame   Time:   ", "Frame Time:\t")
    _same_motion(parse_bvh(text, "a.bvh"), parse_bvh(messy, "b.bvh"))


@needs_cmu
def test_missing_end_sites():
    text = _text()
    no_end = re.sub(r"[ \t]*End Site\s*\{[^{}]*\}\s*\n", "", text)
    assert "End Site" not in no_end
    a, b = parse_bvh(text, "a.bvh"), parse_bvh(no_end, "b.bvh")
    assert b.skeleton.num_joints == a.skeleton.num_joints - 7
    _same_motion(a, b)


def _write_bvh(joints, frames, frame_time):
    """Minimal BVH writer for tests: joints = (name, parent, offset, channels, end_offset|None)."""
    kids = {i: [k for k, j in enumerate(joints) if j[1] == i] for i in range(len(joints))}
    out = ["HIERARCHY"]

    def emit(i, depth):
        name, parent, off, chans, end = joints[i]
        pad = "\t" * depth
        out.append(f"{pad}{'ROOT' if parent < 0 else 'JOINT'} {name}")
        out.append(pad + "{")
        out.append(f"{pad}\tOFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        out.append(f"{pad}\tCHANNELS {len(chans)} {' '.join(chans)}")
        for k in kids[i]:
            emit(k, depth + 1)
        if end is not None:
            out.extend([f"{pad}\tEnd Site", pad + "\t{", f"{pad}\t\tOFFSET {end[0]} {end[1]} {end[2]}", pad + "\t}"])
        out.append(pad + "}")

    emit(0, 0)
    out += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time}"]
    out += [" ".join(f"{v:.10f}" for v in row) for row in frames]
    return "\n".join(out) + "\n"


@needs_cmu
def test_other_channel_orders_and_subsets_give_the_same_motion():
    """Rewrite a clip with XYZ / YXZ Euler orders, a shuffled root, and 1-channel joints."""
    from thfm_synth.assets.motion.bvh import _normalise_newlines, _parse_header

    text = _normalise_newlines(_text())
    parsed = _parse_header(text, "x")
    values = np.array(text[parsed.data_offset :].split(), dtype=float).reshape(parsed.num_frames, -1)
    src_joints = [j for j in parsed.joints if not j.is_end_site]
    ends = {j.parent: j.offset for j in parsed.joints if j.is_end_site}
    index_of = {id(j): k for k, j in enumerate(parsed.joints)}
    # map parents from the full list (with End Sites) to the joint-only list
    full_to_joint = {}
    for k, j in enumerate(parsed.joints):
        if not j.is_end_site:
            full_to_joint[k] = len(full_to_joint)
    orders = ["XYZ", "YXZ", "ZXY", "XZY", "YZX"]
    joints = []
    col = 0
    new_cols = []
    for n, j in enumerate(src_joints):
        full = index_of[id(j)]
        if j.parent < 0:
            pos, rot = values[:, col : col + 3], values[:, col + 3 : col + 6]
            col += 6
        else:
            pos, rot = None, values[:, col : col + 3]
            col += 3
        r = Rotation.from_euler("ZYX", rot, degrees=True)  # file order Zrotation Yrotation Xrotation
        zero = np.allclose(rot, 0.0)
        if zero and j.parent >= 0:
            chans, data = ["Zrotation"], np.zeros((len(rot), 1))  # a subset: one channel only
        else:
            order = orders[n % len(orders)]
            chans = [f"{a}rotation" for a in order]
            data = r.as_euler(order, degrees=True)
        if pos is not None:  # root: rotations first, positions last, in another order
            chans = chans + ["Zposition", "Xposition", "Yposition"]
            data = np.concatenate([data, pos[:, [2, 0, 1]]], axis=1)
        joints.append((j.name, full_to_joint.get(j.parent, -1), j.offset, chans, ends.get(full)))
        new_cols.append(data)
    frames = np.concatenate(new_cols, axis=1)
    rewritten = _write_bvh(joints, frames, parsed.frame_time)
    a = parse_bvh(text, "orig.bvh")
    b = parse_bvh(rewritten, "rewritten.bvh")
    _same_motion(a, b, atol=1e-7)
    # rotations agree too (up to the sign of the quaternion)
    d = np.abs(np.sum(a.local_rotations * b.local_rotations, axis=-1))
    assert d.min() > 1 - 1e-9


@needs_cmu
def test_tpose_detection_keeps_real_first_frames():
    text = _text()
    lines = text.split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("Frame Time"))
    n = int(lines[i - 1].split()[1])
    without = "\n".join(lines[: i - 1] + [f"Frames: {n - 1}", lines[i]] + lines[i + 2 :])
    auto = parse_bvh(without, "no-tpose.bvh")
    assert auto.num_frames == n - 1 and auto.source_start == 0.0
    assert parse_bvh(text, "x", skip_tpose=False).num_frames == n
    assert parse_bvh(text, "x", skip_tpose=True).num_frames == n - 1
    assert parse_bvh(text, "x", skip_tpose="auto").num_frames == n - 1


def _error(text, name="bad.bvh"):
    with pytest.raises(UserError) as info:
        parse_bvh(text, name)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and "fix:" in msg
    return msg


@needs_cmu
def test_truncated_files_give_one_line_errors():
    text = _text()
    lines = text.rstrip("\n").split("\n")
    # cut in the middle of a frame line, 10 frames before the end
    cut = "\n".join(lines[:-10]) + "\n" + lines[-10][: len(lines[-10]) // 2]
    msg = _error(cut)
    assert f"line {len(lines) - 9}" in msg and "after 134 complete frames of the 144 declared" in msg
    # whole frames missing
    msg = _error("\n".join(lines[:-3]) + "\n")
    assert "after 141 complete frames" in msg and f"line {len(lines) - 3}" in msg
    # cut inside the hierarchy
    msg = _error("\n".join(lines[:40]))
    assert "line 40" in msg and "HIERARCHY ends early" in msg
    # file that stops right after MOTION
    msg = _error(text[: text.index("MOTION") + 7])
    assert "ends inside the MOTION header" in msg


@needs_cmu
@pytest.mark.parametrize(
    "old,new,expect",
    [
        ("CHANNELS 3 Zrotation Yrotation Xrotation", "CHANNELS 3 Zrotation Yrotation Wrotation", "unknown channel"),
        ("\tJOINT LHipJoint\n\t{", "\tJOINT LHipJoint\n\t(", "expected '{'"),
        ("OFFSET 0 0 0", "OFFSET 0 zero 0", "not a number"),
        ("HIERARCHY", "HIERARCHX", "not a BVH file"),
        ("Frame Time: .0083333", "Frame Time: 0", "not a positive number"),
        ("Frame Time: .0083333", "Frame Time: -0.01", "not a positive number"),
        ("Frame Time: .0083333", "Frame Time: abc", "not a positive number"),
        ("Frames: 144", "Frames: 0", "declares 0 frames"),
        ("Frames: 144", "Frames: many", "not a whole number"),
        ("Frames: 144", "Frames: 140", "needs"),
        ("MOTION", "MOTIONS", "expected"),
    ],
)
def test_malformed_files_give_one_line_errors(old, new, expect):
    text = _text("09_05")
    assert old in text
    msg = _error(text.replace(old, new, 1))
    assert expect in msg and "line " in msg


@needs_cmu
def test_non_numeric_motion_value_names_the_line():
    text = _text("09_05")
    lines = text.split("\n")
    k = len(lines) - 20
    parts = lines[k].split()
    parts[7] = "1.2.3"
    lines[k] = " ".join(parts)
    msg = _error("\n".join(lines))
    assert f"line {k + 1}" in msg and "'1.2.3'" in msg


def test_file_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_bvh(tmp_path / "missing.bvh")
    with pytest.raises(UserError, match="folder"):
        read_bvh(tmp_path)
    (tmp_path / "empty.bvh").write_text("")
    with pytest.raises(UserError, match="not a BVH file"):
        read_bvh(tmp_path / "empty.bvh")


def test_minimal_file_with_partial_channels_and_root_without_positions():
    text = """HIERARCHY
ROOT A { OFFSET 1 2 3 CHANNELS 1 Yrotation
  JOINT B { OFFSET 0 1 0 CHANNELS 2 Xrotation Xposition } }
MOTION
Frames: 2
Frame Time: 0.04
90 45 7
0 0 0
"""
    c = parse_bvh(text, "tiny.bvh", scale=1.0)
    assert c.fps == 25.0 and c.num_frames == 2  # never a T-pose with fewer than 3 frames
    np.testing.assert_allclose(c.root_translation, [[1, -3, 2]] * 2)  # BVH (x, y, z) -> (x, -z, y)
    pos, _ = c.forward_kinematics()
    # A's 90 degrees about BVH Y (world Z) leaves B (straight up) in place; B's own X rotation too
    np.testing.assert_allclose(pos[0, 1], [1, -3, 3], atol=1e-12)
    q = c.local_rotations[0, 0]
    np.testing.assert_allclose(np.abs(q), np.abs(quat.from_axis_angle(np.array([0, 0, 1.0]), np.pi / 2)), atol=1e-12)
