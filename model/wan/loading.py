"""Load WAN 2.1 transformer checkpoints (diffusers or original Wan-AI key layout) into the nnx port.

Two key layouts are understood (detected automatically):

- diffusers (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers/transformer``): ``patch_embedding.weight``,
  ``condition_embedder.time_embedder.linear_1.weight``, ``blocks.0.attn1.to_q.weight``,
  ``blocks.0.ffn.net.0.proj.weight``, ``blocks.0.scale_shift_table``, ``proj_out.weight`` ...
- original (``Wan-AI/Wan2.1-T2V-1.3B``): ``time_embedding.0.weight``, ``blocks.0.self_attn.q.weight``,
  ``blocks.0.norm3.weight`` (the cross-attention norm), ``blocks.0.ffn.0.weight``,
  ``blocks.0.modulation``, ``head.head.weight``, ``head.modulation`` ... (also with the ComfyUI
  ``model.diffusion_model.`` prefix). They are renamed to diffusers keys with the same table as
  diffusers' ``convert_wan_transformer_to_diffusers`` (original norm2/norm3 swap included).

diffusers key -> nnx path is mechanical because module names mirror diffusers: dots split the
path (digits become list indices), torch ``Linear.weight`` (out, in) -> ``kernel`` (in, out),
``Conv3d.weight`` (out, in, t, h, w) -> ``kernel`` (t, h, w, in, out), norm ``weight`` -> ``scale``.
With ``scan_layers=True`` the ``blocks.{i}.*`` tensors are stacked on a leading layer axis.

Files: a ``.safetensors`` file, a sharded checkpoint's ``*.safetensors.index.json``, or a
directory holding one of them (plus ``config.json``, used when ``config`` is not given).
Every problem raises :class:`WanCheckpointError` (a ``ValueError``) with a one-line message that
names the file, the key and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import WanTransformerConfig
from .safetensors_io import SafetensorsFile, save_file
from .transformer import WanTransformer3D


class WanCheckpointError(ValueError):
    """A checkpoint does not fit the model (missing/unexpected key, wrong shape, unreadable file)."""


# --------------------------------------------------------------------------------------------
# Original Wan-AI <-> diffusers key renames (module prefixes; the trailing .weight/.bias is kept).
# --------------------------------------------------------------------------------------------
ORIGINAL_TO_DIFFUSERS_TOP = {
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "head.head": "proj_out",
    "patch_embedding": "patch_embedding",
}
ORIGINAL_TO_DIFFUSERS_BLOCK = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    # original block order is norm1 (self-attn), norm2 (ffn), norm3 (cross-attn, affine);
    # diffusers calls the affine cross-attention norm `norm2`. Only the affine one has weights.
    "norm3": "norm2",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
}
# Whole-key renames (parameters that are not a module's weight/bias).
ORIGINAL_TO_DIFFUSERS_PARAM_TOP = {"head.modulation": "scale_shift_table"}
ORIGINAL_TO_DIFFUSERS_PARAM_BLOCK = {"modulation": "scale_shift_table"}

KNOWN_PREFIXES = ("model.diffusion_model.", "diffusion_model.")
# diffusers' WanTransformer3DModel._keys_to_ignore_on_load_unexpected
IGNORED_KEY_PATTERNS = ("norm_added_q",)

_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _invert(d: Mapping[str, str]) -> dict[str, str]:
    return {v: k for k, v in d.items()}


def _rename(
    key: str,
    top: Mapping[str, str],
    block: Mapping[str, str],
    top_param: Mapping[str, str],
    block_param: Mapping[str, str],
) -> str | None:
    m = _BLOCK_RE.match(key)
    if m:
        prefix, rest, table, params = f"blocks.{m.group(1)}.", m.group(2), block, block_param
    else:
        prefix, rest, table, params = "", key, top, top_param
    if rest in params:
        return prefix + params[rest]
    if "." not in rest:
        return None
    module, leaf = rest.rsplit(".", 1)
    if leaf not in ("weight", "bias") or module not in table:
        return None
    return f"{prefix}{table[module]}.{leaf}"


def original_to_diffusers_key(key: str) -> str | None:
    """``blocks.3.self_attn.q.weight`` -> ``blocks.3.attn1.to_q.weight``; None for unknown keys."""
    for p in KNOWN_PREFIXES:
        if key.startswith(p):
            key = key[len(p) :]
            break
    return _rename(
        key,
        ORIGINAL_TO_DIFFUSERS_TOP,
        ORIGINAL_TO_DIFFUSERS_BLOCK,
        ORIGINAL_TO_DIFFUSERS_PARAM_TOP,
        ORIGINAL_TO_DIFFUSERS_PARAM_BLOCK,
    )


def diffusers_to_original_key(key: str) -> str | None:
    """Inverse of :func:`original_to_diffusers_key` (without prefixes); None for unknown keys."""
    return _rename(
        key,
        _invert(ORIGINAL_TO_DIFFUSERS_TOP),
        _invert(ORIGINAL_TO_DIFFUSERS_BLOCK),
        _invert(ORIGINAL_TO_DIFFUSERS_PARAM_TOP),
        _invert(ORIGINAL_TO_DIFFUSERS_PARAM_BLOCK),
    )


def detect_layout(keys: Iterable[str]) -> str:
    """'diffusers' or 'original' from the key names; raises if neither."""
    keys = list(keys)
    if any(k.startswith("condition_embedder.") or ".attn1." in k for k in keys):
        return "diffusers"
    stripped = [k.split("diffusion_model.", 1)[-1] for k in keys]
    if any(k.startswith(("time_embedding.", "head.head")) or ".self_attn." in k for k in stripped):
        return "original"
    sample = ", ".join(keys[:3])
    raise WanCheckpointError(
        f"keys look like neither a diffusers nor an original WAN transformer checkpoint "
        f"(first keys: {sample}); is this the transformer (not the VAE/text encoder)?"
    )


# --------------------------------------------------------------------------------------------
# Checkpoint sources
# --------------------------------------------------------------------------------------------
@dataclass
class _Tensor:
    """A lazily read checkpoint tensor (``get()`` returns numpy) with its torch-layout shape."""

    shape: tuple[int, ...]
    get: Callable[[], np.ndarray]
    source: str


def _resolve_files(path: Path) -> tuple[list[Path], Path]:
    """(safetensors files, the path named in error messages) for a file / index json / directory."""
    if path.is_dir():
        cands = sorted(path.glob("*.safetensors.index.json")) or sorted(path.glob("*.safetensors"))
        if not cands and (path / "transformer").is_dir():  # a diffusers pipeline folder
            return _resolve_files(path / "transformer")
        if not cands:
            raise WanCheckpointError(
                f"{path}: no *.safetensors or *.safetensors.index.json in this directory; "
                "point to the transformer folder (e.g. .../transformer) or the file itself"
            )
        if cands[0].name.endswith(".index.json"):
            if len(cands) > 1:
                raise WanCheckpointError(
                    f"{path}: several index files ({', '.join(c.name for c in cands)}); pass the one to load"
                )
            return _resolve_files(cands[0])
        if len(cands) > 1:
            raise WanCheckpointError(
                f"{path}: several .safetensors files and no index json "
                f"({', '.join(c.name for c in cands[:4])}...); pass the file or the index"
            )
        return cands, cands[0]
    if not path.exists():
        raise WanCheckpointError(f"{path}: no such file or directory")
    if path.name.endswith(".json"):
        try:
            weight_map = json.loads(path.read_text())["weight_map"]
        except (ValueError, KeyError) as e:
            raise WanCheckpointError(f"{path}: not a safetensors index (needs a 'weight_map'): {e}") from None
        files = sorted({path.parent / f for f in weight_map.values()})
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise WanCheckpointError(
                f"{path}: shard(s) {', '.join(missing)} listed in the index are missing; "
                "download all shards next to the index"
            )
        return files, path
    if path.suffix != ".safetensors":
        raise WanCheckpointError(
            f"{path}: expected a .safetensors file, an index .json or a directory "
            "(convert .pth/.bin checkpoints to safetensors first)"
        )
    return [path], path


def read_checkpoint(path: str | Path) -> tuple[dict[str, _Tensor], Path]:
    """Lazy view ``{key: _Tensor}`` of all tensors of a checkpoint, and the path for messages."""
    files, name = _resolve_files(Path(path))
    tensors: dict[str, _Tensor] = {}
    for f in files:
        try:
            st = SafetensorsFile(f)
        except ValueError as e:
            raise WanCheckpointError(str(e)) from None
        for k in st.keys():
            if k in tensors:
                raise WanCheckpointError(f"{f}: key '{k}' also appears in {tensors[k].source}; shards must not overlap")
            tensors[k] = _Tensor(st.shape(k), (lambda st=st, k=k: st.get(k)), str(f))
    return tensors, name


def _from_mapping(state_dict: Mapping[str, Any], source: str) -> dict[str, _Tensor]:
    def to_np(v):
        if hasattr(v, "detach"):  # torch tensor (no torch import needed)
            v = v.detach().cpu()
            if str(v.dtype) == "torch.bfloat16":
                v = v.float()
            v = v.numpy()
        return np.asarray(v)

    return {k: _Tensor(tuple(v.shape), (lambda v=v: to_np(v)), source) for k, v in state_dict.items()}


def _to_diffusers_layout(tensors: dict[str, _Tensor], name: str) -> dict[str, tuple[_Tensor, str]]:
    """``{diffusers key: (tensor, key as written in the checkpoint)}``; unknown keys kept verbatim."""
    if detect_layout(tensors) == "diffusers":
        return {k: (t, k) for k, t in tensors.items()}
    out: dict[str, tuple[_Tensor, str]] = {}
    for k, t in tensors.items():
        new = original_to_diffusers_key(k) or k
        if new in out:
            raise WanCheckpointError(
                f"{name}: keys '{out[new][1]}' and '{k}' both map to '{new}'; the checkpoint mixes key layouts"
            )
        out[new] = (t, k)
    return out


# --------------------------------------------------------------------------------------------
# nnx path <-> diffusers key
# --------------------------------------------------------------------------------------------
def _value(var) -> Any:
    get = getattr(var, "get_value", None)
    return get() if get is not None else var.value


def _torch_leaf(path: tuple) -> tuple[str, str]:
    """(torch leaf name, transform) for an nnx leaf; transform in {'id', 'linear', 'conv'}."""
    leaf = path[-1]
    if leaf == "kernel":
        return "weight", ("conv" if path[-2] == "patch_embedding" else "linear")
    if leaf == "scale":
        return "weight", "id"
    return str(leaf), "id"


def _nnx_shape_to_torch(shape: tuple[int, ...], transform: str) -> tuple[int, ...]:
    if transform == "linear":
        return shape[::-1]
    if transform == "conv":  # (t, h, w, in, out) -> (out, in, t, h, w)
        return (shape[4], shape[3], shape[0], shape[1], shape[2])
    return tuple(shape)


def _torch_to_nnx(a: np.ndarray, transform: str) -> np.ndarray:
    if transform == "linear":
        return a.T
    if transform == "conv":
        return a.transpose(2, 3, 4, 1, 0)
    return a


def _nnx_to_torch(a: np.ndarray, transform: str) -> np.ndarray:
    if transform == "linear":
        return a.T
    if transform == "conv":
        return a.transpose(4, 3, 0, 1, 2)
    return a


@dataclass
class _Slot:
    path: tuple  # nnx path
    transform: str
    layer: int | None  # index into the stacked layer axis (scan_layers) or None
    torch_shape: tuple[int, ...]


def param_table(model: WanTransformer3D) -> dict[str, _Slot]:
    """``{diffusers key: slot}`` for every parameter of ``model`` (which may be abstract)."""
    table: dict[str, _Slot] = {}
    stacked = model.scan_layers
    n_layers = model.config.num_layers
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        shape = tuple(_value(var).shape)
        leaf, transform = _torch_leaf(path)
        parts = [str(p) for p in path[:-1]] + [leaf]
        if stacked and path[0] == "blocks":
            tshape = _nnx_shape_to_torch(shape[1:], transform)
            for i in range(n_layers):
                key = ".".join(["blocks", str(i), *parts[1:]])
                table[key] = _Slot(path, transform, i, tshape)
        else:
            table[".".join(parts)] = _Slot(path, transform, None, _nnx_shape_to_torch(shape, transform))
    return table


def _config_hint(cfg: WanTransformerConfig) -> str:
    return (
        f"num_layers={cfg.num_layers}, dim={cfg.inner_dim}, ffn_dim={cfg.ffn_dim}, in/out_channels="
        f"{cfg.in_channels}/{cfg.out_channels}, text_dim={cfg.text_dim}, image_dim={cfg.image_dim}"
    )


def load_params(
    model: WanTransformer3D, checkpoint: str | Path | Mapping[str, Any], *, strict: bool = True, param_dtype=jnp.float32
) -> WanTransformer3D:
    """Return ``model`` (possibly abstract, from ``nnx.eval_shape``) with its params replaced by the
    checkpoint's. ``checkpoint``: path (file, index json, directory) or an in-memory torch-layout
    state dict (torch tensors or numpy arrays). ``strict=False`` tolerates unexpected keys only.
    """
    if isinstance(checkpoint, (str, Path)):
        tensors, name = read_checkpoint(checkpoint)
    else:
        tensors, name = _from_mapping(checkpoint, "<state dict>"), "<state dict>"
    available = _to_diffusers_layout(tensors, str(name))
    table = param_table(model)
    cfg = model.config

    unexpected = [
        ck for k, (_, ck) in available.items() if k not in table and not any(p in k for p in IGNORED_KEY_PATTERNS)
    ]
    if unexpected and strict:
        raise WanCheckpointError(
            f"{name}: unexpected key '{unexpected[0]}' ({len(unexpected)} unexpected in total) for config "
            f"({_config_hint(cfg)}); pass the checkpoint's config.json / the matching config, or strict=False"
        )
    missing = [k for k in table if k not in available]
    if missing:
        k = missing[0]
        written = diffusers_to_original_key(k) if detect_layout(tensors) == "original" else k
        raise WanCheckpointError(
            f"{name}: missing key '{written}' ({len(missing)} missing in total) for config ({_config_hint(cfg)}); "
            "the checkpoint is incomplete or for another WAN variant - pass the matching config"
        )
    for k, slot in table.items():
        t, ck = available[k]
        if tuple(t.shape) != slot.torch_shape:
            raise WanCheckpointError(
                f"{t.source}: key '{ck}' has shape {tuple(t.shape)} but the model expects {slot.torch_shape} "
                f"(config: {_config_hint(cfg)}); pass the config that matches the checkpoint"
            )

    # Build the new flat state: stacked block params are assembled layer by layer on the host.
    graphdef, state = nnx.split(model)
    flat = nnx.to_flat_state(state)
    by_path: dict[tuple, list] = {}
    for k, slot in table.items():
        by_path.setdefault(slot.path, []).append((slot.layer, k))
    new_items = []
    for path, var in flat:
        if path not in by_path:
            new_items.append((path, var))
            continue
        entries = sorted(by_path[path], key=lambda e: -1 if e[0] is None else e[0])
        arrays = [
            _torch_to_nnx(np.asarray(available[k][0].get(), dtype=np.float32), table[k].transform) for _, k in entries
        ]
        arr = arrays[0] if entries[0][0] is None else np.stack(arrays)
        new_items.append((path, var.replace(jnp.asarray(arr, dtype=param_dtype))))
    return nnx.merge(graphdef, nnx.from_flat_state(new_items))


def find_config(path: str | Path) -> WanTransformerConfig | None:
    """``config.json`` next to a checkpoint file or inside a checkpoint directory, if present."""
    path = Path(path)
    if path.is_dir() and not any(path.glob("*.safetensors*")) and (path / "transformer").is_dir():
        path = path / "transformer"  # a diffusers pipeline folder
    cand = path / "config.json" if path.is_dir() else path.parent / "config.json"
    return WanTransformerConfig.from_json(cand) if cand.exists() else None


def load_wan_transformer(
    path: str | Path,
    config: WanTransformerConfig | None = None,
    *,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    scan_layers: bool = True,
    remat: bool = False,
    attention_impl: str | None = "auto",
    strict: bool = True,
) -> WanTransformer3D:
    """Build a :class:`WanTransformer3D` from a checkpoint without random-initialising it first.

    ``config`` defaults to the ``config.json`` beside the checkpoint (diffusers or original format).
    """
    if config is None:
        config = find_config(path)
        if config is None:
            raise WanCheckpointError(
                f"{path}: no config.json next to the checkpoint; pass config= (e.g. model.wan.WAN21_1_3B)"
            )
    abstract = nnx.eval_shape(
        lambda: WanTransformer3D(
            config,
            rngs=nnx.Rngs(0),
            dtype=dtype,
            param_dtype=param_dtype,
            scan_layers=scan_layers,
            remat=remat,
            attention_impl=attention_impl,
        )
    )
    return load_params(abstract, path, strict=strict, param_dtype=param_dtype)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def diffusers_state_dict(model: WanTransformer3D) -> dict[str, np.ndarray]:
    """The model's params as a diffusers-layout state dict of float32 numpy arrays (torch layouts)."""
    params = {
        path: np.asarray(jax.device_get(_value(var)), dtype=np.float32)
        for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))
    }
    out = {}
    for k, slot in param_table(model).items():
        a = params[slot.path]
        a = a[slot.layer] if slot.layer is not None else a
        out[k] = np.ascontiguousarray(_nnx_to_torch(a, slot.transform))
    return out


def to_original_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a diffusers-layout state dict to the original Wan-AI layout (values untouched)."""
    out = {}
    for k, v in state_dict.items():
        new = diffusers_to_original_key(k)
        if new is None:
            raise WanCheckpointError(f"<state dict>: no original-layout name for diffusers key '{k}'")
        out[new] = v
    return out


def save_wan_transformer(model: WanTransformer3D, path: str | Path, *, layout: str = "diffusers") -> Path:
    """Save params as one safetensors file in the diffusers or original key layout, plus a
    diffusers-style ``config.json`` beside it."""
    if layout not in ("diffusers", "original"):
        raise ValueError(f"layout must be 'diffusers' or 'original', got {layout!r}")
    sd = diffusers_state_dict(model)
    if layout == "original":
        sd = to_original_state_dict(sd)
    path = Path(path)
    save_file(sd, path, metadata={"format": "pt"})
    cfg = {"_class_name": "WanTransformer3DModel", **model.config.to_diffusers_dict()}
    (path.parent / "config.json").write_text(json.dumps(cfg, indent=2))
    return path
