"""The job files in jobs/: the paper's recipe in the WAN-1.3B jobs, `--set` overrides for every job,
and the tiny CPU variants run end to end (preprocess on real renders; stage 1 then stage 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.tasks import TASKS
from model.train import load_config
from thfm_synth.cli import main
from thfm_synth.errors import ConfigError
from thfm_synth.preprocess.job import load_job

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"


def test_wan13b_jobs_follow_the_paper():
    s1 = load_config(JOBS / "train_wan13b_stage1.yaml")
    assert (s1.stage, s1.steps, s1.batch_size, s1.lr, s1.warmup_fraction) == (1, 20000, 64, 5e-5, 0.1)
    assert s1.lr_decay == "constant" and s1.model.size == "wan21_1_3b" and s1.dtype == "bfloat16"
    assert s1.batch_size % s1.mesh.fsdp == 0 and s1.mesh.fsdp == 8 and s1.warmup_steps() == 2000
    s2 = load_config(JOBS / "train_wan13b_stage2.yaml")
    assert (s2.stage, s2.steps, s2.batch_size) == (2, 10000, 16)
    assert s2.model.init_from == s1.run_dir + "/checkpoints" and s2.vae.weights and s2.model.token_mask is False
    assert tuple(s1.data.tasks) == TASKS == tuple(s2.data.tasks)
    pre = load_job(JOBS / "preprocess_wan13b.yaml")
    assert (pre.num_frames, pre.fps, pre.width, pre.height, pre.pixel_targets) == (81, 24.0, 832, 480, True)
    assert tuple(pre.tasks) == TASKS and pre.gpus_per_worker == 1 and pre.out == s1.data.shard_dir


def test_every_job_takes_set_overrides():
    for name in (
        "train_wan13b_stage1",
        "train_wan13b_stage2",
        "train_tiny_cpu",
        "train_tiny_cpu_stage2",
        "train_from_synth",
    ):
        cfg = load_config(JOBS / f"{name}.yaml", **{"steps": 7, "model.token_mask": True, "data.shard_dir": "x"})
        assert cfg.steps == 7 and cfg.model.token_mask and cfg.data.shard_dir == "x"
    job = load_job(JOBS / "preprocess_wan13b.yaml", {"workers": 3, "pixel_targets": False, "out": "elsewhere"})
    assert (job.workers, job.pixel_targets, job.out) == (3, False, "elsewhere")
    with pytest.raises(ConfigError, match="num_frame"):
        load_job(JOBS / "preprocess_tiny_cpu.yaml", {"num_frame": 9})
    with pytest.raises(ConfigError, match="tasks"):
        load_job(JOBS / "preprocess_tiny_cpu.yaml", {"tasks": ["depth", "pose"]})


@pytest.mark.render
def test_tiny_preprocess_job_on_real_renders(tmp_path_factory, tmp_path, capsys):
    import test_preprocess_data as data

    rendered = data.rendered(tmp_path_factory)
    out = tmp_path / "shards"
    code = main(
        [
            "preprocess",
            "--config",
            str(JOBS / "preprocess_tiny_cpu.yaml"),
            "--set",
            f"render_dir={rendered}",
            "--set",
            f"out={out}",
            "--set",
            "pixel_targets=false",
            "--set",
            "tasks=[depth, mask, keypoints_3d]",
        ]
    )
    assert code == 0 and "3 videos" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert index["tasks"] == {"depth": 3, "keypoints_3d": 3, "mask": 3} and index["preprocess"]["width"] == 96
    assert index["preprocess"]["pixel_targets"] is False
    # --set without a job file is refused in one line
    assert main(["preprocess", str(rendered), "--out", str(tmp_path / "x"), "--set", "workers=0"]) == 2


@pytest.mark.slow
def test_tiny_stage1_then_stage2_jobs(tmp_path, monkeypatch, capsys):
    """The CPU jobs as the README runs them: stage 1 on synthetic shards, stage 2 from its checkpoint."""
    monkeypatch.chdir(tmp_path)  # the jobs' relative run folders land here
    small = {
        "data.synthetic": "{num_videos: 6, num_frames: 9, height: 32, width: 32, num_keypoints: 5, text_dim: 32}",
        "batch_size": 4,
        "checkpoint_every": 4,
        "log_every": 2,
    }
    over = [a for k, v in small.items() for a in ("--set", f"{k}={v}")]
    assert main(["train", "--config", str(JOBS / "train_tiny_cpu.yaml"), "--set", "steps=4", *over]) == 0
    s1 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s1["steps"] == 4 and Path("runs/tiny_cpu/train/checkpoints/4").is_dir()
    assert main(["train", "--config", str(JOBS / "train_tiny_cpu_stage2.yaml"), "--set", "steps=4", *over]) == 0
    s2 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s2["steps"] == 4 and np.isfinite(s2["final_loss"]) and s2["traces"] == 1
    log = [json.loads(x) for x in Path("runs/tiny_cpu/train_stage2/train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and all(np.isfinite(r["loss"]) for r in log)
