"""Frame-count and shape rules shared by the WAN VAE and the default codec (81 -> 21, 9 -> 3, 13 -> 4)."""

from __future__ import annotations

import numpy as np
import pytest

from model.vae.codec import DCTCodec
from model.vae.config import (
    TINY_VAE_CONFIG,
    WAN21_VAE_CONFIG,
    check_num_frames,
    latent_shape,
    num_latent_frames,
    num_video_frames,
)


@pytest.mark.parametrize("frames,latent", [(1, 1), (5, 2), (9, 3), (13, 4), (17, 5), (81, 21)])
def test_latent_frame_formula(frames, latent):
    assert num_latent_frames(frames) == latent == 1 + (frames - 1) // 4
    assert num_video_frames(latent) == frames


@pytest.mark.parametrize("frames", [0, 2, 4, 8, 10, 12, 80, 82])
def test_frame_counts_not_1_plus_4k_are_rejected(frames):
    with pytest.raises(ValueError, match=r"needs 1 \+ 4k frames"):
        check_num_frames(frames)


def test_latent_shape_of_the_wan_training_clip():
    assert latent_shape(81, 480, 832) == (16, 21, 60, 104)
    with pytest.raises(ValueError, match="multiples of 8"):
        latent_shape(81, 480, 830)


def test_official_config_factors_and_size():
    nnx = pytest.importorskip("flax.nnx")
    from model.vae.wan_vae import WanVAE, count_params

    assert (WAN21_VAE_CONFIG.temporal_factor, WAN21_VAE_CONFIG.spatial_factor, WAN21_VAE_CONFIG.z_dim) == (4, 8, 16)
    assert TINY_VAE_CONFIG.temporal_factor == 4 and TINY_VAE_CONFIG.spatial_factor == 8
    abstract = nnx.eval_shape(lambda: WanVAE(WAN21_VAE_CONFIG, rngs=nnx.Rngs(0)))
    torch = pytest.importorskip("torch")  # third-party reference (dev extra), never our own code
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):  # diffusers' default AutoencoderKLWan is the WAN 2.1 VAE
        want = sum(p.numel() for p in diffusers.AutoencoderKLWan().parameters())
    assert count_params(abstract) == want == 126_892_531


def test_codec_81_frames_to_21_latent_frames_and_back():
    codec = DCTCodec()
    video = np.zeros((1, 3, 81, 16, 24), np.float32)
    mean, logvar = codec.encode(video)
    assert mean.shape == logvar.shape == (1, 16, 21, 2, 3)
    assert codec.decode(mean).shape == (1, 3, 81, 16, 24)
    assert codec.latent_shape(81, 16, 24) == (16, 21, 2, 3)


@pytest.mark.parametrize("frames", [8, 10, 11])
def test_codec_rejects_bad_frame_counts(frames):
    with pytest.raises(ValueError, match=f"DCTCodec.encode: got {frames} frames"):
        DCTCodec().encode(np.zeros((1, 3, frames, 16, 16), np.float32))


def test_wan_vae_frame_rules_and_layouts():
    """The tiny WAN VAE: 81 -> 21 -> 81 frames, channels-last equals channels-first, clear errors."""
    nnx = pytest.importorskip("flax.nnx")
    from model.vae.wan_vae import WanVAE

    vae = WanVAE(TINY_VAE_CONFIG, rngs=nnx.Rngs(0))
    video = np.random.default_rng(0).uniform(-1, 1, (1, 3, 81, 32, 48)).astype(np.float32)
    mean, logvar = vae.encode(video)
    assert mean.shape == logvar.shape == (1, 16, 21, 4, 6)
    assert (1, *vae.latent_shape(81, 32, 48)) == mean.shape
    assert vae.latent_shape(81, 480, 832) == DCTCodec().latent_shape(81, 480, 832) == (16, 21, 60, 104)
    out = vae.decode(mean)
    assert out.shape == (1, 3, 81, 32, 48)
    assert float(np.abs(np.asarray(out)).max()) <= 1.0
    # channels-last in and out gives the same numbers (the 9-frame prefix is enough)
    mean_cl, _ = vae.encode(np.transpose(video[:, :, :9], (0, 2, 3, 4, 1)), channels_last=True)
    np.testing.assert_allclose(
        np.transpose(np.asarray(mean_cl), (0, 4, 1, 2, 3)), np.asarray(mean[:, :, :3]), rtol=0, atol=1e-6
    )
    assert vae.decode(mean_cl, channels_last=True).shape == (1, 9, 32, 48, 3)
    # normalisation with the config's latents_mean/std round-trips
    np.testing.assert_allclose(
        np.asarray(vae.denormalize_latents(vae.normalize_latents(mean))), np.asarray(mean), atol=1e-5
    )
    with pytest.raises(ValueError, match="WanVAE.encode: got 10 frames"):
        vae.encode(video[:, :, :10])
    with pytest.raises(ValueError, match="multiples of 8"):
        vae.encode(video[:, :, :9, :30])
    with pytest.raises(ValueError, match="3 colour channels"):
        vae.encode(video[:, :2, :9])
    with pytest.raises(ValueError, match="16 latent channels"):
        vae.decode(mean[:, :8])
