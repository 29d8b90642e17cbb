"""Fixtures for the property-based bad-input tests.

The operator fixtures live in ``tests/controllers/conftest.py``; they are loaded here under a
module name of their own so this directory gets the same ``operator`` (module-scoped: one
``modelyard operator`` process per test module) without moving them.

The hypothesis settings are in :mod:`fuzzkit`.
"""

from __future__ import annotations

from pathlib import Path

import kit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

_fixtures = kit.load("controllers/conftest.py", "modelyard_fuzz_operator_fixtures")

Operator = _fixtures.Operator
operator = _fixtures.operator
operator_ready_cluster = _fixtures.operator_ready_cluster
