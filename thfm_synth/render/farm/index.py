"""videos.parquet, failures.parquet and the run summary, all derived from the output folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from thfm_synth.atomic import atomic_path
from thfm_synth.render.farm.folders import DONE, OutputLayout

VIDEOS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("status", pa.string()),
        ("attempts", pa.int64()),
        ("render_seconds", pa.float64()),
        ("frames", pa.int64()),
        ("bytes", pa.int64()),
        ("files", pa.string()),
        ("host", pa.string()),
        ("run_id", pa.string()),
        ("spec", pa.string()),
        ("finished_at", pa.float64()),
        # realised view (metadata.json "view"; null for videos rendered before it was recorded): camera
        # azimuth from the subject's facing at the first frame, fraction of frames the face is towards it
        ("azimuth_deg", pa.float64()),
        ("face_towards_camera", pa.float64()),
    ]
)
FAILURES_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("attempts", pa.int64()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("traceback", pa.string()),
        ("time", pa.float64()),
    ]
)


def _write(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    with atomic_path(path, "index") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)


def qa_passed(done_info: dict) -> bool:
    """Whether a committed video passed QA, from its DONE record (older records without QA: passed)."""
    return bool(done_info.get("qa", {}).get("passed", done_info.get("stats", {}).get("qa_passed", True)))


def done_records(layout: OutputLayout) -> list[dict]:
    out = []
    for vid in sorted(layout.done_ids()):
        info = json.loads((layout.video_dir(vid) / DONE).read_text())
        meta_path = layout.video_dir(vid) / "metadata.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        spec, view = meta.get("spec", {}), meta.get("view") or {}
        out.append(
            {
                "video_id": vid,
                "status": "done" if qa_passed(info) else "qa_failed",
                "attempts": int(info.get("attempt", 1)),
                "render_seconds": float(info.get("seconds", 0.0)),
                "frames": int(info.get("stats", {}).get("frames", 0)),
                "bytes": int(info.get("bytes", 0)),
                "files": json.dumps(info.get("files", {}), sort_keys=True),
                "host": info.get("host", ""),
                "run_id": info.get("run_id", ""),
                "spec": json.dumps(spec, sort_keys=True),
                "finished_at": float(info.get("finished_at", 0.0)),
                "azimuth_deg": view.get("azimuth_first_deg"),
                "face_towards_camera": view.get("face_towards_camera"),
            }
        )
    return out


def write_videos_index(layout: OutputLayout) -> list[dict]:
    rows = done_records(layout)
    _write(layout.root / "videos.parquet", rows, VIDEOS_SCHEMA)
    return rows


def read_failures(layout: OutputLayout) -> list[dict]:
    path = layout.root / "failures.parquet"
    return pq.read_table(path).to_pylist() if path.is_file() else []


def write_failures(layout: OutputLayout, new: list[dict]) -> list[dict]:
    """Merge this run's failures with earlier ones; a video that is now done leaves the list."""
    done = layout.done_ids()
    merged = {r["video_id"]: r for r in read_failures(layout)}
    for r in new:
        merged[r["video_id"]] = r
    rows = [r for vid, r in sorted(merged.items()) if vid not in done]
    _write(layout.root / "failures.parquet", rows, FAILURES_SCHEMA)
    return rows


@dataclass
class RunSummary:
    planned: int
    rendered: int = 0  # by this run
    skipped: int = 0  # already done before this run
    failed: int = 0
    elsewhere: int = 0  # claimed by another live run
    retries: int = 0
    duplicates: int = 0  # renders discarded because another run committed the video first
    wall_seconds: float = 0.0
    cpus_per_video: float = 1.0
    parallel: int = 1
    seconds_per_video: list[float] = field(default_factory=list)
    frames: int = 0
    interrupted: bool = False
    qa_failed: dict[str, list[str]] = field(default_factory=dict)  # committed videos that failed QA -> checks
    failure_reasons: dict[str, list[str]] = field(default_factory=dict)  # failure kind -> "video: reason"
    status_view: bool = False  # made by `status` (counts everything done as rendered)

    def lines(self) -> list[str]:
        if self.status_view:
            remaining = self.planned - self.rendered - self.failed
            out = [
                f"done {self.rendered} of {self.planned} planned videos (QA failed {len(self.qa_failed)}), "
                f"failed {self.failed}, in progress {self.elsewhere}, remaining {max(remaining, 0)}"
            ]
        else:
            remaining = self.planned - self.rendered - self.skipped - self.failed
            out = [
                f"rendered {self.rendered}, skipped {self.skipped} (already done), failed {self.failed}, "
                f"QA failed {len(self.qa_failed)}, in progress elsewhere {self.elsewhere}, retries {self.retries}"
                + (" - INTERRUPTED (rerun the same command to continue)" if self.interrupted else "")
            ]
        out += self.reason_lines()
        if self.seconds_per_video:
            total = sum(self.seconds_per_video)
            per_video = total / len(self.seconds_per_video)
            per_frame = total / max(self.frames, 1)
            rate = self.rendered / max(self.wall_seconds, 1e-9) * 3600
            cpu_h = per_video * self.cpus_per_video / 3600
            eta_h = max(remaining, 0) * per_video / max(self.parallel, 1) / 3600
            whole_core_h = per_video * self.planned * self.cpus_per_video / 3600
            out += [
                f"{rate:,.1f} videos/hour, {per_frame:.2f} s/frame, {cpu_h * 3600:.1f} CPU-seconds "
                f"({cpu_h:.4f} CPU-hours) per video in {self.wall_seconds:.1f} s wall"
                + (" (all runs: first video's start to last video's end)" if self.status_view else ""),
                f"remaining {max(remaining, 0)} videos: about {eta_h:.2f} h at this parallelism "
                f"({self.parallel} workers); the whole plan ({self.planned:,} videos) at this rate: "
                f"{whole_core_h:,.1f} core-hours",
            ]
        return out

    def reason_lines(self, shown: int = 2) -> list[str]:
        """Failures grouped by kind (bad_input, crash, error, worker_died), and the QA failures."""
        out = []
        for kind, reasons in sorted(self.failure_reasons.items()):
            more = f" (+{len(reasons) - shown} more in failures.parquet)" if len(reasons) > shown else ""
            out.append(f"  failed {kind} {len(reasons)}: " + "; ".join(r[:300] for r in reasons[:shown]) + more)
        if self.qa_failed:
            checks: dict[str, int] = {}
            for failed in self.qa_failed.values():
                for check in failed or ["unknown"]:
                    checks[check] = checks.get(check, 0) + 1
            ids = sorted(self.qa_failed)
            out.append(
                f"  QA failed {len(ids)} (kept, left out of preprocess): "
                + ", ".join(f"{c} {n}" for c, n in sorted(checks.items()))
                + f" - {', '.join(ids[:8])}"
                + (" ..." if len(ids) > 8 else "")
            )
        return out


RUNS_LOG = "runs.jsonl"  # one line per finished `render` run: its own summary, as it printed it


def record_run(layout: OutputLayout, summary: RunSummary) -> None:
    """Append this run's summary to the folder's run log (what `render --status` quotes as the last
    run, so the two never disagree)."""
    line = {
        "finished_at": time.time(),
        "rendered": summary.rendered,
        "failed": summary.failed,
        "wall_seconds": round(summary.wall_seconds, 3),
        "workers": summary.parallel,
        "interrupted": summary.interrupted,
        "lines": summary.lines(),
    }
    with open(layout.root / RUNS_LOG, "a") as fh:  # one short write: a line is whole or absent
        fh.write(json.dumps(line) + "\n")


def last_run(layout: OutputLayout) -> dict | None:
    path = layout.root / RUNS_LOG
    if not path.is_file():
        return None
    for text in reversed(path.read_text().splitlines()):
        try:
            return json.loads(text)
        except ValueError:  # a torn last line (killed mid-write): the one before
            continue
    return None


def status(layout: OutputLayout, planned: int) -> RunSummary:
    rows = done_records(layout)
    failures = read_failures(layout)
    s = RunSummary(planned=planned, failed=len(failures), status_view=True)
    for f in failures:
        s.failure_reasons.setdefault(f["status"], []).append(f"{f['video_id']}: {f['reason']}")
    for r in rows:
        if r["status"] == "qa_failed":
            info = json.loads((layout.video_dir(r["video_id"]) / DONE).read_text())
            s.qa_failed[r["video_id"]] = list(info.get("qa", {}).get("failures", []))
    s.seconds_per_video = [r["render_seconds"] for r in rows]
    s.frames = sum(r["frames"] for r in rows)
    claims = list(layout.claims.glob("*")) if layout.claims.is_dir() else []
    s.elsewhere = sum(1 for c in claims if not layout.is_done(c.name))
    spans = [(r["finished_at"] - r["render_seconds"], r["finished_at"]) for r in rows if r["finished_at"]]
    s.wall_seconds = max(e for _, e in spans) - min(b for b, _ in spans) if spans else 0.0
    s.parallel = max(1, round(sum(r["render_seconds"] for r in rows) / s.wall_seconds)) if s.wall_seconds else 1
    s.rendered, s.skipped = len(rows), 0  # for status, count everything done as rendered
    return s
