"""3D rotary position embedding of WAN (diffusers ``WanRotaryPosEmbed``).

The head dim ``d`` is split into ``t_dim = d - 4 * (d // 6)`` (frames) and
``h_dim = w_dim = 2 * (d // 6)`` (rows, columns). Each part is a standard 1D RoPE with
``theta = 10000`` whose frequencies are laid out *interleaved*: channels ``(2i, 2i+1)`` form one
rotated pair. Tables are computed in float64 with numpy (static shapes), then cast to float32,
exactly like diffusers on CUDA/CPU.
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp


def rope_split(head_dim: int) -> tuple[int, int, int]:
    h_dim = w_dim = 2 * (head_dim // 6)
    return head_dim - h_dim - w_dim, h_dim, w_dim


def _freqs_1d(dim: int, n: int, theta: float) -> np.ndarray:
    """Angles ``pos * theta^(-2i/dim)``, shape (n, dim/2), float64."""
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    return np.outer(np.arange(n, dtype=np.float64), freqs)


def rope_tables(
    head_dim: int, grid: tuple[int, int, int], max_seq_len: int = 1024, theta: float = 10000.0
) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables of shape ``(F*H*W, head_dim // 2)`` (one angle per rotated channel pair) in float32.

    Token order is frames-major, then rows, then columns (as the flattened patch grid).
    """
    f, h, w = grid
    if max(grid) > max_seq_len:
        raise ValueError(
            f"patch grid {grid} exceeds rope_max_seq_len={max_seq_len} "
            "(diffusers would silently produce a shape error); raise rope_max_seq_len"
        )
    dt, dh, dw = rope_split(head_dim)
    af, ah, aw = _freqs_1d(dt, f, theta), _freqs_1d(dh, h, theta), _freqs_1d(dw, w, theta)
    ang = np.concatenate(
        [
            np.broadcast_to(af[:, None, None, :], (f, h, w, af.shape[-1])),
            np.broadcast_to(ah[None, :, None, :], (f, h, w, ah.shape[-1])),
            np.broadcast_to(aw[None, None, :, :], (f, h, w, aw.shape[-1])),
        ],
        axis=-1,
    ).reshape(f * h * w, head_dim // 2)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def apply_rope(x, cos, sin):
    """Rotate interleaved channel pairs of ``x`` (B, L, N, D) with tables (L, D/2); float32 math,
    result in ``x.dtype`` (diffusers ``WanAttnProcessor.apply_rotary_emb``)."""
    dtype = x.dtype
    xp = x.astype(jnp.float32).reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    x1, x2 = xp[..., 0], xp[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = jnp.stack([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)
    return out.reshape(x.shape).astype(dtype)
