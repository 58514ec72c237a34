"""`predict(..., truth=True)` (the demo's last step): input | ground truth | prediction, side by side."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model.data import write_synthetic_shards
from model.decoding import LatentDecoder
from model.evaluate import load_model
from model.predict import predict, to_uint8
from model.train import train
from thfm_synth.shards.store import ShardSet


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    shards = tmp_path_factory.mktemp("shards")
    write_synthetic_shards(shards, num_videos=4, num_frames=9, height=32, width=32, num_keypoints=5, text_dim=32)
    run_dir = tmp_path_factory.mktemp("run")
    train(
        {
            "data": {"shard_dir": str(shards), "num_threads": 1, "prefetch": 2},
            "batch_size": 2,
            "steps": 2,
            "checkpoint_every": 2,
            "run_dir": str(run_dir),
            "seed": 1,
        },
        quiet=True,
    )
    return shards, run_dir / "checkpoints"


def _frames(folder):
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


@pytest.mark.slow  # a 2-step training run and three predictions: ~30 CPU-s of JAX compiling
def test_prediction_beside_its_ground_truth(checkpoint, tmp_path):
    shards, ckpt = checkpoint
    records = list(ShardSet.open(shards).records("array_record"))
    depth = next(i for i, r in enumerate(records) if r.task == "depth")
    predict(shards, "depth", ckpt, tmp_path / "alone", record_index=depth)  # PNG frames: exact pixels
    both = predict(shards, "depth", ckpt, tmp_path / "both", record_index=depth, truth=True)
    pred, side = _frames(tmp_path / "alone"), _frames(tmp_path / "both")
    t, h, w, _ = pred.shape
    assert side.shape == (t, 14 + h, 3 * w, 3) and both["size"] == [14 + h, 3 * w]
    assert (side[:, :14] < 128).any()  # the column labels
    assert np.array_equal(side[:, 14:, 2 * w :], pred)  # right: the prediction as predict() writes it alone
    meta = load_model(ckpt)[3]
    target = np.asarray(records[depth].arrays["target_latents"], np.float32).transpose(1, 2, 3, 0)
    truth = to_uint8(
        np.asarray(LatentDecoder(meta["vae"]["weights"], meta["vae"]["latents_normalized"]).decode(target[None]))[0],
        "depth",
    )
    assert np.array_equal(side[:, 14:, w : 2 * w], truth) and not np.array_equal(truth, pred)  # middle: the target
    assert np.array_equal(np.asarray(Image.open(both["still"])), side[t // 2])
    mask = records[next(i for i, r in enumerate(records) if r.task == "mask")]
    with pytest.raises(ValueError, match="needs a shard record of task 'depth'"):
        predict(mask, "depth", ckpt, tmp_path / "x", truth=True)
