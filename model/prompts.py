"""Task prompts and their text embeddings, stored once per shard set (prompts.npz).

THFM selects the task by its prompt. Each task has one fixed prompt. Embeddings come from
umT5 (WAN's text encoder) through `transformers` when a local model folder is given,
otherwise from a deterministic built-in table: for each prompt, a fixed-length block of
Gaussian vectors seeded by the sha256 of the prompt text, scaled to unit RMS. The table is
not a language model - it only has to give each task a distinct, stable conditioning
signal - and its provenance says so, so a checkpoint trained on it is never mistaken for
one trained on umT5 embeddings.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.tasks import PROMPTS as TASK_PROMPTS
from thfm_synth.atomic import write_bytes
from thfm_synth.errors import UserError

PROMPTS = TASK_PROMPTS  # one prompt per task, defined with the tasks in model/tasks.py
BUILTIN_ENCODER = "builtin-hash-v1"
UMT5_DIM = 4096  # WAN 2.1 text_dim


@dataclass(frozen=True)
class PromptTable:
    embeddings: dict[str, np.ndarray]  # task -> (L, D) float32
    provenance: dict

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        arrays = {f"emb_{task}": e for task, e in self.embeddings.items()}
        np.savez(
            buf, provenance=np.frombuffer(json.dumps(self.provenance, sort_keys=True).encode(), np.uint8), **arrays
        )
        write_bytes(path, buf.getvalue(), "prompt table")

    @classmethod
    def load(cls, path: str | Path) -> "PromptTable":
        with np.load(path, allow_pickle=False) as z:
            prov = json.loads(z["provenance"].tobytes())
            emb = {k[4:]: z[k] for k in z.files if k.startswith("emb_")}
        return cls(emb, prov)


def builtin_table(dim: int = UMT5_DIM, tokens: int = 8) -> PromptTable:
    emb = {}
    for task, text in PROMPTS.items():
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        rng = np.random.Generator(np.random.PCG64(seed))
        e = rng.standard_normal((tokens, dim))
        emb[task] = (e / np.sqrt(np.mean(e**2))).astype(np.float32)
    return PromptTable(emb, {"encoder": BUILTIN_ENCODER, "dim": dim, "tokens": tokens, "prompts": PROMPTS})


def umt5_table(model_dir: str | Path, max_tokens: int = 512) -> PromptTable:
    """Embed the prompts with a local umT5 encoder (no download: local_files_only)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"text encoder folder {model_dir} not found", "give a local umT5 model folder or omit it")
    try:
        import torch
        from transformers import AutoTokenizer, UMT5EncoderModel
    except ImportError:
        raise UserError(
            "embedding prompts with umT5 needs `transformers`",
            "pip install transformers into the main environment, or omit the text encoder",
        ) from None
    try:
        tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        enc = UMT5EncoderModel.from_pretrained(model_dir, local_files_only=True).eval()
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot load umT5 from {model_dir}: {exc}".splitlines()[0],
            "point at a folder with config.json, weights and tokenizer files",
        ) from None
    emb = {}
    with torch.no_grad():
        for task, text in PROMPTS.items():
            ids = tok(text, return_tensors="pt", truncation=True, max_length=max_tokens)
            out = enc(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state[0]
            emb[task] = out[: int(ids.attention_mask.sum())].float().numpy()
    # over the weight files' names and contents (not just their sizes: two checkpoints of one
    # architecture have files of equal size)
    digest = hashlib.sha256()
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return PromptTable(
        emb,
        {
            "encoder": "umt5",
            "model_dir": str(model_dir),
            "weights_digest": digest.hexdigest(),
            "dim": int(next(iter(emb.values())).shape[1]),
            "prompts": PROMPTS,
        },
    )
