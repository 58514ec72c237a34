"""Every name that crosses the Blender boundary, written once. Standard library only.

Both sides import this file: the main environment as `thfm_synth.blender.contract`, and the
scripts in `blender_scripts/` (Blender's own Python: bpy, numpy 1.26, the standard library) by
file path through `blender_scripts/bridge.py`, which must therefore never need anything but
the standard library here.

What lives here: the script names, the job protocol (one JSON document in, one JSON document
out, error kinds), the scene-description folder format version, the modalities a render
makes, the mesh attributes, object properties, AOVs, view layers and EXR channel names the
renderer writes and `thfm_synth.render.outputs` reads. Adding a modality starts here (see the
README, "Adding a modality").
"""

from __future__ import annotations

import errno
import json
import os
import sys
import traceback
from dataclasses import asdict, dataclass, field, fields

CONTRACT_VERSION = 1

# --------------------------------------------------------------------------- scripts
# blender_scripts/<name>: each handles one kind of job (see the dataclasses below).
SCRIPT_PROBE = "probe.py"  # report Blender's version, Python, numpy
SCRIPT_RENDER = "render_scene.py"  # render a scene-description folder (RenderJob)
SCRIPT_SCENE_PROBE = "scene_probe.py"  # objects and walkability height maps of a scene file (SceneProbeJob)
SCRIPT_CHARACTER_IMPORT = "character_import.py"  # rigged FBX/GLB/glTF -> raw npz (CharacterImportJob)
SCRIPT_POSECHECK = "character_posecheck.py"  # pose a baked character with Blender's armature (PosecheckJob)
SCRIPT_CHARACTER_PREVIEW = "character_preview.py"  # a quick look at baked characters (CharacterPreviewJob)

# --------------------------------------------------------------------------- job protocol
# The parent writes JOB_FILE (a JSON object: {"script", "contract", "job": {...}}) and starts
# `<blender> <script> -- JOB_FILE`, or sends one line {"job": JOB_FILE} to a child started with
# SERVE_FLAG. The script writes the JSON result next to the job file as RESULT_FILE, atomically
# (temporary name, then rename): {"ok": true, "result": {...}, "warnings": [...]} or
# {"ok": false, "error": {"kind": one of ERROR_KINDS, "what", "fix", "traceback"}, "warnings": [...]}.
# The child's stdout/stderr are a log; nothing is parsed from them.
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
SERVE_FLAG = "--serve"
ERROR_BAD_INPUT = "bad_input"  # the job's input is wrong (missing/corrupt file, unsupported content): do not retry
ERROR_DISK_FULL = "disk_full"  # no space left while writing: stop, do not retry
ERROR_CRASH = "crash"  # anything else (a bug, Blender failing): a retry may succeed
ERROR_KINDS = (ERROR_BAD_INPUT, ERROR_DISK_FULL, ERROR_CRASH)
PROGRESS_TAG = "THFM_PROGRESS"  # stdout line prefix of a progress record (JSON), for the log's reader

# --------------------------------------------------------------------------- scene description
SCENE_FORMAT_VERSION = 1  # thfm_synth/render/description.py writes it, render_scene.py checks it
SCENE_JSON = "scene.json"
ARRAYS_NPZ = "arrays.npz"
RENDER_INFO = "render_info.json"  # written by render_scene.py beside the raw frames
RAW_DIR = "raw"  # render_scene.py: OUT/raw/NNNNN.exr, one multilayer EXR per frame
# Procedural PBR surfaces of set pieces (Material.surface): render_scene.py builds each from
# Blender's procedural textures in object-space metres, so a wall of any size gets bricks of one size
SURFACES = ("plaster", "concrete", "asphalt", "brick", "tiles", "wood", "fabric")

# --------------------------------------------------------------------------- modalities
# What one render call can make (render_scene.py); the stored files are STORED_MODALITIES.
RENDER_MODALITIES = ("rgb", "mask", "depth", "normal", "part", "canonical", "flow", "albedo")
RENDER_LABEL_MODALITIES = ("depth", "normal", "part", "canonical", "flow")  # made in the 1-sample label layer
DEFAULT_RENDER_MODALITIES = ("rgb", "mask", "depth", "normal", "part", "canonical")  # flow, albedo: optional
RENDER_MODES = ("single", "per_modality", "rgb_only")  # per_modality and rgb_only: benchmark baselines
PER_MODALITY_SHADINGS = ("label", "full")
# Stored per frame in a video folder (thfm_synth/render/outputs.py owns the file formats).
STORED_MODALITIES = (
    "rgb",
    "depth",
    "normal",
    "mask",
    "iuv",
    "canonical",
    "instance",
    "flow",
    "albedo",
    "rgb_linear",
    "people",
)
STORED_LABEL_MODALITIES = ("depth", "normal", "mask", "iuv", "canonical", "instance")
OPTIONAL_STORED_MODALITIES = ("flow", "albedo", "rgb_linear", "people")  # written when asked / when present
DEVICES = ("cpu", "cuda", "optix")

# --------------------------------------------------------------------------- mesh attributes
# A mesh joins the label passes by carrying these attributes, and the mask by the object property.
ATTR_PART = "thfm_part"  # FACE float: DensePose part 1..24 (0 = none)
ATTR_PART_UV = "thfm_part_uv"  # CORNER float vector (u, v, 0): the part's chart UV
ATTR_CANONICAL = "thfm_canonical"  # POINT float vector: canonical coordinates in [0, 1]^3
PROP_SUBJECT = "thfm_subject"  # object custom property: 1.0 on subjects (mask), 0.0 elsewhere
# Optical flow: a moving object (per-frame pose or vertex animation) carries the world position
# of each vertex one frame later and one frame earlier; static objects use the shading position.
ATTR_POS_NEXT = "thfm_pos_next"  # POINT float vector: world position at frame t+1, metres
ATTR_POS_PREV = "thfm_pos_prev"  # POINT float vector: world position at frame t-1, metres
PROP_MOVING = "thfm_moving"  # object custom property: 1.0 when it carries ATTR_POS_NEXT/PREV
# Several people: each person object carries its number (1..MAX_PEOPLE; 0 = not a person), and every
# material writes one coverage AOV per person (AOV_PERSON k: 1 on person k), so each person's soft
# mask is its own coverage over the RGB samples; they sum to the `fg` union exactly.
PROP_PERSON = "thfm_person"
MAX_PEOPLE = 8

# --------------------------------------------------------------------------- AOVs and layers
AOV_FG = "fg"  # subject coverage (the object's PROP_SUBJECT), averaged over the RGB samples
AOV_PART = "part"
AOV_PART_UV = ("part_u", "part_v")
AOV_CANONICAL = ("can_x", "can_y", "can_z")
AOV_POS_NEXT = ("nx_x", "nx_y", "nx_z")  # world position of the pixel-centre surface point at t+1
AOV_POS_PREV = ("pv_x", "pv_y", "pv_z")  # ... and at t-1
FLOW_AOVS = (*AOV_POS_NEXT, *AOV_POS_PREV)  # declared only when a job asks for flow
LABEL_AOVS = (AOV_PART, *AOV_PART_UV, *AOV_CANONICAL)


def aov_person(k: int) -> str:
    return f"person{k}"


def person_aovs(n: int) -> tuple[str, ...]:
    """The per-person coverage AOVs of a scene with n people (none for one person)."""
    return tuple(aov_person(k) for k in range(1, n + 1)) if n > 1 else ()


def ch_person(k: int, layer: str | None = None) -> str:
    return channel(layer or LAYER_RGB, aov_person(k), "X")


AOVS = (AOV_FG, *LABEL_AOVS)
LAYER_RGB = "rgb"  # N samples, denoised; the fg AOV
LAYER_LABELS = "labels"  # 1 sample (the pixel-centre ray), label material override
# The mask's own layer: `mask_samples` fixed samples, a coverage-only override material (paths end
# at the first opaque hit; alpha cards keep their per-sample 0/1 gate), never denoised, never adaptive
# (a separate render call when the RGB adapts: Cycles' adaptive sampling is per scene, not per
# layer). Its fg and person AOVs are exactly k/mask_samples; decode prefers them to the RGB layer's.
LAYER_MASK = "mask"


def mask_layer(render: dict) -> bool:
    """Whether the description's render settings (its scene.json `render`, a dict) put the mask in
    LAYER_MASK: when the RGB adapts or the mask's sample count differs. Otherwise the mask stays the
    RGB layer's fg AOV (one layer fewer; the renders of older datasets byte for byte)."""
    mask_samples = render.get("mask_samples")
    return bool(render.get("adaptive_sampling")) or (
        mask_samples is not None and int(mask_samples) != int(render["samples"])
    )


def channel(layer: str, pass_name: str, component: str) -> str:
    """Blender 5's name of one channel of a multilayer EXR: `<view layer>.<pass>.<component>`."""
    return f"{layer}.{pass_name}.{component}"


def aov_channel(name: str, layer: str = LAYER_LABELS) -> str:
    return channel(layer, name, "X")  # value AOVs have one component, X


# The raw frame's channels that thfm_synth/render/outputs.py decodes.
CH_COMBINED = tuple(channel(LAYER_RGB, "Combined", c) for c in "RGB")
CH_FG = aov_channel(AOV_FG, LAYER_RGB)
CH_MASK_FG = aov_channel(AOV_FG, LAYER_MASK)  # present only when mask_layer(): then the mask
CH_DEPTH = channel(LAYER_LABELS, "Depth", "Z")  # camera-frame z, 1e10 where the ray hit nothing
CH_NORMAL = tuple(channel(LAYER_LABELS, "Normal", c) for c in "XYZ")  # world-space shading normal
CH_INDEX = channel(LAYER_LABELS, "Object Index", "X")  # the object's pass_index = instance id
CH_PART = aov_channel(AOV_PART)
CH_PART_UV = tuple(aov_channel(n) for n in AOV_PART_UV)
CH_CANONICAL = tuple(aov_channel(n) for n in AOV_CANONICAL)
CH_POS_NEXT = tuple(aov_channel(n) for n in AOV_POS_NEXT)
CH_POS_PREV = tuple(aov_channel(n) for n in AOV_POS_PREV)
CH_ALBEDO = tuple(channel(LAYER_RGB, "Diffuse Color", c) for c in "RGB")  # linear diffuse colour, over the samples
MISS_DEPTH = 1e10  # what Cycles writes in the Depth pass for a ray that hit nothing


# --------------------------------------------------------------------------- jobs
@dataclass
class Job:
    """Base of every job: plain JSON fields only, checked on both sides of the boundary."""

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}")
        job = cls(**d)
        job.check()
        return job

    def to_dict(self) -> dict:
        self.check()
        return asdict(self)

    def check(self) -> None:
        """Raise ValueError for a malformed job (overridden where there is something to check)."""


@dataclass
class ProbeJob(Job):
    pass


@dataclass
class RenderJob(Job):
    """Render a saved scene description. frames: None = all; threads: Cycles threads (0 = all cores)."""

    scene: str
    out: str
    frames: list | None = None
    modalities: list = field(default_factory=lambda: list(DEFAULT_RENDER_MODALITIES))
    mode: str = "single"
    label_samples: int = 1
    exr_codec: str = "ZIP"
    per_modality_shading: str = "label"
    device: str | None = None  # overrides the description's render device
    threads: int = 0

    def check(self) -> None:
        if self.mode not in RENDER_MODES:
            raise ValueError(f"RenderJob: mode {self.mode!r} not in {RENDER_MODES}")
        if self.per_modality_shading not in PER_MODALITY_SHADINGS:
            raise ValueError(
                f"RenderJob: per_modality_shading {self.per_modality_shading!r} not in {PER_MODALITY_SHADINGS}"
            )
        bad = [m for m in self.modalities if m not in RENDER_MODALITIES]
        if bad or not self.modalities:
            raise ValueError(
                f"RenderJob: modalities {self.modalities} must be a non-empty subset of {RENDER_MODALITIES}"
            )
        if self.device is not None and self.device not in DEVICES:
            raise ValueError(f"RenderJob: device {self.device!r} not in {DEVICES}")
        if int(self.label_samples) < 1 or int(self.threads) < 0:
            raise ValueError("RenderJob: label_samples must be >= 1 and threads >= 0")
        if self.frames is not None and not all(isinstance(f, int) and f >= 0 for f in self.frames):
            raise ValueError("RenderJob: frames must be a list of frame indices (ints >= 0) or null")


@dataclass
class SceneProbeJob(Job):
    """Probe a scene file or kit folder into `out` (probe.json + height maps)."""

    path: str
    out: str
    layers: int = 3
    cell: float | None = None
    objects: dict | None = None  # {file key: [object names] or None}: limits the height maps


@dataclass
class CharacterImportJob(Job):
    """Import a rigged character file into a raw npz; embedded textures are saved in texture_dir."""

    path: str
    raw_npz: str
    texture_dir: str


@dataclass
class PosecheckJob(Job):
    """Pose a baked character with Blender's own armature; write the evaluated vertices to `out`."""

    character: str
    pose: str
    out: str


@dataclass
class CharacterPreviewJob(Job):
    """Render baked characters side by side into `out` (PNG)."""

    out: str
    characters: list
    pose: str | None = None
    labels: bool = False


JOBS = {
    SCRIPT_PROBE: ProbeJob,
    SCRIPT_RENDER: RenderJob,
    SCRIPT_SCENE_PROBE: SceneProbeJob,
    SCRIPT_CHARACTER_IMPORT: CharacterImportJob,
    SCRIPT_POSECHECK: PosecheckJob,
    SCRIPT_CHARACTER_PREVIEW: CharacterPreviewJob,
}


# --------------------------------------------------------------------------- the protocol itself
# Shared by every script (blender_scripts/bridge.py) and by stand-in children (thfm_synth/render/farm/fake.py).


class JobInputError(Exception):
    """Raised by a script for bad input: reported as ERROR_BAD_INPUT with a one-line what and fix."""

    def __init__(self, what: str, fix: str):
        super().__init__(what)
        self.what, self.fix = what, fix


WARNINGS: list = []  # warnings of the job in progress (reported in its result)


def warn(message: str) -> None:
    WARNINGS.append(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


def progress(record: dict) -> None:
    print(PROGRESS_TAG + " " + json.dumps(record), flush=True)


def job_document(script: str, job: Job) -> dict:
    return {"script": script, "contract": CONTRACT_VERSION, "job": job.to_dict()}


def write_json_atomic(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def result_path(job_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(job_path)), RESULT_FILE)


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, as an OSError or as the text of a RuntimeError from Blender's image writers."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "No space left on device" in str(exc)


def error_record(exc: BaseException) -> dict:
    if isinstance(exc, JobInputError):
        return {"kind": ERROR_BAD_INPUT, "what": exc.what, "fix": exc.fix, "traceback": traceback.format_exc()}
    kind = ERROR_DISK_FULL if is_disk_full(exc) else ERROR_CRASH
    return {"kind": kind, "what": f"{type(exc).__name__}: {exc}", "fix": None, "traceback": traceback.format_exc()}


EXIT_DISK_FULL = 75  # a script that cannot even write its result for lack of space exits with this


def run_job(job_path: str, script: str, handler, job_type=None) -> dict:
    """Read the job at `job_path`, run `handler(job)`, write the result beside it; returns the result.
    `job_type`: the Job class (default: the script's, from JOBS)."""
    del WARNINGS[:]
    try:
        with open(job_path) as fh:
            doc = json.load(fh)
        if doc.get("script") != script or doc.get("contract") != CONTRACT_VERSION:
            raise JobInputError(
                f"{job_path} is a job for {doc.get('script')!r} (contract {doc.get('contract')}), "
                f"not for {script} (contract {CONTRACT_VERSION})",
                "the main environment and blender_scripts/ are from different versions: reinstall",
            )
        job = (job_type or JOBS[script]).from_dict(doc["job"])
        result = {"ok": True, "result": handler(job), "warnings": list(WARNINGS)}
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a script must never die without a result
        result = {"ok": False, "error": error_record(exc), "warnings": list(WARNINGS)}
    try:
        write_json_atomic(result_path(job_path), result)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            print("error: no space left to write the job result", file=sys.stderr, flush=True)
            sys.exit(EXIT_DISK_FULL)
        raise
    return result


def script_main(script: str, handler, argv: list | None = None, job_type=None) -> None:
    """A script's entry point: `SCRIPT -- JOB_FILE` runs one job, `SCRIPT -- --serve` reads
    one JSON line {"job": JOB_FILE} per job from stdin until it closes."""
    argv = list(sys.argv if argv is None else argv)
    args = argv[argv.index("--") + 1 :] if "--" in argv else []
    if args == [SERVE_FLAG]:
        for line in sys.stdin:
            if line.strip():
                run_job(json.loads(line)["job"], script, handler, job_type)
        return
    if len(args) != 1:
        print(f"usage: {script} -- JOB_FILE | {script} -- {SERVE_FLAG}", file=sys.stderr)
        sys.exit(2)
    result = run_job(args[0], script, handler, job_type)
    if not result["ok"]:
        err = result["error"]
        print(f"error: {err['what']}" + (f" (fix: {err['fix']})" if err.get("fix") else ""), file=sys.stderr)
        sys.exit(1)
