"""Test helpers that work on one process and on several (JAX's multi-process runtime).

On several processes an array may span devices of other processes, and ``np.asarray`` of it
fails; :func:`to_numpy` gathers it with ``multihost_utils.process_allgather`` instead, so every
process sees the whole value. The multi-device tests compare through these helpers only, and run
unchanged in ``tests/distributed`` (2 processes x 4 CPU devices).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def to_numpy(x: Any) -> np.ndarray:
    """The whole value of ``x`` on this host, whether or not it spans other processes."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def assert_close(a: Any, b: Any, rtol: float = 1e-5) -> None:
    """Assert two pytrees of arrays are close, leaf by leaf (gathering when needed)."""
    jax.tree.map(lambda x, y: np.testing.assert_allclose(to_numpy(x), to_numpy(y), rtol), a, b)
