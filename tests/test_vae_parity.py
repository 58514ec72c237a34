"""Numerical parity of model.vae.WanVAE with diffusers' AutoencoderKLWan (the reference implementation).

A tiny random diffusers model (the official topology at base_dim 8) gets noise added to EVERY
parameter (so gammas are not 1 and no weight is at its init value), its state dict goes through
our diffusers-layout loader, and encode (posterior mean and logvar) and decode must agree to
1e-4 in float32 on 9- and 13-frame clips, which exercise the first-chunk special cases and the
cache carried across 2 and 3 later chunks, with both causal-conv implementations.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("flax")
diffusers = pytest.importorskip("diffusers")

from model.vae.config import TINY_VAE_CONFIG  # noqa: E402
from model.vae.loading import apply_state_dict, export_state_dict  # noqa: E402
from model.vae.wan_vae import WanVAE  # noqa: E402

TOL = 1e-4
H, W = 32, 48


@pytest.fixture(scope="module")
def models():
    from flax import nnx

    torch.manual_seed(0)
    ref = diffusers.AutoencoderKLWan(**TINY_VAE_CONFIG.to_dict()).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.add_(torch.randn_like(p) * (0.1 if name.endswith("gamma") else 0.05))
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    ours = WanVAE(TINY_VAE_CONFIG, rngs=nnx.Rngs(123))  # different random init, then overwritten
    apply_state_dict(ours, sd, "diffusers tiny model")
    return ref, ours


@pytest.mark.parametrize("frames,conv_impl", [(9, "sum2d"), (13, "sum2d"), (9, "conv3d")])
def test_encode_decode_match_diffusers(models, frames, conv_impl):
    """sum2d is the CPU default ("auto"); conv3d is what GPUs run (one lax 3D conv per causal conv)."""
    batch = 1  # one input shape per chunk kind: both clips share the compiled chunk steps
    ref, ours = models
    x = np.random.default_rng(frames).uniform(-1, 1, (batch, 3, frames, H, W)).astype(np.float32)
    with torch.no_grad():
        post = ref.encode(torch.from_numpy(x)).latent_dist
        ref_mean, ref_logvar = post.mean.numpy(), post.logvar.numpy()
        ref_video = ref.decode(torch.from_numpy(ref_mean)).sample.numpy()
    mean, logvar = (np.asarray(a) for a in ours.encode(x, conv_impl=conv_impl))
    video = np.asarray(ours.decode(ref_mean, conv_impl=conv_impl))

    k = 1 + (frames - 1) // 4
    assert mean.shape == logvar.shape == ref_mean.shape == (batch, 16, k, H // 8, W // 8)
    assert video.shape == ref_video.shape == (batch, 3, frames, H, W)
    # the comparison means something: outputs are O(1), varied, and mostly not clamped
    assert np.abs(ref_mean).max() > 0.5 and ref_video.std() > 0.2 and (np.abs(ref_video) < 1).mean() > 0.8
    errs = {
        "mean": np.abs(mean - ref_mean).max(),
        "logvar": np.abs(logvar - ref_logvar).max(),
        "decode": np.abs(video - ref_video).max(),
    }
    assert max(errs.values()) <= TOL, errs


def test_exported_state_dict_loads_into_diffusers_strictly(models):
    """Our diffusers-layout export is exactly diffusers' state dict (names, shapes, values)."""
    ref, ours = models
    sd = export_state_dict(ours)
    ref_sd = ref.state_dict()
    assert set(sd) == set(ref_sd)
    for k, v in ref_sd.items():
        assert sd[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(sd[k], v.numpy(), err_msg=k)


def test_encoder_is_causal(models):
    """Latent frame 0 sees only frame 0; latent frame 1 sees only frames 0-4 (diffusers' chunking)."""
    _, ours = models
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 3, 9, H, W)).astype(np.float32)
    y = x.copy()
    y[:, :, 5:] = rng.uniform(-1, 1, y[:, :, 5:].shape)
    a, _ = ours.encode(x)
    b, _ = ours.encode(y)
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a[:, :, :2], b[:, :, :2])
    assert np.abs(a[:, :, 2] - b[:, :, 2]).max() > 1e-3


def test_bfloat16_compute_is_close_to_float32(models):
    import jax.numpy as jnp

    _, ours = models
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 9, H, W)).astype(np.float32)
    m32, _ = ours.encode(x)
    m16, _ = ours.encode(x, dtype=jnp.bfloat16)
    assert m16.dtype == jnp.float32
    assert float(jnp.abs(m16 - m32).max()) < 0.05 * float(jnp.abs(m32).max())
    v32 = ours.decode(m32)
    v16 = ours.decode(m32, dtype=jnp.bfloat16)
    assert float(jnp.abs(v16 - v32).mean()) < 0.02
