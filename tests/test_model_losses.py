import jax.numpy as jnp
import numpy as np
import pytest

from model import losses


def test_depth_ssi_is_invariant_to_clip_scale_and_shift_but_not_per_frame():
    rng = np.random.default_rng(0)
    g = jnp.asarray(rng.random((1, 3, 4, 5, 1)).repeat(3, -1))
    assert float(losses.depth_ssi_loss(2.5 * g - 0.3, g)) < 1e-5
    per_frame = g * jnp.asarray([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1, 1)
    assert float(losses.depth_ssi_loss(per_frame, g)) > 0.05  # normalisation is shared across the clip


def test_normals_loss_hand_values():
    z = jnp.zeros((1, 1, 1, 1, 3)).at[..., 2].set(1.0)
    x = jnp.zeros((1, 1, 1, 1, 3)).at[..., 0].set(1.0)
    assert float(losses.normals_loss(z, z)) == pytest.approx(0.0, abs=1e-5)  # eps in the normalisation
    # orthogonal unit vectors: |p-g|^2 = 2 and 1 - cos = 1
    assert float(losses.normals_loss(x, z)) == pytest.approx(3.0, rel=1e-5)
    assert float(losses.normals_loss(-z, z)) == pytest.approx(4.0 + 2.0, rel=1e-5)


def test_masked_l2_and_latent_mse():
    pred = jnp.ones((1, 1, 2, 1, 3))
    tgt = jnp.zeros((1, 1, 2, 1, 3))
    valid = jnp.array([[[[True], [False]]]])
    assert float(losses.l2_loss(pred, tgt, valid)) == pytest.approx(3.0)
    assert float(losses.latent_mse(jnp.ones(4), jnp.zeros(4))) == 1.0
