"""What one ModelEndpoint event costs the operator's served-name ownership index as the fleet grows.

``scale_bench.py`` at 3000 endpoints found three quarters of the operator's event loop in the
ownership rule: each new endpoint decided it again over every endpoint. This script isolates
that part in process: it creates ``--entries`` entries and as many endpoints, one watch event
at a time (as a fleet created one by one reaches the operator), and reports the CPU time per
endpoint event for each tenth of the fleet, so the growth with N shows. Run it with
``PYTHONPATH`` at another tree's ``operator/`` to compare before and after::

    .venv/bin/python benchmarks/ownership_events.py --entries 3000
    PYTHONPATH=/tmp/before/operator .venv/bin/python benchmarks/ownership_events.py --entries 3000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from modelyard.controllers import ownership


def entry(i: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": {"provider": "upstream"}, "servedName": f"model-{i}"}
    if i % 50 == 0:
        spec["servingNamespaces"] = [f"team-{i % 7}"]  # a few platform claims, as a catalog has
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEntry",
        "metadata": {"name": f"m{i}"},
        "spec": spec,
    }


def endpoint(i: int) -> dict[str, Any]:
    second = i % 60
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {
            "name": f"ep{i}",
            "namespace": f"team-{i % 7}",
            "creationTimestamp": f"2026-12-03T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{second:02d}Z",
        },
        "spec": {"model": f"m{i}", "replicas": 1, "fallback": [f"model-{i - 1}"] if i else []},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=3000)
    args = parser.parse_args()
    index = ownership.Index()
    for i in range(args.entries):
        index.entry_event(entry(i))
    tenth = max(1, args.entries // 10)
    print(f"{'endpoints':>10} {'µs per endpoint event':>22}")
    total = 0.0
    for start in range(0, args.entries, tenth):
        began = time.process_time()
        for i in range(start, min(start + tenth, args.entries)):
            index.endpoint_event(endpoint(i))
        spent = time.process_time() - began
        total += spent
        print(f"{min(start + tenth, args.entries):>10} {spent / tenth * 1e6:>22.1f}")
    print(f"all {args.entries} endpoint events: {total:.2f} s CPU")


if __name__ == "__main__":
    main()
