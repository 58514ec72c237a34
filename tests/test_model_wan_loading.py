"""Checkpoint loading for the JAX WAN DiT: diffusers and original Wan-AI key layouts, single and
sharded safetensors, bf16 files, export round trips, and one-line errors naming file and key."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
nnx = pytest.importorskip("flax.nnx")
safetensors_torch = pytest.importorskip("safetensors.torch")
import jax.numpy as jnp  # noqa: E402

from model.wan import (  # noqa: E402
    WAN_TINY,
    WanCheckpointError,
    WanTransformer3D,
    diffusers_state_dict,
    diffusers_to_original_key,
    load_params,
    load_wan_transformer,
    original_to_diffusers_key,
    save_wan_transformer,
    to_original_state_dict,
)

CFG = WAN_TINY


def original_config_json(cfg):
    """An original Wan-AI style config.json for cfg."""
    return {
        "_class_name": "WanModel",
        "model_type": "t2v",
        "dim": cfg.inner_dim,
        "num_heads": cfg.num_attention_heads,
        "ffn_dim": cfg.ffn_dim,
        "freq_dim": cfg.freq_dim,
        "in_dim": cfg.in_channels,
        "out_dim": cfg.out_channels,
        "num_layers": cfg.num_layers,
        "text_dim": cfg.text_dim,
        "eps": cfg.eps,
        "text_len": 512,
    }


@pytest.fixture(scope="module")
def ref():
    torch.manual_seed(7)
    m = diffusers.WanTransformer3DModel(**CFG.to_diffusers_dict()).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module")
def io(ref):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, CFG.in_channels, 2, 4, 6, generator=g)
    ts = torch.tensor([421.0])
    ctx = torch.randn(1, 6, CFG.text_dim, generator=g)
    with torch.no_grad():
        want = ref(x, ts, ctx, return_dict=False)[0].numpy()
    return (jnp.asarray(x.numpy()), jnp.asarray(ts.numpy()), jnp.asarray(ctx.numpy())), want


def forward(model, args):
    return np.asarray(nnx.jit(lambda m, *a: m(*a))(model, *args))


@pytest.fixture(scope="module")
def diffusers_dir(ref, tmp_path_factory):
    d = tmp_path_factory.mktemp("diffusers_layout")
    ref.save_pretrained(d / "transformer")  # config.json + diffusion_pytorch_model.safetensors
    return d / "transformer"


@pytest.fixture(scope="module")
def original_dir(ref, tmp_path_factory):
    d = tmp_path_factory.mktemp("original_layout")
    sd = {k: v.contiguous() for k, v in to_original_state_dict(ref.state_dict()).items()}
    safetensors_torch.save_file(sd, str(d / "diffusion_pytorch_model.safetensors"))
    (d / "config.json").write_text(json.dumps(original_config_json(CFG)))
    return d


@pytest.fixture(scope="module")
def loaded_diffusers(diffusers_dir, io):
    model = load_wan_transformer(diffusers_dir)
    return model, forward(model, io[0])


def test_diffusers_layout_dir_matches_reference(loaded_diffusers, io):
    _, out = loaded_diffusers
    err = float(np.abs(out - io[1]).max())
    print(f"max abs err (diffusers-layout file): {err:.3e}")
    assert err <= 1e-5


def test_diffusers_pipeline_folder_finds_transformer_subfolder(diffusers_dir, loaded_diffusers, io):
    model = load_wan_transformer(diffusers_dir.parent)  # e.g. Wan2.1-T2V-1.3B-Diffusers/
    np.testing.assert_array_equal(forward(model, io[0]), loaded_diffusers[1])


def test_original_layout_gives_identical_outputs(original_dir, loaded_diffusers, io):
    model = load_wan_transformer(original_dir)  # config from the original-format config.json
    assert model.config == CFG.replace(rope_max_seq_len=1024)  # original configs have no rope_max_seq_len
    np.testing.assert_array_equal(forward(model, io[0]), loaded_diffusers[1])


def test_sharded_checkpoint_via_index_and_dir(ref, tmp_path, loaded_diffusers, io):
    ref.save_pretrained(tmp_path, max_shard_size="20KB")
    index = next(tmp_path.glob("*.safetensors.index.json"))
    assert len(set(json.loads(index.read_text())["weight_map"].values())) > 1
    for src in (index, tmp_path):
        np.testing.assert_array_equal(forward(load_wan_transformer(src), io[0]), loaded_diffusers[1])


def test_rename_table_agrees_with_diffusers_converter(ref):
    """Our diffusers->original rename, fed to diffusers' own original->diffusers converter, is the identity."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    sd = ref.state_dict()
    orig = to_original_state_dict(sd)
    assert "head.modulation" in orig and "blocks.0.modulation" in orig and "blocks.0.norm3.weight" in orig
    assert "blocks.0.self_attn.q.weight" in orig and "time_projection.1.weight" in orig and "head.head.bias" in orig
    back = convert_wan_transformer_to_diffusers(dict(orig))
    assert set(back) == set(sd)
    assert all(back[k] is sd[k] for k in sd)
    for k in sd:
        assert original_to_diffusers_key(diffusers_to_original_key(k)) == k
        assert original_to_diffusers_key("model.diffusion_model." + diffusers_to_original_key(k)) == k
    # I2V names
    assert original_to_diffusers_key("blocks.2.cross_attn.k_img.weight") == "blocks.2.attn2.add_k_proj.weight"
    assert original_to_diffusers_key("blocks.2.cross_attn.norm_k_img.weight") == "blocks.2.attn2.norm_added_k.weight"
    assert original_to_diffusers_key("img_emb.proj.1.bias") == "condition_embedder.image_embedder.ff.net.0.proj.bias"


def test_comfy_prefix_and_bf16_file(ref, tmp_path):
    sd = {
        "model.diffusion_model." + k: v.to(torch.bfloat16).contiguous()
        for k, v in to_original_state_dict(ref.state_dict()).items()
    }
    path = tmp_path / "wan_comfy_bf16.safetensors"
    safetensors_torch.save_file(sd, str(path))
    model = load_wan_transformer(path, CFG)
    got = diffusers_state_dict(model)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(got[k], v.to(torch.bfloat16).float().numpy())


@pytest.mark.parametrize("layout", ["diffusers", "original"])
@pytest.mark.parametrize("scan_layers", [True, False])
def test_save_then_load_round_trip(ref, layout, scan_layers, tmp_path):
    model = load_params(
        nnx.eval_shape(lambda: WanTransformer3D(CFG, rngs=nnx.Rngs(0), scan_layers=scan_layers)), ref.state_dict()
    )
    path = save_wan_transformer(model, tmp_path / "ckpt.safetensors", layout=layout)
    back = load_wan_transformer(path, scan_layers=not scan_layers)  # config.json written beside it
    a, b = diffusers_state_dict(model), diffusers_state_dict(back)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    want = {k: v.numpy() for k, v in ref.state_dict().items()}
    assert all(np.array_equal(a[k], want[k]) for k in want)


def test_random_init_has_the_diffusers_parameter_set(ref):
    """A freshly initialised port (scan_layers) exports exactly diffusers' keys and shapes, with
    diffusers-like init of the scale_shift_tables (randn / sqrt(dim)) and distinct layers."""
    model = WanTransformer3D(CFG, rngs=nnx.Rngs(0))
    sd = diffusers_state_dict(model)
    want = ref.state_dict()
    assert {k: v.shape for k, v in sd.items()} == {k: tuple(v.shape) for k, v in want.items()}
    assert not np.array_equal(sd["blocks.0.attn1.to_q.weight"], sd["blocks.1.attn1.to_q.weight"])
    std = float(np.std(sd["blocks.0.scale_shift_table"]) * CFG.inner_dim**0.5)
    assert 0.5 < std < 1.5


# ------------------------------------------------------------------------------------ errors
def _one_line(e):
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _write(tmp_path, sd, name="ckpt.safetensors"):
    path = tmp_path / name
    safetensors_torch.save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def test_missing_key_names_file_and_key(ref, tmp_path):
    sd = to_original_state_dict(ref.state_dict())
    del sd["blocks.1.self_attn.q.weight"]
    path = _write(tmp_path, sd)
    with pytest.raises(WanCheckpointError) as e:
        load_wan_transformer(path, CFG)
    msg = _one_line(e)
    assert str(path) in msg and "missing key 'blocks.1.self_attn.q.weight'" in msg and "config" in msg


def test_wrong_shape_names_file_key_and_shapes(ref, tmp_path):
    sd = dict(ref.state_dict())
    sd["blocks.0.ffn.net.2.weight"] = torch.zeros(CFG.inner_dim, CFG.ffn_dim + 1)
    path = _write(tmp_path, sd)
    with pytest.raises(WanCheckpointError) as e:
        load_wan_transformer(path, CFG)
    msg = _one_line(e)
    assert str(path) in msg and "'blocks.0.ffn.net.2.weight'" in msg
    assert f"({CFG.inner_dim}, {CFG.ffn_dim + 1})" in msg and f"({CFG.inner_dim}, {CFG.ffn_dim})" in msg


def test_wrong_config_depth_is_reported(diffusers_dir):
    with pytest.raises(WanCheckpointError) as e:  # checkpoint has 2 layers, config 1
        load_wan_transformer(diffusers_dir, CFG.replace(num_layers=1))
    assert "unexpected key 'blocks.1." in _one_line(e)
    with pytest.raises(WanCheckpointError) as e:  # config 3 layers
        load_wan_transformer(diffusers_dir, CFG.replace(num_layers=3))
    assert "missing key 'blocks.2." in _one_line(e)


def test_unexpected_key_strict_and_lenient(ref, tmp_path, io, loaded_diffusers):
    sd = dict(ref.state_dict())
    sd["blocks.0.attn1.extra.weight"] = torch.zeros(3)
    sd["blocks.0.attn2.norm_added_q.weight"] = torch.zeros(3)  # ignored like diffusers does
    path = _write(tmp_path, sd)
    with pytest.raises(WanCheckpointError) as e:
        load_wan_transformer(path, CFG)
    msg = _one_line(e)
    assert str(path) in msg and "unexpected key 'blocks.0.attn1.extra.weight' (1 unexpected" in msg
    np.testing.assert_array_equal(forward(load_wan_transformer(path, CFG, strict=False), io[0]), loaded_diffusers[1])


def test_file_level_errors(ref, tmp_path, diffusers_dir):
    # no config next to the file
    path = _write(tmp_path, dict(ref.state_dict()))
    with pytest.raises(WanCheckpointError, match="no config.json.*pass config="):
        load_wan_transformer(path)
    # missing shard listed in an index
    idx = tmp_path / "diffusion_pytorch_model.safetensors.index.json"
    idx.write_text(json.dumps({"weight_map": {"patch_embedding.weight": "gone-00001.safetensors"}}))
    with pytest.raises(WanCheckpointError, match="gone-00001.safetensors.*missing"):
        load_wan_transformer(idx, CFG)
    # not a transformer checkpoint
    vae = _write(tmp_path, {"encoder.conv_in.weight": torch.zeros(2)}, "vae.safetensors")
    with pytest.raises(WanCheckpointError, match="neither a diffusers nor an original"):
        load_wan_transformer(vae, CFG)
    # not safetensors at all
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"0123456789")
    with pytest.raises(WanCheckpointError, match="convert .pth"):
        load_wan_transformer(bad, CFG)
    with pytest.raises(WanCheckpointError, match="no such file"):
        load_wan_transformer(tmp_path / "nope.safetensors", CFG)


# ------------------------------------------------------------------------------------ configs
WAN21_1_3B_DIFFUSERS_CONFIG = {  # Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer/config.json
    "_class_name": "WanTransformer3DModel",
    "_diffusers_version": "0.33.0.dev0",
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 8960,
    "freq_dim": 256,
    "image_dim": None,
    "in_channels": 16,
    "num_attention_heads": 12,
    "num_layers": 30,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 1024,
    "text_dim": 4096,
}
WAN21_1_3B_ORIGINAL_CONFIG = {  # Wan-AI/Wan2.1-T2V-1.3B config.json
    "_class_name": "WanModel",
    "_diffusers_version": "0.30.0",
    "dim": 1536,
    "eps": 1e-06,
    "ffn_dim": 8960,
    "freq_dim": 256,
    "in_dim": 16,
    "model_type": "t2v",
    "num_heads": 12,
    "num_layers": 30,
    "out_dim": 16,
    "text_len": 512,
}


def test_wan21_configs_and_parameter_counts_match_diffusers(tmp_path):
    from model.wan import WAN21_1_3B, WAN21_14B, WanTransformerConfig, num_params

    assert WanTransformerConfig.from_diffusers_dict(WAN21_1_3B_DIFFUSERS_CONFIG) == WAN21_1_3B
    (tmp_path / "config.json").write_text(json.dumps(WAN21_1_3B_ORIGINAL_CONFIG))
    assert WanTransformerConfig.from_json(tmp_path / "config.json") == WAN21_1_3B
    for cfg in (WAN21_1_3B, WAN21_14B):
        with torch.device("meta"):
            want = sum(p.numel() for p in diffusers.WanTransformer3DModel(**cfg.to_diffusers_dict()).parameters())
        assert num_params(nnx.eval_shape(lambda: WanTransformer3D(cfg, rngs=nnx.Rngs(0)))) == want
    assert num_params(nnx.eval_shape(lambda: WanTransformer3D(WAN21_1_3B, rngs=nnx.Rngs(0)))) == 1_418_996_800
