"""Random-access reading of ArrayRecord shards with Grain (global shuffle, per-host slices).

Every record is checked as it is read: a record that does not read back or whose checksum does
not match stops the pipeline with a `CorruptRecord` naming the shard file, the record and the
fix - never a Riegeli traceback, never silently wrong data.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from thfm_synth.shards.record import Record
from thfm_synth.shards.store import CorruptRecord, ShardSet, _detail, _Labels, decode_record


class VerifiedArrayRecordSource:
    """A Grain random-access source over a shard set's ArrayRecord files: `[i]` is the i-th record in
    file order, read with its checksum verified (a `Record`, or its bytes with `decode=False`)."""

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

    def __len__(self) -> int:
        return self._len

    def _where(self, index: int) -> tuple[int, int]:
        f = bisect.bisect_right(self._starts, index) - 1
        return f, index - self._starts[f]

    def __getitem__(self, index: int):
        try:
            data = self._source[index]
        except Exception as exc:  # noqa: BLE001
            f, i = self._where(index)
            raise CorruptRecord(self.paths[f], i, self._labels[f](i), f"unreadable ({_detail(exc)})") from None
        f, i = self._where(index)
        rec = decode_record(data, self.paths[f], i, True, self._labels[f])
        return rec if self.decode else data

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
