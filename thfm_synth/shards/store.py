"""Shard files on disk: write atomically, index, read back, verify.

A shard set is a folder:

    index.json                 shards, record counts per task, file sizes and sha256s
    prompts.npz                task prompt embeddings and their provenance
    shard-00000.parquet        the records as Parquet rows (pyarrow, DuckDB, HF datasets)
    shard-00000.array_record   the same records as ArrayRecord (Grain, random access)
    shard-00000.json           per-shard metadata, written last: the shard's done marker (record
                               count per task, file sizes and sha256s, each record's checksum and
                               (video_id, task), plus what the writer adds: videos, vae_id, settings)

Both formats hold the same records in the same order. Latent blobs are stored uncompressed (see
ARRAY_RECORD_OPTIONS); Parquet compresses the other columns with zstd and keeps min/max
statistics for the scalar columns only. A shard is complete only when its
.json exists, so an interrupted run redoes exactly the unfinished shards.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from thfm_synth.assets.manifest import file_sha256
from thfm_synth.atomic import atomic_path, write_text
from thfm_synth.errors import UserError
from thfm_synth.shards.record import (
    ARRAYS,
    FIELD_DOCS,
    OPTIONAL_ARRAYS,
    OPTIONAL_SCALARS,
    SCALARS,
    SCHEMA_VERSION,
    Record,
    RecordError,
)

FORMATS = ("parquet", "array_record")
INDEX = "index.json"
# Latents are stored uncompressed in both formats: float16 latents compress by ~12% only, and
# decompression (brotli/zstd, one thread) costs 2-2.5x in read speed - a sequential ArrayRecord pass
# ran at ~0.6x the disk's raw sequential speed uncompressed, ~0.25x with the default brotli
# (benchmarks/shards_read.py, 2 shared cores); writing is ~8x faster too.
ARRAY_RECORD_OPTIONS = "group_size:1,uncompressed"  # one chunk per record: random access to every record
# (the pixel ground truth blobs are zstd frames already: compressing them again only costs time)
UNCOMPRESSED_COLUMNS = ("rgb_latents", "target_latents", "target_pixels", "pixel_valid")


def parquet_schema() -> pa.Schema:
    """Scalars, arrays (blob, dtype, shape), record_sha256; the optional fields come last, so the
    columns of older shards keep their positions."""

    def arrays(names):
        return [
            f
            for name in names
            for f in (
                pa.field(name, pa.large_binary()),
                pa.field(f"{name}_dtype", pa.string()),
                pa.field(f"{name}_shape", pa.list_(pa.int64())),
            )
        ]

    core_scalars = [k for k in SCALARS if k not in OPTIONAL_SCALARS]
    fields = [pa.field(k, pa.int64() if k == "schema_version" else pa.string()) for k in core_scalars]
    fields += arrays([n for n in ARRAYS if n not in OPTIONAL_ARRAYS])
    fields.append(pa.field("record_sha256", pa.string()))
    fields += [pa.field(k, pa.string()) for k in OPTIONAL_SCALARS] + arrays(OPTIONAL_ARRAYS)
    return pa.schema(fields, metadata={b"thfm_schema_version": str(SCHEMA_VERSION).encode()})


def shard_done(out_dir: Path, name: str) -> bool:
    return (Path(out_dir) / f"{name}.json").is_file()


def write_shard(out_dir: str | Path, name: str, records: Iterable[Record], extra: dict | None = None) -> dict:
    """Write one shard in both formats, then its metadata file (the done marker).

    The metadata lists every record's (video_id, task) and checksum, so `verify` can name a
    record even when its bytes no longer decode; `extra` is merged into it."""
    from array_record.python.array_record_module import ArrayRecordWriter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pq_path, ar_path = out_dir / f"{name}.parquet", out_dir / f"{name}.array_record"
    tasks: Counter = Counter()
    checksums, names = [], []
    with atomic_path(pq_path, "shard") as pq_tmp, atomic_path(ar_path, "shard") as ar_tmp:
        ar = ArrayRecordWriter(str(ar_tmp), ARRAY_RECORD_OPTIONS)
        # no min/max statistics (they would copy whole arrays into the footer) and no dictionary for the blobs
        stats = [f.name for f in parquet_schema() if f.type != pa.large_binary()]
        compression = {f.name: "none" if f.name in UNCOMPRESSED_COLUMNS else "zstd" for f in parquet_schema()}
        pw = pq.ParquetWriter(
            pq_tmp, parquet_schema(), compression=compression, write_statistics=stats, use_dictionary=stats
        )
        try:
            for rec in records:
                row = rec.to_row()
                pw.write_table(pa.Table.from_pylist([row], schema=parquet_schema()))
                ar.write(rec.to_bytes())
                tasks[rec.task] += 1
                checksums.append(row["record_sha256"])
                names.append([rec.video_id, rec.task])
            pw.close()
            ar.close()
        except BaseException as exc:
            # a writer that failed (disk full) also fails to close: the first error is the one to report
            for close in (pw.close, ar.close):
                with contextlib.suppress(Exception):
                    close()
            if isinstance(exc, RuntimeError) and "No space left on device" in str(exc):
                # array_record reports ENOSPC as a RuntimeError: make it the OSError atomic_path turns into
                # the one-line disk-full error
                raise OSError(errno.ENOSPC, str(exc)) from exc
            raise
    meta = {
        "name": name,
        "schema_version": SCHEMA_VERSION,
        "num_records": len(checksums),
        "tasks": dict(tasks),
        "files": {
            fmt: {"path": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
            for fmt, p in (("parquet", pq_path), ("array_record", ar_path))
        },
        "record_sha256": checksums,
        "records": names,
        **(extra or {}),
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
        "schema_version": SCHEMA_VERSION,
        "num_shards": len(metas),
        "num_records": sum(m["num_records"] for m in metas),
        "tasks": dict(sorted(tasks.items())),
        "content_sha256": content,
        "fields": FIELD_DOCS,
        "shards": [{k: m[k] for k in ("name", "num_records", "tasks", "files")} for m in metas],
        **(extra or {}),
    }
    write_text(out_dir / INDEX, json.dumps(index, indent=1), "shard index")
    return index


class CorruptRecord(UserError):
    """A shard record that does not read back or whose checksum does not match: one line naming the
    shard file, the record (number and video/task) and the fix."""

    def __init__(self, path: Path, index: int, label: str | None, detail: str):
        name = Path(path).name.split(".")[0]
        super().__init__(
            f"shard {path} record {index}" + (f" ({label})" if label else "") + f": {detail}",
            f"`thfm-synth shards verify {Path(path).parent}` lists every damaged record; to repair, "
            f"delete {name}.json and rerun the same `thfm-synth preprocess` command (it rewrites "
            f"only that shard)",
        )


def _detail(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(exc).__name__


class _Labels:
    """(video_id, task) of each record of a shard, from its metadata file: names a record whose own
    bytes no longer decode."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._names = None

    def __call__(self, i: int) -> str | None:
        if self._names is None:
            try:
                meta = json.loads(self.path.with_suffix(".json").read_text())
                self._names = meta.get("records") or []
            except (OSError, ValueError):
                self._names = []
        return f"{self._names[i][0]}/{self._names[i][1]}" if i < len(self._names) else None


def read_array_record(reader, path: Path, i: int, verify: bool = True, labels: _Labels | None = None) -> Record:
    """Record `i` of an open ArrayRecord shard; a read, decode or checksum failure is a CorruptRecord."""
    labels = labels or _Labels(path)
    try:
        data = reader.read([i])[0]
    except Exception as exc:  # the C++ reader raises plain RuntimeErrors (with a Riegeli traceback) on damage
        raise CorruptRecord(path, i, labels(i), f"unreadable ({_detail(exc)})") from None
    return decode_record(data, path, i, verify, labels)


def decode_record(data: bytes, path: Path, i: int, verify: bool = True, labels: _Labels | None = None) -> Record:
    try:
        return Record.from_bytes(data, verify=verify)
    except (RecordError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise CorruptRecord(path, i, (labels or _Labels(path))(i), _detail(exc)) from None


# The fallback sequential reader (files this scanner does not expect): no reader thread pool (on a few
# shared cores its threads cost more than they gain: ~0.5 GB/s where one thread read ~1.2 GB/s warm).
SEQUENTIAL_OPTIONS = "max_parallelism:0"
# the kernel is asked to read this far ahead (WILLNEED), so disk reads overlap decoding and checksumming
READAHEAD_BYTES = 64 << 20


def _advise_willneed(fd: int, offset: int, length: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # advice only (not on every OS)
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)


def read_array_record_sequential(path: Path, verify: bool = True) -> Iterator[Record]:
    """Every record of one ArrayRecord shard in file order. Our own layout is read straight from the
    file (shards/riegeli_scan.py: one preadv per record into its own buffer, ~0.7 CPU s/GB less than the
    C++ reader); anything else, from the first record it does not expect, with the C++ reader's
    sequential `read()` (a `read([i])` per record ran at ~1/3 of the disk's cold speed). A record that
    does not read back is re-read on its own, so the error names it."""
    from thfm_synth.shards import riegeli_scan

    reader = open_array_record(path, SEQUENTIAL_OPTIONS)
    labels = _Labels(path)
    fd = os.open(path, os.O_RDONLY)
    advised = 0

    def willneed(upto: int) -> None:
        nonlocal advised
        while advised < upto + READAHEAD_BYTES // 2:
            _advise_willneed(fd, advised, READAHEAD_BYTES)
            advised += READAHEAD_BYTES

    try:
        n = reader.num_records()
        done = 0
        try:
            for i, data in riegeli_scan.records(fd, n, willneed):
                rec = decode_record(data, path, i, verify, labels)
                done = i + 1
                yield rec
        except (riegeli_scan.LayoutError, OSError):
            pass  # read on with the C++ reader from the first record not handed out
        if done < n:
            reader.seek(done)
        for i in range(done, n):
            try:
                data = reader.read()
            except Exception:  # noqa: BLE001 - the C++ reader's errors are plain RuntimeErrors
                yield read_array_record(reader, path, i, verify, labels)
                for j in range(i + 1, n):  # the sequential position is lost: the rest by index
                    yield read_array_record(reader, path, j, verify, labels)
                return
            yield decode_record(data, path, i, verify, labels)
    finally:
        os.close(fd)
        with contextlib.suppress(Exception):  # a reader that met damage fails to close: the damage is the error
            reader.close()


def open_array_record(path: Path, options: str = ""):
    from array_record.python.array_record_module import ArrayRecordReader

    try:
        reader = ArrayRecordReader(str(path), options)
        reader.num_records()
        return reader
    except Exception as exc:  # the C++ reader raises plain RuntimeErrors
        raise CorruptRecord(path, 0, None, f"the file does not open as ArrayRecord ({_detail(exc)})") from None


@dataclass
class ShardSet:
    root: Path
    index: dict

    @classmethod
    def open(cls, root: str | Path) -> "ShardSet":
        root = Path(root)
        path = root / INDEX
        if not path.is_file():
            raise UserError(
                f"{root} is not a shard set ({INDEX} missing)", "point at a folder made by `thfm-synth preprocess`"
            )
        return cls(root, json.loads(path.read_text()))

    def paths(self, fmt: str) -> list[Path]:
        return [self.root / s["files"][fmt]["path"] for s in self.index["shards"]]

    def records(self, fmt: str = "parquet", verify: bool = True) -> Iterator[Record]:
        """Every record, in file order. Each record's checksum is verified (`verify=False` skips that,
        for tools that look at damage on purpose); damage stops with a CorruptRecord naming it."""
        if fmt == "parquet":
            for path in self.paths("parquet"):
                labels = _Labels(path)
                try:
                    pf = pq.ParquetFile(path)
                    groups = pf.num_row_groups
                except (pa.ArrowException, OSError) as exc:
                    raise CorruptRecord(path, 0, None, f"the file does not open as Parquet ({_detail(exc)})") from None
                base = 0
                for g in range(groups):
                    try:
                        table = pf.read_row_group(g)
                    except (pa.ArrowException, OSError, ValueError) as exc:
                        raise CorruptRecord(path, base, labels(base), f"unreadable ({_detail(exc)})") from None
                    yield from records_from_table(table, verify=verify, path=path, first=base, labels=labels)
                    base += table.num_rows
        else:
            for path in self.paths("array_record"):
                yield from read_array_record_sequential(path, verify)


def records_from_table(
    table: pa.Table, verify: bool = True, path: Path | None = None, first: int = 0, labels: _Labels | None = None
) -> Iterator[Record]:
    """Records of a Parquet table, the array blobs read straight from Arrow's buffers (one copy).
    `path`/`first`: the shard file and the number of the table's first record (for error messages)."""
    import numpy as np

    cols = {name: table.column(name).combine_chunks() for name in table.column_names}
    for i in range(table.num_rows):
        try:
            row = {k: cols[k][i].as_py() for k in cols if k not in ARRAYS}
            for name in ARRAYS:
                if name not in cols:  # optional fields are absent from older shards
                    continue
                arr = cols[name]
                offsets = np.frombuffer(arr.buffers()[1], np.int64, count=2, offset=8 * (arr.offset + i))
                data = arr.buffers()[2]
                row[name] = memoryview(data)[int(offsets[0]) : int(offsets[1])] if data is not None else b""
            yield Record.from_row(row, verify=verify)
        except (RecordError, ValueError, KeyError, TypeError) as exc:
            where = Path(path) if path is not None else Path("<table>")
            raise CorruptRecord(
                where, first + i, (labels or _Labels(where))(first + i) if path else None, _detail(exc)
            ) from None


def _label(meta: dict, i: int, fallback: str = "?") -> str:
    names = meta.get("records")
    if names and i < len(names):
        return f"{names[i][0]}/{names[i][1]}"
    return fallback


def verify(root: str | Path) -> tuple[int, list[str]]:
    """Re-check every file digest and every record checksum; return (records checked, problems).

    Every record is read on its own (a Parquet row group / an ArrayRecord chunk per record), so a
    flipped byte is reported against the record that holds it, named by video and task (from the
    shard's metadata when the record itself no longer decodes)."""
    from array_record.python.array_record_module import ArrayRecordReader

    shards = ShardSet.open(root)
    problems: list[str] = []
    checked = 0
    for shard in shards.index["shards"]:
        meta_path = shards.root / f"{shard['name']}.json"
        if not meta_path.is_file():
            problems.append(f"{meta_path}: missing (the shard is not finished)")
            continue
        meta = json.loads(meta_path.read_text())
        expected = meta["record_sha256"]
        for fmt, info in shard["files"].items():
            path = shards.root / info["path"]
            if not path.is_file():
                problems.append(f"{path}: missing")
                continue
            if file_sha256(path) != info["sha256"]:
                problems.append(f"{path}: file sha256 differs from the index")
        pq_path = shards.root / shard["files"]["parquet"]["path"]
        if pq_path.is_file():
            problems += _verify_parquet(pq_path, meta, expected)
            checked += len(expected)
        ar_path = shards.root / shard["files"]["array_record"]["path"]
        if ar_path.is_file():
            try:
                reader = ArrayRecordReader(str(ar_path))
                n = reader.num_records()
            except Exception as exc:  # the C++ reader raises plain RuntimeErrors on corruption
                problems.append(f"{ar_path}: unreadable ArrayRecord ({exc})")
                continue
            if n != len(expected):
                problems.append(f"{ar_path}: {n} records, the shard metadata lists {len(expected)}")
            try:
                for i in range(n):
                    checked += 1
                    label = _label(meta, i, "undecodable")
                    try:
                        data = reader.read([i])[0]
                        rec = Record.from_bytes(data)
                        stored = Record.stored_checksum(data)
                        ok = (
                            stored == expected[i]
                            and rec.matches(stored)
                            and f"{rec.video_id}/{rec.task}" == _label(meta, i, f"{rec.video_id}/{rec.task}")
                        )
                        label = _label(meta, i, f"{rec.video_id}/{rec.task}")
                    except Exception:
                        ok = False
                    if not ok:
                        problems.append(f"{ar_path} record {i} ({label}): checksum mismatch")
            finally:
                reader.close()
    return checked, problems


def _verify_parquet(pq_path: Path, meta: dict, expected: list[str]) -> list[str]:
    problems = []
    try:
        pf = pq.ParquetFile(pq_path)
        groups = pf.num_row_groups
    except (pa.ArrowException, OSError) as exc:
        return [f"{pq_path}: unreadable Parquet ({exc})"]
    i = 0
    for g in range(groups):
        try:
            rows = pf.read_row_group(g).to_pylist()
        except (pa.ArrowException, OSError, ValueError) as exc:
            n = pf.metadata.row_group(g).num_rows
            for j in range(i, i + n):
                problems.append(f"{pq_path} record {j} ({_label(meta, j)}): unreadable ({str(exc).splitlines()[0]})")
            i += n
            continue
        for row in rows:
            own = f"{row.get('video_id')}/{row.get('task')}"
            label = _label(meta, i, own)
            try:
                rec = Record.from_row(row)
                ok = (
                    i < len(expected)
                    and row["record_sha256"] == expected[i]
                    and rec.matches(expected[i])
                    and own == label
                )
            except (RecordError, ValueError, KeyError, IndexError, TypeError):
                ok = False
            if not ok:
                problems.append(f"{pq_path} record {i} ({label}): checksum mismatch")
            i += 1
    if i != len(expected):
        problems.append(f"{pq_path}: {i} records, the shard metadata lists {len(expected)}")
    return problems


def remove_partial(out_dir: str | Path) -> int:
    """Delete shard files without a done marker (left by an interrupted run)."""
    removed = 0
    for p in Path(out_dir).glob("shard-*.*"):
        if p.suffix in (".parquet", ".array_record") and not (p.with_suffix(".json")).exists():
            os.remove(p)
            removed += 1
    return removed
