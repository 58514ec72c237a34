"""A stand-in renderer without Blender, for testing and measuring the farm itself.

It behaves like the real one where the farm can tell: it checks the video's motion asset
(a corrupt BVH fails the video as bad input), runs a long-lived child process that
"renders" each frame by sleeping `frame_seconds` (CPU-busy, like a renderer) and writing a
small file, and can be crashed by killing that child. Run the child with
`python -m thfm_synth.render.farm.fake`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from thfm_synth.blender import contract
from thfm_synth.blender.child import ServingChild

SCRIPT = "thfm_synth.render.farm.fake"


@dataclass
class FakeRenderJob(contract.Job):
    spec: dict
    out: str
    frame_seconds: float
    journal: str | None = None


class FakeVideoRenderer:
    def __init__(
        self,
        log_path: Path,
        frame_seconds: float = 0.05,
        restart_every: int = 8,
        manifests: tuple[str, ...] = (),
        builtin: bool = True,
        timeout_s: float = 120.0,
        journal: str | None = None,
        disk_full_video: str | None = None,
        worker_index: int = 0,
        digest_cache: str | None = None,
        qa_fail_videos: tuple[str, ...] = (),
    ):
        from thfm_synth.assets.library import load_library
        from thfm_synth.digests import DigestCache

        self.library = load_library(list(manifests), builtin=builtin)
        self.digests = DigestCache(digest_cache)
        self.qa_fail_videos = set(qa_fail_videos)  # "render" these as if QA failed them (an empty video)
        self.frame_seconds = frame_seconds
        self.timeout_s = timeout_s
        self.journal = journal  # a file every finished render appends its video id to (tests count renders)
        self.disk_full_video = disk_full_video  # simulate ENOSPC while writing this video
        self.child = ServingChild(
            [sys.executable, "-m", SCRIPT, "--", contract.SERVE_FLAG], SCRIPT, log_path, restart_every
        )

    @property
    def child_pid(self) -> int | None:
        return self.child.pid

    def render(self, spec_row: dict, out_dir: Path) -> dict:
        from thfm_synth.assets import probes
        from thfm_synth.assets.integrity import verify_video_assets
        from thfm_synth.plan.spec import VideoSpec

        verify_video_assets(VideoSpec.from_row(spec_row), self.library, self.digests)  # as the real renderer
        motion = self.library.entry(spec_row["motion_id"])
        path = self.library.path_of(motion)
        if path is not None:
            probes.bvh_info(path)  # raises UserError naming the file for a corrupt clip
        if spec_row["video_id"] == self.disk_full_video:
            import errno

            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir))
        job = FakeRenderJob(
            spec=spec_row, out=str(Path(out_dir).resolve()), frame_seconds=self.frame_seconds, journal=self.journal
        )
        result = self.child.run(job, out_dir / "_job", self.timeout_s)
        shutil.rmtree(out_dir / "_job", ignore_errors=True)  # as the real renderer: the job's files are not output
        qa_ok = spec_row["video_id"] not in self.qa_fail_videos
        return {
            "frames": result["frames"],
            "render_seconds": result["seconds"],
            "child_pid": result["pid"],
            "qa_passed": qa_ok,
            "qa_failures": [] if qa_ok else ["person_not_visible"],
        }

    def close(self) -> None:
        self.child.stop()


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def fake_render(job: FakeRenderJob) -> dict:
    out = Path(job.out)
    t0 = time.perf_counter()
    frames = job.spec["num_frames"]
    (out / "rgb").mkdir(exist_ok=True)
    for f in range(frames):
        _busy(job.frame_seconds)
        (out / "rgb" / f"{f:06d}.txt").write_text(f"{job.spec['video_id']} frame {f}\n")
    (out / "metadata.json").write_text(json.dumps({"spec": job.spec}, sort_keys=True))
    if job.journal:
        with open(job.journal, "a") as fh:  # O_APPEND: lines from several children never interleave
            fh.write(job.spec["video_id"] + "\n")
    return {"frames": frames, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


class GatedRenderer:
    """Any renderer whose renders wait until a gate file exists.

    Tests open the gate only once two runs have both claimed work, so "they overlapped" is a
    fact of the test rather than a race against Ray's start-up time on a loaded machine.
    """

    def __init__(
        self, log_path: Path, inner: str, gate: str, worker_index: int = 0, gate_timeout_s: float = 600.0, **options
    ):
        from thfm_synth.render.farm.worker import load_renderer

        self.inner = load_renderer(inner, options, log_path, worker_index)
        self.gate = Path(gate)
        self.gate_timeout_s = gate_timeout_s

    @property
    def child_pid(self) -> int | None:
        return self.inner.child_pid

    def render(self, spec_row: dict, out_dir: Path) -> dict:
        deadline = time.monotonic() + self.gate_timeout_s
        while not self.gate.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {self.gate} never opened")
            time.sleep(0.05)
        return self.inner.render(spec_row, out_dir)

    def close(self) -> None:
        self.inner.close()


if __name__ == "__main__":
    contract.script_main(SCRIPT, fake_render, job_type=FakeRenderJob)
