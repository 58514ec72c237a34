"""Preprocess -> train -> predict end to end with the WAN 2.1 VAE architecture and the umT5 prompt
encoder, both loaded the way a user gives them (`--vae FOLDER` in diffusers layout, `--text-encoder
FOLDER` in the Hugging Face layout), from tiny random weights written here (no download). Every other
pipeline test uses the DCT codec and the built-in prompt table; this is the run that proves the real
encoders are wired through the CLI: the shards' latents are the VAE's encoding of the rendered frames,
the prompts are the umT5's, training runs on them, and predict decodes with that VAE.

Random weights make no meaningful pictures, so the test checks shapes, provenance, finiteness and that
each stage used the given weights (values recomputed independently), not that predictions look right.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

pytest.importorskip("flax")
pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.render]

FRAMES, SIZE = 5, 64  # 5 frames -> 2 latent frames; 64x64 -> 8x8 latents
CFG = (
    f"preset: preview\nnum_videos: 2\nvideo: {{width: {SIZE}, height: {SIZE}, num_frames: {FRAMES}}}\n"
    "render: {samples: 1, denoise: false}\nbackground: {kind_weights: {hdri: 0.0, scene: 0.0, sky: 1.0}}\n"
)


def write_tiny_wan_vae(folder: Path):
    """A random tiny WAN VAE saved as diffusers saves AutoencoderKLWan (config.json + safetensors)."""
    from flax import nnx

    from model.vae.config import TINY_VAE_CONFIG
    from model.vae.loading import export_state_dict, save_state_dict
    from model.vae.wan_vae import WanVAE

    folder.mkdir(parents=True)
    vae = WanVAE(TINY_VAE_CONFIG, rngs=nnx.Rngs(11))
    save_state_dict(export_state_dict(vae, "diffusers"), folder / "diffusion_pytorch_model.safetensors")
    cfg = {"_class_name": "AutoencoderKLWan", "_diffusers_version": "0.33.0", **TINY_VAE_CONFIG.to_dict()}
    (folder / "config.json").write_text(json.dumps({**cfg, "is_residual": False, "scale_factor_temporal": 4}))


def write_tiny_umt5(folder: Path) -> None:
    from test_prompts_umt5 import _model, _tokenizer

    tok = _tokenizer()
    _model(len(tok), seed=5).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)


def test_render_preprocess_train_predict_with_the_wan_vae_and_umt5(tmp_path, character_cache):
    from model.prompts import PROMPTS, PromptTable, umt5_table
    from model.vae.loading import load_wan_vae
    from thfm_synth.shards.store import ShardSet

    (tmp_path / "tiny.yaml").write_text(CFG)
    render = tmp_path / "render"
    proc = run_cli(
        "render",
        "--config",
        tmp_path / "tiny.yaml",
        "--workers",
        "1",
        "--out",
        render,
        "--cache",
        character_cache,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    vae_dir, umt5_dir, shards = tmp_path / "vae", tmp_path / "umt5", tmp_path / "shards"
    write_tiny_wan_vae(vae_dir)
    write_tiny_umt5(umt5_dir)

    # preprocess, through the CLI with both encoders
    proc = run_cli(
        "preprocess", render, "--out", shards, "--vae", vae_dir, "--text-encoder", umt5_dir, "--workers", "1",
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    vae = load_wan_vae(vae_dir)
    records = list(ShardSet.open(shards).records("array_record"))
    assert {r.video_id for r in records} == {"v000000", "v000001"}
    for r in records:
        assert r.vae_id == vae.vae_id and r.vae_id.startswith("wan2.1-vae:sha256:")
        assert r.arrays["rgb_latents"].shape == (16, 2, SIZE // 8, SIZE // 8), r.arrays["rgb_latents"].shape
        assert np.isfinite(r.arrays["rgb_latents"]).all()
        if r.task in ("depth", "mask", "normals"):
            assert r.arrays["target_latents"].shape == (16, 2, SIZE // 8, SIZE // 8)
    # the latents are this VAE's encoding of the rendered frames (same size and frame count: no resampling)
    from thfm_synth.render import outputs

    rec = next(r for r in records if r.video_id == "v000000")
    rgb = np.stack([outputs.read_frame(render / "videos" / "v000000", f, ("rgb",)).rgb for f in range(FRAMES)])
    clip = rgb.astype(np.float32) / 127.5 - 1.0
    mean, _ = vae.encode(clip[None], channels_last=True)
    want = np.asarray(vae.normalize_latents(mean, channels_last=True))[0].transpose(3, 0, 1, 2)
    np.testing.assert_allclose(rec.arrays["rgb_latents"], want, atol=2e-2 * np.abs(want).max())
    # the prompts are the umT5's
    table = PromptTable.load(shards / "prompts.npz")
    ref = umt5_table(umt5_dir)
    assert (
        table.provenance["encoder"] == "umt5" and table.provenance["weights_digest"] == ref.provenance["weights_digest"]
    )
    for task in PROMPTS:
        np.testing.assert_allclose(table.embeddings[task], ref.embeddings[task], rtol=1e-5, atol=1e-5)

    # train a few steps on them, through the CLI
    run = tmp_path / "run"
    cfg = {
        "model": {"size": "tiny"},
        "data": {"shard_dir": str(shards), "num_threads": 1, "tasks": ["depth", "mask", "keypoints_2d"]},
        "vae": {"weights": str(vae_dir)},
        "batch_size": 2,
        "steps": 4,
        "lr": 1e-3,
        "run_dir": str(run),
        "checkpoint_every": 4,
        "log_every": 1,
        "seed": 0,
    }
    (tmp_path / "train.yaml").write_text(json.dumps(cfg))  # JSON is YAML
    proc = run_cli("train", "--config", tmp_path / "train.yaml", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(ln) for ln in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in log)

    # predict: a shard record (decoded by the WAN VAE) and a raw clip (encoded by it first)
    proc = run_cli(
        "predict", shards, "--task", "depth", "--checkpoint", run / "checkpoints", "--out", tmp_path / "depth",
        "--record", "0", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    from PIL import Image

    frames = sorted((tmp_path / "depth").glob("*.png"))
    assert len(frames) == FRAMES
    pics = np.stack([np.asarray(Image.open(p)) for p in frames])
    assert pics.shape == (FRAMES, SIZE, SIZE, 3) and pics.std() > 0
    np.save(tmp_path / "clip.npy", rgb)
    proc = run_cli(
        "predict", tmp_path / "clip.npy", "--task", "keypoints_2d", "--checkpoint", run / "checkpoints",
        "--out", tmp_path / "kp", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    kp = np.load(tmp_path / "kp.npz")
    assert kp["keypoints_2d"].shape[0] == FRAMES and kp["keypoints_2d"].shape[-1] == 2
    assert np.isfinite(kp["keypoints_2d"]).all() and np.isfinite(kp["keypoints_3d"]).all()
    assert len(list((tmp_path / "kp").glob("*.png"))) == FRAMES
