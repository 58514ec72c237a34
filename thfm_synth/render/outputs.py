"""From Blender's per-frame multilayer EXR to the stored modalities, and back.

`blender_scripts/render_scene.py` writes one float32 multilayer EXR per frame (view layers
`rgb` and `labels`, see that script). `decode_raw` turns it into a `Frame` of arrays in our
conventions and `write_frame` stores them; `read_frame` and the `read_*` functions load them.

Stored files per frame (NNNNN = frame index), chosen for size (bytes per frame measured in
benchmarks/label_bytes.py, <= 0.5 MB at 832x480 for every framing). Lossless: rgb (of the 8-bit
encoding), part ids, instance ids, mask (of its 16-bit encoding). Quantised with a stated bound
(`thfm_synth/render/labelcodec.py`, the one module that writes and reads the `.tlz` files):

    rgb/NNNNN.webp       8-bit sRGB RGB, lossless WebP (scene-linear Combined x the clip's exposure gain, clipped,
                         sRGB transfer function, i.e. Blender's "Standard" view transform; the gain
                         is metered per clip, see exposure.py, and recorded in metadata.json)
    depth/NNNNN.tlz      camera-frame z (planar depth) in metres, 0 = no surface (sky); fixed point in
                         steps of 2^-13 m: error <= 0.061 mm at any depth (read back as float32)
    normal/NNNNN.tlz     unit normal in the OpenCV camera frame (facing the camera), (0,0,0) = no surface;
                         octahedral encoding, 13 bits per axis: error <= 0.03 deg
    mask/NNNNN.png       16-bit gray: soft foreground coverage of the subject objects x 65535
                         (Cycles gives k/samples exactly: 1 inside, 0 outside, fractional on edges)
    iuv/NNNNN.tlz        I = body part 0..24 (0 = not a labelled mesh; exact), U, V in [0,1] (12-bit
                         fixed point: error <= 1.2e-4; 0 where I = 0)
    canonical/NNNNN.tlz  canonical (NOCS) coordinates in [0,1], 0 where I = 0; 12-bit fixed point
                         (error <= 1.2e-4)
    instance/NNNNN.png   8-bit (16-bit if an id > 255) gray: object instance id at the pixel centre

Videos written before the `.tlz` files (format 1: depth as PXR24 float EXR, normal/iuv/canonical as
half EXR) or before the WebP RGB (rgb/NNNNN.png, the same pixels) are still read: `path_of` and the
readers fall back to the `.exr` / `.png` file when there is no `.tlz` / `.webp` one.

Optional (render config `optical_flow`, `albedo`, `write_linear_exr`):

    flow/NNNNN.exr       half `fx`,`fy` (forward: to frame t+1) and `bx`,`by` (backward: to t-1), pixels,
                         exact from geometry at the pixel centre (render/flow.py); `fv`,`bv` 1 where that
                         vector is valid (target inside the other image and not hidden there), else 0.
                         Half precision: relative error <= 2^-11 (0.05 px at 100 px of motion); ZIP
    albedo/NNNNN.exr     half `R`,`G`,`B`: linear diffuse colour (Cycles' Diffuse Color pass, averaged over the
                         RGB samples, so antialiased like the RGB); ZIP
    rgb_linear/NNNNN.exr half `R`,`G`,`B`: the scene-linear render before the exposure gain (rgb is
                         srgb(clip(linear x gain))); ZIP
    people/NNNNN.exr     videos with several people (config `people`): half `P1`..`Pn`, person k's soft
                         coverage (k/samples, exact in half for up to 2048 samples); they sum to the
                         mask. Which person a label pixel belongs to: instance.png (annotations.npz
                         `people_instance`); ZIP

Why these: the `.tlz` files (quantised integers, gradient predictor, zstd) are 1.5-3x smaller
than the half/PXR24 EXRs they replace at an equal or tighter bound (float32 depth, even
predicted, does not compress: the ground plane's float noise); the optional modalities stay
half EXR (ZIP). RGB is lossless WebP (Pillow; 21-28% smaller than PNG on a rendered room or HDRI, the
decoded pixels identical); mask and instance PNG (adaptive filters, zlib level 6: within 5% of
level 9 + optimize at 1/8 of the time).

Normals: Cycles' smooth shading normal can face away from the camera at silhouettes (0.2-0.3% of a
character's pixels, up to ~19 deg past perpendicular). There the stored normal is the shading normal
turned, in the plane it spans with the view ray, until it is perpendicular to the ray: every stored
normal faces the camera (n . ray <= 0) and is the nearest such direction to the shading normal.

Depth, normal, part, part UV, canonical, flow and instance all come from the pixel-centre ray (one
sample), so they agree with each other exactly; the mask is the coverage of the same pixel
(its first sample is that same centre ray), so mask == 1 implies instance == a subject and
mask == 0 implies it is not.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.blender import contract as C
from thfm_synth.render import exposure, labelcodec
from thfm_synth.render.imagefiles import RGB_EXT, read_exr, read_image, read_png, write_exr, write_png, write_rgb_frame

MODALITIES = tuple(m for m in C.STORED_MODALITIES if m not in C.OPTIONAL_STORED_MODALITIES)  # always stored
BACKGROUND_DEPTH = C.MISS_DEPTH / 10  # Cycles writes MISS_DEPTH (1e10) for rays that hit nothing
U16 = 65535.0


@dataclass
class Frame:
    """One frame's modalities, in memory. Absent modalities are None."""

    rgb: np.ndarray | None = None  # (H,W,3) uint8 sRGB
    rgb_linear: np.ndarray | None = None  # (H,W,3) float32 scene-linear (not stored)
    depth: np.ndarray | None = None  # (H,W) float32 metres, 0 = no surface
    normal: np.ndarray | None = None  # (H,W,3) float32 OpenCV camera frame, 0 = no surface
    mask: np.ndarray | None = None  # (H,W) float32 in [0,1]
    part: np.ndarray | None = None  # (H,W) uint8 0..24
    part_uv: np.ndarray | None = None  # (H,W,2) float32 in [0,1]
    canonical: np.ndarray | None = None  # (H,W,3) float32 in [0,1]
    instance: np.ndarray | None = None  # (H,W) uint16
    flow: np.ndarray | None = None  # (H,W,4) float32 px: forward (fx, fy), backward (bx, by)
    flow_valid: np.ndarray | None = None  # (H,W,2) bool: forward, backward vector valid
    albedo: np.ndarray | None = None  # (H,W,3) float32 linear diffuse colour
    people: np.ndarray | None = None  # (H,W,P) float32 per-person soft coverage (several people only)
    pos_next: np.ndarray | None = None  # (H,W,3) float64 world position at t+1 (raw only, not stored)
    pos_prev: np.ndarray | None = None  # (H,W,3) float64 world position at t-1 (raw only, not stored)
    meta: dict = field(default_factory=dict)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Scene-linear Rec.709 -> 8-bit sRGB (clip to [0,1], IEC 61966-2-1 transfer, round)."""
    x = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.floor(s * 255.0 + 0.5).astype(np.uint8)


def srgb_decode(srgb8: np.ndarray) -> np.ndarray:
    s = np.asarray(srgb8, np.float32) / 255.0
    return np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_rgb(ch: dict) -> np.ndarray | None:
    if C.CH_COMBINED[0] not in ch:
        return None
    return np.stack([ch[name] for name in C.CH_COMBINED], axis=-1).astype(np.float32)


def face_the_camera(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame unit normals (H,W,3) turned, where they face away from the pixel-centre view ray,
    to be perpendicular to it (the nearest direction that faces the camera; see the module doc)."""
    h, w = n.shape[:2]
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    ray = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(np.asarray(k, np.float64)).T
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    dot = np.sum(n * ray, -1, keepdims=True)
    away = dot[..., 0] > 0
    if not away.any():
        return n
    turned = n - dot * ray
    norm = np.linalg.norm(turned, axis=-1, keepdims=True)
    turned = np.where(norm > 1e-9, turned / np.maximum(norm, 1e-12), -ray)  # exactly along the ray: face it
    return np.where(away[..., None], turned, n)


def mask_channel(ch: dict[str, np.ndarray]) -> np.ndarray | None:
    """The soft mask's channel: the mask layer's (exact k/mask_samples) when rendered, else the RGB layer's."""
    return ch.get(C.CH_MASK_FG, ch.get(C.CH_FG))


def decode_raw(
    channels: dict[str, np.ndarray] | str | os.PathLike, r: np.ndarray, gain: float = 1.0, k: np.ndarray | None = None
) -> Frame:
    """Blender's EXR channels (or the file) -> a Frame. `r`, `k`: this frame's world-to-camera rotation
    and intrinsics (`k` turns normals that face away to face the camera; None leaves them as rendered);
    `gain`: exposure applied to the RGB before the sRGB encoding (`rgb_linear` stays unscaled)."""
    ch = read_exr(channels) if isinstance(channels, (str, os.PathLike)) else channels
    out = Frame()
    lin = _linear_rgb(ch)
    if lin is not None:
        out.rgb_linear = lin
        out.rgb = srgb_encode(lin * np.float32(gain))
    fg = mask_channel(ch)
    if fg is not None:
        out.mask = np.clip(fg, 0.0, 1.0).astype(np.float32)
    z = ch.get(C.CH_DEPTH)
    hit = None
    if z is not None:
        hit = z < BACKGROUND_DEPTH
        # Cycles' Depth pass is already planar (camera z), not the ray length (verified in tests)
        out.depth = np.where(hit, z, 0.0).astype(np.float32)
    if C.CH_NORMAL[0] in ch:
        nw = np.stack([ch[name] for name in C.CH_NORMAL], axis=-1).astype(np.float64)
        nc = nw @ np.asarray(r, np.float64).T
        norm = np.linalg.norm(nc, axis=-1, keepdims=True)
        good = norm[..., 0] > 0.5
        if hit is not None:
            good &= hit
        nc = nc / np.where(norm > 0, norm, 1.0)
        if k is not None:
            nc = face_the_camera(nc, k)
        out.normal = np.where(good[..., None], nc, 0.0).astype(np.float32)
    if C.CH_INDEX in ch:
        out.instance = np.round(ch[C.CH_INDEX]).astype(np.uint16)
    if C.CH_PART in ch:
        part = np.round(ch[C.CH_PART]).astype(np.int32)
        if np.any(np.abs(ch[C.CH_PART] - part) > 1e-4) or part.min() < 0 or part.max() > 255:
            raise ValueError("part pass is not integer-valued: was it rendered with more than one sample?")
        out.part = part.astype(np.uint8)
        on = out.part > 0
        if C.CH_PART_UV[0] in ch:
            uv = np.stack([ch[name] for name in C.CH_PART_UV], axis=-1)
            out.part_uv = np.where(on[..., None], np.clip(uv, 0.0, 1.0), 0.0).astype(np.float32)
        if C.CH_CANONICAL[0] in ch:
            can = np.stack([ch[name] for name in C.CH_CANONICAL], axis=-1)
            out.canonical = np.where(on[..., None], np.clip(can, 0.0, 1.0), 0.0).astype(np.float32)
    if C.CH_POS_NEXT[0] in ch:
        out.pos_next = np.stack([ch[name] for name in C.CH_POS_NEXT], axis=-1).astype(np.float64)
        out.pos_prev = np.stack([ch[name] for name in C.CH_POS_PREV], axis=-1).astype(np.float64)
    layer = C.LAYER_MASK if C.CH_MASK_FG in ch else C.LAYER_RGB
    if C.ch_person(1, layer) in ch:
        n = 1
        while C.ch_person(n + 1, layer) in ch:
            n += 1
        people = np.stack([ch[C.ch_person(k, layer)] for k in range(1, n + 1)], -1)
        out.people = np.clip(people, 0.0, 1.0).astype(np.float32)
    if C.CH_ALBEDO[0] in ch:
        out.albedo = np.stack([ch[name] for name in C.CH_ALBEDO], axis=-1).astype(np.float32)
    return out


# ----------------------------------------------------------------------------- storage
def _u16(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0.0, 1.0) * U16 + 0.5).astype(np.uint16)


_EXT = {
    "rgb": RGB_EXT,
    "depth": labelcodec.EXT,
    "normal": labelcodec.EXT,
    "mask": "png",
    "iuv": labelcodec.EXT,
    "canonical": labelcodec.EXT,
    "instance": "png",
    "flow": "exr",
    "albedo": "exr",
    "rgb_linear": "exr",
    "people": "exr",
}
FLOW_CHANNELS = ("fx", "fy", "bx", "by")
FLOW_VALID_CHANNELS = ("fv", "bv")


# What older videos hold instead: label format 1's EXRs, and RGB as PNG (before lossless WebP).
_LEGACY_EXT = {"rgb": "png", "depth": "exr", "normal": "exr", "iuv": "exr", "canonical": "exr"}


def path_of(root: str | os.PathLike, modality: str, frame: int) -> Path:
    """The modality's file of `frame`: the older format's one (`_LEGACY_EXT`) where only that exists."""
    path = Path(root) / modality / f"{frame:05d}.{_EXT[modality]}"
    if modality in _LEGACY_EXT and not path.is_file():
        old = path.with_suffix("." + _LEGACY_EXT[modality])
        if old.is_file():
            return old
    return path


def write_frame(
    root: str | os.PathLike,
    frame_index: int,
    fr: Frame,
    modalities=MODALITIES,
    label_compression: str = "ZIP",
    png_level: int = 6,
) -> dict[str, int]:
    """Store the frame's modalities under `root`; returns bytes written per modality.

    Each file is written to a temporary name and renamed, so readers never see half a file.
    `label_compression`: the EXR compression of the optional modalities (flow, albedo, ...).
    """
    sizes: dict[str, int] = {}

    def put(mod: str, write) -> None:
        path = Path(root) / mod / f"{frame_index:05d}.{_EXT[mod]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        sizes[mod] = path.stat().st_size

    def half(x: np.ndarray, names: str) -> dict[str, np.ndarray]:
        x = x.astype(np.float16)
        return {c: x[..., i] for i, c in enumerate(names)}

    if "rgb" in modalities and fr.rgb is not None:
        put("rgb", lambda p: write_rgb_frame(p, fr.rgb))
    if "depth" in modalities and fr.depth is not None:
        put("depth", lambda p: labelcodec.write_depth(p, fr.depth))
    if "normal" in modalities and fr.normal is not None:
        put("normal", lambda p: labelcodec.write_normal(p, fr.normal))
    if "mask" in modalities and fr.mask is not None:
        put("mask", lambda p: write_png(p, _u16(fr.mask), png_level))
    if "iuv" in modalities and fr.part is not None:
        uv = fr.part_uv if fr.part_uv is not None else np.zeros(fr.part.shape + (2,), np.float32)
        put("iuv", lambda p: labelcodec.write_iuv(p, fr.part, uv))
    if "canonical" in modalities and fr.canonical is not None:
        put("canonical", lambda p: labelcodec.write_canonical(p, fr.canonical))
    if "instance" in modalities and fr.instance is not None:
        inst = fr.instance.astype(np.uint8) if fr.instance.max(initial=0) < 256 else fr.instance
        put("instance", lambda p: write_png(p, inst, png_level))
    if "flow" in modalities and fr.flow is not None:
        valid = fr.flow_valid if fr.flow_valid is not None else np.zeros(fr.flow.shape[:2] + (2,), bool)
        put(
            "flow",
            lambda p: write_exr(
                p,
                {**half(fr.flow, FLOW_CHANNELS), **half(valid.astype(np.float32), FLOW_VALID_CHANNELS)},
                label_compression,
            ),
        )
    if "albedo" in modalities and fr.albedo is not None:
        put("albedo", lambda p: write_exr(p, half(fr.albedo, "RGB"), label_compression))
    if "rgb_linear" in modalities and fr.rgb_linear is not None:
        put("rgb_linear", lambda p: write_exr(p, half(fr.rgb_linear, "RGB"), label_compression))
    if "people" in modalities and fr.people is not None:
        names = [f"P{k}" for k in range(1, fr.people.shape[-1] + 1)]
        put("people", lambda p: write_exr(p, half(fr.people, names), label_compression))
    return sizes


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H,W,3) uint8 sRGB, from the WebP or (older videos) the PNG file."""
    return read_image(path)


def _legacy(path: str | os.PathLike) -> bool:
    return str(path).endswith(".exr")  # label format 1 (see the module doc)


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """(H,W) float32 metres, 0 = no surface."""
    return read_exr(path)["Z"].astype(np.float32) if _legacy(path) else labelcodec.read_depth(path)


def _stack(path: str | os.PathLike, names: str) -> np.ndarray:
    ch = read_exr(path)
    return np.stack([ch[c] for c in names], axis=-1).astype(np.float32)


def read_normal(path: str | os.PathLike) -> np.ndarray:
    """(H,W,3) float32 unit normals in the camera frame, 0 = no surface."""
    return _stack(path, "XYZ") if _legacy(path) else labelcodec.read_normal(path)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    return read_png(path).astype(np.float32) / U16


def read_iuv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(part (H,W) uint8, part UV (H,W,2) float32)."""
    if not _legacy(path):
        return labelcodec.read_iuv(path)
    a = _stack(path, "IUV")
    return np.round(a[..., 0]).astype(np.uint8), a[..., 1:]


def read_canonical(path: str | os.PathLike) -> np.ndarray:
    """(H,W,3) float32 canonical coordinates in [0,1]."""
    return _stack(path, "XYZ") if _legacy(path) else labelcodec.read_canonical(path)


def read_instance(path: str | os.PathLike) -> np.ndarray:
    return read_png(path).astype(np.uint16)


def read_flow(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(flow (H,W,4) float32: fx, fy, bx, by in pixels; valid (H,W,2) bool: forward, backward)."""
    ch = read_exr(path)
    flow = np.stack([ch[c] for c in FLOW_CHANNELS], -1).astype(np.float32)
    return flow, np.stack([ch[c] > 0.5 for c in FLOW_VALID_CHANNELS], -1)


def read_frame(root: str | os.PathLike, frame_index: int, modalities=C.STORED_MODALITIES) -> Frame:
    """The frame's stored files (those of `modalities` that exist)."""
    fr = Frame()
    for mod in modalities:
        p = path_of(root, mod, frame_index)
        if not p.is_file():
            continue
        if mod == "rgb":
            fr.rgb = read_rgb(p)
        elif mod == "depth":
            fr.depth = read_depth(p)
        elif mod == "normal":
            fr.normal = read_normal(p)
        elif mod == "mask":
            fr.mask = read_mask(p)
        elif mod == "iuv":
            fr.part, fr.part_uv = read_iuv(p)
        elif mod == "canonical":
            fr.canonical = read_canonical(p)
        elif mod == "instance":
            fr.instance = read_instance(p)
        elif mod == "flow":
            fr.flow, fr.flow_valid = read_flow(p)
        elif mod == "albedo":
            fr.albedo = _stack(p, "RGB")
        elif mod == "rgb_linear":
            fr.rgb_linear = _stack(p, "RGB")
        elif mod == "people":
            ch = read_exr(p)
            fr.people = np.stack([ch[f"P{k}"] for k in range(1, len(ch) + 1)], -1).astype(np.float32)
    return fr


def convert_render(
    render_out: str | os.PathLike,
    dataset_root: str | os.PathLike,
    camera,
    modalities=MODALITIES,
    delete_raw: bool = False,
    auto_exposure: bool = False,
    **write_kw,
) -> list[dict]:
    """Convert every frame listed in `render_out/render_info.json`; returns per-frame byte counts
    and the exposure gain used.

    camera: the description's `Camera` (K, R, t per frame; needed for flow and for turning normals
    to face the camera), or just the (F,3,3) rotations. `auto_exposure`: one gain for the clip
    metered on a few of its frames (thfm_synth/render/exposure.py), else the RGB is encoded as
    rendered. Flow is finished one frame late: its validity needs the neighbours' depth.
    """
    from thfm_synth.render import flow as flow_mod

    cam_r = np.asarray(getattr(camera, "r", camera))
    cam_k = getattr(camera, "k", None)
    cam_t = getattr(camera, "t", None)
    info = json.loads((Path(render_out) / C.RENDER_INFO).read_text())
    raws = [rec["files"] for rec in info["frames"]]  # one EXR per render call (two with motion blur)
    gain = 1.0
    if auto_exposure and raws:
        # every file of the frame: with its own layer the mask may be in another render call's file
        metered = [
            {name: c for path in raws[i] for name, c in read_exr(path).items()}
            for i in exposure.meter_frame_indices(len(raws))
        ]
        metered = [ch for ch in metered if _linear_rgb(ch) is not None]
        gain = exposure.metering_gain((_linear_rgb(ch) for ch in metered), masks=(mask_channel(ch) for ch in metered))
    frames = [int(rec["frame"]) for rec in info["frames"]]
    want_flow = "flow" in modalities and cam_k is not None and cam_t is not None
    cams = {f: (cam_k[f], cam_r[f], cam_t[f]) for f in range(len(cam_r))} if want_flow else {}
    rows: dict[int, dict] = {}
    pending: list[tuple[int, Frame, np.ndarray]] = []  # frames whose forward-flow validity waits for f+1

    def store(frame: int, fr: Frame) -> None:
        sizes = write_frame(dataset_root, frame, fr, modalities, **write_kw)
        rows[frame] = {"frame": frame, "bytes": sizes, "total_bytes": sum(sizes.values()), "exposure_gain": gain}

    prev: tuple[int, np.ndarray] | None = None  # (frame, depth) of the frame before
    for frame, files in zip(frames, raws):
        channels = {name: ch for path in files for name, ch in read_exr(path).items()}
        fr = decode_raw(channels, cam_r[frame], gain, None if cam_k is None else cam_k[frame])
        if want_flow and fr.pos_next is not None and fr.depth is not None:
            hit = fr.depth > 0
            fwd, z_f, in_f = flow_mod.flow_vectors(fr.pos_next, hit, cams[frame], cams.get(frame + 1))
            bwd, z_b, in_b = flow_mod.flow_vectors(fr.pos_prev, hit, cams[frame], cams.get(frame - 1))
            fr.flow = np.concatenate([fwd, bwd], -1)
            valid_b = (
                flow_mod.visible_in(bwd, z_b, in_b, prev[1])
                if prev is not None and prev[0] == frame - 1
                else np.zeros_like(in_b)
            )
            fr.flow_valid = np.stack([np.zeros_like(in_f), valid_b], -1)
            for f0, fr0, fwd_args in pending:  # the frame before waited for this depth
                if f0 == frame - 1:
                    fr0.flow_valid[..., 0] = flow_mod.visible_in(*fwd_args, fr.depth)
                store(f0, fr0)
            pending = [(frame, fr, (fwd, z_f, in_f))]
            prev = (frame, fr.depth)
        else:
            store(frame, fr)
        if delete_raw:
            for path in files:
                os.remove(path)
    for f0, fr0, _ in pending:  # the last frame: no next frame, forward flow stays invalid
        store(f0, fr0)
    return [rows[f] for f in frames]
