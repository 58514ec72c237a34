"""The dataset card: one self-contained HTML file (inline CSS, inline SVG charts, PNG thumbnails as
base64 data URIs, a few lines of inline JavaScript; no external URL of any kind).

    write_report("OUT", "card.html")      # a render output (OUT/videos/<id>/...), its videos/ or one video
    write_report("SHARDS", "card.html")   # a shard set (index.json); uses its render folder when reachable

Contents: counts (videos, frames, failures, QA, records per task), asset licences, histograms of
focal length, camera distance (camera centre to the subject's pelvis, from R, t and the joints),
camera azimuth relative to the subject's facing (per video at its first frame, next to the
configured `camera.azimuth_deg` range of the plan) and the face angle (nose direction against the
line of sight, every frame; scene/facing.py), pose diversity (root-relative, heading-normalised
SMPL-24 poses: a PCA scatter and the distance of each frame to the mean pose) and joint
visibility rates per joint, and a thumbnail gallery. Videos of
SMPL-X characters add a body-model section: how many videos carry SMPL-X parameters, their model
genders and the spread of their shape parameters (betas).

From a shard set without its render folder the same figures come from the records: focal length
as a 35 mm-equivalent of K, distance and poses from the 3D keypoints (camera frame), visibility
from the stored codes, thumbnails decoded from the RGB latents.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.atomic import write_text
from thfm_synth.errors import UserError

MAX_POSE_FRAMES = 20000
THUMB_WIDTH = 192


@dataclass
class Facts:
    """Everything the card shows, gathered from a render output or a shard set."""

    title: str
    source: str  # "render" or "shards"
    path: str
    counts: dict[str, object] = field(default_factory=dict)
    records_per_task: dict[str, int] = field(default_factory=dict)
    bodies: list[dict] = field(default_factory=list)  # SMPL-X videos: video_id, gender, betas
    assets: list[dict] = field(default_factory=list)  # asset, kind, licence, source, videos
    failures: list[dict] = field(default_factory=list)
    focal: list[float] = field(default_factory=list)
    focal_label: str = "focal length (mm)"
    distance: list[float] = field(default_factory=list)
    azimuth: list[float] = field(default_factory=list)  # per video: camera azimuth from the body's facing, frame 0
    face_angle: list[float] = field(default_factory=list)  # per frame: camera azimuth from the nose direction
    azimuth_range: tuple[float, float] | None = None  # the plan's configured camera.azimuth_deg
    world_azimuth_videos: int = 0  # videos of plans that measured azimuth from world -Y (before the reference)
    poses: np.ndarray | None = None  # (N, J, 3) root-relative, heading-normalised
    joint_names: list[str] = field(default_factory=list)
    visible: np.ndarray | None = None  # (J,) fraction of frames each joint is visible
    thumbnails: list[tuple[str, str, bytes]] = field(default_factory=list)  # video_id, caption, PNG bytes
    flow_speed: list[float] = field(default_factory=list)  # px/frame of valid forward flow, sampled pixels
    people: list[int] = field(default_factory=list)  # people rendered per video (config `people`)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- gathering


def _canonical_poses(joints: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(N, J, 3) joints -> root-relative, rotated about `up` so the hips (left - right) point +x."""
    from thfm_synth.assets.motion.joints import SMPL24_NAMES

    j = np.asarray(joints, np.float64)
    if j.shape[1] == len(SMPL24_NAMES):
        root, left, right = 0, SMPL24_NAMES.index("left_hip"), SMPL24_NAMES.index("right_hip")
    else:  # other conventions: root = mean joint, hips unknown -> no heading normalisation
        rel = j - j.mean(axis=1, keepdims=True)
        return rel
    rel = j - j[:, root : root + 1]
    up = up / np.linalg.norm(up)
    hip = rel[:, left] - rel[:, right]
    hip = hip - (hip @ up)[:, None] * up
    x = hip / np.maximum(np.linalg.norm(hip, axis=1, keepdims=True), 1e-9)
    y = np.cross(np.broadcast_to(up, x.shape), x)
    basis = np.stack([x, y, np.broadcast_to(up, x.shape)], axis=1)  # rows: new axes
    return np.einsum("nij,nkj->nki", basis, rel)


def _thumb(rgb: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb))
    h = max(1, round(img.height * width / img.width))
    buf = io.BytesIO()
    img.resize((width, h), Image.Resampling.BOX if img.width > width else Image.Resampling.NEAREST).save(
        buf, format="PNG", optimize=True
    )
    return buf.getvalue()


def _video_dirs(path: Path) -> tuple[list[Path], Path | None]:
    from thfm_synth.render.farm.folders import DONE

    if (path / "metadata.json").is_file():
        return [path], None
    videos = path / "videos" if (path / "videos").is_dir() else path
    root = path if (path / "videos").is_dir() else None
    return sorted(p for p in videos.iterdir() if p.is_dir() and (p / DONE).is_file()), root


def collect_render(path: str | Path, max_thumbnails: int = 24) -> Facts:
    from thfm_synth.render.outputs import path_of, read_rgb
    from thfm_synth.render.video.annotations import read_annotations

    path = Path(path)
    dirs, root = _video_dirs(path)
    if not dirs:
        raise UserError(f"no finished videos under {path}", "point at the --out folder of `thfm-synth render`")
    facts = Facts(title=f"Dataset card: {path.name}", source="render", path=str(path))
    frames = qa_passed = 0
    assets: dict[str, dict] = {}
    poses, vis_sum, vis_n, names = [], None, 0, []
    for i, d in enumerate(dirs):
        meta = json.loads((d / "metadata.json").read_text())
        spec = meta.get("spec", {})
        vid = spec.get("video_id", d.name)
        n = int(meta.get("stats", {}).get("frames", spec.get("num_frames", 0)))
        frames += n
        qa_passed += bool(meta.get("qa", {}).get("passed"))
        kinds = {
            spec.get("character_id"): "character",
            spec.get("motion_id"): "motion",
            spec.get("background_id"): "background",
        }
        for aid, a in meta.get("assets", {}).items():
            e = assets.setdefault(
                aid,
                {
                    "asset": aid,
                    "kind": kinds.get(aid, "asset"),
                    "licence": a.get("licence", "?"),
                    "source": a.get("source", ""),
                    "videos": 0,
                },
            )
            e["videos"] += 1
        if "focal_length_mm" in meta.get("camera", {}):
            facts.focal.append(float(meta["camera"]["focal_length_mm"]))
        ann = read_annotations(d / "annotations.npz")
        r, t = ann["R"], ann["t"]
        centre = -np.einsum("fji,fj->fi", r, t)  # C = -R^T t
        pelvis = ann["joints3d_world_smpl24"][:, 0]
        facts.distance += np.linalg.norm(centre - pelvis, axis=1).tolist()
        _add_view(facts, centre, ann["joints3d_world_smpl24"], ann.get("joints3d_world_coco17"))
        facts.world_azimuth_videos += spec.get("camera_azimuth_reference", "world") == "world"
        poses.append(ann["joints3d_world_smpl24"])
        if "smplx_betas" in ann:
            facts.bodies.append(
                {
                    "video_id": vid,
                    "gender": str(ann["smplx_gender"]),
                    "betas": ann["smplx_betas"].astype(float).tolist(),
                }
            )
        vis = ann["visibility_smpl24"] == 0
        vis_sum = vis.sum(0) if vis_sum is None else vis_sum + vis.sum(0)
        vis_n += len(vis)
        names = [str(x) for x in ann["joint_names_smpl24"]]
        facts.people.append(int((meta.get("people") or {}).get("rendered", 1)))
        mid = max(0, n // 2)
        flow_file = d / "flow" / f"{mid:05d}.exr"
        if flow_file.is_file():  # optional modality: the middle frame's valid forward flow, subsampled
            from thfm_synth.render.outputs import read_flow

            fl, valid = read_flow(flow_file)
            speed = np.linalg.norm(fl[..., :2], axis=-1)[valid[..., 0]]
            facts.flow_speed += speed[:: max(1, len(speed) // 2000)].tolist()
        if i < max_thumbnails:
            rgb = path_of(d, "rgb", mid)  # .webp, or .png in videos rendered before
            if rgb.is_file():
                facts.thumbnails.append(
                    (vid, f"{vid}: {spec.get('motion_id', '')}, {spec.get('background_id', '')}", _thumb(read_rgb(rgb)))
                )
    all_poses = np.concatenate(poses)
    if len(all_poses) > MAX_POSE_FRAMES:
        all_poses = all_poses[np.linspace(0, len(all_poses) - 1, MAX_POSE_FRAMES).astype(int)]
    facts.poses = _canonical_poses(all_poses, np.array([0.0, 0.0, 1.0]))  # world: Z up
    facts.joint_names, facts.visible = names, vis_sum / max(vis_n, 1)
    planned = None
    if root is not None and (root / "plan.parquet").is_file():
        import pyarrow.parquet as pq

        planned = pq.ParquetFile(root / "plan.parquet").metadata.num_rows
        facts.azimuth_range = _planned_azimuth_range(root / "plan.parquet")
    if root is not None and (root / "failures.parquet").is_file():
        import pyarrow.parquet as pq

        facts.failures = [
            {"video_id": r["video_id"], "status": r["status"], "attempts": r["attempts"], "reason": r["reason"]}
            for r in pq.read_table(root / "failures.parquet").to_pylist()
        ]
    facts.counts = {
        "videos": len(dirs),
        "frames": frames,
        "failures": len(facts.failures),
        "QA passed": f"{qa_passed} / {len(dirs)}",
    }
    if planned is not None:
        facts.counts = {"planned": planned, **facts.counts}
    facts.assets = sorted(assets.values(), key=lambda a: (a["kind"], a["asset"]))
    return facts


def _add_view(facts: Facts, centres: np.ndarray, smpl24: np.ndarray, coco17: np.ndarray | None) -> None:
    """Camera azimuth from the body's facing (frame 0) and the face angle of every frame."""
    from thfm_synth.render.scene import facing

    smpl24 = np.asarray(smpl24, np.float64)
    facts.azimuth.append(
        float(facing.relative_azimuth(centres[:1], smpl24[:1, 0], facing.body_forward_smpl24(smpl24[:1]))[0])
    )
    if coco17 is not None:
        face = np.asarray(coco17, np.float64)[:, :5]
        facts.face_angle += facing.relative_azimuth(
            centres, facing.face_centre(face), facing.face_forward(face)
        ).tolist()


def _planned_azimuth_range(plan_path: Path) -> tuple[float, float] | None:
    import pyarrow.parquet as pq

    from thfm_synth.plan.planner import META_KEY

    try:
        meta = json.loads(pq.read_schema(plan_path).metadata[META_KEY])
        lo, hi = meta["config"]["camera"]["azimuth_deg"]
        return float(lo), float(hi)
    except (KeyError, TypeError, ValueError, OSError):
        return None


def collect_shards(path: str | Path, max_thumbnails: int = 24, vae_weights=None) -> Facts:
    from thfm_synth.shards.store import ShardSet

    shards = ShardSet.open(path)
    idx = shards.index
    render_dir = idx.get("render_dir")
    if render_dir and Path(render_dir).is_dir():
        try:
            facts = collect_render(render_dir, max_thumbnails)
            facts.notes.append(f"figures from the rendered videos in {render_dir}")
        except UserError:
            facts = None
    else:
        facts = None
    if facts is None:
        facts = _facts_from_records(shards, max_thumbnails, vae_weights)
    facts.title = f"Dataset card: {Path(path).resolve().name}"
    facts.source, facts.path = "shards", str(path)
    facts.records_per_task = dict(idx["tasks"])
    p = idx.get("preprocess") or {}
    extra = {"shards": idx["num_shards"], "records": idx["num_records"]}
    if p:
        extra["clip"] = f"{p['num_frames']} frames, {p['fps']:g} fps, {p['width']}x{p['height']}"
    if idx.get("vae_id"):
        extra["codec"] = idx["vae_id"]
    facts.counts = {**facts.counts, **extra}
    return facts


def _facts_from_records(shards, max_thumbnails: int, vae_weights) -> Facts:
    from thfm_synth.assets.motion.joints import SMPL24_NAMES
    from thfm_synth.tools.shards_inspect import _codec_for, _u8, decode

    facts = Facts(title="", source="shards", path=str(shards.root), focal_label="focal length (35 mm equivalent, mm)")
    facts.notes.append("render folder not reachable: figures from the records (keypoints, cameras, decoded latents)")
    poses, vis_sum, vis_n, videos, frames = [], None, 0, set(), 0
    codec = None
    for rec in shards.records("array_record"):
        if rec.video_id in videos:
            continue  # every record of a video holds the same keypoints and cameras
        videos.add(rec.video_id)
        if rec.body_model:
            facts.bodies.append(
                {
                    "video_id": rec.video_id,
                    "gender": json.loads(rec.body_model).get("gender", "?"),
                    "betas": rec.arrays["body_betas"].astype(float).tolist(),
                }
            )
        k = rec.arrays["camera_k"]
        width = (shards.index.get("preprocess") or {}).get("width") or 2 * float(k[0, 0, 2])
        facts.focal.append(float(np.median(k[:, 0, 0])) / width * 36.0)
        kp3 = rec.arrays["keypoints_3d"].astype(np.float64)
        frames += len(kp3)
        if kp3.size and kp3.shape[1] == len(SMPL24_NAMES) and "camera_rt" in rec.arrays:
            rt = rec.arrays["camera_rt"].astype(np.float64)
            world = np.einsum("fji,fkj->fki", rt[:, :, :3], kp3 - rt[:, None, :, 3])  # R^T (X - t)
            _add_view(facts, -np.einsum("fji,fj->fi", rt[:, :, :3], rt[:, :, 3]), world, None)
        if kp3.size:
            facts.distance += np.linalg.norm(kp3[:, 0], axis=1).tolist()
            poses.append(kp3)
            vis = rec.arrays["keypoints_visibility"] == 0
            vis_sum = vis.sum(0) if vis_sum is None else vis_sum + vis.sum(0)
            vis_n += len(vis)
        if len(facts.thumbnails) < max_thumbnails:
            try:
                codec = codec or _codec_for(rec.vae_id, vae_weights)
                rgb = _u8((decode(codec, rec.arrays["rgb_latents"][:, :1]) + 1) / 2)[0]
                facts.thumbnails.append((rec.video_id, f"{rec.video_id} (decoded latents)", _thumb(rgb)))
            except UserError as exc:
                if not facts.thumbnails and not any("thumbnails" in n for n in facts.notes):
                    facts.notes.append(f"no thumbnails: {exc.one_line()}")
    if poses:
        allp = np.concatenate(poses)
        if len(allp) > MAX_POSE_FRAMES:
            allp = allp[np.linspace(0, len(allp) - 1, MAX_POSE_FRAMES).astype(int)]
        facts.poses = _canonical_poses(allp, np.array([0.0, -1.0, 0.0]))  # OpenCV camera: -Y is up
        facts.visible = vis_sum / max(vis_n, 1)
        j = allp.shape[1]
        facts.joint_names = list(SMPL24_NAMES) if j == len(SMPL24_NAMES) else [f"joint {i}" for i in range(j)]
    facts.counts = {"videos": len(videos), "frames": frames}
    return facts


def collect(path: str | Path, max_thumbnails: int = 24, vae_weights=None) -> Facts:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path} not found", "give a render output folder or a shard folder")
    if (path / "index.json").is_file():
        return collect_shards(path, max_thumbnails, vae_weights)
    return collect_render(path, max_thumbnails)


# ----------------------------------------------------------------------------- SVG charts

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 460, 220, 46, 38, 12, 10


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.2g}"


def svg_histogram(
    values,
    *,
    title: str,
    xlabel: str,
    bins: int = 20,
    css_class: str = "hist",
    domain: tuple[float, float] | None = None,
    band: tuple[float, float] | None = None,
) -> str:
    """domain: fixed x range (else the data's); band: an x interval shaded behind the bars (a
    configured range)."""
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    esc = html.escape
    if not len(v):
        return (
            f'<svg class="{css_class}" role="img" width="{W}" height="{H}" viewBox="0 0 {W} {H}">'
            f'<title>{esc(title)}</title><text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>'
        )
    lo, hi = (float(v.min()), float(v.max())) if domain is None else (float(domain[0]), float(domain[1]))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    bw = pw / bins
    out = [
        f'<svg class="{css_class}" role="img" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'data-n="{len(v)}"><title>{esc(title)}</title>'
    ]
    if band is not None:
        a, b = (PAD_L + pw * (np.clip(x, lo, hi) - lo) / (hi - lo) for x in band)
        out.append(
            f'<rect class="band" x="{a:.1f}" y="{PAD_T}" width="{max(b - a, 0.5):.1f}" height="{ph}">'
            f"<title>configured range {_fmt(band[0])} - {_fmt(band[1])}</title></rect>"
        )
    out.append(f'<line x1="{PAD_L}" y1="{PAD_T + ph}" x2="{PAD_L + pw}" y2="{PAD_T + ph}" class="axis"/>')
    out.append(f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + ph}" class="axis"/>')
    for i, c in enumerate(counts):
        h = ph * c / top
        out.append(
            f'<rect class="bar" x="{PAD_L + i * bw + 0.5:.1f}" y="{PAD_T + ph - h:.1f}" '
            f'width="{max(bw - 1, 0.5):.1f}" height="{h:.1f}">'
            f"<title>{_fmt(edges[i])} - {_fmt(edges[i + 1])}: {int(c)}</title></rect>"
        )
    for x, anchor in ((lo, "start"), ((lo + hi) / 2, "middle"), (hi, "end")):
        px = PAD_L + pw * (x - lo) / (hi - lo)
        out.append(f'<text x="{px:.1f}" y="{PAD_T + ph + 14}" text-anchor="{anchor}" class="tick">{_fmt(x)}</text>')
    out.append(f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end" class="tick">{top}</text>')
    out.append(f'<text x="{PAD_L - 4}" y="{PAD_T + ph}" text-anchor="end" class="tick">0</text>')
    out.append(f'<text x="{PAD_L + pw / 2}" y="{H - 4}" text-anchor="middle" class="label">{esc(xlabel)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_bars(
    labels: list[str],
    values,
    *,
    title: str,
    css_class: str = "bars",
    xlabel: str = "fraction of frames visible",
    what: str = "visible",
) -> str:
    """Horizontal bars of fractions in [0, 1], one per label."""
    esc = html.escape
    v = np.clip(np.asarray(values, np.float64), 0, 1)
    row, left, width = 14, 110, 300
    height = PAD_T + row * len(labels) + 24
    out = [
        f'<svg class="{css_class}" role="img" width="{left + width + 60}" height="{height}" '
        f'viewBox="0 0 {left + width + 60} {height}"><title>{esc(title)}</title>'
    ]
    for i, (name, x) in enumerate(zip(labels, v)):
        y = PAD_T + i * row
        out.append(f'<text x="{left - 4}" y="{y + 10}" text-anchor="end" class="tick">{esc(name)}</text>')
        out.append(
            f'<rect class="bar" x="{left}" y="{y + 1}" width="{width * x:.1f}" height="{row - 3}">'
            f"<title>{esc(name)}: {x:.1%} {esc(what)}</title></rect>"
        )
        out.append(f'<text x="{left + width * x + 4:.1f}" y="{y + 10}" class="tick">{x:.0%}</text>')
    y = PAD_T + row * len(labels) + 14
    out.append(f'<text x="{left + width / 2}" y="{y}" text-anchor="middle" class="label">{esc(xlabel)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_scatter(x, y, *, title: str, xlabel: str, ylabel: str, css_class: str = "scatter") -> str:
    esc = html.escape
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    out = [
        f'<svg class="{css_class}" role="img" width="{W}" height="{H}" viewBox="0 0 {W} {H}" data-n="{len(x)}">'
        f"<title>{esc(title)}</title>",
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    if len(x):
        lx, hx = float(x.min()), float(x.max())
        ly, hy = float(y.min()), float(y.max())
        sx, sy = max(hx - lx, 1e-9), max(hy - ly, 1e-9)
        step = max(1, len(x) // 3000)
        for a, b in zip(x[::step], y[::step]):
            cx, cy = PAD_L + pw * (a - lx) / sx, PAD_T + ph - ph * (b - ly) / sy
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="1.6"/>')
    out.append(f'<text x="{PAD_L + pw / 2}" y="{H - 4}" text-anchor="middle" class="label">{esc(xlabel)}</text>')
    out.append(
        f'<text x="12" y="{PAD_T + ph / 2}" text-anchor="middle" class="label" '
        f'transform="rotate(-90 12 {PAD_T + ph / 2})">{esc(ylabel)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


# ----------------------------------------------------------------------------- HTML

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
color:#1d232b;background:#fbfbfc;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
.sub{color:#5b6673;margin:0 0 16px}
.counts{display:flex;flex-wrap:wrap;gap:10px}.count{background:#fff;border:1px solid #dde1e6;border-radius:6px;
padding:8px 14px;min-width:110px}.count b{display:block;font-size:20px}.count span{color:#5b6673;font-size:12px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left}
th{background:#f1f3f5;cursor:pointer}
.charts{display:flex;flex-wrap:wrap;gap:18px}figure{margin:0;background:#fff;border:1px solid #dde1e6;border-radius:6px;
padding:8px}figcaption{font-size:12px;color:#5b6673;max-width:460px}
svg .bar{fill:#3b7dd8}svg .bar:hover{fill:#f08c2e}svg .axis{stroke:#333}svg .frame{fill:none;stroke:#bbb}
svg .band{fill:#2e9e5b;fill-opacity:.18;stroke:#2e9e5b;stroke-dasharray:3 2}
svg circle{fill:#3b7dd8;fill-opacity:.45}svg text{font-size:11px;fill:#333}svg .label{font-size:12px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.thumb{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:4px;font-size:12px}
.thumb img{width:100%;image-rendering:auto;display:block}.note{color:#5b6673;font-size:12px}
"""

JS = """
(function(){
  function sortTable(th){
    var table=th.closest('table'),body=table.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
    var rows=Array.prototype.slice.call(body.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent,nx=parseFloat(x),ny=parseFloat(y);
      var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});
  }
  document.querySelectorAll('table.sortable th').forEach(function(th){
    th.addEventListener('click',function(){sortTable(th);});});
  window.addEventListener('load',function(){
    var imgs=document.querySelectorAll('.thumb img'),broken=0;
    imgs.forEach(function(im){if(!im.complete||im.naturalWidth===0){broken++;}});
    document.body.setAttribute('data-charts',String(document.querySelectorAll('svg').length));
    document.body.setAttribute('data-thumbnails',String(imgs.length));
    document.body.setAttribute('data-broken-images',String(broken));
    document.body.setAttribute('data-ready','1');
  });
})();
"""


def _table(headers: list[str], rows: list[list[object]], cls: str) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="sortable {cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(svg: str, caption: str, fid: str) -> str:
    return f'<figure id="{fid}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _view_section(f: Facts) -> str:
    band = f.azimuth_range
    rng = f"configured range {band[0]:g} to {band[1]:g} deg (shaded)" if band else "no plan: range unknown"
    charts = [
        _figure(
            svg_histogram(
                f.azimuth,
                title="camera azimuth",
                xlabel="camera azimuth from the subject's facing (deg; 0 = in front, +90 = its left)",
                bins=36,
                domain=(-180, 180),
                band=band,
            ),
            f"camera azimuth relative to the body's facing (pelvis/shoulders) at each video's first frame "
            f"({len(f.azimuth)} videos); {rng}",
            "azimuth",
        )
    ]
    if f.face_angle:
        a = np.abs(np.asarray(f.face_angle))
        inside = ""
        if band:
            fa = np.asarray(f.face_angle)
            inside = f", {np.mean((fa >= band[0]) & (fa <= band[1])):.0%} inside the configured range"
        charts.append(
            _figure(
                svg_histogram(
                    f.face_angle,
                    title="face angle",
                    xlabel="camera azimuth from the nose direction (deg)",
                    bins=36,
                    domain=(-180, 180),
                    band=band,
                ),
                f"face angle, every frame ({len(f.face_angle)} frames): the face is towards the camera "
                f"(|angle| <= 90) in {np.mean(a <= 90):.0%} of frames{inside}",
                "face-angle",
            )
        )
    note = ""
    if f.world_azimuth_videos:
        note = (
            f'<p class="note">{f.world_azimuth_videos} video(s) come from plans made before the azimuth was '
            "measured from the subject's facing (camera_azimuth_reference = world): their planned azimuth was "
            "from world -Y, so they may fall outside the range.</p>"
        )
    return (
        '<section id="view"><h2>Camera azimuth and faces</h2><div class="charts">'
        + "".join(charts)
        + "</div>"
        + note
        + "</section>"
    )


def render_html(f: Facts) -> str:
    esc = html.escape
    parts = [
        f"<h1>{esc(f.title)}</h1>",
        f'<p class="sub">{esc("shard set" if f.source == "shards" else "render output")}: {esc(f.path)}</p>',
    ]
    parts.append(
        '<section id="counts"><h2>Counts</h2><div class="counts">'
        + "".join(f'<div class="count"><b>{esc(str(v))}</b><span>{esc(k)}</span></div>' for k, v in f.counts.items())
        + "</div></section>"
    )
    if f.records_per_task:
        parts.append(
            '<section id="records"><h2>Records per task</h2>'
            + _table(["task", "records"], [[t, n] for t, n in f.records_per_task.items()], "tasks")
            + "</section>"
        )
    if f.assets:
        lic = Counter(a["licence"] for a in f.assets)
        parts.append(
            '<section id="licences"><h2>Asset licences</h2><p>'
            + esc(", ".join(f"{k}: {v} assets" for k, v in sorted(lic.items())))
            + "</p>"
            + _table(
                ["asset", "kind", "licence", "source", "videos"],
                [[a["asset"], a["kind"], a["licence"], a["source"], a["videos"]] for a in f.assets],
                "assets",
            )
            + "</section>"
        )
    charts = [
        _figure(
            svg_histogram(f.focal, title="focal length", xlabel=f.focal_label),
            f"{f.focal_label}, one per video ({len(f.focal)} videos)",
            "focal",
        ),
        _figure(
            svg_histogram(f.distance, title="camera distance", xlabel="camera to pelvis (m)"),
            f"distance from the camera centre to the subject's pelvis, per frame ({len(f.distance)} frames)",
            "distance",
        ),
    ]
    if f.poses is not None and len(f.poses):
        flat = f.poses.reshape(len(f.poses), -1)
        mean = flat.mean(0)
        dist = np.linalg.norm((flat - mean).reshape(f.poses.shape), axis=-1).mean(-1)  # mean per-joint distance
        centred = flat - mean
        if len(flat) > 1:
            _, s, vt = np.linalg.svd(centred, full_matrices=False)
            pcs = centred @ vt[:2].T if vt.shape[0] >= 2 else np.zeros((len(flat), 2))
            share = (s[:2] ** 2 / max((s**2).sum(), 1e-12)).tolist() + [0.0, 0.0]
        else:
            pcs, share = np.zeros((1, 2)), [0.0, 0.0]
        charts.append(
            _figure(
                svg_scatter(
                    pcs[:, 0],
                    pcs[:, 1],
                    title="pose PCA",
                    xlabel=f"PC1 ({share[0]:.0%})",
                    ylabel=f"PC2 ({share[1]:.0%})",
                ),
                f"pose diversity: root-relative, heading-normalised poses on their first two principal "
                f"components ({len(flat)} frames)",
                "pose-pca",
            )
        )
        charts.append(
            _figure(
                svg_histogram(
                    dist, title="distance to the mean pose", xlabel="mean per-joint distance to the mean pose (m)"
                ),
                f"pose spread: mean {dist.mean():.3f} m per joint",
                "pose-spread",
            )
        )
    if f.people and max(f.people) > 1:
        counts = Counter(f.people)
        charts.append(
            _figure(
                svg_bars(
                    [f"{k} people" for k in sorted(counts)],
                    [counts[k] / len(f.people) for k in sorted(counts)],
                    title="people per video",
                    xlabel="fraction of videos",
                    what="of the videos",
                ),
                f"people per video ({len(f.people)} videos; {sum(f.people) / len(f.people):.2f} on average)",
                "people",
            )
        )
    if f.flow_speed:
        speeds = np.asarray(f.flow_speed)
        charts.append(
            _figure(
                svg_histogram(speeds, title="optical flow", xlabel="forward flow (px per frame)"),
                f"optical flow magnitude of valid pixels, middle frame of each video with flow "
                f"(median {np.median(speeds):.2f} px, 95th percentile {np.percentile(speeds, 95):.2f} px)",
                "flow",
            )
        )
    parts.append(
        '<section id="histograms"><h2>Cameras and poses</h2><div class="charts">' + "".join(charts) + "</div></section>"
    )
    if f.azimuth or f.face_angle:
        parts.append(_view_section(f))
    if f.visible is not None:
        parts.append(_visibility_section(f))
    if f.bodies:
        parts.append(_body_section(f))
    if f.failures:
        parts.append(
            '<section id="failures"><h2>Failures</h2>'
            + _table(
                ["video", "status", "attempts", "reason"],
                [[x["video_id"], x["status"], x["attempts"], x["reason"]] for x in f.failures],
                "failures",
            )
            + "</section>"
        )
    gallery = "".join(
        f'<div class="thumb"><img alt="{esc(vid)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<div>{esc(caption)}</div></div>"
        for vid, caption, png in f.thumbnails
    )
    parts.append(f'<section id="gallery"><h2>Gallery</h2><div class="gallery">{gallery}</div></section>')
    if f.notes:
        parts.append("".join(f'<p class="note">{esc(n)}</p>' for n in f.notes))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{esc(f.title)}</title>'
        f"<style>{CSS}</style></head><body>{''.join(parts)}<script>{JS}</script></body></html>\n"
    )


def _visibility_section(f: Facts) -> str:
    """The per-joint rates, and what they mean: a low rate for a joint deep in the trunk is the rule's doing."""
    from thfm_synth.render.scene.visibility import EAR_TOL_M, SELF_TOL_M, SURFACE_TOL_M

    low = sorted((x, name) for name, x in zip(f.joint_names, f.visible) if x < 0.5)
    lowest = ", ".join(f"{name} {x:.0%}" for x, name in low[:4])
    note = (
        "How to read these rates: visibility is a depth test on the rendered frame. A joint counts as visible "
        "when it projects inside the image and the surface seen at its pixel lies at most "
        f"{SELF_TOL_M * 100:.0f} cm in front of it (keypoints on the skin, such as the nose, eyes and ears: "
        f"{SURFACE_TOL_M * 100:.0f}-{EAR_TOL_M * 100:.0f} cm). Joints are skeleton points inside the body, and "
        "the deeper one sits, the more often the body itself covers it: the pelvis (the SMPL root, midway "
        "between the hip joints) lies 13-19 cm behind the skin of the torso in our renders, so it is counted as "
        "self-occluded in many frames even with the hips towards the camera, and the far-side hip, shoulder "
        "and collar are hidden whenever the subject is seen from the side. Thin parts (head, wrists, ankles) "
        "count as visible whenever they are in view and nothing is in front of them. A low rate for an "
        "interior joint is expected, not an error; the per-frame codes (visible, outside the image, "
        "self-occluded, scene-occluded) are in each video's annotations.npz."
    )
    if lowest:
        note += f" Below 50% here: {lowest}."
    return (
        '<section id="visibility"><h2>Joint visibility</h2><div class="charts">'
        + _figure(
            svg_bars(f.joint_names, f.visible, title="joint visibility"),
            "fraction of frames in which each joint is visible (inside the image, not covered by the "
            "subject's own body or by the scene)",
            "visibility-chart",
        )
        + f'</div><p class="note" id="visibility-note">{html.escape(note)}</p></section>'
    )


def _body_section(f: Facts) -> str:
    """SMPL-X parameters: coverage, model genders, and the spread of each shape component."""
    esc = html.escape
    betas = np.array([b["betas"] for b in f.bodies], np.float64)
    genders = Counter(b["gender"] for b in f.bodies)
    total = f.counts.get("videos", len(f.bodies))
    rows = [
        [
            f"beta {k}",
            f"{betas[:, k].mean():+.3f}",
            f"{betas[:, k].std():.3f}",
            f"{betas[:, k].min():+.3f}",
            f"{betas[:, k].max():+.3f}",
        ]
        for k in range(betas.shape[1])
    ]
    charts = "".join(
        _figure(
            svg_histogram(betas[:, k], title=f"beta {k}", xlabel=f"beta {k}"),
            f"shape component {k}, one value per video",
            f"beta-{k}",
        )
        for k in range(min(2, betas.shape[1]))
    )
    return (
        '<section id="body-model"><h2>Body model (SMPL-X)</h2><p>'
        + esc(
            f"{len(f.bodies)} of {total} videos carry SMPL-X parameters (shape, expression, pose and "
            f"translation per frame, world and camera frames); model files: "
            + ", ".join(f"{g} {n}" for g, n in sorted(genders.items()))
        )
        + "</p>"
        + _table(["component", "mean", "std", "min", "max"], rows, "betas")
        + f'<div class="charts">{charts}</div></section>'
    )


def write_report(path: str | Path, out_html: str | Path, *, max_thumbnails: int = 24, vae_weights=None) -> dict:
    """Write the dataset card of a render output or shard set to `out_html`; returns a summary dict
    (path, bytes, counts, number of charts and thumbnails)."""
    facts = collect(path, max_thumbnails, vae_weights)
    page = render_html(facts)
    write_text(out_html, page, "dataset card")
    return {
        "path": str(out_html),
        "bytes": len(page.encode()),
        "counts": facts.counts,
        "records_per_task": facts.records_per_task,
        "thumbnails": len(facts.thumbnails),
        "charts": page.count("<svg"),
        "source": facts.source,
        "body_model_videos": len(facts.bodies),
    }
