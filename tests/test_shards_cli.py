"""The functions behind `thfm-synth shards ls|info|stats|show|verify|export` on a real shard set."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from model.tasks import DENSE_TASKS, TASKS
from model.vae import CODEC_ID, DCTCodec
from thfm_synth.errors import UserError
from thfm_synth.render.imagefiles import read_exr, read_png
from thfm_synth.tools import shards_inspect as inspect
from thfm_synth.shards.record import ARRAYS, FIELD_DOCS, SCALARS
from thfm_synth.shards.store import ShardSet

import test_preprocess_data as data
from conftest import run_cli

pytestmark = pytest.mark.render


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return data.shard_set(tmp_path_factory)[0]


def test_ls_lists_shards_sizes_and_partials(shards, tmp_path):
    res = inspect.ls(shards)
    rows = res.data["shards"]
    assert [r["name"] for r in rows] == ["shard-00000", "shard-00001", "shard-00002"]
    assert all(
        r["done"]
        and r["records"] == len(TASKS)
        and r["videos"] == 1
        and r["parquet_bytes"] > 0
        and r["array_record_bytes"] > 0
        for r in rows
    )
    assert res.lines[-1].startswith(f"3 shards (3 done), {3 * len(TASKS)} records") and json.dumps(res.data)
    copy = tmp_path / "set"
    shutil.copytree(shards, copy)
    (copy / "shard-00003.parquet").write_bytes(b"partial")
    (copy / "index.json").unlink()
    res = inspect.ls(copy)
    assert not res.data["shards"][-1]["done"] and "PARTIAL" in res.lines[-2] and "unfinished" in res.lines[-1]


def test_info_describes_schema_counts_codec_and_prompts(shards):
    res = inspect.info(shards)
    d = res.data
    assert d["num_records"] == 3 * len(TASKS) and d["tasks"]["depth"] == 3 and d["vae_id"] == CODEC_ID
    assert d["fields"] == FIELD_DOCS and {f["name"] for f in d["parquet_schema"]} >= set(SCALARS + ARRAYS)
    assert d["first_record"]["rgb_latents"] == {"dtype": "<f2", "shape": [16, 3, 8, 12]}
    assert d["prompts"]["provenance"]["encoder"] == "builtin-hash-v1" and d["prompts"]["embeddings"]["depth"] == [8, 32]
    text = res.text()
    for name in SCALARS + ARRAYS:
        assert name in text
    assert "9 frames at 24 fps, 96x64" in text and CODEC_ID in text and json.dumps(d)
    # the size of one video: its records' arrays, latents and pixel truth apart; and on disk per video
    per = d["bytes_per_video"]
    assert per["records"] == len(TASKS) and per["video_id"] == "v000000"
    assert per["latents"] == len(TASKS) * 16 * 3 * 8 * 12 * 2 + len(DENSE_TASKS) * 16 * 3 * 8 * 12 * 2
    assert 0 < per["pixels"] < per["total"] and per["total"] == per["latents"] + per["pixels"] + per["other"]
    assert "shard size per video:" in text and "pixel ground truth" in text


def test_stats_per_task_and_channel_match_numpy(shards):
    res = inspect.stats(shards)
    d = res.data
    assert d["records"] == 3 * len(TASKS) and set(d["tasks"]) == set(TASKS)
    assert d["bytes"]["videos"] == 3 and d["bytes"]["per_video_mean"] > 0
    assert d["bytes"]["per_record_mean"]["depth"] > d["bytes"]["per_record_mean"]["keypoints_2d"]
    depth = [
        r.arrays["target_latents"].astype(np.float64) for r in ShardSet.open(shards).records() if r.task == "depth"
    ]
    flat = np.concatenate([a.reshape(16, -1) for a in depth], axis=1)
    got = d["tasks"]["depth"]["target_latents"]
    assert np.allclose(got["mean"], flat.mean(1)) and np.allclose(got["std"], flat.std(1))
    assert np.allclose(got["min"], flat.min(1)) and np.allclose(got["max"], flat.max(1))
    assert len(d["tasks"]["mask"]["rgb_latents"]["mean"]) == 16
    assert d["tasks"]["keypoints_3d"]["keypoints_3d"]["records"] == 3
    assert any(line.startswith("depth target_latents") for line in res.lines)


def test_show_from_the_command_line_prints_no_warnings(shards, tmp_path):
    proc = run_cli("shards", "show", shards, "--out", tmp_path, timeout=300)
    assert proc.returncode == 0 and "Warning" not in proc.stderr and "os.fork" not in proc.stderr, proc.stderr[-1000:]
    assert any(tmp_path.glob("*.png"))


def test_show_decodes_a_record_next_to_its_source(shards, tmp_path):
    res = inspect.show(shards, tmp_path, video_id="v000001", task="depth")
    d = res.data
    assert d["panels"] == ["source rgb", "decoded rgb", "source depth", "decoded depth"] and d["source_found"]
    sheet = read_png(d["png"])
    assert sheet.shape == (4 * 64, 4 * 96 + 3 * 2, 3)  # 4 frames x 4 panels with 2-pixel gaps
    src, dec = sheet[:64, :96].astype(float), sheet[:64, 98:194].astype(float)
    assert np.sqrt(np.mean((src - dec) ** 2)) < 40  # the decoded RGB resembles the source
    assert (tmp_path / "v000001_depth.mp4").stat().st_size > 1000
    kp = inspect.show(shards, tmp_path, index=TASKS.index("keypoints_2d"))  # v000000/keypoints_2d
    assert kp.data["task"] == "keypoints_2d" and kp.data["panels"][-1] == "keypoints_2d (record)"
    alone = inspect.show(shards, tmp_path / "alone", index=0, render_dir=tmp_path)  # no render folder there
    assert alone.data["panels"] == ["decoded rgb", "decoded depth"] and "not reachable" in alone.text()
    with pytest.raises(UserError, match="outside the shard set"):
        inspect.show(shards, tmp_path, index=3 * len(TASKS))


def test_verify_passes_on_a_clean_set(shards):
    res = inspect.verify(shards)
    assert res.data == {"checked": 2 * 3 * len(TASKS), "problems": [], "ok": True}
    assert "all checksums match" in res.lines[-1]


def test_export_writes_pngs_exrs_and_arrays(shards, tmp_path):
    res = inspect.export(shards, tmp_path, count=3)
    recs = res.data["records"]
    assert [r["index"] for r in recs] == [0, 13, 26]
    stored = list(ShardSet.open(shards).records())
    for r in recs:
        d = tmp_path / f"{r['index']:06d}_{r['video_id']}_{r['task']}"
        rec = stored[r["index"]]
        assert len(list((d / "rgb").glob("*.png"))) == 9 and read_png(d / "rgb" / "00000.png").shape == (64, 96, 3)
        for name in ARRAYS:
            a = np.load(d / f"{name}.npy")
            assert a.dtype == rec.arrays[name].dtype and np.array_equal(a, rec.arrays[name])
        meta = json.loads((d / "record.json").read_text())
        assert meta["record_sha256"] == rec.checksum() and meta["vae_id"] == CODEC_ID
        if rec.arrays["target_latents"].size:
            exr = read_exr(d / "target" / "00004.exr")
            dec = inspect.decode(DCTCodec(), rec.arrays["target_latents"])[4]
            assert np.array_equal(np.stack([exr[c] for c in "XYZ"], -1), dec)
            assert len(list((d / "target").glob("*.png"))) == 9
        else:
            assert not (d / "target").exists()
    only = inspect.export(shards, tmp_path / "kp", count=2, tasks=["keypoints_3d"])
    assert [r["task"] for r in only.data["records"]] == ["keypoints_3d"] * 2
