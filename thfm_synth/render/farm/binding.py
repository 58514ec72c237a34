"""An output folder belongs to one plan: the whole plan's digest binds it, checked before any write.

`bind_output(OUT, specs, meta)` is the first thing `thfm-synth render` does with OUT. Under a
lock (two runs starting at once see each other), it compares the plan about to be rendered with
the plan OUT is bound to (`OUT/run.json`, or for older folders their `plan.parquet`):

* the same plan: nothing changes;
* the bound plan grown (the new plan's first rows are exactly the bound plan: same seed, config
  and asset library, more videos): the binding moves to the larger plan - every finished video is
  still exactly what the plan says;
* a prefix of the bound plan (fewer videos, all agreeing): rendered as asked, the binding and
  plan.parquet stay;
* anything else - another seed, a changed config field, an added, removed or edited manifest, rows
  that differ - is refused with one line naming what differs and how to proceed, and nothing in OUT
  (plan.parquet included) has been touched.

The plan digest covers every row (`VideoSpec.to_row`), the resolved config, the seed and the
digest of every manifest (each lists the sha256 of its files), so one dataset never mixes two
libraries or two configs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from thfm_synth.atomic import locked, prepare_parent, write_text
from thfm_synth.errors import UserError
from thfm_synth.plan.planner import PlanMeta, read_plan, write_plan
from thfm_synth.plan.spec import VideoSpec

BINDING = "run.json"
PLAN = "plan.parquet"
LOCK = ".bind.lock"


def _canon(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def rows_sha256(specs: list[VideoSpec]) -> str:
    h = hashlib.sha256()
    for s in specs:
        h.update(_canon(s.to_row()) + b"\n")
    return h.hexdigest()


def plan_sha256(specs: list[VideoSpec], meta: PlanMeta) -> str:
    """The digest of a whole plan: its rows, the resolved config, the seed and every manifest digest."""
    return hashlib.sha256(
        _canon({"config": meta.config, "seed": meta.seed, "manifests": meta.manifests, "rows": rows_sha256(specs)})
    ).hexdigest()


def binding_of(specs: list[VideoSpec], meta: PlanMeta) -> dict:
    return {
        "plan_sha256": plan_sha256(specs, meta),
        "num_videos": len(specs),
        "seed": meta.seed,
        "config_sha256": meta.config_sha256,
        "manifests": dict(sorted(meta.manifests.items())),
        "first_video": specs[0].video_id if specs else None,
    }


def _flat(d, prefix="") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _difference(old_meta: PlanMeta, old_specs: list[VideoSpec], meta: PlanMeta, specs: list[VideoSpec]) -> str:
    """What differs between the bound plan and the new one, in words (the first few things)."""
    parts = []
    if old_meta.seed != meta.seed:
        parts.append(f"seed {old_meta.seed} -> {meta.seed}")
    a, b = _flat(old_meta.config), _flat(meta.config)
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    for k in changed[:3]:
        parts.append(f"config {k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}")
    if len(changed) > 3:
        parts.append(f"{len(changed) - 3} more config fields")
    for name in sorted(set(old_meta.manifests) | set(meta.manifests)):
        was, now = old_meta.manifests.get(name), meta.manifests.get(name)
        if was is None:
            parts.append(f"manifest {name} added")
        elif now is None:
            parts.append(f"manifest {name} removed")
        elif was != now:
            parts.append(f"manifest {name} changed (digest {was[:12]} -> {now[:12]})")
    if not parts:
        n = min(len(old_specs), len(specs))
        first = next((i for i in range(n) if old_specs[i].to_row() != specs[i].to_row()), None)
        if first is not None:
            parts.append(f"planned video {specs[first].video_id} differs (another thfm-synth version planned it?)")
        else:
            parts.append(f"{len(old_specs)} -> {len(specs)} videos")
    return "; ".join(parts)


def bind_output(out: str | Path, specs: list[VideoSpec], meta: PlanMeta) -> dict:
    """Check that `specs` may be rendered into `out` and bind it (see the module doc); returns the
    binding, which is also the `plan_id` to give `run_farm`. Raises UserError before writing anything."""
    out = Path(out)
    prepare_parent(out / BINDING, "output folder")
    new = binding_of(specs, meta)
    with locked(out / LOCK):
        plan_path, bind_path = out / PLAN, out / BINDING
        bound = None
        if bind_path.is_file():
            try:
                bound = json.loads(bind_path.read_text())
            except ValueError:
                bound = None
            if not isinstance(bound, dict):
                bound = None
        if plan_path.is_file() and (bound is None or "plan_sha256" not in bound):
            old_specs, old_meta = read_plan(plan_path)  # a folder bound before plans had digests
            bound = binding_of(old_specs, old_meta)
        if bound is None or not plan_path.is_file():
            if (out / "videos").is_dir() and any((out / "videos").iterdir()):
                raise UserError(
                    f"{out} holds videos but no {PLAN} to say which plan made them",
                    "use a new --out folder (or restore its plan.parquet)",
                )
            write_plan(plan_path, specs, meta)
            write_text(bind_path, json.dumps(new, indent=1, sort_keys=True), "output binding")
            return new
        if bound["plan_sha256"] == new["plan_sha256"]:
            if not bind_path.is_file() or json.loads(bind_path.read_text()) != bound:  # an older folder
                write_text(bind_path, json.dumps(bound, indent=1, sort_keys=True), "output binding")
            return bound
        old_specs, old_meta = read_plan(plan_path)
        n_old = len(old_specs)
        if binding_of(old_specs, old_meta)["plan_sha256"] != bound["plan_sha256"]:
            raise UserError(
                f"{plan_path} is not the plan {out} is bound to (it was replaced or edited)",
                "restore it, or use a new --out folder",
            )
        if len(specs) > n_old and plan_sha256(specs[:n_old], meta) == bound["plan_sha256"]:
            write_plan(plan_path, specs, meta)  # grown: every finished video is still what the plan says
            write_text(bind_path, json.dumps(new, indent=1, sort_keys=True), "output binding")
            return new
        if len(specs) < n_old and plan_sha256(old_specs[: len(specs)], old_meta) == new["plan_sha256"]:
            return bound  # a prefix of the bound plan: render it, keep the binding
        raise UserError(
            f"{out} is bound to another plan ({n_old} videos, plan sha256 {bound['plan_sha256'][:12]}): "
            f"{_difference(old_meta, old_specs, meta, specs)}",
            f"use a new --out folder for a different dataset, or continue this one with "
            f"`thfm-synth render --plan {plan_path} --out {out}`",
        )
