"""Load (and export) WAN 2.1 VAE weights in the two published layouts.

* diffusers (``Wan-AI/Wan2.1-*-Diffusers``, subfolder ``vae``): ``diffusion_pytorch_model.safetensors``
  with keys ``encoder.conv_in.weight``, ``encoder.down_blocks.0.norm1.gamma``, ``quant_conv.*``,
  ``post_quant_conv.*``, ``decoder.up_blocks.0.resnets.0.conv1.weight``, ... (optionally a
  ``config.json`` beside it, which is then used as the config).
* original Wan-AI (``Wan2.1_VAE.pth``): ``encoder.conv1.*``, ``encoder.downsamples.0.residual.0.gamma``,
  ``encoder.middle.*``, ``encoder.head.*``, ``conv1.*``/``conv2.*`` (quant/post-quant),
  ``decoder.upsamples.*`` (one flat list), ``decoder.head.*``.

Either can be ``.safetensors`` or a torch pickle (``.pth``/``.pt``/``.bin``/``.ckpt``, read with
``torch.load(weights_only=True)``); the layout is detected from the keys. The original -> diffusers
renaming is derived from the config (it reproduces diffusers' ``convert_wan_vae_to_diffusers`` for
the official config, which tests check), and the diffusers key -> nnx path table from the module
tree: nnx path ``encoder/down_blocks/0/conv1/kernel`` is diffusers ``encoder.down_blocks.0.conv1.weight``
(transposed from torch's (out, in, kt, kh, kw)), and a resampler's ``resample`` conv is diffusers'
``resample.1``. Any missing/unexpected key or shape mismatch raises :class:`WeightLoadError` with a
one-line message naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import WAN21_VAE_CONFIG, WanVAEConfig
from .wan_vae import WanVAE

DIFFUSERS, ORIGINAL = "diffusers", "original"
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
DIFFUSERS_WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


class WeightLoadError(ValueError):
    """A checkpoint does not fit the model; the message is one line naming the file and the key."""


# ---------------------------------------------------------------------- reading files


def resolve_weights_path(path: str | Path) -> tuple[Path, Path | None]:
    """File of weights and the diffusers ``config.json`` beside it (if any) for a file or folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        for folder in (p, p / "vae"):
            for name in DIFFUSERS_WEIGHT_NAMES:
                if (folder / name).is_file():
                    cfg = folder / "config.json"
                    return folder / name, (cfg if cfg.is_file() else None)
        raise WeightLoadError(f"{p}: folder has no {' or '.join(DIFFUSERS_WEIGHT_NAMES)} (nor in vae/)")
    if not p.is_file():
        raise WeightLoadError(f"{p}: no such weights file")
    cfg = p.parent / "config.json"
    is_diffusers_cfg = False
    if cfg.is_file():
        try:
            is_diffusers_cfg = json.loads(cfg.read_text()).get("_class_name") == "AutoencoderKLWan"
        except (OSError, ValueError):
            is_diffusers_cfg = False
    return p, (cfg if is_diffusers_cfg else None)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a ``.safetensors`` or torch checkpoint as float32 numpy arrays (torch layout)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        return _read_safetensors(p)
    if p.suffix in TORCH_SUFFIXES:
        return _read_torch(p)
    raise WeightLoadError(
        f"{p}: unknown weights format {p.suffix!r} (expected .safetensors or {'/'.join(TORCH_SUFFIXES)})"
    )


def _read_safetensors(p: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    out = {}
    try:
        with safe_open(str(p), framework="numpy") as f:
            for k in f.keys():
                out[k] = np.asarray(f.get_tensor(k), dtype=np.float32)
        return out
    except (TypeError, ValueError, KeyError):
        pass  # e.g. bfloat16, which numpy's safetensors backend cannot read: go through jax
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for corrupt files
        raise WeightLoadError(f"{p}: cannot read safetensors file ({type(e).__name__}: {e})") from e
    try:
        with safe_open(str(p), framework="flax") as f:
            return {k: np.asarray(jnp.asarray(f.get_tensor(k), jnp.float32)) for k in f.keys()}
    except Exception as e:  # noqa: BLE001
        raise WeightLoadError(f"{p}: cannot read safetensors file ({type(e).__name__}: {e})") from e


def _read_torch(p: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise WeightLoadError(f"{p}: reading a torch checkpoint needs torch (or convert it to .safetensors)") from e
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightLoadError(f"{p}: torch.load(weights_only=True) failed ({type(e).__name__}: {e})") from e
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise WeightLoadError(f"{p}: expected a state dict, got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise WeightLoadError(f"{p}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k] = v.detach().to(torch.float32).cpu().numpy()
    return out


def file_digest(path: str | Path, n: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:n]


# ---------------------------------------------------------------------- original <-> diffusers names

_RESNET_SUBKEYS = {  # original ResidualBlock names -> diffusers WanResidualBlock names
    "residual.0.gamma": "norm1.gamma",
    "residual.2.weight": "conv1.weight",
    "residual.2.bias": "conv1.bias",
    "residual.3.gamma": "norm2.gamma",
    "residual.6.weight": "conv2.weight",
    "residual.6.bias": "conv2.bias",
    "shortcut.weight": "conv_shortcut.weight",
    "shortcut.bias": "conv_shortcut.bias",
}
_RESNET_SUBKEYS_INV = {v: k for k, v in _RESNET_SUBKEYS.items()}


def _module_prefixes(cfg: WanVAEConfig) -> list[tuple[str, str, bool]]:
    """``(original prefix, diffusers prefix, is_resnet)`` for every module with weights."""
    pairs: list[tuple[str, str, bool]] = [("conv1", "quant_conv", False), ("conv2", "post_quant_conv", False)]
    n = len(cfg.dim_mult)
    for side in ("encoder", "decoder"):
        pairs += [
            (f"{side}.conv1", f"{side}.conv_in", False),
            (f"{side}.middle.0", f"{side}.mid_block.resnets.0", True),
            (f"{side}.middle.1", f"{side}.mid_block.attentions.0", False),
            (f"{side}.middle.2", f"{side}.mid_block.resnets.1", True),
            (f"{side}.head.0", f"{side}.norm_out", False),
            (f"{side}.head.2", f"{side}.conv_out", False),
        ]
    # encoder: both layouts use one flat list with the same indices
    j, scale = 0, 1.0
    for i in range(n):
        for _ in range(cfg.num_res_blocks):
            pairs.append((f"encoder.downsamples.{j}", f"encoder.down_blocks.{j}", True))
            j += 1
            if scale in cfg.attn_scales:
                pairs.append((f"encoder.downsamples.{j}", f"encoder.down_blocks.{j}", False))
                j += 1
        if i != n - 1:
            pairs.append((f"encoder.downsamples.{j}", f"encoder.down_blocks.{j}", False))
            j += 1
            scale /= 2.0
    # decoder: the original flat list becomes up_blocks[i].resnets[r] / .upsamplers.0
    j, scale = 0, 1.0 / 2 ** (n - 2)
    for i in range(n):
        for r in range(cfg.num_res_blocks + 1):
            pairs.append((f"decoder.upsamples.{j}", f"decoder.up_blocks.{i}.resnets.{r}", True))
            j += 1
            if scale in cfg.attn_scales:
                raise NotImplementedError(
                    f"attn_scales={list(cfg.attn_scales)} puts attention in the original "
                    "decoder, which diffusers' WAN 2.1 decoder (and this port) lacks"
                )
        if i != n - 1:
            pairs.append((f"decoder.upsamples.{j}", f"decoder.up_blocks.{i}.upsamplers.0", False))
            j += 1
            scale *= 2.0
    return pairs


def _rename(
    sd: dict[str, np.ndarray], table: dict[str, tuple[str, bool]], sub: dict[str, str], origin: str
) -> dict[str, np.ndarray]:
    out = {}
    for key, value in sd.items():
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            hit = table.get(".".join(parts[:cut]))
            if hit is not None:
                new_prefix, is_resnet = hit
                rest = ".".join(parts[cut:])
                if is_resnet:
                    if rest not in sub:
                        raise WeightLoadError(f"{origin}: unexpected key {key!r} (not a residual-block weight)")
                    rest = sub[rest]
                out[f"{new_prefix}.{rest}"] = value
                break
        else:
            raise WeightLoadError(f"{origin}: unexpected key {key!r} (no such module in the WAN 2.1 VAE)")
    return out


def original_to_diffusers(
    sd: dict[str, np.ndarray], cfg: WanVAEConfig = WAN21_VAE_CONFIG, origin: str = "state dict"
) -> dict[str, np.ndarray]:
    """Rename an original ``Wan2.1_VAE.pth`` state dict to diffusers keys (values untouched)."""
    table = {o: (d, r) for o, d, r in _module_prefixes(cfg)}
    return _rename(sd, table, _RESNET_SUBKEYS, origin)


def diffusers_to_original(
    sd: dict[str, np.ndarray], cfg: WanVAEConfig = WAN21_VAE_CONFIG, origin: str = "state dict"
) -> dict[str, np.ndarray]:
    """Inverse of :func:`original_to_diffusers`."""
    table = {d: (o, r) for o, d, r in _module_prefixes(cfg)}
    return _rename(sd, table, _RESNET_SUBKEYS_INV, origin)


def detect_layout(keys, origin: str = "state dict") -> str:
    keys = set(keys)
    if "encoder.conv_in.weight" in keys or "quant_conv.weight" in keys:
        return DIFFUSERS
    if "encoder.conv1.weight" in keys or "conv1.weight" in keys:
        return ORIGINAL
    sample = ", ".join(sorted(keys)[:3])
    raise WeightLoadError(
        f"{origin}: not a WAN 2.1 VAE checkpoint (no encoder.conv_in.weight / encoder.conv1.weight; "
        f"first keys: {sample})"
    )


# ---------------------------------------------------------------------- diffusers keys <-> nnx params


def _value(v):
    """A variable's array (``get_value`` on flax >= 0.12, ``.value`` before)."""
    return v.get_value() if hasattr(v, "get_value") else v.value


def _params(model: WanVAE) -> dict[tuple, object]:
    return dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))


def _param_table(params: dict[tuple, object]) -> dict[str, tuple[tuple, str]]:
    """diffusers key -> (nnx path, kind); kind says how the torch tensor is laid out."""
    table = {}
    for path, var in params.items():
        names = [str(p) for p in path]
        leaf, parent = names[-1], names[-2]
        if leaf == "kernel":
            kind = {5: "conv3d", 4: "conv2d", 2: "conv1x1"}[len(_value(var).shape)]
            names[-1] = "weight"
        elif leaf == "gamma":
            kind = "gamma_image" if parent == "norm" else "gamma_video"  # attention norm has images=True
        else:
            kind = "bias"
        names = [n + ".1" if n == "resample" else n for n in names]  # diffusers' nn.Sequential index
        table[".".join(names)] = (tuple(path), kind)
    return table


_TO_TORCH_AXES = {"conv3d": (4, 3, 0, 1, 2), "conv2d": (3, 2, 0, 1)}


def _torch_shape(shape: tuple, kind: str) -> tuple:
    if kind in _TO_TORCH_AXES:
        return tuple(shape[i] for i in _TO_TORCH_AXES[kind])
    if kind == "conv1x1":
        return (shape[1], shape[0], 1, 1)
    if kind == "gamma_video":
        return (shape[0], 1, 1, 1)
    if kind == "gamma_image":
        return (shape[0], 1, 1)
    return tuple(shape)


def _to_torch(a: np.ndarray, kind: str) -> np.ndarray:
    if kind in _TO_TORCH_AXES:
        return np.transpose(a, _TO_TORCH_AXES[kind])
    if kind == "conv1x1":
        return np.transpose(a, (1, 0))[:, :, None, None]
    return a.reshape(_torch_shape(a.shape, kind))


def _from_torch(a: np.ndarray, kind: str) -> np.ndarray:
    if kind in _TO_TORCH_AXES:
        return np.transpose(a, np.argsort(_TO_TORCH_AXES[kind]))
    if kind == "conv1x1":
        return np.transpose(a[:, :, 0, 0], (1, 0))
    if kind in ("gamma_video", "gamma_image"):
        return a.reshape(-1)
    return a


def export_state_dict(model: WanVAE, layout: str = DIFFUSERS) -> dict[str, np.ndarray]:
    """The model's weights as a torch-layout float32 state dict in ``layout`` (``"diffusers"``/``"original"``)."""
    if layout not in (DIFFUSERS, ORIGINAL):
        raise ValueError(f"layout must be {DIFFUSERS!r} or {ORIGINAL!r}, got {layout!r}")
    params = _params(model)
    sd = {
        key: np.ascontiguousarray(_to_torch(np.asarray(_value(params[path]), np.float32), kind))
        for key, (path, kind) in _param_table(params).items()
    }
    return diffusers_to_original(sd, model.config) if layout == ORIGINAL else sd


def save_state_dict(sd: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write a torch-layout state dict as ``.safetensors`` or a torch pickle (by suffix)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.array(v, order="C") for k, v in sd.items()}, str(p))
    elif p.suffix in TORCH_SUFFIXES:
        import torch

        torch.save({k: torch.from_numpy(np.array(v, order="C")) for k, v in sd.items()}, str(p))
    else:
        raise ValueError(f"{p}: unknown weights format {p.suffix!r}")
    return p


def apply_state_dict(model: WanVAE, sd: dict[str, np.ndarray], origin: str = "state dict", dtype=jnp.float32) -> WanVAE:
    """Put a diffusers-keyed torch-layout state dict into ``model`` (in place); strict on keys and shapes."""
    params = _params(model)
    table = _param_table(params)
    missing = [k for k in table if k not in sd]
    unexpected = [k for k in sd if k not in table]
    if missing:
        more = f" (+{len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise WeightLoadError(f"{origin}: missing key {missing[0]!r}{more}")
    if unexpected:
        more = f" (+{len(unexpected) - 1} more unexpected)" if len(unexpected) > 1 else ""
        raise WeightLoadError(f"{origin}: unexpected key {unexpected[0]!r}{more}")
    new = {}
    for key, (path, kind) in table.items():
        want = _torch_shape(tuple(_value(params[path]).shape), kind)
        got = tuple(sd[key].shape)
        if got != want:
            raise WeightLoadError(f"{origin}: shape mismatch for {key!r}: checkpoint {got}, model {want}")
        new[path] = jnp.asarray(_from_torch(np.asarray(sd[key], np.float32), kind), dtype)
    state = nnx.state(model, nnx.Param)
    pure = nnx.to_pure_dict(state)
    for path, value in new.items():
        node = pure
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    return model


def load_wan_vae(path: str | Path, config: WanVAEConfig | None = None, *, dtype=jnp.float32) -> WanVAE:
    """A :class:`WanVAE` with weights from ``path`` (file or diffusers folder), either layout.

    ``config``: defaults to the ``config.json`` beside a diffusers checkpoint, else the official
    WAN 2.1 config. ``vae_id`` becomes ``wan2.1-vae:sha256:<first 12 hex of the file>``.
    """
    wpath, cfg_path = resolve_weights_path(path)
    if config is None:
        config = WanVAEConfig.from_json(cfg_path) if cfg_path is not None else WAN21_VAE_CONFIG
    sd = read_state_dict(wpath)
    layout = detect_layout(sd.keys(), str(wpath))
    if layout == ORIGINAL:
        sd = original_to_diffusers(sd, config, str(wpath))
    model = nnx.eval_shape(lambda: WanVAE(config, rngs=nnx.Rngs(0)))
    model = _materialize(model)
    apply_state_dict(model, sd, str(wpath), dtype)
    model.vae_id = f"wan2.1-vae:sha256:{file_digest(wpath)}"
    return model


def _materialize(abstract: WanVAE) -> WanVAE:
    """Concrete zero params for an ``nnx.eval_shape`` model (cheaper than a random init of 127M params)."""
    graphdef, state = nnx.split(abstract)
    state = jax.tree_util.tree_map(lambda s: jnp.asarray(np.zeros(s.shape, s.dtype)), state)
    return nnx.merge(graphdef, state)
