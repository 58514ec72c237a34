"""Reading the benchmark annotation files that ship only as Python pickles (EMDB, RICH), safely.

The project never pickles anything itself (npz with allow_pickle=False everywhere). EMDB's
``*_data.pkl`` and RICH's per-frame body ``*.pkl`` are the datasets' only annotation format, so
they are read with a *restricted* unpickler: it reconstructs plain containers (dict, list, tuple,
str, numbers) and numpy arrays / scalars / dtypes and refuses every other global, so loading a
file cannot run code (a pickle naming ``os.system`` or any class outside the allow-list raises
``UnpicklingError`` naming it). Python 2 pickles (latin-1 strings) are read too.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} (only containers and numpy arrays are "
            "allowed in benchmark annotation pickles)"
        )


def load(path: str | Path):
    """The contents of a data-only pickle file (see the module doc)."""
    data = Path(path).read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnicodeDecodeError:  # a Python 2 pickle with byte strings
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


__all__ = ["load", "RestrictedUnpickler"]
