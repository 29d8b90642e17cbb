"""Settings shared by the fuzz tests: bounded, reproducible hypothesis runs.

Every test runs derandomized and without an example database, so every run (CI included)
tries the same cases; on a failure hypothesis prints the falsifying example and a
``@reproduce_failure`` blob. ``MODELYARD_FUZZ_EXAMPLES=3`` multiplies the number of examples;
``MODELYARD_FUZZ_RANDOM=1`` draws new ones each run (hypothesis then prints the seed to pass
back with ``--hypothesis-seed``).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings

SCALE = float(os.environ.get("MODELYARD_FUZZ_EXAMPLES", "1"))
RANDOM = os.environ.get("MODELYARD_FUZZ_RANDOM") == "1"


def bounded(examples: int, *, shrink: bool = True) -> Any:
    """``@settings`` for a test that tries ``examples`` cases by default; ``shrink=False`` for
    tests whose every example takes seconds (the first failing example is reported as is)."""
    phases = list(Phase) if shrink else [Phase.explicit, Phase.reuse, Phase.generate]
    return settings(
        phases=phases,
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
