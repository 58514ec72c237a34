"""Latents -> RGB-space videos with the codec the shards were made with (WAN 2.1 VAE or DCT codec).

``LatentDecoder(weights, latents_normalized)`` wraps :func:`model.vae.make_codec`. Its ``state`` (the
VAE params, or None for the parameter-free codec) is passed to jitted functions as an argument
(never baked in as constants) and ``decode_fn(state)`` gives a traceable, differentiable
``(B, T', H', W', C) latents -> (B, T, H, W, 3) video in [-1, 1]`` (channels-last). When the shards
hold normalised latents (``codec.normalize_latents``), they are denormalised first.
"""

from __future__ import annotations

from typing import Callable

from flax import nnx

from model.vae import make_codec


class LatentDecoder:
    def __init__(self, weights: str | None = None, latents_normalized: bool = True):
        self.codec = make_codec(weights)
        self.vae_id = self.codec.vae_id
        self.latents_normalized = bool(latents_normalized)
        self._is_module = isinstance(self.codec, nnx.Module)
        if self._is_module:
            self._graphdef, self.state = nnx.split(self.codec)
        else:
            self._graphdef, self.state = None, None

    def check(self, data_vae_id: str, what: str = "the shards") -> None:
        if data_vae_id != self.vae_id:
            raise ValueError(
                f"{what} were encoded with vae_id {data_vae_id!r} but the decoder is {self.vae_id!r}; "
                "give the matching VAE weights (vae.weights) - decoding with another codec is garbage"
            )

    def decode_fn(self, state) -> Callable:
        codec = nnx.merge(self._graphdef, state) if self._is_module else self.codec
        normalized = self.latents_normalized

        def decode(z):
            if normalized:
                z = codec.denormalize_latents(z, channels_last=True)
            return codec.decode(z, channels_last=True)

        return decode

    def decode(self, latents):
        """Eager convenience (channels-last latents -> channels-last video)."""
        return self.decode_fn(self.state)(latents)
