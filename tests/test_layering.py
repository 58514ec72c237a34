"""The import layering the README's repository layout promises: `model/` sits below the pipeline
(of thfm_synth it may use only the shard format and small shared helpers), the stages never import
the tools above them, and Blender scripts import nothing of ours but the contract (by path)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

MODEL_MAY_USE = {
    "thfm_synth.shards",
    "thfm_synth.errors",
    "thfm_synth.atomic",
    "thfm_synth.digests",
    "thfm_synth.overrides",
}
STAGES = ("assets", "plan", "render", "preprocess", "shards", "blender")


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_model_imports_only_the_shard_format_of_the_pipeline():
    bad = {}
    for f in (REPO / "model").rglob("*.py"):
        ours = {m for m in imports(f) if m.startswith("thfm_synth")}
        wrong = {m for m in ours if not any(m == a or m.startswith(a + ".") for a in MODEL_MAY_USE)}
        if wrong:
            bad[str(f.relative_to(REPO))] = sorted(wrong)
    assert not bad, bad


def test_stages_do_not_import_the_tools_above_them():
    bad = {}
    for stage in STAGES:
        for f in (REPO / "thfm_synth" / stage).rglob("*.py"):
            wrong = {m for m in imports(f) if m.startswith("thfm_synth.tools")}
            if wrong:
                bad[str(f.relative_to(REPO))] = sorted(wrong)
    assert not bad, bad


def test_blender_scripts_import_nothing_of_ours():
    for f in (REPO / "blender_scripts").glob("*.py"):
        assert not {m for m in imports(f) if m.split(".")[0] in ("thfm_synth", "model")}, f.name
