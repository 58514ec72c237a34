"""Resolve a dataset config from a preset, a YAML file and overrides; one-line errors."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from thfm_synth.config.schema import DatasetConfig
from thfm_synth.errors import ConfigError, UserError

PRESET_DIR = Path(__file__).parent / "presets"
PRESETS = tuple(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} not found", "give an existing YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{what} {path} is not valid YAML{line}", "fix the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of fields", "see `thfm-synth plan --print-config`")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def preset_dict(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}", f"use one of: {', '.join(PRESETS)}")
    return _read_yaml(PRESET_DIR / f"{name}.yaml", "preset")


def _field_hint(model: type[BaseModel], loc: tuple) -> str:
    """The field's documented meaning and allowed range, found by walking the schema."""
    cls, info = model, None
    for part in loc:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            break
        info = cls.model_fields[part]
        cls = info.annotation
    if info is None:
        return ""
    bounds = []
    for m in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("multiple_of", "multiple of")):
            if getattr(m, attr, None) is not None:
                bounds.append(f"{sym} {getattr(m, attr)}")
    text = info.description or ""
    if bounds:
        text += ("; " if text else "") + "allowed " + ", ".join(bounds)
    return f" ({text})" if text else ""


def _known_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The fields of the section that holds `loc[-1]` (for "did you mean")."""
    cls = model
    for part in loc[:-1]:
        info = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if info is None:
            return []
        cls = info.annotation
    return list(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else []


def _did_you_mean(model: type[BaseModel], loc: tuple) -> str:
    close = difflib.get_close_matches(str(loc[-1]), _known_fields(model, loc), n=1, cutoff=0.6) if loc else []
    return f" (did you mean {'.'.join(map(str, (*loc[:-1], close[0])))}?)" if close else ""


def format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = tuple(p for p in err["loc"] if not isinstance(p, int))
        name = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {name}{_did_you_mean(DatasetConfig, loc)}")
            continue
        value = err.get("input")
        shown = f" = {json.dumps(value, default=str)}" if not isinstance(value, dict) else ""
        parts.append(f"field {name}{shown}: {msg}{_field_hint(DatasetConfig, loc)}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"invalid config {source}: " + "; ".join(parts) + more


def load_config(
    preset: str | None = None, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> DatasetConfig:
    """Preset (default `paper`) <- config file (its own `preset:` key picks the base) <- overrides."""
    data: dict[str, Any] = {}
    source = f"preset {preset or 'paper'}"
    file_data: dict[str, Any] = {}
    if config_file is not None:
        config_file = Path(config_file)
        file_data = _read_yaml(config_file, "config file")
        source = str(config_file)
        base = file_data.pop("preset", None)
        if base is not None and preset is not None and base != preset:
            raise ConfigError(
                f"config file {config_file} says preset {base!r} but --preset {preset!r} was given", "drop one of them"
            )
        preset = preset or base
        assets = file_data.get("assets")
        manifests = assets.get("manifests") if isinstance(assets, dict) else None
        if manifests:  # paths in a config file are relative to that file, and stay inside its folder
            if not isinstance(manifests, list) or not all(isinstance(m, str) for m in manifests):
                raise ConfigError(
                    f"config file {config_file}: assets.manifests must be a list of file paths",
                    "write e.g. `assets: {manifests: [my_assets.yaml]}`",
                )
            file_data["assets"]["manifests"] = [
                confined_path(config_file.parent, m, f"config file {config_file}", "assets.manifests entry")
                for m in manifests
            ]
        for section in ("character", "characters"):
            chars = file_data.get(section)
            for key in ("smplx_model_dir", "smplx_texture_dir"):
                if isinstance(chars, dict) and isinstance(chars.get(key), str):
                    chars[key] = str((config_file.parent / Path(chars[key]).expanduser()).resolve())
    data = _merge(preset_dict(preset or "paper"), file_data)
    data = _merge(data, overrides or {})
    try:
        return DatasetConfig.model_validate(data)
    except ValidationError as exc:
        unknown = exc.errors()[0]["type"] == "extra_forbidden"
        raise ConfigError(
            format_validation_error(exc, source),
            "remove or rename the field (every field: `thfm-synth plan --print-config`)"
            if unknown
            else "give a value of the field's type in the allowed range (see `thfm-synth plan --print-config`)",
        ) from None


def confined_path(folder: Path, relative: str, where: str, what: str) -> str:
    """`folder / relative`, resolved, refusing a path that leaves `folder` (absolute, or climbing out with
    ..): a file a config or manifest names must live beside it, so a copied or shared folder cannot
    reach into the rest of the machine."""
    if os.path.isabs(relative) or os.path.normpath(relative).split(os.sep)[0] == os.pardir:
        raise ConfigError(
            f"{where}: {what} {relative!r} leaves the folder {folder}",
            "keep the file in that folder (or below it), or pass it on the command line (--manifest FILE)",
        )
    return str((folder / relative).resolve())


def config_json(cfg: DatasetConfig) -> bytes:
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def config_digest(cfg: DatasetConfig) -> str:
    return hashlib.sha256(config_json(cfg)).hexdigest()


def config_yaml(cfg: DatasetConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=None, width=110)
