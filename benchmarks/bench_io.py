"""Shared by the benchmark scripts: keep one JSON file per benchmark, one entry per setting."""

from __future__ import annotations

import json
from pathlib import Path


def merge_result(path: Path, key: str, result: dict) -> None:
    """Add or replace `key` in the JSON object at `path` (created if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
    existing[key] = result
    path.write_text(json.dumps(existing, indent=2))
    print(f"  wrote {path} [{key}]")


def machine_info(load_before: tuple[float, float, float]) -> dict:
    """What a result needs to be read against: cores, platform, load average before and after."""
    import os
    import platform

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
