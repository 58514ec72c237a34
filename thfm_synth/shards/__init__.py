"""Training shards: record schema (record.py), files (store.py) and Grain access (grain_source.py)."""
