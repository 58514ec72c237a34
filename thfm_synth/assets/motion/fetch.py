"""Download CMU mocap BVH clips (cgspeed "MotionBuilder-friendly" release, 2010).

The default source is a public GitHub copy of the release pinned to one commit
(`chrystianosaraujo/motion-viewer`, folder data/<subject>/<clip>.bvh; files stored
with LF line endings). `CMU_INDEX` lists the 27 clips of our test set with their
sha256 and size, computed from the copies in shared/assets/mocap/cmu, which that
folder's README documents as byte-identical to the pinned commit. Clips outside the
index can be fetched too; they are parsed for validity but have no checksum to meet.

Each clip is downloaded by `thfm_synth.download` (to `.<name>.part` in the destination
folder, resumed with an HTTP Range request if a previous attempt left a partial file,
verified, and renamed onto `<name>`), so the destination never holds a half-written or
unverified clip. Records (id, path, sha256, fps, num_frames, tags) are returned and
also handed to `on_record` as each clip completes, for the caller to write a manifest.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

from thfm_synth.assets.manifest import file_sha256
from thfm_synth.download import Hints, download_file
from thfm_synth.errors import UserError
from thfm_synth.assets.motion.bvh import read_bvh

DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/chrystianosaraujo/motion-viewer/6d7ca60c300f123528be0fd0939cf7a584a13f65/data"
)
#: Path of a clip below base_url; `{subject}` is the part before the underscore.
DEFAULT_LAYOUT = "{subject}/{clip}.bvh"
FLAT_LAYOUT = "{clip}.bvh"


@dataclasses.dataclass(frozen=True)
class CmuClip:
    clip: str  # e.g. "02_01"
    sha256: str | None
    size: int | None
    tags: tuple[str, ...]
    description: str = ""


def _c(clip: str, sha: str, size: int, tags: str, description: str) -> CmuClip:
    return CmuClip(clip, sha, size, tuple(tags.split()), description)


CMU_INDEX: tuple[CmuClip, ...] = (
    _c(
        "01_14",
        "37ec5288a1221ac103219d2bcd427845d1ee0a4848a3413d67f5a509815336e2",
        1778220,
        "climb jump",
        "playground - climb, jump down, dangle, legs push off against",
    ),
    _c("02_01", "b2558c5701c98f3382ae242860eebcecfce817fa53ca879bfea753a36390d2bc", 259564, "walk", "walk"),
    _c("02_03", "8a67fae01bea08a7a75057ce806eafe3deb1b3d45d82ef7126fb7bea70d08ef0", 134655, "run", "run/jog"),
    _c("02_04", "49d09ed98ad70fe9ece8aa42ea17437ee73094c86398476707036cd74683a17d", 365800, "jump", "jump, balance"),
    _c("02_05", "7a54afb840cce9ba4c5d7b339b2a71656d35a506b05be3a619ee5fbfaba10003", 1398391, "punch", "punch/strike"),
    _c("02_09", "cdbfd48440f91439dd879af3c4fedb87919829967741f257dc105ccec75ecbb3", 788861, "sports", "swordplay"),
    _c(
        "03_01",
        "7a565cd2a543518c062a32d01a8559c0bc42cd85d9fb74e122aa3ded9c3bd6ce",
        327869,
        "walk uneven-terrain",
        "walk on uneven terrain",
    ),
    _c(
        "05_02",
        "bd70b2bd823fbe81d7006575e7f9a8d9811935f4042fc2812d01d3344c630694",
        854937,
        "dance",
        "dance - expressive arms, pirouette",
    ),
    _c(
        "05_03",
        "8d58553dc00c6a41602a8a2c613e9e4a997dc7cb4c1465a75ad4cf2cb5551a74",
        333982,
        "dance",
        "dance - sideways arabesque, turn step, folding arms",
    ),
    _c(
        "05_06",
        "6b312a5bf78e09c619cc3af95ac3d9ef60f45f5a4bf6035078242b0c0835c5e5",
        682543,
        "dance",
        "dance - cartwheel-like start, pirouettes, jete",
    ),
    _c(
        "05_10",
        "d2e5dbcc44f47a647bae77b89b5b8c6ab7d32acc564f7f155c3b6ee4e96de905",
        622647,
        "dance",
        "dance - glissade devant, glissade derriere, attitude/arabesque",
    ),
    _c(
        "05_13",
        "43b69e1c0d1d5370a263a63e57cd53da810147932acd235314534d799d37e643",
        837160,
        "dance",
        "dance - small jetes, pirouette",
    ),
    _c(
        "05_16",
        "e36737318343d742b6fef4c8c402728eba4f4dad224f9a0fddbceb710933dd68",
        404557,
        "dance",
        "dance - coupe dessous, jete en tourant",
    ),
    _c(
        "06_02",
        "4afaa8c4fb2f05eb81cc0e8680868b5bacc61051a289ffe5a2a8515fa3addac4",
        547902,
        "sports basketball",
        "basketball - forward dribble",
    ),
    _c(
        "06_06",
        "86c28f93b22625bbf75bb92d1142aa11ebfc3528c34eca0e0fc7a8b248b35e8c",
        308276,
        "sports basketball",
        "basketball - backward dribble",
    ),
    _c(
        "06_08",
        "ade7c85e44684ea5bbab333527fba038671ab52b1dae9bc15cf31fbecf3380d9",
        263025,
        "sports basketball",
        "basketball - sideways dribble",
    ),
    _c(
        "06_14",
        "61fdaed868cadbc5781eb6727a228fe3b3dd57a7dfe243b783232b14e130c2b3",
        366611,
        "sports basketball",
        "basketball - crossover dribble, shoot",
    ),
    _c(
        "06_15",
        "8d1a3da69c8f1c4c2e330cddff8e867b0e8f4768248edd73cb04efd3413fcf34",
        418919,
        "sports basketball",
        "basketball - dribble, shoot",
    ),
    _c("07_01", "cdfa9eb68a9e5a684a401fd8776be6a477272f9174cb80dd14e5dad6b736d82b", 241149, "walk", "walk"),
    _c("07_04", "214f247a78c37e65450d38bfd1c2bb63c0d69a39d76cf20db99d4ec18e9d9532", 341928, "walk", "slow walk"),
    _c("08_01", "60b4226fab4b4413c5f0d656f2238ef04d434841ecb2c097c503b1a6f6d4b744", 211217, "walk", "walk"),
    _c("08_05", "fc53dd4d99d7bb17ba9c03c41915f63fdbbf20c977845810e3c97e8f9a91b407", 227799, "walk", "walk/stride"),
    _c(
        "08_07",
        "52e1f924091e8f4edf78be663c18be640ad398c67b2a02b432bdc1ca5bfb927c",
        230908,
        "walk",
        "walk, exaggerated stride",
    ),
    _c("09_01", "ab916afe80c8808fc7b7febd0138ba651ddc394260a58c22e747a3eefb6b9007", 115681, "run", "run"),
    _c("09_05", "37e797f1107031c632925f877aeea48c0bdf41ce287ce301cd0e33c952dee0ef", 111662, "run", "run"),
    _c("09_11", "2d8422bfb7a06675eaf2cd1a8b73d17e0240cbeb7b1b8f1265f06075f3b7e021", 128215, "run", "run"),
    _c(
        "09_12",
        "65d575124a12f44f8aa4d2b9da1d2ea10a65ba24ce083c4ee152b42c727dcaa6",
        1437689,
        "walk multi-directional",
        "navigate - walk forward, backward, sideways",
    ),
)


@dataclasses.dataclass(frozen=True)
class MotionRecord:
    """One downloaded clip, ready for the asset manifest."""

    id: str  # "cmu-02_01"
    path: str
    sha256: str
    fps: float
    num_frames: int  # usable frames (after dropping the synthetic T-pose frame)
    tags: tuple[str, ...]
    source_url: str
    description: str = ""
    activity: tuple[float, ...] | None = None  # window.activity_profile, if requested

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tags"] = list(self.tags)
        if self.activity is not None:
            d["activity"] = list(self.activity)
        return d


def _url(base_url: str, layout: str, clip: str) -> str:
    return base_url.rstrip("/") + "/" + layout.format(clip=clip, subject=clip.split("_")[0])


def _download(url: str, final: Path, entry: CmuClip, timeout: float) -> None:
    fix_net = f"check the network connection and --base-url, or copy the BVH files into {final.parent}"
    download_file(
        url,
        final,
        sha256=entry.sha256,
        size=entry.size,
        what=f"CMU clip {entry.clip}",
        timeout=timeout,
        hints=Hints(
            network=fix_net,
            missing="check the clip id and --base-url",
            mismatch="the server sent a different file; check --base-url, then run again to download it afresh",
        ),
    )


def fetch_cmu(
    dest: str | os.PathLike,
    base_url: str = DEFAULT_BASE_URL,
    clips: Iterable[str] | None = None,
    *,
    layout: str = DEFAULT_LAYOUT,
    index: Sequence[CmuClip] = CMU_INDEX,
    on_record: Callable[[MotionRecord], None] | None = None,
    with_activity: bool = False,
    timeout: float = 60.0,
) -> list[MotionRecord]:
    """Download (or verify already downloaded) CMU clips into `dest`; returns one record
    per clip, in request order; `record.path` is the file. `clips` defaults to the whole
    index; ids like "02_01" (a ".bvh" suffix is ignored)."""
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the mocap folder {dest}: {exc.strerror}", "choose a writable folder") from None
    known = {c.clip: c for c in index}
    wanted = [c.clip for c in index] if clips is None else [str(c).removesuffix(".bvh") for c in clips]
    records = []
    for clip in wanted:
        entry = known.get(clip) or CmuClip(clip, None, None, ())
        url = _url(base_url, layout, clip)
        final = dest / f"{clip}.bvh"
        if not (final.is_file() and (entry.sha256 is None or file_sha256(final) == entry.sha256)):
            _download(url, final, entry, timeout)
        motion = read_bvh(final)
        activity = None
        if with_activity:
            from thfm_synth.assets.motion.window import activity_profile

            activity = tuple(activity_profile(motion))
        record = MotionRecord(
            id=f"cmu-{clip}",
            path=str(final),
            sha256=entry.sha256 or file_sha256(final),
            fps=motion.fps,
            num_frames=motion.num_frames,
            tags=("cmu",) + entry.tags,
            source_url=url,
            description=entry.description,
            activity=activity,
        )
        if on_record is not None:
            on_record(record)
        records.append(record)
    return records
