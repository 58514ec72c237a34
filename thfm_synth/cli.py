"""The `thfm-synth` command line. Each subcommand is a thin layer over a stage's Python API.

Stages not built yet are absent rather than stubbed. Errors are one line: bad
arguments exit 2 (as argparse does), bad input or environment exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from thfm_synth import __version__
from thfm_synth.errors import ConfigError, UserError

# --rig choices of import-character (a bad one is a usage error, exit 2); a test keeps them
# equal to characters/rigs.py's tables without importing numpy here
IMPORT_RIGS = ("auto", "cmu_mb", "mixamo", "biped", "quaternius", "makehuman", "unreal", "smplx")

REPO_JOBS = Path(__file__).resolve().parents[1] / "jobs"


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
    p.add_argument(
        "--manifest",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="asset manifest to add to the library (repeatable)",
    )
    p.add_argument("--no-builtin", action="store_true", help="leave the built-in asset library out")


def resolve_dataset(args):
    from thfm_synth.assets.library import load_library
    from thfm_synth.config import load_config

    cfg = load_config(args.preset, args.config)
    manifests = list(cfg.assets.manifests) + [str(m) for m in args.manifest]
    library = load_library(manifests, builtin=cfg.assets.builtin and not args.no_builtin, bodies=cfg.character)
    num = args.num_videos or cfg.num_videos
    warn_unknown_licences(library)
    return cfg, library, num


def warn_unknown_licences(library) -> None:
    """One line on stderr naming assets whose licence is unknown (validate reports them as problems)."""
    from thfm_synth.assets.manifest import UNKNOWN_LICENCE

    ids = [
        e.id
        for entries in library.by_kind.values()
        for e in entries
        if e.licence.strip().upper() in (UNKNOWN_LICENCE, "", "NONE", "TODO")
    ]
    if ids:
        more = f" (+{len(ids) - 5} more)" if len(ids) > 5 else ""
        print(
            f"warning: {len(ids)} asset(s) have an unknown licence: {', '.join(ids[:5])}{more} - set their "
            f"licence in the manifest before publishing renders (`thfm-synth assets validate` lists them)",
            file=sys.stderr,
        )


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
        raise UserError(
            f"{len(result.skipped)} file(s) in {args.dir} could not be read (listed above)",
            "fix or remove them, or rerun without --strict",
        )
    header = "# Made by: thfm-synth assets scan (of the folder `root` names, relative to this file)\n"
    write_text(args.out, header + dump_manifest(result.manifest), "manifest")
    m = result.manifest
    print(
        f"wrote {args.out}: {len(m.characters)} characters, {len(m.motions)} motions, {len(m.hdris)} HDRIs, "
        f"{len(m.scenes)} scenes; {len(result.skipped)} skipped"
    )
    return 0


def cmd_assets_validate(args) -> int:
    from thfm_synth.assets.validate import validate

    failed = 0
    for manifest in args.manifest:
        count, problems = validate(manifest, check_hashes=not args.no_hashes, decode=not args.headers_only)
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
    from thfm_synth.assets.characters import build_characters

    from tqdm import tqdm

    t0 = time.perf_counter()
    if args.backend == "smplx" and args.model_dir is None:
        raise ConfigError(
            "--backend smplx needs --model-dir DIR (your SMPL-X model files)",
            "pass the folder holding SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz",
        )
    with tqdm(total=args.count, desc="building characters", unit="character") as bar:
        manifest = build_characters(
            args.count,
            args.seed,
            args.out,
            age_range=args.age_range,
            progress=lambda done, total, msg: bar.update(done - bar.n),
            backend=args.backend,
            model_dir=args.model_dir,
            gender=args.gender,
            texture_dir=args.texture_dir,
        )
    seconds = time.perf_counter() - t0
    sizes = [(args.out / e.path).stat().st_size for e in manifest.characters]
    print(
        f"built {len(sizes)} characters in {seconds:.1f} s ({seconds / max(len(sizes), 1):.2f} s and "
        f"{sum(sizes) / max(len(sizes), 1) / 1e6:.2f} MB per character) -> {args.out / 'manifest.yaml'}"
    )
    return 0


def cmd_assets_import_character(args) -> int:
    from thfm_synth.assets.characters import import_character
    from thfm_synth.assets.characters.rigs import load_bone_map

    bone_map = load_bone_map(args.bone_map) if args.bone_map else None
    c = import_character(args.file, args.out, rig=args.rig, height_m=args.height_m, bone_map=bone_map)
    print(
        f"imported {args.file} ({c.meta.get('rig')} rig, {len(c.vertices)} vertices, "
        f"{len(c.joint_names)} joints, {c.meta.get('height_m', 0):.2f} m) -> {args.out}"
    )
    return 0


def cmd_assets_import_characters(args) -> int:
    from thfm_synth.assets.characters.folder_import import import_folder
    from thfm_synth.assets.characters.rigs import load_bone_map

    from tqdm import tqdm

    bone_map = load_bone_map(args.bone_map) if args.bone_map else None
    with tqdm(desc="importing characters", unit="file", disable=None) as bar:  # a bar on a terminal only

        def progress(done, total, name):
            bar.total = total
            bar.update(done - bar.n)
            bar.set_postfix_str(name[-40:], refresh=True)

        result = import_folder(
            args.dir,
            args.out,
            licence=args.licence,
            allow_unknown_licence=args.allow_unknown_licence,
            rig=args.rig,
            bone_map=bone_map,
            name=args.name,
            progress=progress,
        )
    for line in result.lines():
        print(line)
    if not result.ok:
        if result.failed:
            raise UserError(
                f"{len(result.failed)} file(s) of {args.dir} failed unexpectedly: "
                + "; ".join(f for f, _ in result.failed),
                "see the lines above; run `thfm-synth doctor` if Blender itself fails",
            )
        raise UserError(
            f"no character of {args.dir} was imported ({len(result.refused)} refused, reasons above)",
            "fix the refused files as their reasons say, then run the same command again",
        )
    return 0


def cmd_assets_fetch(args) -> int:
    if args.what == "makehuman":
        return cmd_assets_fetch_makehuman(args)
    from thfm_synth.assets.manifest import Manifest, MotionEntry, dump_manifest
    from thfm_synth.atomic import write_text
    from thfm_synth.assets.motion.fetch import fetch_cmu

    if args.what == "test-assets":
        return cmd_fetch_test_assets(args)
    for flag, value in (("--list", args.list), ("--only", args.only)):
        if value:
            raise ConfigError(f"{flag} is for `assets fetch test-assets`", f"leave {flag} out for cmu")
    if args.dest is None:
        raise ConfigError("`assets fetch cmu` needs --dest DIR", "add --dest, e.g. --dest assets/cmu")
    clips = [c.strip() for c in args.clips.split(",")] if args.clips else None
    where = {k: v for k, v in (("base_url", args.base_url), ("layout", args.layout)) if v}
    records = fetch_cmu(args.dest, clips=clips, with_activity=True, **where)
    dest = args.dest.resolve()
    entries = [
        MotionEntry(
            id=r.id,
            path=Path(r.path).resolve().relative_to(dest).as_posix(),
            sha256=r.sha256,
            licence="CMU-Mocap-Terms",
            source=r.source_url,
            tags=tuple(r.tags),
            format="bvh",
            fps=r.fps,
            num_frames=r.num_frames,
            skeleton="cmu_mb",
            activity=tuple(r.activity or ()),
        )
        for r in records
    ]
    out = dest / "manifest.yaml"
    write_text(
        out,
        dump_manifest(
            Manifest(name="cmu", description="CMU mocap (mocap.cs.cmu.edu), cgspeed BVH release", motions=entries)
        ),
        "manifest",
    )
    print(f"{len(records)} clips verified in {dest}; manifest {out}")
    return 0


def cmd_fetch_test_assets(args) -> int:
    from thfm_synth.assets import testassets

    for flag, value in (("--layout", args.layout), ("--clips", args.clips)):
        if value:
            raise ConfigError(f"{flag} is for `assets fetch cmu`", f"leave {flag} out for test-assets")
    kwargs = {"list_path": args.list} if args.list else {}
    result = testassets.fetch_test_assets(
        args.dest, base_url=args.base_url, only=args.only, workers=args.workers, **kwargs
    )
    for line in result.lines():
        print(line)
    failed = result.summary.failed
    if failed:
        first = next(iter(failed.values()))
        raise UserError(
            f"{len(failed)} of {result.summary.files} test-asset files could not be fetched "
            f"(listed above; first: {first.split(' (fix:')[0]})",
            "run the same command again: verified files are kept and partial downloads resume",
        )
    found = testassets.find_test_assets()
    if args.dest is not None and (found is None or found.resolve() != args.dest.resolve()):
        print(f"the tests find them with: export {testassets.ENV}={args.dest.resolve()}")
    return 0


def cmd_assets_fetch_makehuman(args) -> int:
    from tqdm import tqdm

    from thfm_synth.assets.characters.makehuman.assets import ENV, default_dir
    from thfm_synth.assets.characters.makehuman.fetch import LFS_BASE, RAW_BASE, fetch_makehuman

    dest = args.dest or default_dir()
    t0 = time.perf_counter()
    with tqdm(total=0, unit="B", unit_scale=True, desc="makehuman") as bar:

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        info = fetch_makehuman(
            dest, raw_base=args.base_url or RAW_BASE, lfs_base=args.lfs_url or LFS_BASE, progress=progress
        )
    where = "" if Path(dest).expanduser().resolve() == default_dir().resolve() else f" (set {ENV}={dest} to use it)"
    print(
        f"{info['files']} MakeHuman files verified in {dest} ({info['bytes'] / 1e6:.0f} MB, "
        f"{info['downloaded']} downloaded, {time.perf_counter() - t0:.1f} s); manifest {Path(dest) / 'MANIFEST.tsv'}"
        f"{where}"
    )
    return 0


def cmd_assets_preview_characters(args) -> int:
    from tqdm import tqdm

    from thfm_synth.assets.characters.preview import preview_characters

    with tqdm(total=args.count, desc="rendering characters", unit="character") as bar:
        info = preview_characters(
            args.dir,
            args.out,
            count=args.count,
            width=args.tile_width,
            height=args.tile_height,
            samples=args.samples,
            denoise=not args.no_denoise,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    print(f"wrote {args.out}: {info['characters']} characters, {info['tiles']} tiles in {info['seconds']:.0f} s")
    return 0


# --------------------------------------------------------------------------- render


def default_cache() -> Path:
    import os

    return Path(os.environ.get("THFM_CACHE", Path.home() / ".cache" / "thfm-synth" / "characters"))


def farm_cache(cache: Path | None, out: Path) -> Path:
    """`render`'s baked-character cache: --cache, else $THFM_CACHE, else OUT/.cache/characters - the output
    folder is the one file system every node's workers share on a cluster, so each character is baked
    once per run, not once per node (~/.cache would be per node)."""
    import os

    from thfm_synth.render.farm.folders import OutputLayout

    if cache is not None:
        return cache
    return Path(os.environ["THFM_CACHE"]) if os.environ.get("THFM_CACHE") else OutputLayout(out).characters


def index_list(text: str) -> list[int]:
    """`--index` items: `5` or an inclusive range `0-9`."""
    lo, sep, hi = text.partition("-")
    if not sep:
        return [non_negative_int(text)]
    a, b = non_negative_int(lo), non_negative_int(hi)
    if b < a:
        raise argparse.ArgumentTypeError(f"range {text!r} runs backwards")
    return list(range(a, b + 1))


def cmd_render_one(args) -> int:
    import shutil
    import tempfile
    import uuid

    from thfm_synth.blender import contract
    from thfm_synth.blender.child import ServingChild
    from thfm_synth.blender.runtime import RenderRuntime
    from thfm_synth.plan.planner import plan_config, plan_library
    from thfm_synth.render.video.render_one import render_video, spec_from_plan

    indices = list(dict.fromkeys(i for item in args.index for i in item))
    several = len(indices) > 1
    jobs = []  # (spec, meta, video folder)
    for index in indices:
        spec, meta = spec_from_plan(args.plan, index)
        jobs.append((spec, meta, args.out / spec.video_id if several else args.out))
    taken = [str(out) for _, _, out in jobs if out.exists()]
    if taken:
        raise UserError(
            f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}",
            "choose a new --out folder (a video folder is never overwritten)",
        )
    runtime = RenderRuntime.detect(args.blender)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="thfm-render-one-") as logs:
        # one Blender child for every video of the call: its start-up and kernel load are paid once
        child = ServingChild.blender(contract.SCRIPT_RENDER, Path(logs) / "blender.log", runtime)
        try:
            for spec, meta, out in jobs:
                dataset = plan_config(meta)
                cfg = dataset.render
                if args.device:
                    cfg = cfg.model_copy(update={"device": args.device})
                tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
                tmp.mkdir(parents=True)
                try:
                    t0 = time.perf_counter()
                    stats = render_video(
                        spec,
                        plan_library(meta),
                        cfg,
                        tmp,
                        args.cache or default_cache(),
                        child=child,
                        qa_cfg=dataset.qa,
                    )
                    tmp.rename(out)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                qa = (
                    "passed"
                    if stats["qa_passed"]
                    else f"FAILED: {', '.join(stats['qa_failures'])} (see metadata.json qa)"
                )
                print(
                    f"rendered {spec.video_id}: {stats['frames']} frames in {time.perf_counter() - t0:.1f} s "
                    f"({stats['render_seconds'] / stats['frames']:.2f} s/frame in Cycles, "
                    f"{stats['bytes_per_frame'] / 1e6:.2f} MB/frame), QA {qa} -> {out}",
                    flush=True,
                )
                failed += not stats["qa_passed"]
        finally:
            child.stop()
    if several:
        print(f"{len(jobs)} videos, {failed} failed QA; Blender started {child.starts}x")
    # a video that fails QA is kept for inspection, but it is not a success
    return 0 if not failed else 1


def cmd_preview(args) -> int:
    from thfm_synth.tools.preview import make_preview

    mp4, png = make_preview(args.video_dir, args.mp4, args.png)
    print(f"wrote {png}" + (f" and {mp4}" if mp4 else " (no MP4: imageio-ffmpeg missing)"))
    return 0


def render_header(specs, meta, workers: int, out) -> str:
    """What is about to be rendered, before the first video (a paper-preset plan by mistake shows
    here, not after a minute at 0%)."""
    if not specs:
        return f"render: nothing planned -> {out}"
    s = specs[0]
    r = (meta.config or {}).get("render", {})
    quality = f"{r.get('samples', '?')} samples" + (" + denoising" if r.get("denoise") else "")
    preset = (meta.config or {}).get("preset")
    return (
        f"render: {len(specs)} videos of {s.width}x{s.height}, {s.num_frames} frames at {s.fps:g} fps, {quality}"
        + (f" (preset {preset})" if preset else "")
        + f", {workers} workers -> {out}"
    )


def cmd_render(args) -> int:
    import os

    from thfm_synth.render.farm import index
    from thfm_synth.render.farm.binding import bind_output
    from thfm_synth.render.farm.blender import blender_farm
    from thfm_synth.render.farm.driver import run_farm
    from thfm_synth.render.farm.folders import OutputLayout
    from thfm_synth.plan.planner import plan_meta, read_plan, refuse_re_aiming, timed_plan

    if args.status:
        layout = OutputLayout(args.status)
        if not (layout.root / "plan.parquet").is_file() and not layout.root.joinpath("videos").is_dir():
            raise UserError(
                f"{args.status} is not a render output folder (no plan.parquet, no videos/)",
                "give the --out folder of a `thfm-synth render` run",
            )
        plan_path = layout.root / "plan.parquet"
        planned = len(read_plan(plan_path)[0]) if plan_path.is_file() else 0
        for line in index.status(layout, planned).lines():
            print(line)
        last = index.last_run(layout)
        if last is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["finished_at"]))
            print(f"last run (finished {when}), as it reported itself:")
            for line in last["lines"]:
                print("  " + line)
        return 0
    if args.out is None:
        raise ConfigError("render needs --out DIR (or --status DIR)", "add --out DIR")
    plan_path = args.out / "plan.parquet"
    if args.plan:
        specs, meta = read_plan(args.plan)
    else:
        cfg, library, num = resolve_dataset(args)
        specs, _ = timed_plan(cfg, library, args.seed, num)
        meta = plan_meta(cfg, library, args.seed, num)
        if plan_path.is_file():  # a clearer word than "another plan" for a folder of the older convention
            refuse_re_aiming(read_plan(plan_path)[0], plan_path, specs)
    # the folder is bound to the whole plan before anything in it is written (farm/binding.py)
    plan_id = bind_output(args.out, specs, meta)
    cpus = args.cpus_per_video
    workers = args.workers or max(1, int((os.cpu_count() or 1) // cpus))
    opts = blender_farm(
        args.out,
        plan_path,
        farm_cache(args.cache, args.out),
        workers=workers,
        cpus_per_video=cpus,
        blender=args.blender,
        device=args.device,
        restart_every=args.restart_every,
        gpus_per_video=args.gpus_per_video,
        max_retries=args.max_retries,
        address=args.address,
    )
    print(render_header(specs, meta, workers, args.out), flush=True)
    summary = run_farm(specs, plan_id, opts)
    for line in summary.lines():
        print(line)
    return 1 if summary.failed else 0


# --------------------------------------------------------------------------- preprocess, shards, report


def cmd_preprocess(args) -> int:
    from thfm_synth.preprocess.pipeline import preprocess

    if args.config is not None:  # a job file (jobs/preprocess_*.yaml) with --set overrides
        from thfm_synth.preprocess.job import load_job, parse_overrides, run_job

        over = parse_overrides(args.set)
        over.update({k: str(v) for k, v in (("render_dir", args.render_dir), ("out", args.out)) if v is not None})
        summary = run_job(load_job(args.config, over))
    else:
        if args.render_dir is None or args.out is None or args.set:
            raise ConfigError(
                "preprocess needs RENDER_DIR and --out (or --config JOB.yaml; --set needs --config)",
                "e.g. thfm-synth preprocess runs/x/render --out runs/x/shards",
            )
        summary = preprocess(
            args.render_dir,
            args.out,
            num_frames=args.num_frames,
            fps=args.fps,
            width=args.width,
            height=args.height,
            vae_weights=args.vae,
            text_encoder=args.text_encoder,
            max_shard_bytes=int(args.max_shard_mb * 1e6),
            address=args.address,
            workers=args.workers,
            prompt_dim=args.prompt_dim,
            pixel_targets=not args.no_pixel_targets,
            include_qa_failed=args.include_qa_failed,
        )
    for line in summary.lines():
        print(line)
    return 0


def cmd_shards(args) -> int:
    from thfm_synth.tools import shards_inspect as inspect

    action = args.shards_command
    if action == "show":
        result = inspect.show(
            args.shard_dir,
            args.out,
            index=args.index,
            video_id=args.video,
            task=args.task,
            render_dir=args.render_dir,
            vae_weights=args.vae,
        )
    elif action == "export":
        result = inspect.export(args.shard_dir, args.out, count=args.count, vae_weights=args.vae)
    elif action == "stats":
        result = inspect.stats(args.shard_dir, max_records=args.max_records)
    else:
        result = getattr(inspect, action)(args.shard_dir)
    print(result.text())
    return 1 if action == "verify" and not result.data.get("ok", False) else 0


def cmd_report(args) -> int:
    from thfm_synth.tools.report import write_report

    facts = write_report(args.path, args.out, max_thumbnails=args.thumbnails)
    counts = ", ".join(f"{k} {v}" for k, v in facts["counts"].items() if isinstance(v, (int, float)))
    print(
        f"wrote {args.out} ({facts['bytes'] / 1e3:.0f} kB, {facts['charts']} charts, {facts['thumbnails']} "
        f"thumbnails; {counts})"
    )
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


def ensure_makehuman() -> None:
    """Fetch the MakeHuman assets on first use when the network allows; otherwise built-in
    bodies keep the procedural look (with a one-line warning naming the fetch command)."""
    from thfm_synth.assets.characters.makehuman.assets import FETCH_COMMAND, default_dir, makehuman_dir

    if makehuman_dir() is not None:
        return
    from thfm_synth.assets.characters.makehuman.fetch import fetch_makehuman

    print(f"[characters] fetching the CC0 MakeHuman assets into {default_dir()} (first use only)", flush=True)
    try:
        from tqdm import tqdm

        with tqdm(total=0, unit="B", unit_scale=True, desc="makehuman") as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            fetch_makehuman(default_dir(), timeout=20.0, progress=progress)
    except UserError as exc:
        from thfm_synth.assets.characters import anny_body

        anny_body._WARNED = True  # this line says it all; no second warning from the baker
        print(
            f"thfm-synth: warning: could not fetch the MakeHuman assets ({exc.what}); built-in characters use the "
            f"procedural look; run `{FETCH_COMMAND}` when online",
            file=sys.stderr,
            flush=True,
        )


def cmd_demo(args) -> int:
    """The whole pipeline on the built-in defaults: plan, bake, render, preview, shards, train, predict."""
    import numpy as np

    from thfm_synth.assets.library import load_library
    from thfm_synth.assets.characters import character_npz
    from thfm_synth.config import load_config
    from thfm_synth.render.farm.binding import bind_output
    from thfm_synth.render.farm.blender import blender_farm
    from thfm_synth.render.farm.driver import run_farm
    from thfm_synth.plan.planner import plan_meta, timed_plan
    from thfm_synth.tools.preview import make_preview

    t0 = time.perf_counter()
    out: Path = args.out.resolve()  # Ray workers and the Blender child resolve paths from elsewhere
    cache = out / "cache"
    cfg = load_config("preview")
    library = load_library(builtin=True)
    specs, summary = timed_plan(cfg, library, args.seed, args.num_videos)
    meta = plan_meta(cfg, library, args.seed, args.num_videos)
    plan_path = out / "render" / "plan.parquet"
    plan_id = bind_output(out / "render", specs, meta)
    print(f"[1/7 plan] {summary.lines()[0]} -> {plan_path}")

    ids = sorted({s.character_id for s in specs})
    ensure_makehuman()
    t = time.perf_counter()
    for cid in ids:
        entry = library.entry(cid)
        character_npz(entry, library.path_of(entry), cache)
    print(f"[2/7 characters] baked {len(ids)} built-in bodies in {time.perf_counter() - t:.1f} s -> {cache}")

    print(
        f"[3/7 render] {len(specs)} videos of {cfg.video.num_frames} frames at {cfg.video.width}x"
        f"{cfg.video.height} on a local Ray with {args.workers} workers"
    )
    opts = blender_farm(out / "render", plan_path, cache, workers=args.workers, cpus_per_video=1)
    run = run_farm(specs, plan_id, opts)
    for line in run.lines():
        print("  " + line)

    first = out / "render" / "videos" / specs[0].video_id
    mp4, png = make_preview(first)
    print(f"[4/7 preview] {png}" + (f" and {mp4}" if mp4 else ""))
    if run.failed:
        print(f"demo stopped: {run.failed} videos failed (see {out / 'render' / 'failures.parquet'})")
        return 1

    from thfm_synth.preprocess.pipeline import preprocess
    from thfm_synth.tools import shards_inspect as inspect

    shards = out / "shards"
    pre = preprocess(out / "render", shards, prompt_dim=256, progress=True)  # the render's own video settings
    print(f"[5/7 preprocess] {pre.lines()[0]}")
    for line in inspect.info(shards).lines[:4]:
        print("  " + line)

    from model.predict import predict
    from model.train import train

    t = time.perf_counter()
    job = REPO_JOBS / "train_from_synth.yaml"
    # a demo-sized batch: 4 videos make 28 records, and 256x160 clips are 4x the job's 128x80 tokens
    summary = train(
        job,
        quiet=True,
        progress=True,
        **{"data.shard_dir": str(shards), "run_dir": str(out / "train"), "steps": args.train_steps, "batch_size": 4},
    )
    losses = summary.get("losses") or []
    first_l = float(np.mean(losses[:10])) if losses else float("nan")
    last_l = float(np.mean(losses[-10:])) if losses else float("nan")
    print(
        f"[6/7 train] {job.name}: {args.train_steps} steps in {time.perf_counter() - t:.1f} s, "
        f"loss {first_l:.3f} -> {last_l:.3f} (mean of the first/last 10 steps), checkpoint {out / 'train'}"
    )
    from thfm_synth.shards.store import ShardSet

    vid = specs[0].video_id
    pred = out / "predict" / f"{vid}_depth.mp4"
    record = next(
        i
        for i, r in enumerate(ShardSet.open(shards).records("array_record"))
        if r.video_id == vid and r.task == "depth"
    )
    result = predict(shards, "depth", out / "train" / "checkpoints", pred, record_index=record, truth=True)
    print(
        f"[7/7 predict] depth of {vid} beside its ground truth (input | ground truth | prediction) -> "
        f"{result['video']}, middle frame {result['still']}"
    )
    print(
        f"  a blocky, grey prediction is expected here: {args.train_steps} steps on {len(specs)} tiny videos only "
        "start training (tests/test_train_from_synth.py trains 2000 steps on 160 videos to beat the baselines); "
        "train longer on more videos for a sharp one"
    )
    print(
        f"demo done in {time.perf_counter() - t0:.1f} s: {run.rendered + run.skipped} videos rendered, "
        f"{pre.records} records, a trained checkpoint and a prediction; 0 failed"
    )
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> Parser:
    parser = Parser(prog="thfm-synth", description="Synthetic 4D-human video data for THFM.")
    parser.add_argument("--version", action="version", version=f"thfm-synth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)

    p = sub.add_parser(
        "plan",
        help="expand a seed into one spec per video (plan.parquet)",
        description="Write one row per video with every sampled choice. Row i depends only on "
        "(seed, i): plans of different lengths share their prefix.",
    )
    add_dataset_options(p)
    p.add_argument("--out", type=Path, metavar="FILE", help="plan file to write (Parquet)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "render",
        help="render every missing video of a plan with Ray (local or a cluster)",
        description="Plans like `thfm-synth plan` (or reads --plan), then renders what is missing "
        "into OUT/videos/<id> (atomic, resumable, safe to run twice at once). "
        "`--status DIR` prints the summary without rendering.",
    )
    add_dataset_options(p)
    p.add_argument("--plan", type=Path, metavar="FILE", help="render this plan instead of planning")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (shared filesystem on a cluster)")
    p.add_argument("--status", type=Path, metavar="DIR", help="print the summary of an output folder and exit")
    p.add_argument("--workers", type=positive_int, help="parallel videos (default: cores / --cpus-per-video)")
    p.add_argument("--cpus-per-video", type=float, default=1.0, help="Ray CPUs (and Cycles threads) per video")
    p.add_argument("--gpus-per-video", type=float, default=0.0, help="Ray GPUs per video (with --device cuda/optix)")
    p.add_argument("--max-retries", type=non_negative_int, default=2, help="retries of a crashed video (default 2)")
    p.add_argument(
        "--restart-every",
        type=positive_int,
        default=8,
        help="restart each worker's Blender after this many videos (Blender leaks memory)",
    )
    p.add_argument("--address", help="Ray cluster address (auto, ray://host:10001); default: a local Ray")
    p.add_argument("--blender", metavar="PATH", help="a Blender 5.x binary instead of the render environment")
    p.add_argument("--device", choices=("cpu", "cuda", "optix"), help="Cycles device (GPU falls back to CPU)")
    p.add_argument("--cache", type=Path, help="baked-character cache (default $THFM_CACHE, else OUT/.cache/characters)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "render-one",
        help="render one planned video into a self-describing folder",
        description="RGB, depth, normals, soft mask, IUV, canonical coordinates, annotations and "
        "metadata from one Cycles render per frame (README: video folder layout).",
    )
    p.add_argument("--plan", type=Path, required=True, help="plan file (thfm-synth plan)")
    p.add_argument(
        "--index",
        type=index_list,
        nargs="+",
        required=True,
        help="video index in the plan; several (`0 3 5`, `0-9`) render one after another with one Blender",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="video folder to create (several indices: OUT/<video_id> each)"
    )
    p.add_argument("--blender", metavar="PATH", help="a Blender 5.x binary instead of the render environment")
    p.add_argument("--device", choices=("cpu", "cuda", "optix"), help="Cycles device (GPU falls back to CPU)")
    p.add_argument("--cache", type=Path, help="baked-character cache (default ~/.cache/thfm-synth/characters)")
    p.set_defaults(func=cmd_render_one)

    p = sub.add_parser("preview", help="MP4 grid and PNG contact sheet of a rendered video's modalities")
    p.add_argument("video_dir", type=Path, help="a rendered video folder")
    p.add_argument("--mp4", type=Path, help="output MP4 (default VIDEO_DIR/preview.mp4)")
    p.add_argument("--png", type=Path, help="output contact sheet (default VIDEO_DIR/preview.png)")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser(
        "preprocess",
        help="rendered videos -> training shards (Parquet + ArrayRecord)",
        description="Resample, resize and VAE-encode every video and its targets, embed the task "
        "prompts, and write bounded, checksummed shards with Ray Data (resumable).",
    )
    p.add_argument("render_dir", type=Path, nargs="?", help="render output (OUT, OUT/videos or one video folder)")
    p.add_argument("--out", type=Path, help="shard folder")
    p.add_argument(
        "--config",
        type=Path,
        metavar="JOB",
        help="a preprocess job YAML (jobs/preprocess_*.yaml); RENDER_DIR/--out override its paths",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a job setting, YAML value (with --config; repeatable): --set workers=8",
    )
    p.add_argument(
        "--no-pixel-targets",
        action="store_true",
        help="skip the pixel ground truth (stage-1-only shards: smaller, faster)",
    )
    p.add_argument("--num-frames", type=positive_int, help="model frame count, 4k+1 (default: the render's)")
    p.add_argument("--fps", type=float, help="model frame rate (default: the render's)")
    p.add_argument("--width", type=positive_int, help="model width, multiple of 16 (default: the render's)")
    p.add_argument("--height", type=positive_int, help="model height, multiple of 16 (default: the render's)")
    p.add_argument("--vae", help="WAN 2.1 VAE weights (file or folder); default: the parameter-free codec")
    p.add_argument("--text-encoder", help="local umT5 model folder; default: the built-in prompt table")
    p.add_argument("--prompt-dim", type=positive_int, help="width of the built-in prompt table (default 4096)")
    p.add_argument("--max-shard-mb", type=float, default=1000.0, help="shard size bound, MB (default 1000)")
    p.add_argument("--address", help="Ray cluster address; default: a local Ray")
    p.add_argument("--workers", type=non_negative_int, help="encoder actors (0 = no Ray; default: all CPUs)")
    p.add_argument(
        "--include-qa-failed",
        action="store_true",
        help="also use videos that failed QA (left out by default; `render --status` lists them)",
    )
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("shards", help="look inside a shard folder: ls, info, stats, show, verify, export")
    ssub = p.add_subparsers(dest="shards_command", metavar="ACTION", parser_class=Parser, required=True)
    for name, text in (
        ("ls", "shard files, sizes and record counts"),
        ("info", "schema with field docs, counts per task, VAE id, prompt provenance"),
        ("verify", "re-check every file and record checksum (exit 1 and name the record if bad)"),
    ):
        q = ssub.add_parser(name, help=text)
        q.add_argument("shard_dir", type=Path)
        q.set_defaults(func=cmd_shards)
    q = ssub.add_parser("stats", help="latent value statistics per task and channel")
    q.add_argument("shard_dir", type=Path)
    q.add_argument("--max-records", type=positive_int, help="look at this many records per task at most")
    q.set_defaults(func=cmd_shards)
    q = ssub.add_parser("show", help="decode one record to MP4/PNG beside its source frames")
    q.add_argument("shard_dir", type=Path)
    q.add_argument("--out", type=Path, help="output folder (default ./shards-show)")
    q.add_argument("--index", type=non_negative_int, help="record index")
    q.add_argument("--video", help="video id")
    q.add_argument("--task", help="task name")
    q.add_argument("--render-dir", type=Path, help="the render folder, for the source frames")
    q.add_argument("--vae", help="VAE weights the shards were made with")
    q.set_defaults(func=cmd_shards)
    q = ssub.add_parser("export", help="write a sample of records as PNG / EXR / NPY files")
    q.add_argument("shard_dir", type=Path)
    q.add_argument("--out", type=Path, required=True, help="output folder")
    q.add_argument("--count", type=positive_int, default=4, help="records to export (default 4)")
    q.add_argument("--vae", help="VAE weights the shards were made with")
    q.set_defaults(func=cmd_shards)

    p = sub.add_parser("report", help="static HTML dataset card of a render or shard folder")
    p.add_argument("path", type=Path, help="render output, video folder or shard folder")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--thumbnails", type=positive_int, default=24, help="gallery size (default 24)")
    p.set_defaults(func=cmd_report)

    from model.cli import add_evaluate_parser, add_predict_parser, add_train_parser

    add_train_parser(sub)
    add_predict_parser(sub)
    add_evaluate_parser(sub)

    p = sub.add_parser("assets", help="build, check and list asset manifests")
    asub = p.add_subparsers(dest="assets_command", metavar="ACTION", parser_class=Parser, required=True)
    q = asub.add_parser(
        "scan",
        help="make a manifest from a folder of assets",
        description="Classify BVH/HDR/EXR/FBX/glTF/blend files, hash them, find their licences.",
    )
    q.add_argument("dir", type=Path, help="folder to scan")
    q.add_argument("--out", type=Path, required=True, metavar="FILE", help="manifest YAML to write")
    q.add_argument("--name", help="manifest name (default: the folder's name)")
    q.add_argument("--strict", action="store_true", help="fail if any file cannot be read")
    q.set_defaults(func=cmd_assets_scan)
    q = asub.add_parser(
        "validate", help="check files exist, checksums match, licences are set and every file decodes in full"
    )
    q.add_argument("manifest", type=Path, nargs="+", help="manifest YAML file(s)")
    q.add_argument("--no-hashes", action="store_true", help="skip the sha256 check (faster)")
    q.add_argument(
        "--headers-only",
        action="store_true",
        help="check file headers only, without decoding every file in full (faster)",
    )
    q.set_defaults(func=cmd_assets_validate)
    q = asub.add_parser("list", help="summarise the library: built-in plus the given manifests")
    q.add_argument("manifest", type=Path, nargs="*", help="manifest YAML file(s)")
    q.add_argument("--no-builtin", action="store_true", help="leave the built-in library out")
    q.add_argument("-v", "--verbose", action="store_true", help="list every entry")
    q.set_defaults(func=cmd_assets_list)

    q = asub.add_parser(
        "build-characters",
        help="bake built-in parametric bodies (anny, or SMPL-X from your model files) plus a manifest",
        description="Sample diverse bodies and appearances from (seed, i) and bake each into an npz "
        "Blender loads quickly (mesh, UVs, cmu_mb skeleton, skin weights, labels).",
    )
    q.add_argument("--count", type=positive_int, required=True, help="characters to build")
    q.add_argument("--seed", type=non_negative_int, default=0, help="seed (character i depends on (seed, i))")
    q.add_argument("--out", type=Path, required=True, help="output folder (npz files + manifest.yaml)")
    q.add_argument(
        "--age-range",
        choices=("adult", "wide"),
        default="adult",
        help="adults (default) or a wider range including children and elderly (anny)",
    )
    q.add_argument(
        "--backend",
        choices=("anny", "smplx"),
        default="anny",
        help="body model: anny (default, free) or smplx (your SMPL-X model files, --model-dir; "
        "SMPL-X licence: non-commercial)",
    )
    q.add_argument(
        "--model-dir",
        type=Path,
        metavar="DIR",
        help="smplx: folder with SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz (never downloaded)",
    )
    q.add_argument(
        "--gender",
        choices=("mixed", "neutral", "male", "female"),
        default="mixed",
        help="smplx: sampled sex (mixed, default) or one model file",
    )
    q.add_argument(
        "--texture-dir",
        type=Path,
        metavar="DIR",
        help="smplx: folder of SMPL-X UV textures (e.g. BEDLAM's) used instead of procedural clothes",
    )
    q.set_defaults(func=cmd_assets_build_characters)
    q = asub.add_parser("import-character", help="convert a rigged FBX/GLB/glTF character to our baked format")
    q.add_argument("file", type=Path, help="FBX, GLB or glTF file with a skinned armature")
    q.add_argument("--out", type=Path, required=True, help="baked character (.npz)")
    q.add_argument("--rig", default="auto", choices=IMPORT_RIGS, help="bone-name table (auto: the best match)")
    q.add_argument("--height-m", type=float, help="standing height in metres (when the file's units are wrong)")
    q.add_argument(
        "--bone-map", type=Path, metavar="YAML", help="our joint name -> their bone name, for a rig no table knows"
    )
    q.set_defaults(func=cmd_assets_import_character)
    q = asub.add_parser(
        "import-characters",
        help="import every rigged FBX/GLB/glTF of a folder into a character library (npz + textures + manifest)",
        description="Each file becomes LIBRARY/<id>.npz with an entry in LIBRARY/manifest.yaml; files that "
        "cannot be characters (no armature, unmappable rig, unknown licence) are refused with the reason. "
        "Licence: <name>.licence.txt beside the file, LICENCES.yaml in DIR, --licence, or a LICENSE text. "
        "Re-running skips files already imported. Exit 0 when the library holds characters of DIR and no "
        "file failed unexpectedly.",
    )
    q.add_argument("dir", type=Path, help="folder of .fbx/.glb/.gltf files (searched recursively)")
    q.add_argument("--out", type=Path, required=True, metavar="LIBRARY", help="library folder (made if missing)")
    q.add_argument("--licence", metavar="SPDX", help="licence of files without their own (e.g. CC0-1.0)")
    q.add_argument(
        "--allow-unknown-licence", action="store_true", help="import files whose licence is unknown (as UNKNOWN)"
    )
    q.add_argument("--rig", default="auto", choices=IMPORT_RIGS, help="bone-name table (auto: the best match)")
    q.add_argument(
        "--bone-map", type=Path, metavar="YAML", help="our joint name -> their bone name, laid over the rig table"
    )
    q.add_argument("--name", help="manifest name (default: the library folder's name)")
    q.set_defaults(func=cmd_assets_import_characters)
    q = asub.add_parser(
        "fetch",
        help="download public assets: cmu (the CMU mocap BVH clips), makehuman (the CC0 "
        "MakeHuman skins, clothes, hair, eyes and teeth), test-assets (every file "
        "the test suite reads, ~165 MB)",
        description="Download, verify (sha256) and lay out public assets; reruns resume partial "
        "downloads and keep verified files. test-assets: the files "
        "assets_manifest/test_assets.tsv lists, from their public sources, into --dest "
        "(default $THFM_TEST_ASSETS or ~/.cache/thfm-synth/test-assets, where "
        "`thfm-synth test` finds them).",
    )
    q.add_argument("what", choices=("cmu", "makehuman", "test-assets"), help="what to fetch")
    q.add_argument(
        "--dest",
        type=Path,
        help="download folder (required for cmu; makehuman default: "
        "~/.cache/thfm-synth/makehuman; test-assets default: "
        "$THFM_TEST_ASSETS or ~/.cache/thfm-synth/test-assets)",
    )
    q.add_argument("--lfs-url", default=None, help="makehuman: Git LFS server base (default https://github.com)")
    q.add_argument(
        "--base-url",
        default=None,
        help="mirror to download from (default: the public sources); "
        "test-assets: a mirror laid out like the destination folder",
    )
    q.add_argument("--layout", default=None, help="cmu: path of a clip under the base URL, e.g. '{clip}.bvh'")
    q.add_argument("--clips", help="cmu: comma-separated clip ids (default: all known clips)")
    q.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="test-assets: only these files, a folder (mocap, hdri, scenes, characters, makehuman) or a "
        "glob (repeatable)",
    )
    q.add_argument(
        "--list",
        type=Path,
        metavar="FILE",
        help="test-assets: another list in the format of assets_manifest/test_assets.tsv",
    )
    q.add_argument("--workers", type=positive_int, default=4, help="test-assets: parallel downloads (default 4)")
    q.set_defaults(func=cmd_assets_fetch)

    q = asub.add_parser(
        "preview-characters",
        help="render a contact sheet of baked characters (front and side, rest and mid-walk) to look at them",
        description="Renders each character with the video renderer (Cycles, 16 samples + "
        "denoising by default) under a sunny sky and tiles the results into one PNG.",
    )
    q.add_argument("dir", type=Path, help="folder of baked characters (build-characters output) or one .npz")
    q.add_argument("--out", type=Path, required=True, help="contact sheet PNG to write")
    q.add_argument("--count", type=positive_int, default=24, help="characters to show (default 24)")
    q.add_argument("--tile-width", type=positive_int, default=256, help="tile width in pixels (default 256)")
    q.add_argument("--tile-height", type=positive_int, default=384, help="tile height in pixels (default 384)")
    q.add_argument("--samples", type=positive_int, default=16, help="Cycles samples per pixel (default 16)")
    q.add_argument("--no-denoise", action="store_true", help="skip OpenImageDenoise")
    q.set_defaults(func=cmd_assets_preview_characters)

    p = sub.add_parser("doctor", help="report both environments, Blender, JAX, Ray and disk")
    p.add_argument("--blender", metavar="PATH", help="check this Blender binary instead of the render environment")
    p.add_argument("--out", type=Path, default=Path("."), help="where outputs will go (for the disk check)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "demo",
        help="run the pipeline end to end on the built-in defaults",
        description="From nothing to a trained checkpoint: plans a few preview videos from the "
        "built-in library (no files needed), bakes their bodies, renders them on a local "
        "Ray, previews one, preprocesses them into shards, trains THFM briefly and "
        "predicts depth for a clip.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--num-videos", type=positive_int, default=4, help="videos (default 4)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="plan seed (default 0)")
    p.add_argument("--workers", type=positive_int, default=2, help="parallel renders (default 2)")
    p.add_argument("--train-steps", type=positive_int, default=200, help="training steps (default 200)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "test",
        help="run the test suite (what CI runs); --quick for the development loop",
        description="Run the test suite with pytest from the source tree. Other arguments go to "
        "pytest (e.g. `-k farm`, `tests/test_plan.py`).",
    )
    p.add_argument("--quick", action="store_true", help="skip the tests marked slow")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="never install system packages (by default, run as root, the set-up step installs Debian's "
        "chromium for the HTML card's browser test when no Chromium is found)",
    )
    p.set_defaults(func=cmd_test)
    return parser


def cmd_test(args) -> int:
    import os

    from thfm_synth import bootstrap

    if not (bootstrap.REPO / "tests").is_dir():
        raise UserError(
            f"no test suite beside {bootstrap.REPO}: the tests ship with the source tree only",
            "run the command in a clone of the repository",
        )
    from thfm_synth import testsetup

    testsetup.prepare(install=not args.no_install, quick=args.quick)  # announced, before pytest; no test installs
    os.chdir(bootstrap.REPO)  # pytest finds its configuration in pyproject.toml
    argv = [sys.executable, "-m", "pytest", *(["-m", "not slow"] if args.quick else []), *args.pytest_args]
    os.execv(sys.executable, argv)


def main(argv: list[str] | None = None) -> int:
    # JAX warns on every fork once it is imported; ours are subprocess fork+exec (ffmpeg, Blender),
    # which run no JAX code in the child, so on a successful run the warning is only noise
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "test":
        args.pytest_args = extra  # everything else is for pytest
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
