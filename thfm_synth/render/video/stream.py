"""Streamed render: convert and check frame N while Blender renders frame N+1.

Blender renders the whole video in one job (one EXR per frame, blender_scripts/render_scene.py)
and prints a `THFM_PROGRESS` line once a frame's EXR is saved and checked. The parent tails the
child's log, keeps only the lines of THIS job's raw folder (two runs on one machine may share
nothing but the file system, and a reused child's log holds earlier jobs), and hands each frame to
one worker thread: decode, write the label files, annotate and QA it (render/video/perframe.py),
delete the EXR. Nothing of a frame stays in memory after its turn, so memory is flat in the
number of frames.

Auto-exposure meters the clip's first and last frames, so the RGB can only be encoded once
Blender is done: until then each frame's scene-linear RGB waits as an exact float32 `.npy` (with
its stored mask for the RGB QA), and the final RGB files are written on two threads at the end.
A fixed exposure writes the RGB in the frame's turn.

Any failure stops Blender (a shared child is killed; the next job starts a fresh one) and joins
the worker before it re-raises, so nothing writes into the folder the caller then removes.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.blender import contract as C
from thfm_synth.blender.child import ServingChild
from thfm_synth.render import exposure, outputs, runner
from thfm_synth.render.imagefiles import read_exr
from thfm_synth.render.video.perframe import VideoLabels, as_stored

RGB_THREADS = 2  # WebP encoding releases the GIL; the machine's other cores are Blender's
# A frame takes 0.1-10 s to render: polling at 10 Hz costs a frame at most 0.1 s of latency, and at
# 50 Hz the poll loop alone measured ~1% of a core over a paper-preset video
POLL_S = 0.1


@dataclass
class Streamed:
    info: dict  # render_info.json
    sizes: list[dict]  # per frame, as outputs.convert_render returns them
    blender_seconds: float  # the Blender job's wall time (conversion overlapped with it)
    after_blender_seconds: float  # conversion left when Blender was done, plus the RGB encoding


class ProgressTail:
    """New `THFM_PROGRESS` records of one raw folder in a growing log file."""

    def __init__(self, log_path: Path, raw_dir: Path):
        self.path = Path(log_path)
        self.raw = os.path.realpath(raw_dir)
        self.offset = self.path.stat().st_size if self.path.is_file() else 0
        self.partial = b""

    def poll(self) -> list[dict]:
        try:
            if os.stat(self.path).st_size == self.offset:  # the common case: nothing new, no read
                return []
        except FileNotFoundError:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # an unfinished line waits for the rest
        out = []
        tag = C.PROGRESS_TAG.encode() + b" "
        for line in lines:
            if not line.startswith(tag):
                continue
            try:
                rec = json.loads(line[len(tag) :])
            except ValueError:
                continue
            files = rec.get("files") or []
            if files and all(os.path.dirname(os.path.realpath(f)) == self.raw for f in files):
                out.append(rec)
        return out


class _FrameWork:
    """One frame's conversion (runs on the worker thread, frames in order)."""

    def __init__(self, out: Path, tmp: Path, desc, labels: VideoLabels, stored, auto_exposure: bool):
        self.out, self.tmp, self.desc, self.labels = out, tmp, desc, labels
        self.stored, self.auto = tuple(stored), auto_exposure
        self.meter = set(exposure.meter_frame_indices(desc.num_frames)) if auto_exposure else set()
        self.metered: dict[int, tuple] = {}  # at most METER_FRAMES frames: (linear RGB, fg)
        self.sizes: dict[int, dict] = {}
        self.failed = False

    def convert_unless_failed(self, rec: dict) -> None:
        """convert, but not after an earlier frame failed (its error ends the video)."""
        if self.failed:
            return
        try:
            self.convert(rec)
        except BaseException:
            self.failed = True
            raise

    def convert(self, rec: dict) -> None:
        f = int(rec["frame"])
        parts = [read_exr(p) for p in rec["files"]]
        ch = {name: a for part in parts for name, a in part.items()}
        lin = outputs._linear_rgb(ch)
        if f in self.meter and lin is not None:  # as convert_render meters (the mask may be in another file)
            self.metered[f] = (lin, outputs.mask_channel(ch))
        for name in C.CH_COMBINED:  # the RGB is encoded apart (below)
            ch.pop(name, None)
        cam = self.desc.camera
        fr = outputs.decode_raw(ch, cam.r[f], 1.0, cam.k[f])
        fr.rgb_linear = lin
        sizes = outputs.write_frame(self.out, f, fr, tuple(m for m in self.stored if m != "rgb"))
        stored = as_stored(fr, self.stored)
        self.labels.add_frame(f, stored)
        if lin is not None and "rgb" in self.stored:
            if self.auto:
                np.save(self.tmp / f"{f:05d}_rgb.npy", lin)
                np.save(self.tmp / f"{f:05d}_mask.npy", stored.mask)
            else:
                sizes.update(self.write_rgb(f, lin, stored.mask, 1.0))
        self.sizes[f] = sizes
        for p in rec["files"]:
            os.remove(p)

    def write_rgb(self, f: int, lin: np.ndarray, mask: np.ndarray, gain: float) -> dict:
        rgb = outputs.srgb_encode(lin * np.float32(gain))
        sizes = outputs.write_frame(self.out, f, outputs.Frame(rgb=rgb), ("rgb",))
        self.labels.add_rgb(f, rgb, mask)
        return sizes

    def finish_rgb(self, f: int, gain: float) -> None:
        lin_p, mask_p = self.tmp / f"{f:05d}_rgb.npy", self.tmp / f"{f:05d}_mask.npy"
        if not lin_p.is_file():
            return
        self.sizes[f].update(self.write_rgb(f, np.load(lin_p), np.load(mask_p), gain))
        lin_p.unlink()
        mask_p.unlink()


def _blender_error_first(rendering: Future, wait_s: float = 5.0) -> None:
    """A frame that fails to convert is often Blender's own failure seen early (a disk that filled
    up while it saved the EXR): give the child a moment to report, and raise its error if it has one."""
    try:
        rendering.result(timeout=wait_s)
    except TimeoutError:
        pass


def render_streamed(
    work: Path,
    out: Path,
    desc,
    labels: VideoLabels,
    stored,
    auto_exposure: bool,
    child: ServingChild | None,
    runtime,
    timeout_s: float,
    threads: int,
    modalities,
) -> Streamed:
    """Render `work/scene` with conversion overlapped; the stored files go to `out`."""
    render_dir = work / "render"
    tmp = work / "rgb_linear_npy"
    tmp.mkdir(parents=True, exist_ok=True)
    job = runner.render_job(work / "scene", render_dir, modalities=modalities, threads=threads)
    (render_dir / C.RENDER_INFO).unlink(missing_ok=True)
    own_child = child is None
    if own_child:  # render-one without a child of its own: one for this video only
        child = ServingChild.blender(C.SCRIPT_RENDER, work / "blender.log", runtime, restart_every=1)
    child.ensure_started()  # from this thread, which outlives the job (see ensure_started)
    tail = ProgressTail(child.log_path, render_dir / C.RAW_DIR)
    work_ = _FrameWork(out, tmp, desc, labels, stored, auto_exposure)
    blender = ThreadPoolExecutor(1, thread_name_prefix="thfm-blender")
    worker = ThreadPoolExecutor(1, thread_name_prefix="thfm-convert")
    pending: dict[int, Future] = {}
    t0 = time.perf_counter()
    rendering = blender.submit(child.run, job, render_dir / "_job", timeout_s)
    try:

        def take(records) -> None:
            for rec in records:
                f = int(rec["frame"])
                if f not in pending:
                    pending[f] = worker.submit(work_.convert_unless_failed, rec)

        while not rendering.done():
            take(tail.poll())
            for fut in pending.values():  # a failed conversion stops the render now, not at the end
                if fut.done() and fut.exception() is not None:
                    _blender_error_first(rendering)
                    fut.result()
            time.sleep(POLL_S)
        info = rendering.result()
        t_blender = time.perf_counter() - t0
        t1 = time.perf_counter()
        take(tail.poll())
        take(info["frames"])  # a line the log lost: render_info.json lists every frame
        for f in sorted(pending):
            pending[f].result()
        gain = 1.0
        if auto_exposure and work_.metered:
            metered = [work_.metered[f] for f in sorted(work_.metered)]
            gain = exposure.metering_gain([m[0] for m in metered], masks=[m[1] for m in metered])
            work_.metered.clear()
            with ThreadPoolExecutor(RGB_THREADS, thread_name_prefix="thfm-rgb") as pool:
                list(pool.map(lambda f: work_.finish_rgb(f, gain), sorted(pending)))
    except BaseException:
        if not rendering.done():
            child.kill()  # a job half done must not go on writing into a folder about to be removed
        for fut in pending.values():
            fut.cancel()
        raise
    finally:
        worker.shutdown(wait=True)
        blender.shutdown(wait=True)
        if own_child:
            child.stop()
    frames = [int(r["frame"]) for r in info["frames"]]
    sizes = [
        {
            "frame": f,
            "bytes": work_.sizes[f],
            "total_bytes": sum(work_.sizes[f].values()),
            "exposure_gain": gain,
        }
        for f in frames
    ]
    return Streamed(info, sizes, t_blender, time.perf_counter() - t1)
