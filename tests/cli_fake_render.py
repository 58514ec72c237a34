"""`thfm-synth render` exactly as a user runs it, with the farm's stand-in renderer (farm/fake.py)
in place of Blender: the CLI's own signal handling, exit codes and messages are what is tested.

Used by tests as `python tests/cli_fake_render.py render ARGS...`; the stand-in's frame time comes
from $THFM_TEST_FRAME_SECONDS. Only the renderer is swapped: planning, binding, the farm, Ray and the
CLI's error handling are the product's.
"""

import os
import sys

from thfm_synth import cli
from thfm_synth.render.farm import blender


def fake_farm(out, plan_path, cache_dir, **kw):
    opts = real_farm(out, plan_path, cache_dir, **kw)
    opts.renderer = "thfm_synth.render.farm.fake:FakeVideoRenderer"
    opts.renderer_options = {
        "frame_seconds": float(os.environ.get("THFM_TEST_FRAME_SECONDS", "0.05")),
        "digest_cache": opts.renderer_options["digest_cache"],
    }
    return opts


real_farm = blender.blender_farm
blender.blender_farm = fake_farm

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
