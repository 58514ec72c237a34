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


def test_stage2_is_supervised_by_pixel_truth_under_its_validity_mask():
    """Stage 2 compares decode(pred) with the record's pixel truth where it is valid: the target latents
    play no part, invalid pixels play no part, and a keypoint record (no valid pixels) stays finite."""
    import jax

    from model.tasks import DENSE_TASKS, TASK_INDEX, TASKS
    from model.train.objective import batch_loss
    from model.vae import DCTCodec

    codec = DCTCodec()
    decode = lambda z: codec.decode(z, channels_last=True)  # noqa: E731
    rng = np.random.default_rng(0)
    b, t, h, w = 3, 5, 16, 16
    lat = (b, 2, 2, 2, 16)
    tasks = jnp.asarray([TASK_INDEX["depth"], TASK_INDEX["human_normals"], TASK_INDEX["keypoints_3d"]], jnp.int32)
    valid = np.ones((b, t, h, w), np.uint8)
    valid[:, :, :, :4] = 0
    valid[2] = 0
    batch = {
        "task_id": tasks,
        "target": jnp.asarray(rng.standard_normal(lat), jnp.float32),
        "pixels": jnp.asarray(rng.uniform(-1, 1, (b, t, h, w, 3)), jnp.float16),
        "valid": jnp.asarray(valid),
        "kp2d": jnp.zeros((b, t, 3, 2)),
        "kp3d": jnp.zeros((b, t, 3, 3)),
        "kp2d_valid": jnp.ones((b, t, 3)),
        "kp3d_valid": jnp.ones((b, t, 3)),
    }
    out = {
        "latents": jnp.asarray(rng.standard_normal(lat), jnp.float32),
        "keypoints_2d": jnp.zeros((b, t, 3, 2)),
        "keypoints_3d": jnp.full((b, t, 3, 3), 0.5),
    }
    w_ = jnp.ones((len(TASKS),))

    def loss(o, bt):
        return batch_loss(o, bt, stage=2, task_weights=w_, decode=decode)[0]

    base = float(loss(out, batch))
    assert np.isfinite(base)
    assert float(loss(out, dict(batch, target=batch["target"] * 10))) == base  # target latents unused
    pix = np.asarray(batch["pixels"]).copy()
    pix[:, :, :, :4] = 0.9  # only invalid pixels change
    assert float(loss(out, dict(batch, pixels=jnp.asarray(pix)))) == pytest.approx(base, rel=1e-6)
    pix[:, :, :, 8] = -0.9  # a valid column changes
    assert float(loss(out, dict(batch, pixels=jnp.asarray(pix)))) != pytest.approx(base, rel=1e-6)
    grads = jax.grad(lambda lat_: loss(dict(out, latents=lat_), batch))(out["latents"])
    assert np.all(np.isfinite(np.asarray(grads))) and len(DENSE_TASKS) == 7
