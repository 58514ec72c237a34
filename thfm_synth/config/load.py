"""Resolve a dataset config from a preset, a YAML file and overrides; one-line errors."""

from __future__ import annotations

import hashlib
import json
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


def format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = tuple(p for p in err["loc"] if not isinstance(p, int))
        name = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {name}")
            continue
        value = err.get("input")
        shown = f" = {json.dumps(value, default=str)}" if not isinstance(value, dict) else ""
        parts.append(f"field {name}{shown}: {msg}{_field_hint(DatasetConfig, loc)}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"invalid config {source}: " + "; ".join(parts) + more


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> DatasetConfig:
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
            raise ConfigError(f"config file {config_file} says preset {base!r} but --preset {preset!r} was given",
                              "drop one of them")
        preset = preset or base
        manifests = file_data.get("assets", {}).get("manifests")
        if manifests:  # paths in a config file are relative to that file
            file_data["assets"]["manifests"] = [str((config_file.parent / m).resolve()) for m in manifests]
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
        raise ConfigError(format_validation_error(exc, source),
                          "change the value to lie in the allowed range (see `thfm-synth plan --print-config`)") from None


def config_json(cfg: DatasetConfig) -> bytes:
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def config_digest(cfg: DatasetConfig) -> str:
    return hashlib.sha256(config_json(cfg)).hexdigest()


def config_yaml(cfg: DatasetConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=None, width=110)
