import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from thfm_synth.shards.grain_source import grain_dataset
from thfm_synth.shards.record import ARRAYS, Record
from thfm_synth.shards.store import ShardSet, build_index, remove_partial, shard_done, verify, write_shard

TASKS = ("depth", "normals", "mask", "keypoints_2d")


def make_record(i: int, task: str) -> Record:
    rng = np.random.default_rng(i * 10 + TASKS.index(task))
    t, k = 9, 24
    arrays = {
        "rgb_latents": rng.standard_normal((16, 3, 4, 6)).astype(np.float16),
        "target_latents": (
            rng.standard_normal((16, 3, 4, 6)).astype(np.float16)
            if task != "keypoints_2d"
            else np.zeros((0,), np.float16)
        ),
        "keypoints_2d": rng.random((t, k, 2), dtype=np.float32),
        "keypoints_3d": rng.standard_normal((t, k, 3)).astype(np.float32),
        "keypoints_visibility": rng.integers(0, 4, (t, k)).astype(np.uint8),
        "camera_k": np.repeat(np.eye(3, dtype=np.float32)[None], t, 0),
        "camera_rt": rng.standard_normal((t, 3, 4)).astype(np.float32),
    }
    return Record(
        video_id=f"v{i:06d}",
        task=task,
        prompt_id=task,
        vae_id="codec:test",
        source_checksums='{"rgb/000000.png": "ab"}',
        arrays=arrays,
    )


@pytest.fixture
def shard_set(tmp_path):
    recs = [make_record(i, task) for i in range(6) for task in TASKS]
    write_shard(tmp_path, "shard-00000", recs[:12])
    write_shard(tmp_path, "shard-00001", recs[12:])
    build_index(tmp_path)
    return tmp_path, recs


def assert_same(a: Record, b: Record):
    assert a.scalars() == b.scalars()
    for name in ARRAYS:
        assert a.arrays[name].dtype == b.arrays[name].dtype and a.arrays[name].shape == b.arrays[name].shape
        assert a.arrays[name].tobytes() == b.arrays[name].tobytes()


def test_round_trip_is_bit_exact_in_both_formats(shard_set):
    root, recs = shard_set
    shards = ShardSet.open(root)
    for fmt in ("parquet", "array_record"):
        back = list(shards.records(fmt, verify=True))
        assert len(back) == len(recs)
        for a, b in zip(recs, back):
            assert_same(a, b)
    assert shards.index["num_records"] == 24 and shards.index["tasks"]["depth"] == 6


def test_parquet_is_readable_by_plain_tools(shard_set):
    root, recs = shard_set
    table = pq.read_table(root / "shard-00000.parquet")
    assert table.num_rows == 12 and set(table.column("task").to_pylist()) == set(TASKS)
    row = table.slice(0, 1).to_pylist()[0]
    latents = np.frombuffer(row["rgb_latents"], dtype=row["rgb_latents_dtype"]).reshape(row["rgb_latents_shape"])
    assert np.array_equal(latents, recs[0].arrays["rgb_latents"])


def test_verify_names_the_record_with_a_flipped_byte(shard_set):
    root, recs = shard_set
    checked, problems = verify(root)
    assert checked == 48 and problems == []
    path = root / "shard-00001.array_record"
    data = bytearray(path.read_bytes())
    # the byte is flipped inside record 1's latents (records are stored uncompressed, one per chunk), not in
    # the container's framing: verify must then name that record, not only call the file unreadable
    payload = recs[13].arrays["rgb_latents"].tobytes()
    at = data.find(payload)
    assert at > 0 and data.find(payload, at + 1) == -1
    data[at + len(payload) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    _, problems = verify(root)
    assert any("shard-00001.array_record: file sha256 differs" in p for p in problems)
    bad = [p for p in problems if "shard-00001.array_record record" in p]
    assert len(bad) == 1 and "record 1 (v000003/normals): checksum mismatch" in bad[0], problems


def test_verify_names_a_changed_record_in_a_well_formed_array_record(shard_set):
    """A byte flipped in the file is also caught by ArrayRecord's own chunk hash; a record rewritten whole
    (container intact, record self-consistent) is caught only by the checksum the shard metadata lists."""
    import dataclasses

    from array_record.python.array_record_module import ArrayRecordWriter

    from thfm_synth.shards.store import ARRAY_RECORD_OPTIONS

    root, recs = shard_set
    changed = {**recs[13].arrays, "rgb_latents": recs[13].arrays["rgb_latents"] + np.float16(1)}
    records = recs[12:13] + [dataclasses.replace(recs[13], arrays=changed)] + recs[14:24]
    path = root / "shard-00001.array_record"
    path.unlink()
    writer = ArrayRecordWriter(str(path), ARRAY_RECORD_OPTIONS)
    for rec in records:
        writer.write(rec.to_bytes())
    writer.close()
    _, problems = verify(root)
    bad = [p for p in problems if "shard-00001.array_record record" in p]
    assert len(bad) == 1 and "record 1 (v000003/normals): checksum mismatch" in bad[0], problems


def test_verify_flags_a_flipped_byte_inside_a_parquet_latent(shard_set):
    root, recs = shard_set
    table = pq.read_table(root / "shard-00000.parquet")
    rows = table.to_pylist()
    blob = bytearray(rows[5]["rgb_latents"])
    blob[3] ^= 0x01
    rows[5]["rgb_latents"] = bytes(blob)
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), root / "shard-00000.parquet")
    _, problems = verify(root)
    assert any(f"record 5 ({recs[5].video_id}/{recs[5].task}): checksum mismatch" in p for p in problems)


def test_grain_reads_with_a_global_shuffle(shard_set):
    root, recs = shard_set
    ds = grain_dataset(root, seed=3)
    order = [(r.video_id, r.task) for r in (ds[i] for i in range(len(ds)))]
    assert sorted(order) == sorted((r.video_id, r.task) for r in recs)
    assert order != [(r.video_id, r.task) for r in recs]
    # records from both shards are interleaved in the first half: the shuffle is global
    first_half_videos = {v for v, _ in order[:12]}
    assert first_half_videos & {"v000000", "v000001", "v000002"} and first_half_videos & {
        "v000003",
        "v000004",
        "v000005",
    }
    assert [(r.video_id, r.task) for r in (grain_dataset(root, seed=3)[i] for i in range(24))] == order
    hosts = [grain_dataset(root, seed=3, shard_index=h, shard_count=2) for h in range(2)]
    seen = [(r.video_id, r.task) for h in hosts for r in (h[i] for i in range(len(h)))]
    assert sorted(seen) == sorted(order) and len(hosts[0]) == 12


def test_unfinished_shards_are_not_done_and_get_cleaned(tmp_path):
    (tmp_path / "shard-00007.parquet").write_bytes(b"partial")
    assert not shard_done(tmp_path, "shard-00007")
    assert remove_partial(tmp_path) == 1 and not any(tmp_path.iterdir())


def test_decode_is_zero_copy_and_read_only():
    rec = make_record(0, "depth")
    data = rec.to_bytes()
    back = Record.from_bytes(data, verify=True)
    row_back = Record.from_row(rec.to_row(), verify=True)
    for r in (back, row_back):
        a = r.arrays["rgb_latents"]
        np.testing.assert_array_equal(a, rec.arrays["rgb_latents"])
        assert not a.flags.writeable and not a.flags.owndata  # a view, not a copy
        with pytest.raises(ValueError):
            a[(0,) * a.ndim] = 1
    # the view points into the record bytes themselves: no copy after np.frombuffer
    lat = back.arrays["rgb_latents"]
    base = np.frombuffer(data, np.uint8)
    start = lat.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    assert 0 < start < len(data)
    assert np.shares_memory(lat, base)


def test_records_are_checksummed_with_xxh3_128_and_any_changed_byte_fails():
    rec = make_record(1, "depth")
    digest = rec.checksum()
    assert digest.startswith("xxh3-128:") and len(digest) == len("xxh3-128:") + 32
    assert Record.stored_checksum(rec.to_bytes()) == digest == rec.to_row()["record_sha256"]
    # the same canonical serialisation as the SHA-256 form: only the hash differs
    assert rec.checksum("sha256") != digest and len(rec.checksum("sha256")) == 64
    assert rec.matches(digest) and rec.matches(rec.checksum("sha256"))
    assert not rec.matches("xxh3-128:" + "0" * 32) and not rec.matches("0" * 64) and not rec.matches(None)
    with pytest.raises(ValueError, match="unknown record checksum algorithm 'md5'"):
        rec.matches("md5:" + "0" * 32)
    changed = Record.from_bytes(rec.to_bytes())
    arrays = dict(changed.arrays)
    lat = np.array(arrays["rgb_latents"])
    lat.reshape(-1).view(np.uint8)[5] ^= 1
    arrays["rgb_latents"] = lat
    assert not Record(**changed.scalars(), arrays=arrays).matches(digest)


def test_shards_written_with_sha256_checksums_still_read_and_verify(tmp_path, monkeypatch):
    """Shards from before XXH3 hold bare SHA-256 digests in the same places: every reader accepts them."""
    import thfm_synth.shards.record as record

    recs = [make_record(i, task) for i in range(2) for task in TASKS]
    monkeypatch.setattr(record, "CHECKSUM_ALGORITHM", "sha256")
    write_shard(tmp_path, "shard-00000", recs)
    build_index(tmp_path)
    monkeypatch.undo()
    meta = json.loads((tmp_path / "shard-00000.json").read_text())
    assert meta["record_sha256"] == [r.checksum("sha256") for r in recs]
    assert all(":" not in c and len(c) == 64 for c in meta["record_sha256"])
    shards = ShardSet.open(tmp_path)
    for fmt in ("parquet", "array_record"):
        for a, b in zip(recs, shards.records(fmt, verify=True), strict=True):
            assert_same(a, b)
    assert [r.video_id for r in grain_dataset(tmp_path, seed=0, shuffle=False)] == [r.video_id for r in recs]
    assert verify(tmp_path) == (2 * len(recs), [])
    # and a damaged legacy record is still caught
    pq_path = tmp_path / "shard-00000.parquet"
    data = bytearray(pq_path.read_bytes())
    at = data.find(recs[3].arrays["rgb_latents"].tobytes()[:64])
    data[at + 10] ^= 1
    pq_path.write_bytes(bytes(data))
    checked, problems = verify(tmp_path)
    assert any("shard-00000.parquet record 3 (v000000/keypoints_2d): checksum mismatch" in p for p in problems)


def test_the_sequential_reader_decodes_without_copying(shard_set):
    root, recs = shard_set
    for rec in ShardSet.open(root).records("array_record"):
        a = rec.arrays["rgb_latents"]
        assert not a.flags.writeable and not a.flags.owndata
        base = a
        while isinstance(base, np.ndarray) or isinstance(base, memoryview):
            base = base.base if isinstance(base, np.ndarray) else base.obj
        assert isinstance(base, bytes | bytearray)  # the buffer the record was read into, not a copy of it
        start = a.__array_interface__["data"][0] - np.frombuffer(base, np.uint8).__array_interface__["data"][0]
        assert 0 < start < len(base)


def test_the_file_scanner_reads_our_layout_byte_for_byte_like_the_cxx_reader(shard_set):
    import os

    from array_record.python.array_record_module import ArrayRecordReader

    from thfm_synth.shards import riegeli_scan

    root, recs = shard_set
    for path in ShardSet.open(root).paths("array_record"):
        reader = ArrayRecordReader(str(path))
        n = reader.num_records()
        fd = os.open(path, os.O_RDONLY)
        try:
            got = list(riegeli_scan.records(fd, n))  # raises LayoutError if it met anything unexpected
        finally:
            os.close(fd)
        assert [i for i, _ in got] == list(range(n)) and n == 12
        assert all(bytes(data) == reader.read([i])[0] for i, data in got)
        reader.close()


def test_a_shard_of_another_layout_reads_through_the_cxx_reader(shard_set):
    """ArrayRecord files written with other options (grouped, compressed chunks) read the same."""
    import os

    from array_record.python.array_record_module import ArrayRecordWriter

    from thfm_synth.shards import riegeli_scan

    root, recs = shard_set
    path = ShardSet.open(root).paths("array_record")[1]
    path.unlink()
    w = ArrayRecordWriter(str(path), "group_size:4")  # brotli, four records per chunk
    for rec in recs[12:]:
        w.write(rec.to_bytes())
    w.close()
    fd = os.open(path, os.O_RDONLY)
    with pytest.raises(riegeli_scan.LayoutError):
        list(riegeli_scan.records(fd, 12))
    os.close(fd)
    back = list(ShardSet.open(root).records("array_record", verify=True))
    assert len(back) == len(recs)
    for a, b in zip(recs, back):
        assert_same(a, b)


def test_grain_reads_our_layout_directly_and_other_layouts_through_array_record(shard_set):
    from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

    from thfm_synth.shards.grain_source import VerifiedArrayRecordSource

    root, recs = shard_set
    paths = ShardSet.open(root).paths("array_record")
    paths[1].unlink()
    w = ArrayRecordWriter(str(paths[1]), "group_size:4")  # brotli, four records per chunk
    for rec in recs[12:]:
        w.write(rec.to_bytes())
    w.close()
    src = VerifiedArrayRecordSource([str(p) for p in paths], decode=False)
    for index in (5, 0, 11, 23, 12, 17):  # random access, across both files
        f, i = divmod(index, 12)
        reader = ArrayRecordReader(str(paths[f]))
        assert bytes(src[index]) == reader.read([i])[0] == recs[index].to_bytes()
        reader.close()
    assert src._direct(0) is not None and src._direct(1) is None  # read directly / through ArrayRecord
    src.close()
