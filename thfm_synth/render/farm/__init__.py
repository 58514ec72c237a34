"""The render farm: Ray workers, atomic commits, claims, retries and indexes (issue: render at scale)."""
