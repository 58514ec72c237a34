"""Tools above the pipeline: look at what it made (previews, the dataset card, shard inspection)."""
