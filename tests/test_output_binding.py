"""Nothing wrong becomes training data (issue 12), part 2: a render output folder is bound to the digest
of its whole plan, checked before anything in it is written.

Reproductions: rerunning a finished folder with an extra `--manifest` printed "skipped 6 (already
done)" and replaced plan.parquet with a plan naming other backgrounds; a larger `--num-videos` with
another library mixed two libraries in one dataset; a concurrent run with another seed was refused
only after it had replaced OUT/plan.parquet.
"""

from __future__ import annotations

import json
import shutil

import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.errors import UserError
from thfm_synth.render.farm.binding import bind_output, plan_sha256
from thfm_synth.plan.planner import make_plan, plan_meta, read_plan, write_plan

from conftest import run_cli


def planned(n, seed=0, manifests=(), **over):
    cfg = load_config("preview", overrides=over)
    library = load_library(list(manifests))
    specs = make_plan(cfg, library, seed, n)
    return specs, plan_meta(cfg, library, seed, n)


def snapshot(out):
    p = out / "plan.parquet"
    return p.read_bytes(), p.stat().st_mtime_ns, (out / "run.json").read_text()


@pytest.fixture
def hdri_manifest(tmp_path, shared_assets):
    from thfm_synth.assets.manifest import dump_manifest
    from thfm_synth.assets.scan import scan

    lib = tmp_path / "lib" / "hdri"
    lib.mkdir(parents=True)
    for name in ("venice_sunset_1k.hdr", "LICENSE.md"):
        shutil.copy(shared_assets / "hdri" / name, lib / name)
    path = tmp_path / "lib.yaml"
    path.write_text(dump_manifest(scan(tmp_path / "lib", tmp_path).manifest))
    return path


def test_the_binding_is_the_digest_of_every_row_config_seed_and_library():
    specs, meta = planned(6)
    base = plan_sha256(specs, meta)
    assert plan_sha256(*planned(6)) == base
    assert plan_sha256(*planned(6, seed=1)) != base
    assert plan_sha256(*planned(6, camera={"roll_deg": [0.0, 0.0]})) != base
    changed = list(specs)
    changed[3] = type(specs[3])(**{**specs[3].__dict__, "background_rotation_deg": 1.0})
    assert plan_sha256(changed, meta) != base
    other = type(meta)(**{**meta.__dict__, "manifests": {**meta.manifests, "extra": "0" * 64}})
    assert plan_sha256(specs, other) != base


def test_a_finished_folder_refuses_a_plan_with_another_library_before_writing(tmp_path, hdri_manifest):
    out = tmp_path / "out"
    specs, meta = planned(6)
    bind_output(out, specs, meta)
    before = snapshot(out)
    proc = run_cli("render", "--preset", "preview", "--num-videos", "6", "--out", out, "--manifest", hdri_manifest)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bound to another plan" in lines[0] and "manifest lib added" in lines[0]
    assert "--plan" in lines[0] and "new --out" in lines[0]
    assert snapshot(out) == before  # plan.parquet not replaced, run.json untouched
    # more videos with another library: refused too (was: two libraries in one dataset)
    with pytest.raises(UserError, match="manifest lib added"):
        bind_output(out, *planned(10, manifests=[hdri_manifest]))
    assert snapshot(out) == before


def test_another_seed_or_config_is_refused_and_names_what_differs(tmp_path):
    out = tmp_path / "out"
    bind_output(out, *planned(6))
    before = snapshot(out)
    with pytest.raises(UserError, match=r"seed 0 -> 1") as err:
        bind_output(out, *planned(6, seed=1))
    assert "\n" not in err.value.one_line()
    with pytest.raises(UserError, match=r"config video.width 256 -> 128"):
        bind_output(out, *planned(6, video={"width": 128}))
    assert snapshot(out) == before


def test_the_same_plan_continues_a_prefix_renders_and_growth_extends(tmp_path):
    out = tmp_path / "out"
    first = bind_output(out, *planned(6))
    assert bind_output(out, *planned(6)) == first
    before = snapshot(out)
    assert bind_output(out, *planned(4)) == first and snapshot(out) == before  # a prefix: binding kept
    grown = bind_output(out, *planned(9))  # rows 0..5 identical: the binding moves to the larger plan
    assert grown["num_videos"] == 9 and len(read_plan(out / "plan.parquet")[0]) == 9
    assert json.loads((out / "run.json").read_text()) == grown
    with pytest.raises(UserError):
        bind_output(out, *planned(6, seed=2))


def test_a_folder_bound_before_plans_had_digests_is_upgraded_or_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    specs, meta = planned(3)
    write_plan(out / "plan.parquet", specs, meta)
    (out / "run.json").write_text(json.dumps({"config_sha256": meta.config_sha256, "seed": 0}))
    assert bind_output(out, specs, meta)["plan_sha256"] == plan_sha256(specs, meta)
    assert json.loads((out / "run.json").read_text())["plan_sha256"] == plan_sha256(specs, meta)
    (out / "videos" / "v000000").mkdir(parents=True)
    (out / "plan.parquet").unlink()
    with pytest.raises(UserError, match="holds videos but no plan.parquet"):
        bind_output(out, specs, meta)


def test_an_edited_plan_file_is_not_taken_for_the_bound_plan(tmp_path):
    out = tmp_path / "out"
    bind_output(out, *planned(4))
    write_plan(out / "plan.parquet", *planned(4, seed=5))  # replaced behind the binding's back
    with pytest.raises(UserError, match="not the plan"):
        bind_output(out, *planned(6))
