"""Planning: a seed expands into one immutable `VideoSpec` per video (see planner.py)."""
