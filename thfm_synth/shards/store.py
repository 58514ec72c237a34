"""Shard files on disk: write atomically, index, read back, verify.

A shard set is a folder:

    index.json                 shards, record counts per task, file sizes and sha256s
    prompts.npz                task prompt embeddings and their provenance
    shard-00000.parquet        the records as Parquet rows (pyarrow, DuckDB, HF datasets)
    shard-00000.array_record   the same records as ArrayRecord (Grain, random access)
    shard-00000.json           per-shard metadata, written last: the shard's done marker

Both formats hold the same records in the same order. A shard is complete only when its
.json exists, so an interrupted run redoes exactly the unfinished shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from thfm_synth.assets.manifest import file_sha256
from thfm_synth.atomic import atomic_path, write_text
from thfm_synth.errors import UserError
from thfm_synth.shards.record import ARRAYS, FIELD_DOCS, SCALARS, SCHEMA_VERSION, Record, RecordError

FORMATS = ("parquet", "array_record")
INDEX = "index.json"


def parquet_schema() -> pa.Schema:
    fields = [pa.field(k, pa.int64() if k == "schema_version" else pa.string()) for k in SCALARS]
    for name in ARRAYS:
        fields += [pa.field(name, pa.large_binary()), pa.field(f"{name}_dtype", pa.string()),
                   pa.field(f"{name}_shape", pa.list_(pa.int64()))]
    fields.append(pa.field("record_sha256", pa.string()))
    return pa.schema(fields, metadata={b"thfm_schema_version": str(SCHEMA_VERSION).encode()})


def shard_done(out_dir: Path, name: str) -> bool:
    return (Path(out_dir) / f"{name}.json").is_file()


def write_shard(out_dir: str | Path, name: str, records: Iterable[Record]) -> dict:
    """Write one shard in both formats, then its metadata file (the done marker)."""
    from array_record.python.array_record_module import ArrayRecordWriter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pq_path, ar_path = out_dir / f"{name}.parquet", out_dir / f"{name}.array_record"
    tasks: Counter = Counter()
    checksums = []
    with atomic_path(pq_path, "shard") as pq_tmp, atomic_path(ar_path, "shard") as ar_tmp:
        ar = ArrayRecordWriter(str(ar_tmp), "group_size:1")  # random access to every record
        pw = pq.ParquetWriter(pq_tmp, parquet_schema(), compression="zstd")
        try:
            for rec in records:
                row = rec.to_row()
                pw.write_table(pa.Table.from_pylist([row], schema=parquet_schema()))
                ar.write(rec.to_bytes())
                tasks[rec.task] += 1
                checksums.append(row["record_sha256"])
        finally:
            pw.close()
            ar.close()
    meta = {
        "name": name, "schema_version": SCHEMA_VERSION, "num_records": len(checksums), "tasks": dict(tasks),
        "files": {fmt: {"path": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
                  for fmt, p in (("parquet", pq_path), ("array_record", ar_path))},
        "record_sha256": checksums,
    }
    write_text(out_dir / f"{name}.json", json.dumps(meta, indent=1), "shard metadata")
    return meta


def build_index(out_dir: str | Path, extra: dict | None = None) -> dict:
    out_dir = Path(out_dir)
    metas = [json.loads(p.read_text()) for p in sorted(out_dir.glob("shard-*.json"))]
    tasks: Counter = Counter()
    for m in metas:
        tasks.update(m["tasks"])
    content = hashlib.sha256("".join(h for m in metas for h in m["record_sha256"]).encode()).hexdigest()
    index = {
        "schema_version": SCHEMA_VERSION, "num_shards": len(metas), "num_records": sum(m["num_records"] for m in metas),
        "tasks": dict(sorted(tasks.items())), "content_sha256": content,
        "fields": FIELD_DOCS,
        "shards": [{k: m[k] for k in ("name", "num_records", "tasks", "files")} for m in metas],
        **(extra or {}),
    }
    write_text(out_dir / INDEX, json.dumps(index, indent=1), "shard index")
    return index


@dataclass
class ShardSet:
    root: Path
    index: dict

    @classmethod
    def open(cls, root: str | Path) -> "ShardSet":
        root = Path(root)
        path = root / INDEX
        if not path.is_file():
            raise UserError(f"{root} is not a shard set ({INDEX} missing)",
                            "point at a folder made by `thfm-synth preprocess`")
        return cls(root, json.loads(path.read_text()))

    def paths(self, fmt: str) -> list[Path]:
        return [self.root / s["files"][fmt]["path"] for s in self.index["shards"]]

    def records(self, fmt: str = "parquet", verify: bool = False) -> Iterator[Record]:
        if fmt == "parquet":
            for path in self.paths("parquet"):
                for batch in pq.ParquetFile(path).iter_batches(batch_size=16):
                    for row in batch.to_pylist():
                        yield Record.from_row(row, verify=verify)
        else:
            from array_record.python.array_record_module import ArrayRecordReader

            for path in self.paths("array_record"):
                reader = ArrayRecordReader(str(path))
                try:
                    for i in range(reader.num_records()):
                        yield Record.from_bytes(reader.read([i])[0], verify=verify)
                finally:
                    reader.close()


def verify(root: str | Path) -> tuple[int, list[str]]:
    """Re-check every file digest and every record checksum; return (records checked, problems)."""
    from array_record.python.array_record_module import ArrayRecordReader

    shards = ShardSet.open(root)
    problems: list[str] = []
    checked = 0
    for shard in shards.index["shards"]:
        meta = json.loads((shards.root / f"{shard['name']}.json").read_text())
        for fmt, info in shard["files"].items():
            path = shards.root / info["path"]
            if not path.is_file():
                problems.append(f"{path}: missing")
                continue
            if file_sha256(path) != info["sha256"]:
                problems.append(f"{path}: file sha256 differs from the index")
        pq_path = shards.root / shard["files"]["parquet"]["path"]
        if pq_path.is_file():
            try:
                rows = pq.read_table(pq_path).to_pylist()
            except (pa.ArrowException, OSError) as exc:
                problems.append(f"{pq_path}: unreadable Parquet ({exc})")
                rows = []
            for i, row in enumerate(rows):
                checked += 1
                try:
                    rec = Record.from_row(row)
                    ok = rec.checksum() == row["record_sha256"] == meta["record_sha256"][i]
                except (RecordError, ValueError, KeyError, IndexError):
                    ok = False
                if not ok:
                    problems.append(f"{pq_path} record {i} ({row.get('video_id')}/{row.get('task')}): checksum mismatch")
        ar_path = shards.root / shard["files"]["array_record"]["path"]
        if ar_path.is_file():
            try:
                reader = ArrayRecordReader(str(ar_path))
                n = reader.num_records()
            except Exception as exc:  # the C++ reader raises plain RuntimeErrors on corruption
                problems.append(f"{ar_path}: unreadable ArrayRecord ({exc})")
                continue
            for i in range(n):
                checked += 1
                try:
                    data = reader.read([i])[0]
                    rec = Record.from_bytes(data)
                    ok = rec.checksum() == Record.stored_checksum(data) == meta["record_sha256"][i]
                    label = f"{rec.video_id}/{rec.task}"
                except Exception:
                    ok, label = False, "undecodable"
                if not ok:
                    problems.append(f"{ar_path} record {i} ({label}): checksum mismatch")
            reader.close()
    return checked, problems


def remove_partial(out_dir: str | Path) -> int:
    """Delete shard files without a done marker (left by an interrupted run)."""
    removed = 0
    for p in Path(out_dir).glob("shard-*.*"):
        if p.suffix in (".parquet", ".array_record") and not (p.with_suffix(".json")).exists():
            os.remove(p)
            removed += 1
    return removed
