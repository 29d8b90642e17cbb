"""What the operator keeps in memory per ModelEntry, in process: its watch index, its served-name
ownership index and its status API's mirror.

``catalog_bench.py`` measures the operator's whole RSS under a real control plane; this script
isolates the part that grows with the catalog. It makes ``--entries`` watch bodies of the
built-in catalog's entries (as ``catalog_bench.entries`` copies them, each with a status and
the ``managedFields`` the API server adds), parses each from JSON as a watch would, hands it to
the three stores the way the operator's handlers do, and reports what ``tracemalloc`` sees kept
afterwards, per entry, for each store alone and for all three. Run it with ``PYTHONPATH`` at
another tree's ``operator/`` to compare before and after::

    .venv/bin/python benchmarks/index_memory.py --entries 2000
    PYTHONPATH=/tmp/before/operator .venv/bin/python benchmarks/index_memory.py --entries 2000
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import tracemalloc
from pathlib import Path
from typing import Any

from modelyard.controllers import informer, ownership
from modelyard.statusapi import cache

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("catalog_bench", HERE / "catalog_bench.py")
assert _spec is not None and _spec.loader is not None
catalog_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(catalog_bench)

STORES = ("index", "ownership", "mirror")


def watch_bodies(count: int) -> list[str]:
    """``count`` entries as a watch sends them: with uid, versions, managedFields and a status."""
    made = []
    for i, entry in enumerate(catalog_bench.entries(count)):
        when = "2026-12-03T10:00:00Z"
        fields = {"f:spec": {f"f:{key}": {} for key in entry["spec"]}}
        entry["metadata"] |= {
            "uid": f"0b9c6f2e-{i:04x}-4d8e-9a51-3c2e1f0a{i:04x}", "resourceVersion": str(1000 + i),
            "generation": 1, "creationTimestamp": when,
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": entry["apiVersion"],
                               "time": when, "fieldsType": "FieldsV1", "fieldsV1": fields}],
        }  # fmt: skip
        valid = {"type": "Valid", "status": "True", "reason": "Resolved", "message": "resolved"}
        entry["status"] = {"phase": "Valid", "observedGeneration": 1, "endpoints": [],
                           "conditions": [valid | {"lastTransitionTime": when}]}  # fmt: skip
        made.append(json.dumps(entry))
    return made


def kept(texts: list[str], stores: tuple[str, ...]) -> int:
    """Bytes still allocated after handing every body to ``stores``."""
    index: dict[str, list[dict[str, Any]]] = {}
    owners, mirror = ownership.Index(), cache.Cache()
    gc.collect()
    tracemalloc.start()
    for text in texts:
        body = json.loads(text)  # (the watch decodes each event once, for all three)
        if "index" in stores:  # the entries' watch store (controllers/watches.py, Store.put)
            index[body["metadata"]["name"]] = [informer.trim(body)]
        if "ownership" in stores:  # controllers/custom_watches.py, entry_seen
            owners.entry_event(body)
        if "mirror" in stores:  # the same: the status API's cache
            mirror.upsert(body)
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=2000)
    args = parser.parse_args()
    texts = watch_bodies(args.entries)
    sizes = {store: kept(texts, (store,)) for store in STORES} | {"all": kept(texts, STORES)}
    per_entry = {store: round(size / args.entries / 1024, 2) for store, size in sizes.items()}
    for store, kib in per_entry.items():
        print(f"{store:>10}: {sizes[store] / 2**20:7.1f} MiB kept, {kib:6.2f} KiB per entry")
    print(json.dumps({"entries": args.entries, "kib_per_entry": per_entry}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
