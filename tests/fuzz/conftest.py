"""Fixtures for the property-based bad-input tests.

The operator fixtures live in ``tests/controllers/conftest.py``; they are loaded here under a
module name of their own so this directory gets the same ``operator`` (module-scoped: one
``modelyard operator`` process per test module) without moving them.

The hypothesis settings are in :mod:`fuzzkit`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

_spec = importlib.util.spec_from_file_location(
    "modelyard_fuzz_operator_fixtures", ROOT / "tests" / "controllers" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

Operator = _fixtures.Operator
operator = _fixtures.operator
operator_ready_cluster = _fixtures.operator_ready_cluster
