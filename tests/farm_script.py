"""Run the render farm (used by test_farm.py as a subprocess): JSON options in argv[1].

renderer "fake": the stand-in renderer (farm/fake.py); "blender": real Blender renders of a
tiny preview plan.
"""

import json
import sys
from pathlib import Path

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.render.farm.driver import FarmOptions, run_farm
from thfm_synth.render.farm.folders import OutputLayout
from thfm_synth.plan.planner import make_plan, plan_meta, write_plan

TINY = {"video": {"width": 128, "height": 80, "num_frames": 5}, "render": {"samples": 2, "denoise": False}}

if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    out = Path(args["out"])
    manifests = args.get("manifests", [])
    cfg = load_config("preview", overrides=TINY)
    library = load_library(manifests)
    n = args.get("n", 4)
    specs = make_plan(cfg, library, 0, n)
    plan = out / "plan.parquet"
    if not plan.exists():
        write_plan(plan, specs, plan_meta(cfg, library, 0, n))
    digests = str(OutputLayout(out.resolve()).asset_digests)
    if args.get("renderer", "fake") == "blender":
        renderer = "thfm_synth.render.farm.blender:BlenderVideoRenderer"
        options = {"plan": str(plan), "cache_dir": args["cache"], "threads": 1, "digest_cache": digests}
    else:
        renderer = "thfm_synth.render.farm.fake:FakeVideoRenderer"
        options = {
            "frame_seconds": args.get("frame_seconds", 0.05),
            "manifests": args.get("renderer_manifests", manifests),
            "journal": args.get("journal"),
            "disk_full_video": args.get("disk_full_video"),
            "digest_cache": digests,
            "qa_fail_videos": args.get("qa_fail_videos", []),
        }
    if args.get("gate"):  # every render waits for the test to open the gate (fake.GatedRenderer)
        options = {"inner": renderer, "gate": args["gate"], **options}
        renderer = "thfm_synth.render.farm.fake:GatedRenderer"
    opts = FarmOptions(
        out=out,
        renderer=renderer,
        renderer_options=options,
        workers=args.get("workers", 2),
        max_retries=2,
        progress=False,
        address=args.get("address"),
        claim_stale_s=args.get("claim_stale_s"),
    )
    summary = run_farm(specs, {"plan": "test", "manifests": manifests}, opts)
    print(
        json.dumps(
            {
                "rendered": summary.rendered,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "elsewhere": summary.elsewhere,
                "retries": summary.retries,
                "duplicates": summary.duplicates,
                "qa_failed": sorted(summary.qa_failed),
                "lines": summary.lines(),
            }
        )
    )
