"""Run the render farm with the stand-in renderer (used by test_farm.py as a subprocess)."""

import json
import sys
from pathlib import Path

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.farm.driver import FarmOptions, run_farm
from thfm_synth.plan.planner import make_plan

if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    manifests = args.get("manifests", [])
    specs = make_plan(load_config("preview"), load_library(manifests), 0, args.get("n", 4))
    opts = FarmOptions(out=Path(args["out"]), renderer="thfm_synth.farm.fake:FakeVideoRenderer",
                       renderer_options={"frame_seconds": args.get("frame_seconds", 0.05), "manifests": manifests,
                                         "journal": args.get("journal")},
                       workers=2, max_retries=2, progress=False)
    summary = run_farm(specs, {"plan": "test", "manifests": manifests}, opts)
    print(json.dumps({"rendered": summary.rendered, "skipped": summary.skipped, "failed": summary.failed,
                      "elsewhere": summary.elsewhere, "retries": summary.retries}))
