"""Loading WAN 2.1 VAE weights: diffusers and original Wan-AI layouts, safetensors and .pth, strict errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("flax")

from model.vae.config import TINY_VAE_CONFIG, WAN21_VAE_CONFIG, WanVAEConfig  # noqa: E402
from model.vae.loading import (
    WeightLoadError,
    detect_layout,
    diffusers_to_original,
    export_state_dict,  # noqa: E402
    load_wan_vae,
    original_to_diffusers,
    save_state_dict,
)
from model.vae.wan_vae import RANDOM_INIT_ID, WanVAE  # noqa: E402

H, W = 32, 48  # same clip shape as the parity tests, so the compiled chunk steps are shared


@pytest.fixture(scope="module")
def tiny():
    from flax import nnx

    return WanVAE(TINY_VAE_CONFIG, rngs=nnx.Rngs(7))


@pytest.fixture(scope="module")
def clip():
    return np.random.default_rng(3).uniform(-1, 1, (1, 3, 9, H, W)).astype(np.float32)


def test_original_layout_matches_diffusers_converter(tiny):
    """Our original-layout export, renamed by diffusers' own convert_wan_vae_to_diffusers, is our
    diffusers-layout export: an independent check of the rename table."""
    single_file_utils = pytest.importorskip("diffusers.loaders.single_file_utils")
    diff = export_state_dict(tiny, "diffusers")
    orig = export_state_dict(tiny, "original")
    converted = single_file_utils.convert_wan_vae_to_diffusers(dict(orig))
    assert set(converted) == set(diff)
    for k in diff:
        np.testing.assert_array_equal(converted[k], diff[k])
    assert original_to_diffusers(orig, TINY_VAE_CONFIG).keys() == diff.keys()
    assert diffusers_to_original(diff, TINY_VAE_CONFIG).keys() == orig.keys()


def test_original_layout_names_by_hand(tiny):
    """A few names of the original Wan2.1_VAE.pth, written out from the Wan-AI module tree."""
    orig = export_state_dict(tiny, "original")
    b = TINY_VAE_CONFIG.base_dim
    expected_shapes = {
        "encoder.conv1.weight": (b, 3, 3, 3, 3),
        "encoder.downsamples.0.residual.0.gamma": (b, 1, 1, 1),
        "encoder.downsamples.0.residual.2.weight": (b, b, 3, 3, 3),
        "encoder.downsamples.3.shortcut.weight": (2 * b, b, 1, 1, 1),  # stage 1's first resnet widens
        "encoder.downsamples.2.resample.1.weight": (b, b, 3, 3),  # downsample2d
        "encoder.downsamples.5.time_conv.weight": (2 * b, 2 * b, 3, 1, 1),  # downsample3d
        "encoder.middle.1.to_qkv.weight": (12 * b, 4 * b, 1, 1),
        "encoder.middle.1.norm.gamma": (4 * b, 1, 1),
        "encoder.head.2.weight": (32, 4 * b, 3, 3, 3),
        "conv1.weight": (32, 32, 1, 1, 1),
        "conv2.weight": (16, 16, 1, 1, 1),
        "decoder.conv1.weight": (4 * b, 16, 3, 3, 3),
        "decoder.upsamples.3.time_conv.weight": (8 * b, 4 * b, 3, 1, 1),  # upsample3d doubles channels
        "decoder.upsamples.3.resample.1.weight": (2 * b, 4 * b, 3, 3),
        "decoder.upsamples.4.shortcut.weight": (4 * b, 2 * b, 1, 1, 1),
        "decoder.upsamples.11.resample.1.weight": (b, 2 * b, 3, 3),  # upsample2d
        "decoder.upsamples.14.residual.6.weight": (b, b, 3, 3, 3),
        "decoder.head.0.gamma": (b, 1, 1, 1),
        "decoder.head.2.weight": (3, b, 3, 3, 3),
    }
    for k, shape in expected_shapes.items():
        assert orig[k].shape == shape, k
    assert "decoder.upsamples.15.residual.0.gamma" not in orig


@pytest.mark.parametrize(
    "layout,suffix",
    [("diffusers", ".safetensors"), ("original", ".pth"), ("original", ".safetensors"), ("diffusers", ".pth")],
)
def test_both_layouts_load_to_identical_outputs(tiny, clip, tmp_path, layout, suffix):
    if suffix == ".pth":
        pytest.importorskip("torch")
    path = save_state_dict(export_state_dict(tiny, layout), tmp_path / f"vae{suffix}")
    loaded = load_wan_vae(path, TINY_VAE_CONFIG)
    assert loaded.vae_id.startswith("wan2.1-vae:sha256:") and loaded.vae_id != RANDOM_INIT_ID
    ref_mean, ref_logvar = tiny.encode(clip)
    mean, logvar = loaded.encode(clip)
    np.testing.assert_array_equal(np.asarray(mean), np.asarray(ref_mean))
    np.testing.assert_array_equal(np.asarray(logvar), np.asarray(ref_logvar))
    np.testing.assert_array_equal(np.asarray(loaded.decode(mean)), np.asarray(tiny.decode(mean)))


def test_diffusers_folder_uses_its_config_json(tiny, tmp_path):
    folder = tmp_path / "pipeline" / "vae"
    folder.mkdir(parents=True)
    save_state_dict(export_state_dict(tiny), folder / "diffusion_pytorch_model.safetensors")
    (folder / "config.json").write_text(
        json.dumps(
            {
                "_class_name": "AutoencoderKLWan",
                "_diffusers_version": "0.33.0",
                **TINY_VAE_CONFIG.to_dict(),
                "is_residual": False,
                "patch_size": None,
                "scale_factor_temporal": 4,
            }
        )
    )
    loaded = load_wan_vae(tmp_path / "pipeline")  # pipeline root: finds vae/
    assert loaded.config == TINY_VAE_CONFIG


def test_config_from_official_diffusers_json():
    cfg = WanVAEConfig.from_dict(
        {
            "_class_name": "AutoencoderKLWan",
            "attn_scales": [],
            "base_dim": 96,
            "dim_mult": [1, 2, 4, 4],
            "dropout": 0.0,
            "num_res_blocks": 2,
            "temperal_downsample": [False, True, True],
            "z_dim": 16,
            "latents_mean": list(WAN21_VAE_CONFIG.latents_mean),
            "latents_std": list(WAN21_VAE_CONFIG.latents_std),
        }
    )
    assert cfg == WAN21_VAE_CONFIG
    with pytest.raises(NotImplementedError, match="WAN 2.2"):
        WanVAEConfig.from_dict({"is_residual": True, "z_dim": 48})


def _one_line(excinfo, *fragments):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for f in fragments:
        assert f in msg, msg


def test_missing_key_error(tiny, tmp_path):
    sd = export_state_dict(tiny)
    del sd["decoder.up_blocks.1.resnets.0.conv_shortcut.weight"]
    path = save_state_dict(sd, tmp_path / "missing.safetensors")
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(path, TINY_VAE_CONFIG)
    _one_line(e, str(path), "missing key 'decoder.up_blocks.1.resnets.0.conv_shortcut.weight'")


def test_unexpected_key_error_names_original_key(tiny, tmp_path):
    pytest.importorskip("torch")
    sd = export_state_dict(tiny, "original")
    sd["decoder.upsamples.15.residual.0.gamma"] = np.ones((8, 1, 1, 1), np.float32)
    path = save_state_dict(sd, tmp_path / "Wan2.1_VAE.pth")
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(path, TINY_VAE_CONFIG)
    _one_line(e, str(path), "unexpected key 'decoder.upsamples.15.residual.0.gamma'")


def test_unexpected_diffusers_key_error(tiny, tmp_path):
    sd = export_state_dict(tiny)
    sd["encoder.extra.weight"] = np.zeros(3, np.float32)
    path = save_state_dict(sd, tmp_path / "extra.safetensors")
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(path, TINY_VAE_CONFIG)
    _one_line(e, str(path), "unexpected key 'encoder.extra.weight'")


def test_shape_mismatch_error_when_config_is_wrong(tiny, tmp_path):
    path = save_state_dict(export_state_dict(tiny), tmp_path / "tiny.safetensors")
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(path, WanVAEConfig(base_dim=16))
    _one_line(e, str(path), "shape mismatch for 'decoder.conv_in.bias': checkpoint (32,), model (64,)")


def test_bad_files(tmp_path):
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(tmp_path / "nope.safetensors")
    _one_line(e, "nope.safetensors", "no such weights file")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(tmp_path / "w.npz")
    _one_line(e, "w.npz", "unknown weights format")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightLoadError) as e:
        load_wan_vae(tmp_path / "junk.safetensors")
    _one_line(e, "junk.safetensors", "cannot read")
    with pytest.raises(WeightLoadError) as e:
        detect_layout(["model.layer.weight"], "x.pth")
    _one_line(e, "x.pth", "not a WAN 2.1 VAE checkpoint")
