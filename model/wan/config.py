"""Architecture config of the WAN 2.1 DiT, field for field like diffusers' ``WanTransformer3DModel``.

Only architecture lives here; runtime choices (compute dtype, layer scan, remat, attention
backend) are arguments of :class:`model.wan.transformer.WanTransformer3D`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

QK_NORM_ACROSS_HEADS = "rms_norm_across_heads"


@dataclasses.dataclass(frozen=True)
class WanTransformerConfig:
    """Mirror of diffusers' ``WanTransformer3DModel`` config (same field names and meaning).

    ``inner_dim = num_attention_heads * attention_head_dim`` is the model width.
    ``image_dim``/``added_kv_proj_dim`` are set only for the image-to-video (I2V) variants.
    ``pos_embed_seq_len`` (FLF2V) is not supported.
    """

    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 40
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 13824
    num_layers: int = 40
    cross_attn_norm: bool = True
    qk_norm: str | None = QK_NORM_ACROSS_HEADS
    eps: float = 1e-6
    image_dim: int | None = None
    added_kv_proj_dim: int | None = None
    rope_max_seq_len: int = 1024
    pos_embed_seq_len: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        if self.out_channels is None:  # diffusers: out_channels = out_channels or in_channels
            object.__setattr__(self, "out_channels", self.in_channels)
        if len(self.patch_size) != 3:
            raise ValueError(f"patch_size must have 3 entries (t, h, w), got {self.patch_size}")
        if self.qk_norm != QK_NORM_ACROSS_HEADS:
            raise ValueError(
                f"qk_norm={self.qk_norm!r} is not supported: WAN 2.1 uses {QK_NORM_ACROSS_HEADS!r} "
                "(diffusers ignores the field and always applies RMSNorm across heads)"
            )
        if self.pos_embed_seq_len is not None:
            raise NotImplementedError("pos_embed_seq_len (WAN FLF2V image position embedding) is not ported")
        if (self.image_dim is None) != (self.added_kv_proj_dim is None):
            raise ValueError("image_dim and added_kv_proj_dim must be set together (I2V) or both be None (T2V)")
        if self.attention_head_dim < 6 or self.attention_head_dim % 2:
            raise ValueError(
                f"attention_head_dim must be even and >= 6 for the 3D RoPE split, got {self.attention_head_dim}"
            )

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def patch_volume(self) -> int:
        return math.prod(self.patch_size)

    def replace(self, **changes: Any) -> "WanTransformerConfig":
        return dataclasses.replace(self, **changes)

    def to_diffusers_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["patch_size"] = list(self.patch_size)
        return d

    @classmethod
    def from_diffusers_dict(cls, d: dict[str, Any]) -> "WanTransformerConfig":
        """From a diffusers ``config.json`` dict (``_class_name``/``_diffusers_version`` etc. are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_original_dict(cls, d: dict[str, Any]) -> "WanTransformerConfig":
        """From an original Wan-AI ``config.json`` (``dim``, ``num_heads``, ``in_dim``, ``model_type`` ...)."""
        dim, heads = int(d["dim"]), int(d["num_heads"])
        i2v = d.get("model_type", "t2v") in ("i2v", "flf2v")
        if d.get("model_type") == "flf2v":
            raise NotImplementedError("WAN FLF2V checkpoints are not supported")
        return cls(
            patch_size=tuple(d.get("patch_size", (1, 2, 2))),
            num_attention_heads=heads,
            attention_head_dim=dim // heads,
            in_channels=int(d.get("in_dim", 16)),
            out_channels=int(d.get("out_dim", 16)),
            text_dim=int(d.get("text_dim", 4096)),
            freq_dim=int(d.get("freq_dim", 256)),
            ffn_dim=int(d["ffn_dim"]),
            num_layers=int(d["num_layers"]),
            cross_attn_norm=bool(d.get("cross_attn_norm", True)),
            eps=float(d.get("eps", 1e-6)),
            image_dim=1280 if i2v else None,
            added_kv_proj_dim=dim if i2v else None,
        )

    @classmethod
    def from_json(cls, path: str | Path) -> "WanTransformerConfig":
        """Read a diffusers or an original Wan-AI ``config.json``."""
        d = json.loads(Path(path).read_text())
        if "num_attention_heads" in d:
            return cls.from_diffusers_dict(d)
        if "num_heads" in d and "dim" in d:
            return cls.from_original_dict(d)
        raise ValueError(
            f"{path}: not a WAN transformer config (neither diffusers' 'num_attention_heads' "
            "nor the original 'dim'/'num_heads' fields); pass config= explicitly"
        )


# Wan-AI/Wan2.1-T2V-1.3B(-Diffusers)
WAN21_1_3B = WanTransformerConfig(
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    eps=1e-6,
)

# Wan-AI/Wan2.1-T2V-14B(-Diffusers)
WAN21_14B = WanTransformerConfig(
    num_attention_heads=40,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=13824,
    num_layers=40,
    cross_attn_norm=True,
    eps=1e-6,
)

# Tiny config for tests and CPU benchmarks (head dim 12 -> RoPE split t/h/w = 4/4/4).
WAN_TINY = WanTransformerConfig(
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=4,
    out_channels=4,
    text_dim=16,
    freq_dim=16,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    eps=1e-6,
    rope_max_seq_len=32,
)

# Small config for train-from-synth runs on a laptop CPU (~0.8 M parameters): the smallest width at
# which the end-to-end job on our own 128x80 renders beats the predict-the-mean baselines on
# held-out clips (tests/test_train_from_synth.py); WAN_TINY's 24-wide tokens cannot even carry a
# 2x2 patch of 16-channel latents.
WAN_SMALL = WanTransformerConfig(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=16,
    out_channels=16,
    text_dim=64,
    freq_dim=64,
    ffn_dim=256,
    num_layers=4,
    cross_attn_norm=True,
    eps=1e-6,
    rope_max_seq_len=1024,
)

CONFIGS = {"wan21_1_3b": WAN21_1_3B, "wan21_14b": WAN21_14B, "tiny": WAN_TINY, "small": WAN_SMALL}
# Sizes whose latent channels and text width are taken from the training data
DATA_SIZED = ("tiny", "small", "custom")
