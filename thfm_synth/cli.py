"""The `thfm-synth` command line. Each subcommand is a thin layer over a stage's Python API.

Stages not built yet are absent rather than stubbed. Errors are one line: bad
arguments exit 2 (as argparse does), bad input or environment exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from thfm_synth import __version__
from thfm_synth.errors import ConfigError, UserError


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# --------------------------------------------------------------------------- shared options


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    from thfm_synth.config import PRESETS

    p.add_argument("--preset", choices=PRESETS, help="start from a preset (default: paper, or the config's own)")
    p.add_argument("--config", type=Path, metavar="FILE", help="dataset config YAML (overrides the preset)")
    p.add_argument("--num-videos", type=positive_int, metavar="N", help="videos to plan (default: the config's)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="plan seed (default 0)")
    p.add_argument("--manifest", type=Path, action="append", default=[], metavar="FILE",
                   help="asset manifest to add to the library (repeatable)")
    p.add_argument("--no-builtin", action="store_true", help="leave the built-in asset library out")


def resolve_dataset(args):
    from thfm_synth.assets.library import load_library
    from thfm_synth.config import load_config

    cfg = load_config(args.preset, args.config)
    manifests = list(cfg.assets.manifests) + [str(m) for m in args.manifest]
    library = load_library(manifests, builtin=cfg.assets.builtin and not args.no_builtin)
    num = args.num_videos or cfg.num_videos
    return cfg, library, num


# --------------------------------------------------------------------------- plan


def cmd_plan(args) -> int:
    from thfm_synth.atomic import prepare_parent
    from thfm_synth.config import config_yaml, load_config
    from thfm_synth.plan.planner import plan_meta, timed_plan, write_plan

    if args.print_config:
        print(config_yaml(load_config(args.preset, args.config)), end="")
        return 0
    if args.out is None:
        raise ConfigError("plan needs --out FILE (or --print-config)", "add --out plan.parquet")
    prepare_parent(args.out, "plan")  # fail before planning, not after
    cfg, library, num = resolve_dataset(args)
    specs, summary = timed_plan(cfg, library, args.seed, num, progress=True)
    write_plan(args.out, specs, plan_meta(cfg, library, args.seed, num))
    for line in summary.lines():
        print(line)
    print(f"wrote {args.out}")
    return 0


# --------------------------------------------------------------------------- assets


def cmd_assets_scan(args) -> int:
    from thfm_synth.assets.manifest import dump_manifest
    from thfm_synth.assets.scan import scan
    from thfm_synth.atomic import write_text

    result = scan(args.dir, args.out.resolve().parent, name=args.name)
    for problem in result.skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    if result.skipped and args.strict:
        raise UserError(f"{len(result.skipped)} file(s) in {args.dir} could not be read (listed above)",
                        "fix or remove them, or rerun without --strict")
    write_text(args.out, f"# Made by: thfm-synth assets scan {args.dir}\n" + dump_manifest(result.manifest),
               "manifest")
    m = result.manifest
    print(f"wrote {args.out}: {len(m.characters)} characters, {len(m.motions)} motions, {len(m.hdris)} HDRIs, "
          f"{len(m.scenes)} scenes; {len(result.skipped)} skipped")
    return 0


def cmd_assets_validate(args) -> int:
    from thfm_synth.assets.validate import validate

    failed = 0
    for manifest in args.manifest:
        count, problems = validate(manifest, check_hashes=not args.no_hashes)
        for p in problems:
            print(p)
        print(f"{manifest}: {count} entries, {len(problems)} problem(s)")
        failed += bool(problems)
    return 1 if failed else 0


def cmd_assets_list(args) -> int:
    from thfm_synth.assets.library import load_library

    library = load_library(args.manifest, builtin=not args.no_builtin)
    for kind, entries in library.by_kind.items():
        licences = sorted({e.licence for e in entries})
        print(f"{kind:<11} {len(entries):>5}  licences: {', '.join(licences) or '-'}")
        if args.verbose:
            for e in entries:
                print(f"    {e.id:<40} {e.licence:<18} {e.path or '(built-in)'}")
    return 0


def cmd_assets_build_characters(args) -> int:
    from thfm_synth.characters import build_characters

    from tqdm import tqdm

    t0 = time.perf_counter()
    with tqdm(total=args.count, desc="building characters", unit="character") as bar:
        manifest = build_characters(args.count, args.seed, args.out, age_range=args.age_range,
                                    progress=lambda done, total, msg: bar.update(done - bar.n))
    seconds = time.perf_counter() - t0
    sizes = [(args.out / e.path).stat().st_size for e in manifest.characters]
    print(f"built {len(sizes)} characters in {seconds:.1f} s ({seconds / max(len(sizes), 1):.2f} s and "
          f"{sum(sizes) / max(len(sizes), 1) / 1e6:.2f} MB per character) -> {args.out / 'manifest.yaml'}")
    return 0


def cmd_assets_import_character(args) -> int:
    from thfm_synth.characters import import_character

    c = import_character(args.file, args.out, rig=args.rig, height_m=args.height_m)
    print(f"imported {args.file} ({c.meta.get('rig')} rig, {len(c.vertices)} vertices, "
          f"{len(c.joint_names)} joints, {c.meta.get('height_m', 0):.2f} m) -> {args.out}")
    return 0


def cmd_assets_fetch(args) -> int:
    from thfm_synth.assets.manifest import Manifest, MotionEntry, dump_manifest
    from thfm_synth.atomic import write_text
    from thfm_synth.motion.fetch import fetch_cmu

    clips = [c.strip() for c in args.clips.split(",")] if args.clips else None
    where = {k: v for k, v in (("base_url", args.base_url), ("layout", args.layout)) if v}
    records = fetch_cmu(args.dest, clips=clips, with_activity=True, **where)
    dest = args.dest.resolve()
    entries = [MotionEntry(id=r.id, path=Path(r.path).resolve().relative_to(dest).as_posix(), sha256=r.sha256,
                           licence="CMU-Mocap-Terms", source=r.source_url, tags=tuple(r.tags), format="bvh",
                           fps=r.fps, num_frames=r.num_frames, skeleton="cmu_mb", activity=tuple(r.activity or ()))
               for r in records]
    out = dest / "manifest.yaml"
    write_text(out, dump_manifest(Manifest(name="cmu", description="CMU mocap (mocap.cs.cmu.edu), cgspeed BVH release",
                                           motions=entries)), "manifest")
    print(f"{len(records)} clips verified in {dest}; manifest {out}")
    return 0


# --------------------------------------------------------------------------- doctor, demo


def cmd_doctor(args) -> int:
    from thfm_synth.doctor import run_checks

    checks = run_checks(args.blender, args.out)
    for c in checks:
        print(c.line())
    missing = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(missing)} ok, {len(missing)} missing")
    return 1 if missing else 0


def cmd_demo(args) -> int:
    """The whole pipeline on the built-in defaults, as far as it is built."""
    import io

    import numpy as np

    from thfm_synth.assets.library import load_library
    from thfm_synth.atomic import write_bytes
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import plan_meta, timed_plan, write_plan
    from thfm_synth.scene.animate import animate

    t0 = time.perf_counter()
    out: Path = args.out
    cfg = load_config("preview")
    library = load_library(builtin=True)
    specs, summary = timed_plan(cfg, library, args.seed, args.num_videos)
    plan_path = out / "plan.parquet"
    write_plan(plan_path, specs, plan_meta(cfg, library, args.seed, args.num_videos))
    print(f"[1/2 plan] {summary.lines()[0]} -> {plan_path}")
    print(f"[2/2 characters + motion] baking built-in bodies (cached in {out / 'cache'}), retargeting each "
          f"planned motion window onto its body, computing joint ground truth")
    for s in specs:
        t = time.perf_counter()
        anim = animate(s, library, out / "cache")
        joints = anim.joints["smpl24"].positions
        buf = io.BytesIO()
        np.savez(buf, **{f"{name}_world": js.positions.astype(np.float32) for name, js in anim.joints.items()},
                 root_translation=np.asarray(anim.clip.root_translation, np.float32),
                 local_rotations_wxyz=np.asarray(anim.clip.local_rotations, np.float32))
        write_bytes(out / "motion" / f"{s.video_id}.npz", buf.getvalue(), "joints")
        travel = float(np.linalg.norm(joints[-1, 0, :2] - joints[0, 0, :2]))
        print(f"  {s.video_id}: {s.character_id} ({anim.character.meta.get('height_m', 0):.2f} m) x {s.motion_id} "
              f"from frame {s.motion_start_frame}{' mirrored' if s.mirror else ''}: {anim.clip.num_frames} frames, "
              f"pelvis travels {travel:.2f} m, lowest joint {joints[..., 2].min() * 100:.1f} cm; "
              f"{s.background_kind}:{s.background_id}, {s.camera_trajectory} camera {s.focal_length_mm:.0f} mm "
              f"[{time.perf_counter() - t:.1f} s]")
    print(f"demo done in {time.perf_counter() - t0:.1f} s: {len(specs)} videos planned and animated, 0 failed "
          f"(joints in {out / 'motion'})")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> Parser:
    parser = Parser(prog="thfm-synth", description="Synthetic 4D-human video data for THFM.")
    parser.add_argument("--version", action="version", version=f"thfm-synth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)

    p = sub.add_parser("plan", help="expand a seed into one spec per video (plan.parquet)",
                       description="Write one row per video with every sampled choice. Row i depends only on "
                                   "(seed, i): plans of different lengths share their prefix.")
    add_dataset_options(p)
    p.add_argument("--out", type=Path, metavar="FILE", help="plan file to write (Parquet)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("assets", help="build, check and list asset manifests")
    asub = p.add_subparsers(dest="assets_command", metavar="ACTION", parser_class=Parser, required=True)
    q = asub.add_parser("scan", help="make a manifest from a folder of assets",
                        description="Classify BVH/HDR/EXR/FBX/glTF/blend files, hash them, find their licences.")
    q.add_argument("dir", type=Path, help="folder to scan")
    q.add_argument("--out", type=Path, required=True, metavar="FILE", help="manifest YAML to write")
    q.add_argument("--name", help="manifest name (default: the folder's name)")
    q.add_argument("--strict", action="store_true", help="fail if any file cannot be read")
    q.set_defaults(func=cmd_assets_scan)
    q = asub.add_parser("validate", help="check files exist, checksums match and licences are set")
    q.add_argument("manifest", type=Path, nargs="+", help="manifest YAML file(s)")
    q.add_argument("--no-hashes", action="store_true", help="skip the sha256 check (faster)")
    q.set_defaults(func=cmd_assets_validate)
    q = asub.add_parser("list", help="summarise the library: built-in plus the given manifests")
    q.add_argument("manifest", type=Path, nargs="*", help="manifest YAML file(s)")
    q.add_argument("--no-builtin", action="store_true", help="leave the built-in library out")
    q.add_argument("-v", "--verbose", action="store_true", help="list every entry")
    q.set_defaults(func=cmd_assets_list)

    q = asub.add_parser("build-characters", help="bake built-in parametric bodies (anny) plus a manifest",
                        description="Sample diverse bodies and appearances from (seed, i) and bake each into an npz "
                                    "Blender loads quickly (mesh, UVs, cmu_mb skeleton, skin weights, labels).")
    q.add_argument("--count", type=positive_int, required=True, help="characters to build")
    q.add_argument("--seed", type=non_negative_int, default=0, help="seed (character i depends on (seed, i))")
    q.add_argument("--out", type=Path, required=True, help="output folder (npz files + manifest.yaml)")
    q.add_argument("--age-range", choices=("adult", "wide"), default="adult",
                   help="adults (default) or a wider range including children and elderly")
    q.set_defaults(func=cmd_assets_build_characters)
    q = asub.add_parser("import-character", help="convert a rigged FBX/GLB/glTF character to our baked format")
    q.add_argument("file", type=Path, help="FBX, GLB or glTF file with a skinned armature")
    q.add_argument("--out", type=Path, required=True, help="baked character (.npz)")
    q.add_argument("--rig", default="auto", help="bone-name table: auto, cmu_mb, mixamo, biped, quaternius, "
                                                  "makehuman, unreal")
    q.add_argument("--height-m", type=float, help="standing height in metres (when the file's units are wrong)")
    q.set_defaults(func=cmd_assets_import_character)
    q = asub.add_parser("fetch", help="download a public asset release (cmu: the CMU mocap BVH clips)")
    q.add_argument("what", choices=("cmu",), help="what to fetch")
    q.add_argument("--dest", type=Path, required=True, help="download folder (resumes partial downloads)")
    q.add_argument("--base-url", default=None, help="mirror to download from (default: the public release)")
    q.add_argument("--layout", default=None, help="path of a clip under the base URL, e.g. '{clip}.bvh'")
    q.add_argument("--clips", help="comma-separated clip ids (default: all known clips)")
    q.set_defaults(func=cmd_assets_fetch)

    p = sub.add_parser("doctor", help="report both environments, Blender, JAX, Ray and disk")
    p.add_argument("--blender", metavar="PATH", help="check this Blender binary instead of the render environment")
    p.add_argument("--out", type=Path, default=Path("."), help="where outputs will go (for the disk check)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("demo", help="run the pipeline end to end on the built-in defaults",
                       description="Plans a few preview videos from the built-in library (no files needed), bakes "
                                   "their built-in bodies and animates them with their planned motion windows.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--num-videos", type=positive_int, default=4, help="videos (default 4)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="plan seed (default 0)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"thfm-synth: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("thfm-synth: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
