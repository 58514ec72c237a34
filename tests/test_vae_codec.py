"""The default (no weights) codec: deterministic, parameter-free, orthonormal, same shapes as the VAE."""

from __future__ import annotations

import numpy as np
import pytest

import model.vae as vae_pkg
from model.vae.codec import (
    CODEC_ID,
    LOGVAR_DETERMINISTIC,
    SMOOTH_PSNR_FLOOR_DB,
    DCTCodec,
    basis,
    psnr,
    smooth_test_video,
)


def test_make_codec_without_weights_is_the_dct_codec():
    for weights in (None, ""):
        codec = vae_pkg.make_codec(weights)
        assert isinstance(codec, DCTCodec)
        assert codec.vae_id == CODEC_ID and CODEC_ID.startswith("codec:")
        assert codec.describe()["parameters"] == 0


def test_basis_is_orthonormal_and_lowest_frequency():
    b4 = basis(4).reshape(16, -1)
    np.testing.assert_allclose(b4 @ b4.T, np.eye(16), atol=1e-12)
    b1 = basis(1).reshape(16, -1)
    gram = b1 @ b1.T
    live = np.abs(b1).sum(1) > 0
    assert live.sum() == 12  # the 4 temporal-AC channels are empty for the lone first frame
    np.testing.assert_allclose(gram[np.ix_(live, live)], np.eye(12), atol=1e-12)


def test_deterministic_and_round_trip_psnr_on_smooth_video():
    codec = DCTCodec()
    video = smooth_test_video(17, 64, 96, batch=2)
    mean1, logvar = codec.encode(video)
    mean2, _ = DCTCodec().encode(video.copy())
    np.testing.assert_array_equal(np.asarray(mean1), np.asarray(mean2))
    assert np.all(np.asarray(logvar) == LOGVAR_DETERMINISTIC)
    recon = codec.decode(mean1)
    np.testing.assert_array_equal(np.asarray(recon), np.asarray(codec.decode(mean2)))
    value = psnr(video, recon)
    assert value > SMOOTH_PSNR_FLOOR_DB, value  # measured 35.5 dB
    # honest: white noise is NOT preserved (the codec keeps 16 of 768 values per block)
    noise = np.random.default_rng(0).uniform(-1, 1, (1, 3, 9, 32, 32)).astype(np.float32)
    assert psnr(noise, codec.decode(codec.encode(noise)[0])) < 15


def test_constant_video_is_exact_and_scale_is_frame_independent():
    codec = DCTCodec()
    video = np.full((1, 3, 9, 16, 16), 0.3, np.float32)
    video[:, 1] = -0.2
    mean, _ = codec.encode(video)
    np.testing.assert_allclose(np.asarray(codec.decode(mean)), video, atol=1e-6)
    m = np.asarray(mean)
    np.testing.assert_allclose(m[0, 0], (0.3 - 0.2 + 0.3) / np.sqrt(3), atol=1e-6)  # luma DC, every latent frame


def test_decode_then_encode_is_identity_on_latents():
    """decode is the transpose of an orthonormal projection, so encode(decode(z)) == z (away from clamping)."""
    codec = DCTCodec()
    z = np.random.default_rng(1).normal(0, 0.05, (1, 16, 3, 2, 3)).astype(np.float32)
    z[:, 6:10, 0] = 0  # temporal-AC channels are empty in latent frame 0
    back, _ = codec.encode(codec.decode(z))
    np.testing.assert_allclose(np.asarray(back), z, atol=1e-5)


def test_channels_last_and_shapes_match_the_wan_vae():
    pytest.importorskip("flax")
    from flax import nnx

    from model.vae.config import TINY_VAE_CONFIG
    from model.vae.wan_vae import WanVAE

    codec = DCTCodec()
    video = smooth_test_video(9, 32, 48)
    mean, logvar = codec.encode(video)
    mean_cl, _ = codec.encode(np.transpose(video, (0, 2, 3, 4, 1)), channels_last=True)
    np.testing.assert_array_equal(np.transpose(np.asarray(mean_cl), (0, 4, 1, 2, 3)), np.asarray(mean))
    vae = WanVAE(TINY_VAE_CONFIG, rngs=nnx.Rngs(0))
    vae_mean, vae_logvar = vae.encode(video)
    assert mean.shape == logvar.shape == vae_mean.shape == vae_logvar.shape == (1, 16, 3, 4, 6)
    assert codec.decode(mean).shape == vae.decode(vae_mean).shape == video.shape
