"""Config of the WAN 2.1 causal 3D VAE, field for field like diffusers' ``AutoencoderKLWan``, and
the frame/shape rules every video codec of this package follows.

Only the WAN 2.1 architecture is ported: the WAN 2.2 fields of diffusers' config
(``is_residual``, ``patch_size``, ``decoder_base_dim``, ``in_channels``/``out_channels`` other than 3)
are rejected by :meth:`WanVAEConfig.from_dict` with a clear error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

TEMPORAL_FACTOR = 4
SPATIAL_FACTOR = 8

# diffusers' defaults for AutoencoderKLWan (the statistics of the official WAN 2.1 latents).
WAN21_LATENTS_MEAN = (
    -0.7571,
    -0.7089,
    -0.9113,
    0.1075,
    -0.1745,
    0.9653,
    -0.1517,
    1.5508,
    0.4134,
    -0.0715,
    0.5517,
    -0.3632,
    -0.1922,
    -0.9497,
    0.2503,
    -0.2921,
)
WAN21_LATENTS_STD = (
    2.8184,
    1.4541,
    2.3275,
    2.6558,
    1.2196,
    1.7708,
    2.6052,
    2.0743,
    3.2687,
    2.1526,
    2.8652,
    1.5579,
    1.6382,
    1.1253,
    2.8251,
    1.9160,
)


@dataclasses.dataclass(frozen=True)
class WanVAEConfig:
    """Mirror of diffusers' ``AutoencoderKLWan`` config (same names; ``temperal`` is diffusers' spelling).

    ``temperal_downsample[i]`` says whether encoder stage ``i`` halves time; the decoder uses the
    reversed list. ``attn_scales`` adds attention blocks to the encoder's down blocks only
    (diffusers' WAN 2.1 decoder has none); the official model uses ``[]``. ``dropout`` is kept for
    config parity only: this is an inference port and dropout is the identity in eval mode.
    """

    base_dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0
    latents_mean: tuple[float, ...] = WAN21_LATENTS_MEAN
    latents_std: tuple[float, ...] = WAN21_LATENTS_STD

    def __post_init__(self) -> None:
        for name in ("dim_mult", "attn_scales", "temperal_downsample", "latents_mean", "latents_std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "temperal_downsample", tuple(bool(b) for b in self.temperal_downsample))
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError(
                f"temperal_downsample needs {len(self.dim_mult) - 1} entries (one per downsampling "
                f"stage), got {len(self.temperal_downsample)}"
            )
        if len(self.latents_mean) != self.z_dim or len(self.latents_std) != self.z_dim:
            raise ValueError(
                f"latents_mean/latents_std need z_dim={self.z_dim} entries, got "
                f"{len(self.latents_mean)}/{len(self.latents_std)}"
            )

    # ------------------------------------------------------------------ derived factors

    @property
    def temporal_factor(self) -> int:
        return 2 ** sum(self.temperal_downsample)

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.dim_mult) - 1)

    @property
    def temperal_upsample(self) -> tuple[bool, ...]:
        return self.temperal_downsample[::-1]

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WanVAEConfig":
        """From a diffusers ``config.json`` dict; keys that only describe runtime/metadata are ignored."""
        if d.get("is_residual"):
            raise NotImplementedError("is_residual=True is the WAN 2.2 VAE, which is not ported (WAN 2.1 only)")
        if d.get("patch_size") not in (None, 1):
            raise NotImplementedError(f"patch_size={d['patch_size']} is the WAN 2.2 VAE, which is not ported")
        if d.get("decoder_base_dim") not in (None, d.get("base_dim", 96)):
            raise NotImplementedError("decoder_base_dim != base_dim is not supported (WAN 2.1 only)")
        for key in ("in_channels", "out_channels"):
            if d.get(key, 3) != 3:
                raise NotImplementedError(f"{key}={d[key]} is not supported (RGB only)")
        if d.get("scale_factor_temporal") is not None and "temperal_downsample" in d:
            want = 2 ** sum(bool(b) for b in d["temperal_downsample"])
            if d["scale_factor_temporal"] != want:
                raise ValueError(
                    f"scale_factor_temporal={d['scale_factor_temporal']} disagrees with "
                    f"temperal_downsample (factor {want})"
                )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, path: str | Path) -> "WanVAEConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


# The official WAN 2.1 VAE (Wan-AI/Wan2.1-*-Diffusers, subfolder vae): ~127M parameters.
WAN21_VAE_CONFIG = WanVAEConfig()

# A tiny config for tests and CPU benchmarks. It keeps the official topology (4 stages,
# 2 res blocks, temporal downsampling in the last two stages, z_dim 16), so every layer kind,
# cache rule and the original-checkpoint key layout are exercised, at 1/12 of the width.
TINY_VAE_CONFIG = WanVAEConfig(base_dim=8)


# ---------------------------------------------------------------------- frame / shape rules


def num_latent_frames(num_frames: int, temporal_factor: int = TEMPORAL_FACTOR) -> int:
    """Causal rule: ``T = 1 + 4k`` frames encode to ``1 + k`` latent frames (81 -> 21, 9 -> 3, 13 -> 4)."""
    check_num_frames(num_frames, temporal_factor)
    return 1 + (num_frames - 1) // temporal_factor


def num_video_frames(num_latent: int, temporal_factor: int = TEMPORAL_FACTOR) -> int:
    """Inverse of :func:`num_latent_frames`: ``1 + k`` latent frames decode to ``1 + 4k`` frames."""
    if int(num_latent) != num_latent or num_latent < 1:
        raise ValueError(f"need at least 1 latent frame, got {num_latent}")
    return 1 + (int(num_latent) - 1) * temporal_factor


def check_num_frames(num_frames: int, temporal_factor: int = TEMPORAL_FACTOR, *, who: str = "video codec") -> None:
    if num_frames < 1 or (num_frames - 1) % temporal_factor:
        lo = 1 + ((max(num_frames, 1) - 1) // temporal_factor) * temporal_factor
        raise ValueError(
            f"{who}: got {num_frames} frames, but the causal codec needs 1 + {temporal_factor}k frames "
            f"(e.g. {lo} or {lo + temporal_factor}; 81 -> 21 latent frames)"
        )


def check_spatial(height: int, width: int, spatial_factor: int = SPATIAL_FACTOR, *, who: str = "video codec") -> None:
    if height % spatial_factor or width % spatial_factor or height < 1 or width < 1:
        raise ValueError(
            f"{who}: height and width must be positive multiples of {spatial_factor}, got {height}x{width}"
        )


def video_channels_last(
    x, channels_last: bool, *, who: str, temporal_factor: int = TEMPORAL_FACTOR, spatial_factor: int = SPATIAL_FACTOR
):
    """A checked (B, T, H, W, 3) view of a codec's input video given as (B, 3, T, H, W) or channels-last."""
    if x.ndim != 5:
        raise ValueError(f"{who}: expected a 5-D video batch, got shape {tuple(x.shape)}")
    if not channels_last:
        x = x.transpose((0, 2, 3, 4, 1))
    _, t, h, w, c = x.shape
    if c != 3:
        raise ValueError(f"{who}: expected 3 colour channels, got {c} (channels_last={channels_last})")
    check_num_frames(t, temporal_factor, who=who)
    check_spatial(h, w, spatial_factor, who=who)
    return x


def latents_channels_last(z, channels_last: bool, z_dim: int, *, who: str):
    """A checked (B, T', h, w, z_dim) view of a codec's latents given as (B, z_dim, T', h, w) or channels-last."""
    if z.ndim != 5:
        raise ValueError(f"{who}: expected 5-D latents, got shape {tuple(z.shape)}")
    if not channels_last:
        z = z.transpose((0, 2, 3, 4, 1))
    if z.shape[-1] != z_dim:
        raise ValueError(f"{who}: expected {z_dim} latent channels, got {z.shape[-1]} (channels_last={channels_last})")
    return z


def latent_shape(
    num_frames: int,
    height: int,
    width: int,
    z_dim: int = 16,
    temporal_factor: int = TEMPORAL_FACTOR,
    spatial_factor: int = SPATIAL_FACTOR,
) -> tuple[int, int, int, int]:
    """(C, T', H', W') of one clip's latents."""
    check_spatial(height, width, spatial_factor)
    return (z_dim, num_latent_frames(num_frames, temporal_factor), height // spatial_factor, width // spatial_factor)
