"""Random-access reading of ArrayRecord shards with Grain (global shuffle, per-host slices).

Every record is checked as it is read: a record that does not read back or whose checksum does
not match stops the pipeline with a `CorruptRecord` naming the shard file, the record and the
fix - never a Riegeli traceback, never silently wrong data.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from pathlib import Path

from thfm_synth.shards import riegeli_scan
from thfm_synth.shards.record import Record
from thfm_synth.shards.store import CorruptRecord, ShardSet, _detail, _Labels, decode_record


class VerifiedArrayRecordSource:
    """A Grain random-access source over a shard set's ArrayRecord files: `[i]` is the i-th record in
    file order, read with its checksum verified (a `Record`, or its bytes with `decode=False`).

    Files of our layout are read directly (positions from their chunk headers, one preadv per record);
    others, and a record whose framing is damaged, through Grain's ArrayRecordDataSource."""

    def __init__(self, paths: list[str], decode: bool = True):
        import grain

        self.paths = [Path(p) for p in paths]
        self.decode = decode
        self._labels = [_Labels(p) for p in self.paths]
        # record counts per file, for naming a record by (shard, number in shard)
        from array_record.python.array_record_module import ArrayRecordReader

        self._starts, total = [], 0
        for p in self.paths:
            self._starts.append(total)
            try:
                reader = ArrayRecordReader(str(p))
                total += reader.num_records()
                reader.close()
            except Exception as exc:  # noqa: BLE001 - the C++ reader's errors are plain RuntimeErrors
                raise CorruptRecord(p, 0, None, f"the file does not open as ArrayRecord ({_detail(exc)})") from None
        self._len = total
        self._source = grain.sources.ArrayRecordDataSource([str(p) for p in self.paths])
        self._files: dict[int, tuple | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._len

    def _where(self, index: int) -> tuple[int, int]:
        f = bisect.bisect_right(self._starts, index) - 1
        return f, index - self._starts[f]

    def _direct(self, f: int):
        """(fd, [(position, size)] per record) of file `f` when it has our layout (shards/riegeli_scan.py:
        a record read straight into its own buffer, without the C++ reader's copies), else None."""
        with self._lock:
            if f not in self._files:
                try:
                    fd = os.open(self.paths[f], os.O_RDONLY)
                except OSError:
                    self._files[f] = None
                    return None
                n = (self._starts[f + 1] if f + 1 < len(self._starts) else self._len) - self._starts[f]
                try:
                    self._files[f] = (fd, riegeli_scan.index(fd, n))
                except (riegeli_scan.LayoutError, OSError):
                    os.close(fd)
                    self._files[f] = None
            return self._files[f]

    def __getitem__(self, index: int):
        f, i = self._where(index)
        data = None
        direct = self._direct(f)
        if direct is not None:
            with contextlib.suppress(riegeli_scan.LayoutError, OSError):  # the C++ reader then names the damage
                data = riegeli_scan.read_record(direct[0], *direct[1][i])
        if data is None:
            try:
                data = self._source[index]
            except Exception as exc:  # noqa: BLE001
                raise CorruptRecord(self.paths[f], i, self._labels[f](i), f"unreadable ({_detail(exc)})") from None
        rec = decode_record(data, self.paths[f], i, True, self._labels[f])
        return rec if self.decode else data

    def close(self) -> None:
        with self._lock:
            for entry in self._files.values():
                if entry is not None:
                    os.close(entry[0])
            self._files.clear()

    def __getstate__(self) -> dict:  # Grain worker processes get their own file descriptors
        state = {k: v for k, v in self.__dict__.items() if k != "_lock"}
        state["_files"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return f"VerifiedArrayRecordSource({len(self.paths)} shards, {self._len} records)"


def grain_dataset(
    root: str | Path, seed: int, shuffle: bool = True, shard_index: int = 0, shard_count: int = 1, decode: bool = True
):
    """A grain.MapDataset over every record of a shard set (checksums verified on read).

    The shuffle is global (a permutation of all records across all shards, keyed by seed);
    each host then takes every `shard_count`-th element starting at `shard_index`, so hosts
    see disjoint slices of the same global order.
    """
    import grain

    paths = [str(p) for p in ShardSet.open(root).paths("array_record")]
    ds = grain.MapDataset.source(VerifiedArrayRecordSource(paths, decode=decode))
    if shuffle:
        ds = ds.shuffle(seed=seed)
    if shard_count > 1:
        ds = ds[shard_index::shard_count]
    return ds


__all__ = ["VerifiedArrayRecordSource", "grain_dataset", "Record"]
