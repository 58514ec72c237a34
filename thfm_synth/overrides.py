"""`--set KEY=VALUE` overrides of a job file, shared by the train and preprocess jobs (VALUE is YAML,
so `--set steps=100` is an int and `--set data.tasks=[depth,mask]` a list)."""

from __future__ import annotations

from typing import Any

import yaml

from thfm_synth.errors import ConfigError


def parse_overrides(items: list[str] | None, example: str = "--set steps=100 --set out=runs/x") -> dict[str, Any]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE", f"e.g. {example}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
