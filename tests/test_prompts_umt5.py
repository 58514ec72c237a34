"""The umT5 prompt-embedding path, tested offline against a tiny random umT5 built in the test.

No download: the model folder (config, safetensors weights, tokenizer) is written into tmp_path
and loaded with local_files_only, exactly as a user's local umT5 folder would be.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from thfm_synth.errors import UserError
from model.prompts import PROMPTS, PromptTable, umt5_table

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

D_MODEL = 32
EXTRA_TEXT = ["The quick brown fox jumps over the lazy dog.", "A person walks across the room and waves."]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # T5 ids: pad 0, eos 1, unk 2
    tok.train_from_iterator(
        [*PROMPTS.values(), *EXTRA_TEXT], trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    )
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )


def _model(vocab_size: int, seed: int):
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = UMT5Config(
        vocab_size=vocab_size,
        d_model=D_MODEL,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    return UMT5EncoderModel(cfg).eval()


@pytest.fixture
def umt5_dir(tmp_path):
    tok = _tokenizer()
    model = _model(len(tok), seed=0)
    folder = tmp_path / "umt5"
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder, tok, model


def test_umt5_table_matches_the_encoder_and_round_trips(umt5_dir, tmp_path):
    folder, tok, model = umt5_dir
    assert sorted(folder.glob("*.safetensors")) and (folder / "tokenizer.json").is_file()
    table = umt5_table(folder)

    assert set(table.embeddings) == set(PROMPTS)
    for task, text in PROMPTS.items():
        ids = tok(text, return_tensors="pt")
        n_real = len(re.findall(r"\w+|[^\w\s]+", text)) + 1  # Whitespace pre-tokenizer words + </s>
        assert ids.input_ids.shape[1] == n_real and int(ids.input_ids[0, -1]) == tok.eos_token_id
        assert tok.unk_token_id not in ids.input_ids[0].tolist()  # every prompt word is in the vocabulary
        with torch.no_grad():
            ref = model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state[0].numpy()
        e = table.embeddings[task]
        assert e.dtype == np.float32 and e.shape == (n_real, D_MODEL), (task, e.shape)
        assert np.isfinite(e).all()
        np.testing.assert_allclose(e, ref, rtol=1e-5, atol=1e-5, err_msg=task)

    tasks = list(PROMPTS)
    for i, a in enumerate(tasks):
        for b in tasks[i + 1 :]:
            ea, eb = table.embeddings[a], table.embeddings[b]
            assert ea.shape != eb.shape or not np.allclose(ea, eb, atol=1e-3), (a, b)

    prov = table.provenance
    assert prov["encoder"] == "umt5" and prov["dim"] == D_MODEL and prov["prompts"] == PROMPTS
    digest = prov["weights_digest"]
    import hashlib

    expected = hashlib.sha256()  # over the weight files' names and contents, as documented
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        expected.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    assert digest == expected.hexdigest()

    table.save(tmp_path / "prompts.npz")
    back = PromptTable.load(tmp_path / "prompts.npz")
    assert back.provenance == prov
    assert set(back.embeddings) == set(PROMPTS)
    for task in PROMPTS:
        assert back.embeddings[task].dtype == np.float32
        assert np.array_equal(back.embeddings[task], table.embeddings[task])


def test_umt5_table_truncates_to_max_tokens(umt5_dir):
    folder, tok, model = umt5_dir
    table = umt5_table(folder, max_tokens=4)
    for task, text in PROMPTS.items():
        ids = tok(text, return_tensors="pt", truncation=True, max_length=4)
        with torch.no_grad():
            ref = model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state[0].numpy()
        assert table.embeddings[task].shape == (4, D_MODEL)
        np.testing.assert_allclose(table.embeddings[task], ref, rtol=1e-5, atol=1e-5, err_msg=task)


def test_weights_digest_follows_the_weights(umt5_dir, tmp_path):
    folder, tok, _ = umt5_dir
    other = tmp_path / "umt5_other"
    _model(len(tok), seed=1).save_pretrained(other, safe_serialization=True)  # same config and file sizes
    tok.save_pretrained(other)
    a, b, a2 = umt5_table(folder), umt5_table(other), umt5_table(folder)
    assert a.provenance["weights_digest"] == a2.provenance["weights_digest"]
    assert a.provenance["weights_digest"] != b.provenance["weights_digest"]
    assert not np.allclose(a.embeddings["depth"], b.embeddings["depth"])


def test_missing_folder_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError) as err:
        umt5_table(tmp_path / "no_such_umt5")
    msg = str(err.value)
    assert "\n" not in msg and "no_such_umt5" in msg and "not found" in msg and "fix:" in msg


def test_folder_without_a_model_is_a_one_line_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as err:
        umt5_table(tmp_path / "empty")
    assert "\n" not in str(err.value) and "cannot load umT5" in str(err.value)


def test_bf16_checkpoint_gives_float32_embeddings(umt5_dir, tmp_path):
    _, tok, model = umt5_dir
    folder = tmp_path / "umt5_bf16"
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    table = umt5_table(folder)
    for task, text in PROMPTS.items():
        e = table.embeddings[task]
        assert e.dtype == np.float32 and e.shape == (len(tok(text).input_ids), D_MODEL) and np.isfinite(e).all()
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            ref = model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state[0]
        # the checkpoint's own dtype (bf16) is what the encoder runs in: the same numbers, widened to float32
        np.testing.assert_allclose(e, ref.float().numpy(), rtol=1e-6, atol=1e-6, err_msg=task)
