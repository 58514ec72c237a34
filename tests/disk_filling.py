"""A disk that fills up at a chosen moment of a real Blender render (the farm's ENOSPC tests).

`python tests/disk_filling.py render ARGS` is `thfm-synth render` with the farm's real Blender
renderer, subclassed only to fill the output disk (a small tmpfs the test mounted) at the moment
named by $THFM_TEST_FILL_AT, with one file, $THFM_TEST_FILL_FILE, that the test deletes to "free
space". The ENOSPC that follows is the kernel's, hit by the product's own writes:

* `blender`: just before the Blender child takes the job, leaving room for the job and result files
  only: Blender itself runs out of space writing its first frame;
* `commit`: after the video rendered, before the worker commits it (writes DONE, renames the folder
  into videos/). On a local filesystem the rename itself needs no new space; DONE is the commit's write.

No hook in the product: the renderer class is swapped the way the farm loads any renderer.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from thfm_synth import cli
from thfm_synth.render.farm import blender

BLENDER_ROOM = 48 << 10  # the job file, the child's pid and its result fit; a frame does not


def fill_disk(leave: int) -> None:
    """Take all free space but `leave` bytes of the filesystem holding $THFM_TEST_FILL_FILE (once)."""
    path = Path(os.environ["THFM_TEST_FILL_FILE"])
    if path.exists():
        return
    free = shutil.disk_usage(path.parent).free
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.posix_fallocate(fd, 0, max(free - leave, 4096))
    finally:
        os.close(fd)


class FillingBlenderRenderer(blender.BlenderVideoRenderer):
    def render(self, spec_row: dict, out_dir: Path) -> dict:
        at = os.environ.get("THFM_TEST_FILL_AT")
        if at == "blender":
            real_run = self.child.run

            def run(job, job_dir, timeout_s):
                fill_disk(BLENDER_ROOM)
                return real_run(job, job_dir, timeout_s)

            self.child.run = run
        stats = super().render(spec_row, out_dir)
        if at == "commit":
            fill_disk(0)
        return stats


def filling_farm(*args, **kw):
    opts = real_farm(*args, **kw)
    opts.renderer = f"disk_filling:{FillingBlenderRenderer.__name__}"
    return opts


real_farm = blender.blender_farm
blender.blender_farm = filling_farm

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
