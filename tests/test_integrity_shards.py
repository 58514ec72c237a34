"""Nothing wrong becomes training data (issue 12), part 4: every shard reader verifies record checksums by
default and stops with one line naming the shard, the record and the fix.

Reproductions: a flipped byte in a Parquet shard was returned silently by `ShardSet.records()` (verify
off by default), `shards stats` and the Grain source; on the ArrayRecord side `train` and `shards show`
refused with a ~35-line Riegeli traceback naming neither the record nor a fix, and `train` left a
partial run folder.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from model.data import write_synthetic_shards
from thfm_synth.shards.grain_source import grain_dataset
from thfm_synth.shards.record import Record
from thfm_synth.shards.store import CorruptRecord, ShardSet

from conftest import run_cli


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards") / "set"
    write_synthetic_shards(
        root,
        num_videos=4,
        tasks=("depth", "mask"),
        num_frames=5,
        height=32,
        width=32,
        num_keypoints=5,
        text_dim=32,
        records_per_shard=4,
    )
    return root


@pytest.fixture
def shards(clean, tmp_path):
    copy = tmp_path / "set"
    shutil.copytree(clean, copy)
    return copy


def flip_in_record(path, rec: Record, offset: int = 100) -> None:
    """Flip one byte inside `rec`'s target latents where they sit in `path` (stored uncompressed)."""
    data = bytearray(path.read_bytes())
    blob = rec.arrays["target_latents"].tobytes()
    at = data.find(blob[:256])
    assert at > 0 and data.find(blob[:256], at + 1) < 0
    data[at + offset] ^= 0x01
    path.write_bytes(bytes(data))


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


def test_a_flipped_byte_in_parquet_stops_every_reader_naming_shard_and_record(shards):
    target = list(ShardSet.open(shards).records("parquet"))[5]  # shard-00001, record 1
    assert (target.video_id, target.task) == ("synth000002", "mask")
    pq_path = shards / "shard-00001.parquet"
    flip_in_record(pq_path, target)
    with pytest.raises(CorruptRecord) as err:
        list(ShardSet.open(shards).records("parquet"))
    line = err.value.one_line()
    assert f"shard {pq_path} record 1 (synth000002/mask)" in line and "checksum mismatch" in line
    assert "shards verify" in line and "delete shard-00001.json" in line and "preprocess" in line
    assert len(list(ShardSet.open(shards).records("parquet", verify=False))) == 8  # on purpose only
    proc = run_cli("shards", "stats", shards)
    assert proc.returncode == 1 and "record 1 (synth000002/mask)" in one_line(proc.stderr)
    proc = run_cli("shards", "verify", shards)
    assert proc.returncode == 1 and "record 1 (synth000002/mask): checksum mismatch" in proc.stdout


def test_a_flipped_byte_in_array_record_is_one_line_for_grain_show_and_records(shards):
    target = list(ShardSet.open(shards).records("array_record"))[6]  # shard-00001, record 2
    ar_path = shards / "shard-00001.array_record"
    flip_in_record(ar_path, target)
    with pytest.raises(CorruptRecord) as err:
        list(ShardSet.open(shards).records("array_record"))
    assert f"shard {ar_path} record 2 (synth000003/depth)" in err.value.one_line()
    ds = grain_dataset(shards, seed=0, shuffle=False)
    assert ds[5].video_id == "synth000002"
    with pytest.raises(CorruptRecord, match=r"record 2 \(synth000003/depth\)"):
        ds[6]
    proc = run_cli("shards", "show", shards, "--index", "6", "--out", shards / "show")
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "record 2 (synth000003/depth)" in line and "Traceback" not in proc.stderr and "fix:" in line


def test_a_damaged_chunk_layout_in_array_record_is_named_too(shards):
    """A flipped byte in the Riegeli framing (here the record's size) rather than in the record: the
    file scanner stops, the C++ reader takes over and names the record."""
    ar_path = shards / "shard-00001.array_record"
    data = bytearray(ar_path.read_bytes())
    starts = [i for i in range(len(data)) if data.startswith(b"THFMREC1", i)]
    assert len(starts) == 4
    data[starts[2] - 1] ^= 0x01  # the last byte of record 2's size varint
    ar_path.write_bytes(bytes(data))
    recs = ShardSet.open(shards).records("array_record")
    assert [next(recs).video_id for _ in range(6)][-2:] == ["synth000002", "synth000002"]
    with pytest.raises(CorruptRecord) as err:
        next(recs)
    assert f"shard {ar_path} record 2 (synth000003/depth)" in err.value.one_line()


@pytest.mark.slow
def test_train_stops_on_a_corrupt_record_with_one_line_and_no_run_folder(shards, tmp_path):
    records = list(ShardSet.open(shards).records("array_record"))
    for i, rec in enumerate(records[1:], 1):  # all but the first: the first batch meets one of them
        flip_in_record(shards / f"shard-{i // 4:05d}.array_record", rec)
    run_dir = tmp_path / "run"
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"size": "tiny"},
                "data": {
                    "shard_dir": str(shards),
                    "tasks": ["depth", "mask"],
                    "mixing": {"depth": 1, "mask": 1},
                    "num_threads": 1,
                },
                "batch_size": 2,
                "steps": 3,
                "run_dir": str(run_dir),
                "checkpoint_every": 2,
                "log_every": 1,
            }
        )
    )
    proc = run_cli("train", "--config", cfg, timeout=600)
    assert proc.returncode == 1, proc.stdout[-2000:]
    line = one_line(proc.stderr)
    assert "shard" in line and "record" in line and "fix:" in line and "Traceback" not in proc.stderr
    assert not run_dir.exists()


def test_a_shard_that_does_not_open_is_named(shards):
    (shards / "shard-00000.array_record").write_bytes(b"\0" * 100)
    with pytest.raises(CorruptRecord, match="does not open as ArrayRecord"):
        grain_dataset(shards, seed=0)
    (shards / "shard-00000.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(CorruptRecord, match=r"shard-00000.parquet record 0: the file does not open as Parquet"):
        next(iter(ShardSet.open(shards).records("parquet")))
    json.loads((shards / "index.json").read_text())  # nothing else touched
