"""BVH reader: one parser for the whole project (header probes reuse it).

Accepts any channel order and any subset of rotation channels per joint, position
channels on any joint, CRLF / LF / CR or mixed line endings, tabs and extra spaces,
braces glued to names, and joints without an End Site. Every problem in a file is a
one-line `UserError` naming the file, the line and the fix.

Euler channels compose in the listed order, R = R_c1 @ R_c2 @ R_c3 (the standard BVH
reading; the cgspeed CMU files list Zrotation Yrotation Xrotation, i.e. Rz Ry Rx).
Positions of the root are OFFSET + channel values. Position channels on other joints
are parsed and ignored: our skeletons have rigid bones and the writers that emit them
(6 channels on every joint) repeat the OFFSET there.

The result is in our world frame (Z up, metres, facing -Y): lengths are multiplied
by `scale` and mapped with `BVH_TO_WORLD`; rotations are conjugated by the same map,
so a BVH skeleton has identity bone frames in the world too.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from thfm_synth.conventions import BVH_TO_WORLD
from thfm_synth.errors import UserError
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import END_SUFFIX, MotionClip, Skeleton

#: CMU ASF length units to metres: (1.0 / 0.45) * 2.54 / 100 (CMU FAQ).
CMU_SCALE = 0.056444

_CHANNELS = {
    "xposition": ("P", 0),
    "yposition": ("P", 1),
    "zposition": ("P", 2),
    "xrotation": ("R", "X"),
    "yrotation": ("R", "Y"),
    "zrotation": ("R", "Z"),
}
_TOKEN = re.compile(r"[{}]|[^\s{}]+")
_FIX_HIERARCHY = "repair or re-export the BVH file; its HIERARCHY section is malformed"
_FIX_TRUNCATED = "the file is incomplete: download or export it again"


@dataclasses.dataclass(frozen=True)
class BvhJoint:
    name: str
    parent: int  # index into the joint list, -1 for the root
    offset: tuple[float, float, float]  # file units and axes
    channels: tuple[str, ...]  # lower-case names, file order
    is_end_site: bool
    line: int


@dataclasses.dataclass(frozen=True)
class BvhHeader:
    """What `read_bvh_header` learns without reading the MOTION values."""

    path: str
    joint_names: tuple[str, ...]  # BVH joints (End Sites excluded), file order
    num_frames: int  # as declared by `Frames:`, including any synthetic T-pose frame
    frame_time: float  # seconds
    num_channels: int  # values per frame

    @property
    def fps(self) -> float:
        return frame_rate(self.frame_time)

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) * self.frame_time


def frame_rate(frame_time: float) -> float:
    """Frames per second, snapped to a whole number when the file rounded the frame time.

    Writers print the frame time with a few decimals (cgspeed: .0083333 for 120 fps), so
    1/frame_time is 120.0005; within 0.01 % of an integer we take the integer.
    """
    fps = 1.0 / frame_time
    whole = round(fps)
    return float(whole) if whole > 0 and abs(fps - whole) <= 1e-4 * fps else fps


@dataclasses.dataclass
class _Parsed:
    joints: list[BvhJoint]
    num_frames: int
    frame_time: float
    frames_line: int
    data_line: int  # first line after `Frame Time:`
    data_offset: int  # character offset of that line in the normalised text


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_header(text: str, path: str) -> _Parsed:
    """Parse HIERARCHY and the two MOTION header lines of newline-normalised text."""
    lines = text.split("\n")
    tokens: list[tuple[str, int]] = []
    motion_line = None
    for ln, line in enumerate(lines, 1):
        words = _TOKEN.findall(line)
        if words and words[0].upper() == "MOTION":
            motion_line = ln
            if len(words) > 1:
                raise UserError(f"{path}: line {ln}: unexpected text after MOTION", _FIX_HIERARCHY)
            break
        tokens.extend((w, ln) for w in words)
    if not tokens or tokens[0][0].upper() != "HIERARCHY":
        where = tokens[0][1] if tokens else 1
        raise UserError(
            f"{path}: line {where}: not a BVH file (it must start with HIERARCHY)", "pass a BVH motion file"
        )
    joints = _parse_hierarchy(tokens, path, last_line=motion_line or len(lines))
    if motion_line is None:
        raise UserError(f"{path}: line {len(lines)}: file ends before the MOTION section", _FIX_TRUNCATED)

    # `Frames:` and `Frame Time:` follow MOTION (blank lines tolerated).
    ln = motion_line
    offset = sum(len(x) + 1 for x in lines[:motion_line])

    def next_words() -> tuple[list[str], int]:
        nonlocal ln, offset
        while ln < len(lines):
            words = lines[ln].split()
            offset += len(lines[ln]) + 1
            ln += 1
            if words:
                return words, ln
        raise UserError(f"{path}: line {ln}: file ends inside the MOTION header", _FIX_TRUNCATED)

    words, frames_line = next_words()
    joined = " ".join(words)
    m = re.fullmatch(r"frames\s*:?\s*(\S+)", joined, flags=re.IGNORECASE)
    if not m:
        raise UserError(
            f"{path}: line {frames_line}: expected 'Frames: <count>', found {joined!r}",
            "write the frame count as 'Frames: N' after MOTION",
        )
    try:
        num_frames = int(m.group(1))
    except ValueError:
        raise UserError(
            f"{path}: line {frames_line}: frame count {m.group(1)!r} is not a whole number",
            "write the frame count as 'Frames: N' after MOTION",
        ) from None
    if num_frames < 1:
        raise UserError(
            f"{path}: line {frames_line}: the file declares {num_frames} frames",
            "export the motion with at least one frame",
        )
    words, time_line = next_words()
    joined = " ".join(words)
    m = re.fullmatch(r"frame\s*time\s*:?\s*(\S+)", joined, flags=re.IGNORECASE)
    if not m:
        raise UserError(
            f"{path}: line {time_line}: expected 'Frame Time: <seconds>', found {joined!r}",
            "write 'Frame Time: <seconds per frame>' after the Frames line",
        )
    try:
        frame_time = float(m.group(1))
    except ValueError:
        frame_time = float("nan")
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise UserError(
            f"{path}: line {time_line}: frame time {m.group(1)!r} is not a positive number of seconds",
            "set 'Frame Time:' to the seconds per frame, e.g. 0.0083333 for 120 fps",
        )
    return _Parsed(joints, num_frames, frame_time, frames_line, ln + 1, offset)


def _parse_hierarchy(tokens: list[tuple[str, int]], path: str, last_line: int) -> list[BvhJoint]:
    pos = 1  # after HIERARCHY
    joints: list[BvhJoint] = []

    def peek() -> tuple[str, int]:
        if pos >= len(tokens):
            raise UserError(
                f"{path}: line {last_line}: the HIERARCHY ends early (a '}}' or a block is missing)", _FIX_HIERARCHY
            )
        return tokens[pos]

    def take(expected: str | None = None) -> tuple[str, int]:
        nonlocal pos
        tok, ln = peek()
        if expected is not None and tok.upper() != expected.upper():
            raise UserError(f"{path}: line {ln}: expected {expected!r}, found {tok!r}", _FIX_HIERARCHY)
        pos += 1
        return tok, ln

    def numbers(count: int, what: str, ln: int) -> tuple[float, ...]:
        vals = []
        for _ in range(count):
            tok, tl = take()
            try:
                v = float(tok)
            except ValueError:
                raise UserError(f"{path}: line {tl}: {what} value {tok!r} is not a number", _FIX_HIERARCHY) from None
            if not np.isfinite(v):
                raise UserError(f"{path}: line {tl}: {what} value {tok!r} is not finite", _FIX_HIERARCHY)
            vals.append(v)
        return tuple(vals)

    def block(name: str, parent: int, line: int, end_site: bool) -> None:
        take("{")
        tok, ln = take("OFFSET")
        offset = numbers(3, "OFFSET", ln)
        channels: tuple[str, ...] = ()
        if not end_site and peek()[0].upper() == "CHANNELS":
            _, cl = take()
            tok, tl = take()
            try:
                n = int(tok)
            except ValueError:
                raise UserError(
                    f"{path}: line {tl}: CHANNELS count {tok!r} is not a whole number", _FIX_HIERARCHY
                ) from None
            names = []
            for _ in range(n):
                ch, chl = take()
                if ch.lower() not in _CHANNELS:
                    raise UserError(
                        f"{path}: line {chl}: unknown channel {ch!r} of joint {name!r} "
                        f"(CHANNELS {n} needs {n} names from Xposition..Zrotation)",
                        _FIX_HIERARCHY,
                    )
                names.append(ch.lower())
            if len(set(names)) != len(names):
                raise UserError(f"{path}: line {cl}: joint {name!r} lists a channel twice", _FIX_HIERARCHY)
            channels = tuple(names)
        elif not end_site:
            raise UserError(f"{path}: line {peek()[1]}: joint {name!r} has no CHANNELS line", _FIX_HIERARCHY)
        index = len(joints)
        joints.append(BvhJoint(name, parent, offset, channels, end_site, line))  # type: ignore[arg-type]
        while True:
            tok, ln = peek()
            up = tok.upper()
            if up == "}":
                take()
                return
            if end_site:
                raise UserError(f"{path}: line {ln}: an End Site may hold only OFFSET, found {tok!r}", _FIX_HIERARCHY)
            if up == "JOINT":
                take()
                child, cl = take()
                if child in "{}":
                    raise UserError(f"{path}: line {cl}: JOINT without a name", _FIX_HIERARCHY)
                block(child, index, cl, False)
            elif up == "END":
                _, el = take()
                take("Site")
                block(f"{name}{END_SUFFIX}", index, el, True)
            else:
                raise UserError(
                    f"{path}: line {ln}: expected JOINT, End Site or '}}' in joint {name!r}, found {tok!r}",
                    _FIX_HIERARCHY,
                )

    tok, ln = take("ROOT")
    root, rl = take()
    if root in "{}":
        raise UserError(f"{path}: line {rl}: ROOT without a name", _FIX_HIERARCHY)
    block(root, -1, rl, False)
    if pos < len(tokens):
        tok, ln = tokens[pos]
        what = "a second skeleton (ROOT)" if tok.upper() == "ROOT" else f"unexpected {tok!r}"
        raise UserError(
            f"{path}: line {ln}: {what} after the skeleton; expected MOTION",
            "keep one skeleton per BVH file" if tok.upper() == "ROOT" else _FIX_HIERARCHY,
        )
    # End Sites are named after their joint; keep names unique if a writer reuses one.
    seen: set[str] = set()
    for i, j in enumerate(joints):
        if j.name in seen:
            if not j.is_end_site:
                raise UserError(
                    f"{path}: line {j.line}: joint name {j.name!r} is used twice", "give every JOINT a unique name"
                )
            k = 2
            while f"{j.name}{k}" in seen:
                k += 1
            joints[i] = dataclasses.replace(j, name=f"{j.name}{k}")
        seen.add(joints[i].name)
    return joints


def _read_text(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"BVH file {p} does not exist", "check the path") from None
    except IsADirectoryError:
        raise UserError(f"BVH path {p} is a folder, not a file", "pass a .bvh file") from None
    except PermissionError:
        raise UserError(f"BVH file {p} is not readable (permission denied)", "fix the file permissions") from None
    return _normalise_newlines(_decode(raw))


def read_bvh_header(path: str | os.PathLike) -> BvhHeader:
    """Joint names, declared frame count and frame time, reading only the header bytes."""
    p = Path(path)
    chunks: list[bytes] = []
    try:
        with open(p, "rb") as fh:
            while True:
                chunk = fh.read(1 << 16)
                chunks.append(chunk)
                # The header ends with the line after `Frame Time`; stop once it is complete.
                if not chunk or re.search(rb"frame\s*time[^\r\n]*[\r\n]", b"".join(chunks[-2:]), re.IGNORECASE):
                    break
    except FileNotFoundError:
        raise UserError(f"BVH file {p} does not exist", "check the path") from None
    except IsADirectoryError:
        raise UserError(f"BVH path {p} is a folder, not a file", "pass a .bvh file") from None
    text = _normalise_newlines(_decode(b"".join(chunks)))
    parsed = _parse_header(text, str(p))
    names = tuple(j.name for j in parsed.joints if not j.is_end_site)
    channels = sum(len(j.channels) for j in parsed.joints)
    return BvhHeader(str(p), names, parsed.num_frames, parsed.frame_time, channels)


def read_bvh(path: str | os.PathLike, scale: float = CMU_SCALE, skip_tpose: bool | str = "auto") -> MotionClip:
    """Read a BVH file into a MotionClip in our world frame (metres, Z up, facing -Y).

    `scale` converts file units to metres (default: CMU units). `skip_tpose`: True drops
    frame 0, False keeps it, "auto" drops it only when it is a synthetic T-pose frame
    (see `is_synthetic_tpose`).
    """
    return parse_bvh(_read_text(path), source=str(path), scale=scale, skip_tpose=skip_tpose)


def parse_bvh(
    text: str, source: str = "<string>", scale: float = CMU_SCALE, skip_tpose: bool | str = "auto"
) -> MotionClip:
    """`read_bvh` on text already in memory (`source` names it in errors)."""
    if not (np.isfinite(scale) and scale > 0):
        raise UserError(f"BVH scale {scale!r} for {source} must be a positive number", "pass scale > 0")
    if skip_tpose not in (True, False, "auto"):
        raise UserError(
            f"skip_tpose={skip_tpose!r} for {source} is not one of True, False, 'auto'", "pass True, False or 'auto'"
        )
    text = _normalise_newlines(text)
    parsed = _parse_header(text, source)
    joints = parsed.joints
    num_channels = sum(len(j.channels) for j in joints)
    values = _motion_values(text, parsed, num_channels, source)
    frames = values.reshape(parsed.num_frames, num_channels)

    drop = False
    if parsed.num_frames >= 2:
        drop = bool(skip_tpose) if skip_tpose != "auto" else is_synthetic_tpose(joints, frames)
    if drop:
        frames = frames[1:]
    skeleton, trans, rots = _to_world(joints, frames, scale, source)
    return MotionClip(
        skeleton,
        frame_rate(parsed.frame_time),
        trans,
        rots,
        source=source,
        source_start=parsed.frame_time if drop else 0.0,
    )


def _motion_values(text: str, parsed: _Parsed, num_channels: int, source: str) -> np.ndarray:
    data = text[parsed.data_offset :] if parsed.data_offset < len(text) else ""
    expected = parsed.num_frames * num_channels
    try:
        values = np.array(data.split(), dtype=np.float64)
        bad = not np.all(np.isfinite(values))
    except ValueError:
        bad = True
    if bad:
        for ln, line in enumerate(data.split("\n"), parsed.data_line):
            for tok in line.split():
                try:
                    ok = np.isfinite(float(tok))
                except ValueError:
                    ok = False
                if not ok:
                    raise UserError(
                        f"{source}: line {ln}: MOTION value {tok!r} is not a finite number",
                        "repair or re-export the BVH file",
                    )
    if values.size == expected:
        return values
    lines = data.split("\n")
    # A frame per line is the norm; point at the first line that breaks it, if any.
    counts = [(ln, len(line.split())) for ln, line in enumerate(lines, parsed.data_line) if line.strip()]
    last_line = counts[-1][0] if counts else parsed.data_line - 1
    complete = values.size // num_channels if num_channels else 0
    if values.size < expected:
        odd = [ln for ln, c in counts[:-1] if c != num_channels]
        where = odd[0] if odd else last_line
        raise UserError(
            f"{source}: line {where}: MOTION data ends after {complete} complete frames of the "
            f"{parsed.num_frames} declared on line {parsed.frames_line} ({values.size} of {expected} values, "
            f"{num_channels} per frame)",
            _FIX_TRUNCATED + ", or correct the 'Frames:' count",
        )
    odd = [ln for ln, c in counts if c != num_channels]
    where = odd[0] if odd else (counts[parsed.num_frames][0] if len(counts) > parsed.num_frames else last_line)
    raise UserError(
        f"{source}: line {where}: MOTION holds {values.size} values but 'Frames: {parsed.num_frames}' on line "
        f"{parsed.frames_line} with {num_channels} channels needs {expected}",
        "correct the 'Frames:' count or remove the extra values",
    )


def is_synthetic_tpose(joints: list[BvhJoint], frames: np.ndarray) -> bool:
    """Is frame 0 a T-pose that a converter prepended (cgspeed CMU release and the like)?

    All three must hold, so a real capture that happens to start still is kept:
      1. every rotation value in frame 0 is a whole number of degrees (converters
         write hand-typed angles such as 0, -21, 11; captured angles practically never
         are all integers);
      2. the root position of frame 0 equals that of frame 1 (the converter copies it);
      3. the pose jumps from frame 0 to frame 1 by more than 5 degrees on some channel
         and more than 3x the largest frame-to-frame change of the following second
         (95th percentile, angles wrapped), i.e. frame 0 is not part of the motion.
    """
    if frames.shape[0] < 3:
        return False
    rot_cols, pos_cols = [], []
    col = 0
    for j in joints:
        for ch in j.channels:
            if _CHANNELS[ch][0] == "R":
                rot_cols.append(col)
            elif j.parent == -1:
                pos_cols.append(col)
            col += 1
    if not rot_cols:
        return False
    r0 = frames[0, rot_cols]
    if np.any(np.abs(r0 - np.round(r0)) > 1e-6):
        return False
    if pos_cols and np.any(np.abs(frames[0, pos_cols] - frames[1, pos_cols]) > 1e-6):
        return False

    def wrapped(a: np.ndarray) -> np.ndarray:
        return np.abs((a + 180.0) % 360.0 - 180.0)

    jump = wrapped(frames[1, rot_cols] - r0).max()
    later = frames[1 : min(frames.shape[0], 122)][:, rot_cols]
    steps = wrapped(np.diff(later, axis=0)).max(axis=1)
    typical = np.percentile(steps, 95) if steps.size else 0.0
    return bool(jump > 5.0 and jump > 3.0 * typical)


_C_QUAT = quat.from_matrix(BVH_TO_WORLD)


def _to_world(
    joints: list[BvhJoint], frames: np.ndarray, scale: float, source: str
) -> tuple[Skeleton, np.ndarray, np.ndarray]:
    nf = frames.shape[0]
    nj = len(joints)
    offsets = np.array([j.offset for j in joints], dtype=np.float64) * scale
    offsets = offsets @ BVH_TO_WORLD.T
    parents = np.array([j.parent for j in joints])
    rot_bvh = np.broadcast_to(quat.IDENTITY, (nf, nj, 4)).copy()
    trans_bvh = np.broadcast_to(np.array(joints[0].offset, dtype=np.float64), (nf, 3)).copy()
    col = 0
    for k, j in enumerate(joints):
        if not j.channels:
            continue
        cols = np.arange(col, col + len(j.channels))
        col += len(j.channels)
        axes = "".join(_CHANNELS[c][1] for c in j.channels if _CHANNELS[c][0] == "R")
        rcols = [c for c, ch in zip(cols, j.channels) if _CHANNELS[ch][0] == "R"]
        if axes:
            rot_bvh[:, k] = quat.from_euler_channels(frames[:, rcols], axes)
        if k == 0:
            for c, ch in zip(cols, j.channels):
                kind, axis = _CHANNELS[ch]
                if kind == "P":
                    trans_bvh[:, axis] += frames[:, c]
    # World-frame rotation of a BVH-frame rotation R is C R C^T.
    rots = quat.mul(quat.mul(_C_QUAT, rot_bvh), quat.conj(_C_QUAT))
    trans = (trans_bvh * scale) @ BVH_TO_WORLD.T
    names = tuple(j.name for j in joints)
    rest = np.broadcast_to(quat.IDENTITY, (nj, 4))
    skeleton = Skeleton(names, parents, offsets, rest, name=Path(source).stem or source)
    return skeleton, trans, rots
