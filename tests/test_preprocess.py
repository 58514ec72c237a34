"""Preprocessing real renders into shards: shapes, frame rules, geometry, records, verify, Grain,
resuming, and plain Parquet readers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from model.vae import CODEC_ID, DCTCodec, num_latent_frames
from thfm_synth.conventions import project
from thfm_synth.errors import UserError
from thfm_synth.preprocess import geometry as geo
from thfm_synth.preprocess.pipeline import plan_shards, preprocess
from thfm_synth.preprocess.video import PreprocessConfig, load_clip, video_records
from thfm_synth.render import outputs
from thfm_synth.tools import shards_inspect as inspect
from thfm_synth.shards.grain_source import grain_dataset
from thfm_synth.shards.record import ARRAYS
from thfm_synth.shards.store import ShardSet
from thfm_synth.render.video.annotations import read_annotations

import test_preprocess_data as data

from model import pixels as pxl
from model.tasks import DENSE_TASKS, TASKS

N = len(TASKS)  # records per video
CFG = PreprocessConfig(num_frames=9, fps=24, width=96, height=64)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return data.rendered(tmp_path_factory)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return data.shard_set(tmp_path_factory)


def video(rendered, i=0):
    return rendered / "videos" / f"v{i:06d}"


def same_record(a, b):
    assert a.scalars() == b.scalars()
    for name in ARRAYS:
        x, y = a.arrays[name], b.arrays[name]
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name


# ----------------------------------------------------------------------------- rules (no render needed)


def test_frame_and_shape_rules():
    assert num_latent_frames(81) == 21 and DCTCodec().latent_shape(81, 480, 832) == (16, 21, 60, 104)
    assert num_latent_frames(9) == 3
    z, _ = DCTCodec().encode(np.zeros((1, 9, 64, 96, 3), np.float32), channels_last=True)
    assert z.shape == (1, 3, 8, 12, 16)
    with pytest.raises(UserError, match=r"1 \+ 4k"):
        PreprocessConfig(num_frames=80)
    with pytest.raises(UserError, match="multiples of 8"):
        PreprocessConfig(width=830)
    with pytest.raises(UserError, match="unknown"):
        PreprocessConfig(tasks=("depth", "pose"))


def test_shard_plan_is_deterministic_and_bounded():
    ids = [f"v{i:06d}" for i in range(7)]
    plan = plan_shards(ids, bytes_per_video=100, max_shard_bytes=250)
    assert plan == plan_shards(list(reversed(ids)), 100, 250)
    assert [len(v) for _, v in plan] == [2, 2, 2, 1] and [n for n, _ in plan][-1] == "shard-00003"
    assert [len(v) for _, v in plan_shards(ids, 100, 1)] == [1] * 7  # one video per shard at least


# ----------------------------------------------------------------------------- real renders


@pytest.mark.render
def test_shard_set_has_the_models_shapes(shards):
    out, summary = shards
    assert summary.videos == data.NUM_VIDEOS and summary.shards == 3 and summary.shards_written == 3
    assert summary.records_per_task == {t: data.NUM_VIDEOS for t in sorted(TASKS)}
    assert summary.vae_id == CODEC_ID and summary.bytes > 0 and summary.videos_per_second > 0
    assert "videos/s" in summary.lines()[0]
    s = ShardSet.open(out)
    assert s.index["num_records"] == 3 * N and s.index["preprocess"]["num_frames"] == 9
    assert (out / "prompts.npz").is_file() and s.index["prompts"]["encoder"] == "builtin-hash-v1"
    for rec in s.records("array_record"):
        assert rec.arrays["rgb_latents"].shape == (16, 3, 8, 12)  # 9 frames -> 3 latent frames, 64x96 -> 8x12
        assert rec.arrays["rgb_latents"].dtype == np.float16
        if rec.task in DENSE_TASKS:
            assert rec.arrays["target_latents"].shape == (16, 3, 8, 12)
            truth = pxl.decode_truth(rec.task, rec.arrays["target_pixels"], rec.arrays["pixel_valid"])
            assert truth["target"].shape == (9, 64, 96, 3) and truth["valid"].shape == (9, 64, 96)
            # compact: the compressed truth is a fraction of its raw uint8 / float16 size
            raw = 9 * 64 * 96 * (2 if rec.task in ("depth", "human_depth") else 3)
            assert rec.arrays["target_pixels"].size < 0.5 * raw
        else:
            assert rec.arrays["target_latents"].size == 0 and rec.arrays["target_pixels"].size == 0
        assert rec.arrays["keypoints_2d"].shape == (9, 24, 2) and rec.arrays["keypoints_3d"].shape == (9, 24, 3)
        assert rec.arrays["camera_k"].shape == (9, 3, 3) and rec.arrays["camera_rt"].shape == (9, 3, 4)
        assert rec.vae_id == CODEC_ID and rec.prompt_id == rec.task


@pytest.mark.render
def test_too_few_frames_is_a_one_line_error_naming_the_video(rendered, tmp_path):
    with pytest.raises(UserError) as err:
        preprocess(rendered, tmp_path / "s", num_frames=13, width=96, height=64, workers=0, progress=False)
    msg = str(err.value)
    assert "v000000" in msg and "9 frames" in msg and "need 13" in msg and "\n" not in msg
    assert not (tmp_path / "s").exists()  # refused before any work
    # resampling: 5 frames at 12 fps from a 24 fps video take every other frame
    clip = load_clip(video(rendered), PreprocessConfig(num_frames=5, fps=12, width=96, height=64))
    assert clip.indices.tolist() == [0, 2, 4, 6, 8]


@pytest.mark.render
def test_cameras_labels_and_images_stay_consistent(rendered):
    src = video(rendered)
    clip = load_clip(src, CFG)
    ann = read_annotations(src / "annotations.npz")
    crop = geo.cover_crop(256, 160, 96, 64)
    assert crop.x0 == pytest.approx(3.2) and crop.scale == pytest.approx(0.4)
    k, rt = clip.arrays["camera_k"].astype(np.float64), clip.arrays["camera_rt"].astype(np.float64)
    kp2 = clip.arrays["keypoints_2d"] * np.array([96, 64])
    for f in range(9):
        # world joints through the new K and the stored [R|t] land on the resized 2D joints
        uv, _ = project(k[f], rt[f, :, :3], rt[f, :, 3], ann["joints3d_world_smpl24"][f])
        assert np.abs(uv - kp2[f]).max() < 1e-3
        # and so do the camera-frame 3D keypoints of the record
        cam = clip.arrays["keypoints_3d"][f].astype(np.float64) @ k[f].T
        assert np.abs(cam[:, :2] / cam[:, 2:] - kp2[f]).max() < 1e-3
    # images: exact area filter of the source (checked against the dense reference filter)
    src_rgb = np.stack([outputs.read_frame(src, f, ("rgb",)).rgb for f in range(9)]).astype(np.float32) / 255
    assert np.abs(clip.rgb() - (geo.resize_area_reference(src_rgb, crop) * 2 - 1)).max() < 1e-5
    # the soft mask keeps the subject's area (coverage x scale^2), inside the crop window
    mask = (clip.target("mask")[..., 0] + 1) / 2
    src_mask = np.stack([outputs.read_frame(src, f, ("mask",)).mask for f in range(9)])
    window = src_mask[:, :, 8:248]  # the crop keeps source columns [3.2, 243.2) / 0.4 = [8, 248)
    assert mask.sum() == pytest.approx(window.sum() * 0.16, rel=1e-4)
    # labels: nearest neighbour - parts are source parts (never a blend), canonical is 0 off the body
    iuv = clip.target("iuv")
    part = np.round((iuv[..., 0] + 1) / 2 * 24)
    assert np.allclose((iuv[..., 0] + 1) / 2 * 24, part, atol=1e-5)
    src_parts = set(np.unique(np.stack([outputs.read_frame(src, f, ("iuv",)).part for f in range(9)])).tolist())
    assert set(np.unique(part).astype(int).tolist()) <= src_parts and len(src_parts) > 5
    can = clip.target("canonical")
    assert np.all(can[part == 0] == -1.0)
    normals = clip.target("normals")
    body = part > 0
    assert np.abs(np.linalg.norm(normals[body], axis=-1) - 1).max() < 2e-3  # unit: not averaged
    depth = clip.target("depth")
    assert depth.min() >= -1 and depth.max() == 1.0 and np.all(depth[..., 0] == depth[..., 2])
    # human-only tasks: the person's pixels (part > 0) carry the truth, the background holds "no value"
    hd, hd_valid, metres = clip.truth("human_depth")
    assert np.array_equal(hd_valid, body & (metres > 0)) and body.sum() > 100
    assert np.all(hd[~body] == -1.0) and hd[body].max() == 1.0 and hd[body].min() == -1.0
    d_all, d_valid, _ = clip.truth("depth")
    assert d_valid.sum() > hd_valid.sum()  # the scene has more depth than the person
    # both are the same metric disparity under two per-clip normalisations: affine in each other on the person
    x, y = hd[..., 0][body].astype(np.float64), d_all[..., 0][body].astype(np.float64)
    slope, offset = np.polyfit(x, y, 1)
    assert slope > 0 and np.abs(y - (slope * x + offset)).max() < 5e-3
    hn, hn_valid, _ = clip.truth("human_normals")
    assert np.all(hn[~body] == 0.0) and np.array_equal(hn[body], normals[body]) and np.array_equal(hn_valid, body)
    _, m_valid, _ = clip.truth("mask")
    assert m_valid.all()
    # the pixel truth round trip: metric depth within float16 precision, the rest within 1/255
    for task in ("depth", "human_depth", "normals", "mask"):
        target, valid, stored = clip.truth(task)
        back = pxl.decode_truth(task, **pxl.encode_truth(task, stored, valid))
        assert np.array_equal(back["valid"], valid), task
        if "depth" in back:
            assert np.abs(back["depth"][valid] - stored[valid]).max() <= 2e-3 * stored[valid].max()
            assert np.abs(back["target"] - target).max() < 0.02
        else:
            assert np.abs(back["target"] - target).max() <= 1 / 127.5 / 2 + 1e-6
    # visible joints fall on the subject in the resized mask
    vis = clip.arrays["keypoints_visibility"] == 0
    px = np.clip(np.floor(kp2).astype(int), 0, [95, 63])
    on = np.array([mask[f, px[f, j, 1], px[f, j, 0]] for f, j in zip(*np.nonzero(vis))])
    assert vis.sum() > 50 and (on > 0).mean() > 0.9
    # joints the crop cut off are marked outside
    outside = (kp2[..., 0] < 0) | (kp2[..., 0] >= 96) | (kp2[..., 1] < 0) | (kp2[..., 1] >= 64)
    assert np.all(clip.arrays["keypoints_visibility"][outside] == 1)


@pytest.mark.render
def test_records_round_trip_bit_exact_and_are_reproducible(shards, rendered):
    out, _ = shards
    s = ShardSet.open(out)
    from_pq = list(s.records("parquet", verify=True))
    from_ar = list(s.records("array_record", verify=True))
    assert len(from_pq) == len(from_ar) == 3 * N
    for a, b in zip(from_pq, from_ar):
        same_record(a, b)
    assert [(r.video_id, r.task) for r in from_ar[:N]] == [("v000000", t) for t in TASKS]
    # the same video preprocessed again, in this process without Ray, gives the same bytes
    again = video_records(video(rendered), PreprocessConfig(num_frames=9, fps=24, width=96, height=64), DCTCodec())
    for a, b in zip(again, from_ar[:N]):
        same_record(a, b)
    # stage-1-only preprocessing: the same latents, no pixel truth, a fraction of the bytes
    lean = video_records(
        video(rendered), PreprocessConfig(num_frames=9, fps=24, width=96, height=64, pixel_targets=False), DCTCodec()
    )
    assert all(r.arrays["target_pixels"].size == 0 for r in lean)
    assert all(np.array_equal(a.arrays["target_latents"], b.arrays["target_latents"]) for a, b in zip(lean, again))
    # provenance: the sha256 of each source file, as recorded in the video's DONE file
    done = json.loads((video(rendered) / "DONE").read_text())["files"]
    sums = json.loads(from_ar[0].source_checksums)  # the depth record
    assert {"annotations.npz", "metadata.json", "rgb/00000.webp", "depth/00008.tlz"} <= set(sums)
    assert all(done[name] == h for name, h in sums.items()) and not any(n.startswith("normal/") for n in sums)
    # the latents are the codec's: decoding gives back the clip (the DCT codec keeps smooth content)
    rgb = load_clip(video(rendered), CFG).rgb()
    dec = inspect.decode(DCTCodec(), from_ar[0].arrays["rgb_latents"])
    assert np.sqrt(np.mean((dec - rgb) ** 2)) < 0.15


@pytest.mark.render
def test_verify_names_the_record_holding_a_flipped_byte(shards, tmp_path):
    out, _ = shards
    assert inspect.verify(out).data["ok"]
    copy = tmp_path / "set"
    shutil.copytree(out, copy)
    ar = copy / "shard-00001.array_record"
    raw = bytearray(ar.read_bytes())
    raw[len(raw) // 3] ^= 0x04
    ar.write_bytes(bytes(raw))
    pqf = copy / "shard-00002.parquet"
    col = pq.ParquetFile(pqf).metadata.row_group(3).column(6)  # rgb_latents of record 3
    assert col.path_in_schema == "rgb_latents"
    raw = bytearray(pqf.read_bytes())
    raw[col.data_page_offset + col.total_compressed_size // 2] ^= 0x04
    pqf.write_bytes(bytes(raw))
    res = inspect.verify(copy)
    assert not res.data["ok"]
    rec_problems = [p for p in res.data["problems"] if " record " in p]
    ar_bad = [p for p in rec_problems if "shard-00001.array_record record" in p]
    assert len(ar_bad) == 1 and "(v000001/" in ar_bad[0], res.data["problems"]
    pq_bad = [p for p in rec_problems if "shard-00002.parquet record" in p]
    assert pq_bad == [p for p in pq_bad if f"record 3 (v000002/{TASKS[3]})" in p] and len(pq_bad) == 1, res.data[
        "problems"
    ]
    assert len(rec_problems) == 2  # nothing else is blamed
    assert any("shard-00001.array_record: file sha256 differs" in p for p in res.data["problems"])


@pytest.mark.render
def test_grain_reads_the_shards_with_a_global_shuffle(shards):
    out, _ = shards
    ds = grain_dataset(out, seed=7)
    order = [(r.video_id, r.task) for r in (ds[i] for i in range(len(ds)))]
    file_order = [(r.video_id, r.task) for r in ShardSet.open(out).records("array_record")]
    assert len(order) == 3 * N and sorted(order) == sorted(file_order) and order != file_order
    assert len({v for v, _ in order[:N]}) >= 2  # records of different shards interleave
    assert order == [(r.video_id, r.task) for r in (grain_dataset(out, seed=7)[i] for i in range(3 * N))]
    hosts = [grain_dataset(out, seed=7, shard_index=h, shard_count=2) for h in range(2)]
    seen = [(r.video_id, r.task) for h in hosts for r in (h[i] for i in range(len(h)))]
    assert sorted(seen) == sorted(order)
    # the trainer's reader accepts the records
    from model.data import inspect_shards, record_to_example

    spec = inspect_shards(out)
    assert spec.latent_shape == (3, 8, 12, 16) and spec.num_frames == 9 and spec.num_keypoints == 24
    assert spec.pixel_shape == (9, 64, 96) and spec.keypoint_convention == "smpl24"
    ex = record_to_example(ds[0], spec)
    assert ex["rgb"].shape == (3, 8, 12, 16) and ex["kp2d"].shape == (9, 24, 2) and "pixels" not in ex
    ex = record_to_example(ds[0], spec, pixels=True)
    assert ex["pixels"].shape == (9, 64, 96, 3) and ex["pixels"].dtype == np.float16
    assert ex["valid"].shape == (9, 64, 96) and (ex["valid"].any() == (ds[0].task in DENSE_TASKS))


@pytest.mark.render
def test_resume_redoes_only_the_unfinished_shard(shards, rendered, tmp_path):
    out, _ = shards
    copy = tmp_path / "set"
    shutil.copytree(out, copy)
    files = sorted(p for p in copy.glob("shard-*") if p.is_file())
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    old_index = json.loads((copy / "index.json").read_text())
    (copy / "shard-00001.json").unlink()  # shard 1 is now unfinished ...
    (copy / "shard-00001.parquet").write_bytes(b"half a shard")  # ... and its Parquet file is partial
    summary = preprocess(rendered, copy, workers=2, **data.SETTINGS)
    assert summary.shard_names_written == ["shard-00001"] and summary.shards_skipped == 2
    assert summary.videos_processed == 1 and summary.partial_files_removed == 2
    for p in files:
        st = p.stat()
        if p.name.startswith("shard-00001"):
            assert p.read_bytes() == (out / p.name).read_bytes(), f"{p.name} differs from the first run"
        else:
            assert (st.st_ino, st.st_mtime_ns) == before[p.name][:2], f"{p.name} was rewritten"
    assert json.loads((copy / "index.json").read_text())["content_sha256"] == old_index["content_sha256"]
    # a finished set is left alone; other settings are refused
    assert preprocess(rendered, copy, workers=0, **data.SETTINGS).shards_written == 0
    with pytest.raises(UserError, match="another settings"):
        preprocess(rendered, copy, workers=0, **{**data.SETTINGS, "width": 128})


@pytest.mark.render
def test_parquet_is_readable_by_pyarrow_duckdb_and_hf_datasets(shards, tmp_path):
    out, _ = shards
    first = next(ShardSet.open(out).records("array_record"))
    table = pq.read_table(sorted(out.glob("*.parquet")))
    assert table.num_rows == 3 * N
    row = table.slice(0, 1).to_pylist()[0]
    arr = np.frombuffer(row["rgb_latents"], row["rgb_latents_dtype"]).reshape(row["rgb_latents_shape"])
    assert arr.tobytes() == first.arrays["rgb_latents"].tobytes()

    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install duckdb)")
    con = duckdb.connect()
    glob = str(out / "*.parquet")
    counts = dict(con.execute(f"SELECT task, count(*) FROM read_parquet('{glob}') GROUP BY task").fetchall())
    assert counts == {t: 3 for t in TASKS}
    (blob,) = con.execute(
        f"SELECT rgb_latents FROM read_parquet('{out / 'shard-00000.parquet'}') WHERE task = 'depth'"
    ).fetchone()
    assert bytes(blob) == first.arrays["rgb_latents"].tobytes()

    datasets = pytest.importorskip("datasets", reason="HF datasets is not installed (pip install datasets)")
    ds = datasets.load_dataset(
        "parquet",
        data_files=sorted(str(p) for p in out.glob("*.parquet")),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert (
        len(ds) == 3 * N
        and ds[0]["video_id"] == "v000000"
        and ds[0]["rgb_latents"] == first.arrays["rgb_latents"].tobytes()
    )


def test_preprocess_defaults_to_the_renders_own_video_settings(rendered, tmp_path):
    """No --num-frames/--fps/--width/--height: the preview render (256x160, 9 frames, 24 fps) is kept as made,
    not cover-cropped to the paper's 832x480 or refused."""
    from thfm_synth.preprocess.pipeline import render_video_settings
    from thfm_synth.preprocess.video import VideoSource

    videos = [VideoSource.open(video(rendered, i)) for i in range(data.NUM_VIDEOS)]
    assert render_video_settings(videos) == {"num_frames": 9, "fps": 24.0, "width": 256, "height": 160}
    out = tmp_path / "s"
    preprocess(video(rendered, 0), out, workers=0, progress=False, prompt_dim=32)
    cfg = json.loads((out / "index.json").read_text())["preprocess"]
    assert (cfg["num_frames"], cfg["fps"], cfg["width"], cfg["height"]) == (9, 24.0, 256, 160)
    # one setting asked for, the others still the render's
    preprocess(video(rendered, 0), tmp_path / "s2", workers=0, progress=False, prompt_dim=32, width=128, height=80)
    cfg = json.loads((tmp_path / "s2" / "index.json").read_text())["preprocess"]
    assert (cfg["num_frames"], cfg["width"], cfg["height"]) == (9, 128, 80)
