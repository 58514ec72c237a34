import numpy as np

from model.prompts import BUILTIN_ENCODER, PROMPTS, PromptTable, builtin_table


def test_builtin_table_is_deterministic_distinct_and_round_trips(tmp_path):
    a, b = builtin_table(dim=64), builtin_table(dim=64)
    assert set(a.embeddings) == set(PROMPTS)
    for task in PROMPTS:
        assert np.array_equal(a.embeddings[task], b.embeddings[task])
        assert abs(np.sqrt(np.mean(a.embeddings[task] ** 2)) - 1) < 1e-5
    flat = np.stack([a.embeddings[t].ravel() for t in PROMPTS])
    cos = flat @ flat.T / np.linalg.norm(flat, axis=1)[:, None] / np.linalg.norm(flat, axis=1)[None]
    assert np.abs(cos - np.eye(len(PROMPTS))).max() < 0.2  # near-orthogonal: tasks are distinguishable
    a.save(tmp_path / "prompts.npz")
    back = PromptTable.load(tmp_path / "prompts.npz")
    assert back.provenance["encoder"] == BUILTIN_ENCODER and back.provenance["prompts"] == PROMPTS
    assert all(np.array_equal(back.embeddings[t], a.embeddings[t]) for t in PROMPTS)
