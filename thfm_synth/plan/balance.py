"""Even use of assets over any prefix of the plan, computable from (seed, i) alone.

Video i's choice may depend only on the seed, i and the library sizes, never on the
total count N - so a 100-video plan is the first 100 rows of a 20,000-video plan. Every
helper here cycles through "epochs" of a fixed length, each epoch a seeded permutation:
in any prefix, every asset is then used floor(N/k) or ceil(N/k) times.
"""

from __future__ import annotations

import math

import numpy as np

# Stream tags keep the permutations of different decisions independent.
TAG_CHARACTER, TAG_MOTION, TAG_BACKGROUND, TAG_PERSON = 11, 12, 13, 14


def seeded_uniform(seed: int, *key: int, size: int | None = None):
    """Uniform [0, 1) numbers from PCG64 keyed by (seed, *key); stable across machines."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))
    return rng.random(size)


def permutation(seed: int, tag: int, epoch: int, k: int) -> np.ndarray:
    # argsort of uniforms rather than rng.permutation: uses only the raw-double stream,
    # which NumPy keeps stable, so plans do not change with NumPy versions.
    return np.argsort(seeded_uniform(seed, tag, epoch, size=k), kind="stable")


def balanced_index(seed: int, tag: int, j: np.ndarray, k: int) -> np.ndarray:
    """The asset (0..k-1) used at the j-th draw of a library of k assets."""
    j = np.asarray(j, dtype=np.int64)
    out = np.empty_like(j)
    epochs = j // k
    for e in np.unique(epochs):
        sel = epochs == e
        out[sel] = permutation(seed, tag, int(e), k)[j[sel] % k]
    return out


def character_motion_pairs(seed: int, i: np.ndarray, kc: int, km: int) -> tuple[np.ndarray, np.ndarray]:
    """(character, motion) for videos i: each balanced, and no pair repeats before all kc*km are used.

    Within an epoch of kc*km videos, r -> (r mod kc, (r + floor(r / L)) mod km) with
    L = lcm(kc, km) visits every pair once (the shift moves to a new residue class of
    m - c modulo gcd(kc, km) every L videos) while characters cycle every kc videos and
    motions every km videos. Seeded relabelling per epoch randomises which is which.
    """
    i = np.asarray(i, dtype=np.int64)
    period = kc * km
    lcm = math.lcm(kc, km)
    c = np.empty_like(i)
    m = np.empty_like(i)
    epochs = i // period
    for e in np.unique(epochs):
        sel = epochs == e
        r = i[sel] % period
        c[sel] = permutation(seed, TAG_CHARACTER, int(e), kc)[r % kc]
        m[sel] = permutation(seed, TAG_MOTION, int(e), km)[(r + r // lcm) % km]
    return c, m


def apportion(weights: list[float], n: int) -> np.ndarray:
    """A kind per video so every prefix holds each kind within 1 of its weighted share.

    Greedy largest-deficit order (deterministic, seed-free): video i takes the kind whose
    count lags its share w_k * (i + 1) the most.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    counts = np.zeros(len(w))
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = int(np.argmax(w * (i + 1) - counts))
        out[i] = k
        counts[k] += 1
    return out
