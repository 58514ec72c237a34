"""THFM model: keypoint tokens (shapes, T -> T' temporal interpolation, learnable RoPE positions that
receive gradients), task selection by prompt, -v output, FLOP count, WAN weight loading."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from model.thfm import (
    KEYPOINT_TASKS,
    TASK_INDEX,
    TASKS,
    THFM,
    THFMConfig,
    build_thfm,
    dit_config,
    keypoint_positions,
    prompt_array,
    rope_from_positions,
    thfm_flops,
)
from model.wan import WanTransformer3D, dit_flops, save_wan_transformer
from model.wan.rope import rope_tables
from model.prompts import builtin_table

T, K, TEXT_DIM = 9, 5, 32
LAT = (3, 4, 6, 16)  # (T', H', W', C): patch grid 3 x 2 x 3


def make_cfg():
    return THFMConfig(dit=dit_config("tiny", latent_channels=16, text_dim=TEXT_DIM), num_frames=T, num_keypoints=K)


@pytest.fixture(scope="module")
def model():
    prompts = prompt_array(builtin_table(dim=TEXT_DIM, tokens=4).embeddings, TEXT_DIM)
    return build_thfm(make_cfg(), prompts, seed=0)


def test_keypoint_temporal_positions_interpolate_frames_onto_latent_frames():
    pos = np.asarray(keypoint_positions(T, 3, (2, 3), jnp.full((T, 2), 0.5)))
    np.testing.assert_allclose(pos[:, 0], np.arange(T) / 4.0, atol=0)  # 9 frames -> 3 latent frames
    np.testing.assert_allclose(pos[:, 1:], np.tile([0.5, 1.0], (T, 1)))
    # 81 frames -> 21 latent frames: frame 4j sits exactly on latent frame j, endpoints match
    p81 = np.asarray(keypoint_positions(81, 21, (30, 52), jnp.zeros((81, 2))))[:, 0]
    assert p81[0] == 0 and p81[-1] == 20 and np.allclose(p81[::4], np.arange(21))
    assert np.all(np.diff(p81) > 0)


def test_keypoint_rope_matches_video_rope_at_grid_points():
    head_dim, grid = 12, (3, 2, 3)
    cos, sin = rope_tables(head_dim, grid)
    # frame 4j with spatial (r, c) -> same angles as the video token (j, r, c)
    rows = []
    spatial = np.zeros((T, 2), np.float32)
    for i in range(T):
        r, c = i % 2, i % 3
        spatial[i] = (r / (grid[1] - 1), c / (grid[2] - 1))
    pos = keypoint_positions(T, grid[0], grid[1:], jnp.asarray(spatial))
    kcos, ksin = (np.asarray(a) for a in rope_from_positions(head_dim, pos))
    for i in range(0, T, 4):
        j, r, c = i // 4, i % 2, i % 3
        rows.append(j * 6 + r * 3 + c)
        np.testing.assert_allclose(kcos[i], cos[j * 6 + r * 3 + c], atol=1e-5)
        np.testing.assert_allclose(ksin[i], sin[j * 6 + r * 3 + c], atol=1e-5)
    assert len(rows) == 3


def test_forward_shapes_task_prompt_and_gradients_reach_keypoint_positions(model):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, *LAT))
    tasks = jnp.asarray([TASK_INDEX["depth"], TASK_INDEX["keypoints_3d"]], jnp.int32)

    @jax.jit
    def run(params, x, tasks):
        def loss(p):
            out = nnx.merge(graphdef, p, rest)(x, tasks)
            total = sum(jnp.sum(out[k] ** 2) for k in ("keypoints_2d", "keypoints_3d", "latents"))
            return total, out

        return jax.value_and_grad(loss, has_aux=True)(params)

    (_, out), grads = run(params, x, tasks)
    assert out["latents"].shape == (2, *LAT) and out["latents"].dtype == jnp.float32
    assert out["keypoints_2d"].shape == (2, T, K, 2) and out["keypoints_3d"].shape == (2, T, K, 3)
    g_pos = np.asarray(grads["kp_spatial"][...])
    g_tok = np.asarray(grads["kp_tokens"][...])
    assert g_pos.shape == (T, 2) and np.all(np.isfinite(g_pos)) and np.abs(g_pos).max() > 0
    assert np.abs(g_pos).min() > 0, "every frame's learnable spatial position gets a gradient"
    assert np.abs(g_tok).max() > 0
    # same clip, other prompt -> other prediction (the task is chosen by the prompt only)
    (_, out2), _ = run(params, x, tasks[::-1])
    assert not np.allclose(np.asarray(out["latents"][0]), np.asarray(out2["latents"][0]))
    # channels-first input gives the same result in channels-first layout
    m = nnx.merge(graphdef, params, rest)
    cf = m(jnp.moveaxis(x, -1, 1), tasks, channels_last=False)["latents"]
    np.testing.assert_allclose(np.asarray(jnp.moveaxis(cf, 1, -1)), np.asarray(out["latents"]), atol=1e-5)


def test_output_is_negated_dit_velocity(model):
    """The prediction is -(DiT output v): shifting proj_out's bias by +1 moves every latent by -1."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, *LAT))
    tasks = jnp.asarray([0], jnp.int32)
    fwd = jax.jit(lambda p: nnx.merge(graphdef, p, rest)(x, tasks)["latents"])
    base = fwd(params)
    p2 = jax.tree.map(lambda a: a, params)
    p2["dit"]["proj_out"]["bias"] = p2["dit"]["proj_out"]["bias"] + 1.0
    moved = fwd(p2)
    np.testing.assert_allclose(np.asarray(moved - base), -1.0, atol=1e-5)


@pytest.mark.parametrize("scan_layers", [True, False])
def test_token_mask_hides_keypoint_tokens_from_dense_outputs(scan_layers):
    """Attention-mask property: with the token mask, changing the keypoint tokens leaves the dense
    (latent) outputs unchanged; without it they change. Keypoint outputs see the video either way."""
    prompts = prompt_array(builtin_table(dim=TEXT_DIM, tokens=4).embeddings, TEXT_DIM)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, *LAT))
    x2 = x.at[:, 0].add(1.0)
    tasks = jnp.asarray([TASK_INDEX["depth"], TASK_INDEX["normals"]], jnp.int32)
    outs = {}
    for mask in (True, False):
        cfg = THFMConfig(
            dit=dit_config("tiny", latent_channels=16, text_dim=TEXT_DIM),
            num_frames=T,
            num_keypoints=K,
            token_mask=mask,
        )
        m = build_thfm(cfg, prompts, seed=0, scan_layers=scan_layers)
        graphdef, params, rest = nnx.split(m, nnx.Param, ...)
        fwd = jax.jit(lambda p, v: nnx.merge(graphdef, p, rest)(v, tasks))
        base = fwd(params, x)
        p2 = jax.tree.map(lambda a: a, params)
        p2["kp_tokens"] = p2["kp_tokens"] + 3.0  # other keypoint tokens
        p2["kp_spatial"] = p2["kp_spatial"] * 0.0  # and other keypoint positions
        moved = fwd(p2, x)
        outs[mask] = (
            np.abs(np.asarray(moved["latents"] - base["latents"])).max(),
            np.abs(np.asarray(fwd(params, x2)["keypoints_3d"] - base["keypoints_3d"])).max(),
        )
    (dense_on, kp_on), (dense_off, kp_off) = outs[True], outs[False]
    assert dense_on == 0.0, "with the token mask the video tokens must not see the keypoint tokens"
    assert dense_off > 1e-4, "without the mask the dense output depends on the keypoint tokens"
    assert kp_on > 1e-4 and kp_off > 1e-4  # keypoint tokens still attend to the video
    cfg = THFMConfig(
        dit=dit_config("tiny", latent_channels=16, text_dim=TEXT_DIM), num_frames=T, num_keypoints=K, token_mask=True
    )
    assert THFMConfig.from_dict(cfg.to_dict()).token_mask and "token_mask" not in make_cfg().to_dict()
    f_on, f_off = thfm_flops(cfg, 1, 3, 4, 6, 4), thfm_flops(make_cfg(), 1, 3, 4, 6, 4)
    assert f_on["self_attn_core"] < f_off["self_attn_core"]


def test_flops_add_keypoint_tokens_to_dit_count():
    cfg = make_cfg()
    f = thfm_flops(cfg, 2, 3, 4, 6, text_len=4)
    d = dit_flops(cfg.dit, 2, 3, 4, 6, text_len=4)
    assert f["tokens"] == d["tokens"] + 2 * T
    assert f["total"] > d["total"] and f["patch_embedding"] == d["patch_embedding"]
    l_ = 3 * 2 * 3  # patch grid tokens per clip
    n = l_ + T
    assert f["self_attn_core"] == pytest.approx(d["self_attn_core"] * (n / l_) ** 2)


def test_prompt_table_and_sizes():
    tab = builtin_table(dim=TEXT_DIM, tokens=4).embeddings
    arr = prompt_array(tab, TEXT_DIM, length=6)
    assert arr.shape == (len(TASKS), 6, TEXT_DIM) and np.all(arr[:, 4:] == 0)
    with pytest.raises(ValueError, match="text_dim"):
        prompt_array(tab, 4096)
    assert dit_config("wan21_1_3b").text_dim == 4096 and dit_config("tiny", latent_channels=16).in_channels == 16
    assert set(KEYPOINT_TASKS) == {"keypoints_2d", "keypoints_3d"}


def test_pretrained_wan_weights_load_into_the_dit(tmp_path):
    cfg = make_cfg()
    dit = WanTransformer3D(cfg.dit, rngs=nnx.Rngs(7))
    path = save_wan_transformer(dit, tmp_path / "dit" / "model.safetensors")
    prompts = prompt_array(builtin_table(dim=TEXT_DIM, tokens=4).embeddings, TEXT_DIM)
    m = build_thfm(cfg, prompts, seed=3, pretrained=str(path))
    want = nnx.to_pure_dict(nnx.state(dit, nnx.Param))
    got = nnx.to_pure_dict(nnx.state(m.dit, nnx.Param))
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert isinstance(m, THFM) and m.kp_tokens.shape == (T, cfg.dit.inner_dim)
