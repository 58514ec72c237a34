"""`thfm-synth assets scan DIR`: build a manifest from a folder of asset files.

What a file is comes from its extension and header (see probes.py): BVH -> motion,
.hdr/.exr -> HDRI, a skinned FBX/glTF -> character, any other model or .blend -> scene.
A folder whose name contains "kit" (modular pieces such as a furniture kit) becomes one
scene entry of format `kit`. Licences are read from the nearest LICENSE/README text
above each file; tags (walk, run, dance, ...) from a description of the file found in a
README table. Files that cannot be read are reported and left out.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from thfm_synth.assets.manifest import (
    UNKNOWN_LICENCE,
    CharacterEntry,
    HdriEntry,
    Manifest,
    MotionEntry,
    SceneEntry,
    content_sha256,
)
from thfm_synth.assets import probes
from thfm_synth.errors import UserError

MODEL_EXTS = {".fbx", ".glb", ".gltf", ".blend"}
HDRI_EXTS = {".hdr", ".exr"}
CMU_MB_JOINTS = {
    "Hips",
    "LHipJoint",
    "LeftUpLeg",
    "LeftLeg",
    "LeftFoot",
    "RHipJoint",
    "RightUpLeg",
    "RightLeg",
    "RightFoot",
    "LowerBack",
    "Spine",
    "Spine1",
    "Neck",
    "Head",
    "LeftShoulder",
    "LeftArm",
    "LeftForeArm",
    "LeftHand",
    "RightShoulder",
    "RightArm",
    "RightForeArm",
    "RightHand",
}
MOTION_TAGS = (
    "walk",
    "run",
    "jog",
    "jump",
    "dance",
    "turn",
    "reach",
    "squat",
    "sit",
    "climb",
    "punch",
    "kick",
    "box",
    "swordplay",
    "basketball",
    "dribble",
    "throw",
    "stretch",
    "cartwheel",
    "pirouette",
    "balance",
    "navigate",
    "stride",
    "wave",
)
LICENCE_PATTERNS = (  # first match wins; CMU terms before CC0 because CMU READMEs may cite other data
    ("CMU-Mocap-Terms", re.compile(r"mocap\.cs\.cmu\.edu", re.I)),
    ("CC0-1.0", re.compile(r"\bCC0\b|creative commons zero|public domain dedication", re.I)),
    ("CC-BY-4.0", re.compile(r"\bCC[- ]BY[- ]4\.0\b|attribution 4\.0", re.I)),
    ("CC-BY-3.0", re.compile(r"\bCC[- ]BY[- ]3\.0\b|attribution 3\.0", re.I)),
    ("Apache-2.0", re.compile(r"apache license,? version 2\.0", re.I)),
    ("MIT", re.compile(r"\bMIT License\b", re.I)),
)
NOTE_NAMES = re.compile(r"^(licen[cs]e|copying|readme)[^/]*$", re.I)


@dataclass
class ScanResult:
    manifest: Manifest
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-") or "x"


class _Notes:
    """Licence and description text found in LICENSE/README files above each asset."""

    def __init__(self, top: Path):
        self.top = top
        self._cache: dict[Path, list[Path]] = {}

    def files(self, folder: Path) -> list[Path]:
        if folder not in self._cache:
            own = sorted(
                (p for p in folder.iterdir() if p.is_file() and NOTE_NAMES.match(p.name)),
                key=lambda p: (not p.name.lower().startswith("licen"), p.name),
            )
            parent = [] if folder == self.top or self.top not in folder.parents else self.files(folder.parent)
            self._cache[folder] = own + parent
        return self._cache[folder]

    def licence(self, asset: Path) -> tuple[str, str | None]:
        for note in self.files(asset.parent):
            text = note.read_text(errors="replace")
            for spdx, pattern in LICENCE_PATTERNS:
                if pattern.search(text):
                    return spdx, note.relative_to(self.top).as_posix()
        return UNKNOWN_LICENCE, None

    def tags(self, asset: Path) -> tuple[str, ...]:
        for note in self.files(asset.parent):
            for line in note.read_text(errors="replace").splitlines():
                # Only table rows describe one file; prose that merely mentions it does not.
                if line.lstrip().startswith("|") and re.search(rf"\b{re.escape(asset.stem)}\b", line):
                    desc = line.lower()
                    found = tuple(t for t in MOTION_TAGS if re.search(rf"\b{t}", desc))
                    if found:
                        return found
        return ()


def _motion(path: Path, common: dict, notes: _Notes) -> MotionEntry:
    from thfm_synth.assets.motion.bvh import read_bvh
    from thfm_synth.assets.motion.window import activity_profile

    info = probes.bvh_info(path)
    skeleton = "cmu_mb" if CMU_MB_JOINTS <= set(info.joints) else "unknown"
    # The full read drops a converter T-pose frame and gives the activity profile that
    # planning uses to pick windows with motion; frame counts then match the renderer's.
    clip = read_bvh(path)
    return MotionEntry(
        **common,
        format="bvh",
        fps=clip.fps,
        num_frames=int(clip.local_rotations.shape[0]),
        skeleton=skeleton,
        tags=notes.tags(path),
        activity=tuple(round(a, 4) for a in activity_profile(clip)),
    )


def _scene_type(path: Path) -> str:
    name = path.as_posix().lower()
    if re.search(r"street|road|city|town", name):
        return "street"
    if re.search(r"room|furniture|interior|house|office|kitchen", name):
        return "room"
    return "generic"


def scan(top: str | Path, manifest_dir: str | Path, name: str | None = None) -> ScanResult:
    given = os.path.abspath(top)  # as the user sees it (through symlinks): the root below is written from it
    top = Path(top).resolve()
    if not top.is_dir():
        raise UserError(f"asset folder {top} not found", "give an existing folder to scan")
    manifest_dir = Path(manifest_dir).resolve()
    notes = _Notes(top)
    entries: dict[str, list] = {"characters": [], "motions": [], "hdris": [], "scenes": []}
    skipped: list[str] = []
    ids: set[str] = set()

    def new_id(path: Path) -> str:
        base = f"{_slug(path.parent.name)}-{_slug(path.stem)}"
        aid = base if base not in ids else f"{base}-{_slug(path.suffix.lstrip('.'))}"
        ids.add(aid)
        return aid

    kits = sorted(
        {
            p
            for p in top.rglob("*")
            if p.is_dir()
            and "kit" in p.name.lower()
            and sum(1 for f in p.iterdir() if f.suffix.lower() in MODEL_EXTS) >= 2
        }
    )
    for path in sorted(top.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix not in MODEL_EXTS | HDRI_EXTS | {".bvh"}:
            continue
        if any(k in path.parents for k in kits):
            continue
        rel = path.relative_to(top).as_posix()
        try:
            licence, note = notes.licence(path)
            common = dict(
                id=new_id(path),
                path=rel,
                sha256=content_sha256(path),
                licence=licence,
                source=f"{top.name}/{rel}" + (f" (provenance: {note})" if note else ""),
            )
            if suffix == ".bvh":
                entries["motions"].append(_motion(path, common, notes))
            elif suffix in HDRI_EXTS:
                w, h = probes.hdri_size(path)
                entries["hdris"].append(HdriEntry(**common, format=suffix[1:], width=w, height=h))
            else:
                info = probes.model_info(path)
                if info.rigged:
                    entries["characters"].append(CharacterEntry(**common, format=suffix[1:], rig=info.rig))
                else:
                    entries["scenes"].append(SceneEntry(**common, format=suffix[1:], scene_type=_scene_type(path)))
        except UserError as exc:
            skipped.append(exc.one_line())
        except OSError as exc:
            skipped.append(f"{path}: cannot read ({exc.strerror})")
    for kit in kits:
        rel = kit.relative_to(top).as_posix()
        licence, note = notes.licence(next(p for p in sorted(kit.iterdir()) if p.is_file()))
        entries["scenes"].append(
            SceneEntry(
                id=new_id(kit),
                path=rel,
                sha256=content_sha256(kit),
                licence=licence,
                source=f"{top.name}/{rel}" + (f" (provenance: {note})" if note else ""),
                format="kit",
                scene_type=_scene_type(kit),
            )
        )
    for kind in entries:
        entries[kind].sort(key=lambda e: e.id)
    # Relative, never absolute: a committed manifest must not record the machine it was made on.
    root = Path(os.path.relpath(given, manifest_dir)).as_posix()
    manifest = Manifest(
        name=name or _slug(top.name), description=f"scanned from {root} (relative to this file)", root=root, **entries
    )
    return ScanResult(manifest, skipped)
