"""Expand (config, library, seed) into plan.parquet: one `VideoSpec` row per video.

Row i depends only on (seed, i), the config and the library - never on the number of
videos - so plans of different lengths agree on their common prefix, bit for bit.
The file's metadata records the resolved config, its sha256 and the digests of every
manifest used, so a plan can always be traced to the exact inputs that made it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from thfm_synth import __version__
from thfm_synth.assets.library import Library
from thfm_synth.atomic import atomic_path
from thfm_synth.config.load import config_digest
from thfm_synth.config.schema import BACKGROUND_KINDS, CharacterSettings, DatasetConfig
from thfm_synth.errors import UserError
from thfm_synth.plan import balance
from thfm_synth.plan.sample import num_people, sample_person, sample_video
from thfm_synth.plan.spec import PLAN_SCHEMA, PLAN_SCHEMA_PEOPLE, VideoSpec

PLAN_FORMAT_VERSION = 2  # 2: camera_azimuth_reference (azimuth from the subject's facing)
META_KEY = b"thfm_plan"
LIBRARY_KIND = {"hdri": "hdris", "scene": "scenes", "sky": "skies"}


@dataclass(frozen=True)
class PlanMeta:
    format_version: int
    seed: int
    num_videos: int
    config: dict
    config_sha256: str
    manifests: dict[str, str]  # manifest name -> digest
    thfm_synth_version: str
    manifest_files: dict[str, str] = field(default_factory=dict)  # manifest name -> absolute path

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


def no_background_error(cfg: DatasetConfig, library: Library) -> tuple[str, str]:
    """(what, fix) when no weighted background kind has assets: the fix names kinds the library
    does have (give them a weight), else what to add; the sky is suggested only if skies exist."""
    weighted = [k for k in BACKGROUND_KINDS if cfg.background.kind_weights[k] > 0]
    have = [k for k in BACKGROUND_KINDS if library.by_kind[LIBRARY_KIND[k]]]
    what = (
        f"no background is available: background.kind_weights weights {', '.join(weighted) or 'nothing'}, "
        f"but the library has {'only ' + ', '.join(have) if have else 'no backgrounds (no HDRIs, scenes or skies)'}"
    )
    if have:
        return what, f"give {' or '.join(have)} a weight > 0 in background.kind_weights, or add assets of the others"
    return what, (
        "add a manifest of HDRIs or scenes with --manifest (`thfm-synth assets scan DIR --out FILE`), "
        "or leave out --no-builtin (the built-in library has procedural skies)"
    )


def make_plan(
    cfg: DatasetConfig, library: Library, seed: int, num_videos: int, progress: bool = False
) -> list[VideoSpec]:
    if num_videos < 1:
        raise UserError(f"--num-videos must be >= 1, got {num_videos}", "ask for at least one video")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}", "use a non-negative integer seed")
    characters, motions = library.by_kind["characters"], library.by_kind["motions"]
    if not characters or not motions:
        raise UserError(
            "the asset library has no characters or no motions",
            "enable the built-in library or add a manifest with both",
        )
    kinds = [k for k in BACKGROUND_KINDS if cfg.background.kind_weights[k] > 0 and library.by_kind[LIBRARY_KIND[k]]]
    if not kinds:
        raise UserError(*no_background_error(cfg, library))

    idx = np.arange(num_videos, dtype=np.int64)
    char_i, motion_i = balance.character_motion_pairs(seed, idx, len(characters), len(motions))
    kind_seq = balance.apportion([cfg.background.kind_weights[k] for k in kinds], num_videos)
    bg_id = np.empty(num_videos, dtype=object)
    for j, kind in enumerate(kinds):
        sel = np.flatnonzero(kind_seq == j)
        pool = library.by_kind[LIBRARY_KIND[kind]]
        # the n-th video of this kind draws the n-th element of a balanced sequence
        picks = balance.balanced_index(seed, balance.TAG_BACKGROUND * 100 + j, np.arange(len(sel)), len(pool))
        bg_id[sel] = [pool[p].id for p in picks]

    specs = []
    for i in tqdm(range(num_videos), desc="planning", unit="video", disable=not progress, leave=False):
        specs.append(
            sample_video(cfg, seed, i, characters[char_i[i]].id, motions[motion_i[i]], kinds[kind_seq[i]], bg_id[i])
        )
    if cfg.people.count[1] > 1:
        specs = add_people(cfg, seed, specs, characters, motions)
    return specs


def add_people(cfg: DatasetConfig, seed: int, specs: list[VideoSpec], characters, motions) -> list[VideoSpec]:
    """Persons 1.. of every video: slot k's characters and motions are each balanced over the videos
    that have a person k (the n-th such video takes the n-th pick of the slot's balanced sequence),
    so the prefix guarantee holds per slot. A video may show the same character twice when the
    library has few characters."""
    import dataclasses

    counts = np.array([num_people(cfg, seed, s.video_index) for s in specs])
    others: list[list] = [[] for _ in specs]
    for slot in range(1, int(counts.max(initial=1))):
        users = np.flatnonzero(counts > slot)
        n = np.arange(len(users))
        c = balance.balanced_index(seed, balance.TAG_PERSON * 100 + 2 * slot, n, len(characters))
        m = balance.balanced_index(seed, balance.TAG_PERSON * 100 + 2 * slot + 1, n, len(motions))
        for v, ci, mi in zip(users, c, m):
            others[v].append(sample_person(cfg, seed, specs[v].video_index, slot, characters[ci].id, motions[mi]))
    return [dataclasses.replace(s, others=tuple(o)) if o else s for s, o in zip(specs, others)]


def plan_meta(cfg: DatasetConfig, library: Library, seed: int, num_videos: int) -> PlanMeta:
    return PlanMeta(
        PLAN_FORMAT_VERSION,
        seed,
        num_videos,
        cfg.model_dump(mode="json"),
        config_digest(cfg),
        library.manifest_digests(),
        __version__,
        {m.manifest.name: str(m.file) for m in library.manifests},
    )


def write_plan(path: str | Path, specs: list[VideoSpec], meta: PlanMeta) -> None:
    rows = [s.to_row() for s in specs]
    if any(s.others for s in specs):
        for row in rows:
            row.setdefault("others", [])
    table = pa.Table.from_pylist(rows, schema=PLAN_SCHEMA_PEOPLE if any(s.others for s in specs) else PLAN_SCHEMA)
    table = table.replace_schema_metadata({META_KEY: meta.to_json()})
    with atomic_path(path, "plan") as tmp:
        pq.write_table(table, tmp)


def plan_library(meta: PlanMeta) -> Library:
    """The asset library a plan was made from, checked against the digests it recorded."""
    from thfm_synth.assets.library import BUILTIN_MANIFEST, load_library

    builtin = "builtin" in meta.manifests
    files = [p for name, p in meta.manifest_files.items() if name != "builtin"]
    char = (meta.config or {}).get("character") or {}
    bodies = CharacterSettings.model_validate(char) if char.get("backend") == "smplx" else None  # SMPL-X bodies
    library = load_library(files, builtin=builtin, bodies=bodies)
    for name, digest in meta.manifests.items():
        now = library.manifest_digests().get(name)
        if now != digest:
            where = meta.manifest_files.get(name, BUILTIN_MANIFEST if name == "builtin" else name)
            raise UserError(
                f"asset manifest {where} changed since the plan was made (digest {digest[:12]} -> "
                f"{(now or 'missing')[:12]})",
                "restore the manifest, or plan again",
            )
    return library


def plan_config(meta: PlanMeta) -> DatasetConfig:
    return DatasetConfig.model_validate(meta.config)


def read_plan(path: str | Path) -> tuple[list[VideoSpec], PlanMeta]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"plan {path} not found", "make one with `thfm-synth plan --out FILE`")
    try:
        table = pq.read_table(path)
        meta = PlanMeta(**json.loads(table.schema.metadata[META_KEY]))
    except (pa.ArrowInvalid, KeyError, TypeError, ValueError, OSError):
        raise UserError(
            f"{path} is not a thfm-synth plan (unreadable Parquet or missing plan metadata)",
            "re-create it with `thfm-synth plan`",
        ) from None
    return [VideoSpec.from_row(r) for r in table.to_pylist()], meta


def refuse_re_aiming(existing: list[VideoSpec], path: str | Path, specs: list[VideoSpec]) -> None:
    """An output folder planned with another camera-azimuth convention (plan format 1 measured
    azimuth from world -Y) must not be resumed with a fresh plan: its missing videos would be
    aimed differently from the ones already rendered. Resuming from its own plan file keeps it."""
    old = {s.camera_azimuth_reference for s in existing}
    new = {s.camera_azimuth_reference for s in specs}
    if old and old != new:
        raise UserError(
            f"{path} was planned with camera_azimuth_reference={'/'.join(sorted(old))} (an older plan); "
            f"planning again would aim its missing videos with {'/'.join(sorted(new))}",
            f"resume it with --plan {path}, or render the new plan into a new --out folder",
        )


@dataclass(frozen=True)
class PlanSummary:
    num_videos: int
    seconds: float
    usage: dict[str, dict[str, int]]  # field -> value -> count
    dropped_kinds: tuple[str, ...] = ()  # background kinds with weight but no asset

    def lines(self) -> list[str]:
        rate = self.num_videos / max(self.seconds, 1e-9)
        out = [f"planned {self.num_videos} videos in {self.seconds:.2f} s ({rate:,.0f} videos/s)"]
        if self.dropped_kinds:
            out.append(
                f"  note: no {'/'.join(self.dropped_kinds)} assets in the library: those background kinds "
                f"were left out (add them with --manifest)"
            )
        for name, counts in self.usage.items():
            vals = sorted(counts.values())
            out.append(f"  {name}: {len(counts)} distinct, uses per asset {vals[0]}..{vals[-1]}")
        return out


def summarize(specs: list[VideoSpec], seconds: float, cfg: DatasetConfig | None = None) -> PlanSummary:
    usage: dict[str, dict[str, int]] = {}
    for name in ("character_id", "motion_id", "background_kind", "background_id", "camera_trajectory"):
        counts: dict[str, int] = {}
        for s in specs:
            counts[getattr(s, name)] = counts.get(getattr(s, name), 0) + 1
        usage[name] = counts
    wanted = [k for k in BACKGROUND_KINDS if cfg is not None and cfg.background.kind_weights[k] > 0]
    dropped = tuple(k for k in wanted if k not in usage["background_kind"])
    return PlanSummary(len(specs), seconds, usage, dropped if len(specs) >= len(wanted) else ())


def timed_plan(
    cfg: DatasetConfig, library: Library, seed: int, num_videos: int, progress: bool = False
) -> tuple[list[VideoSpec], PlanSummary]:
    t0 = time.perf_counter()
    specs = make_plan(cfg, library, seed, num_videos, progress)
    return specs, summarize(specs, time.perf_counter() - t0, cfg)
