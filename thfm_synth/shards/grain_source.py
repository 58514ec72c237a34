"""Random-access reading of ArrayRecord shards with Grain (global shuffle, per-host slices)."""

from __future__ import annotations

from pathlib import Path

from thfm_synth.shards.record import Record
from thfm_synth.shards.store import ShardSet


def grain_dataset(root: str | Path, seed: int, shuffle: bool = True, shard_index: int = 0, shard_count: int = 1,
                  decode: bool = True):
    """A grain.MapDataset over every record of a shard set.

    The shuffle is global (a permutation of all records across all shards, keyed by seed);
    each host then takes every `shard_count`-th element starting at `shard_index`, so hosts
    see disjoint slices of the same global order.
    """
    import grain

    paths = [str(p) for p in ShardSet.open(root).paths("array_record")]
    ds = grain.MapDataset.source(grain.sources.ArrayRecordDataSource(paths))
    if shuffle:
        ds = ds.shuffle(seed=seed)
    if shard_count > 1:
        ds = ds[shard_index::shard_count]
    return ds.map(Record.from_bytes) if decode else ds
