"""The distributed tests start their own JAX processes: see ``cluster.py`` and ``worker.py``."""

from __future__ import annotations

import sys
from pathlib import Path

# ``cluster`` (the launcher) is imported by the tests; the worker scripts import ``scenarios``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
