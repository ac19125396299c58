"""Repository-wide pytest configuration: applies to every test under the repository root.

Hypothesis profiles: ``ci`` is deterministic and bounded (nox sets HYPOTHESIS_PROFILE=ci);
``dev`` explores more. Without HYPOTHESIS_PROFILE, Hypothesis' own default profile is used.
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a session without hypothesis (e.g. doctests only)
    pass
else:
    settings.register_profile(
        "ci",
        deadline=None,  # the first call of a jitted function compiles: no per-example deadline
        max_examples=30,
        derandomize=True,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "dev",
        deadline=None,
        max_examples=100,
        suppress_health_check=[HealthCheck.too_slow],
    )
    _profile = os.environ.get("HYPOTHESIS_PROFILE")
    if _profile:
        settings.load_profile(_profile)
