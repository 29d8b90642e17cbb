"""``modelyard registry``: validate, import, export, list and estimate models."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

import yaml

from modelyard import api
from modelyard.registry import catalog, errors, estimates, gpus, manifests, model_garden, models_yaml, resolve


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(group_parser=parser)
    sub = parser.add_subparsers(dest="registry_command", metavar="SUBCOMMAND")

    validate = sub.add_parser(
        "validate", help="check custom resources or catalog files; exit 1 naming every bad field"
    )
    validate.add_argument("files", nargs="+", type=pathlib.Path, metavar="FILE")
    validate.set_defaults(func=_validate)

    imp = sub.add_parser("import", help="models.yaml or models_registry.json -> ModelEntry YAML on stdout")
    imp.add_argument("file", type=pathlib.Path, metavar="FILE")
    imp.add_argument("--local", type=pathlib.Path, help="models.local.yaml (default: found next to FILE)")
    imp.set_defaults(func=_import)

    exp = sub.add_parser("export", help="ModelEntry manifests -> models.yaml or models_registry.json")
    exp.add_argument("file", type=pathlib.Path, metavar="FILE")
    exp.add_argument("--to", choices=("models-yaml", "model-garden"), required=True)
    exp.set_defaults(func=_export)

    lst = sub.add_parser("list", help="list the built-in catalog (or FILEs) with filters")
    lst.add_argument("files", nargs="*", type=pathlib.Path, metavar="FILE")
    lst.add_argument("--category")
    lst.add_argument("--tag")
    lst.add_argument("--lifecycle")
    lst.add_argument("--capability")
    lst.add_argument("-q", "--query")
    lst.set_defaults(func=_list)

    est = sub.add_parser("estimate", help="parameters, memory and GPU fit from a config.json")
    est.add_argument("config", type=pathlib.Path, metavar="CONFIG_JSON")
    est.add_argument("--gpu-memory", type=float, metavar="GiB", help="memory of one GPU in GiB")
    est.add_argument(
        "--gpu-type", help=f"a GPU product instead of --gpu-memory (e.g. {', '.join(sorted(gpus.ALIASES))})"
    )
    est.add_argument("--gpus", type=int, default=1, metavar="N")
    est.add_argument("--max-model-len", type=int, metavar="N")
    est.add_argument("--gpu-memory-utilization", type=float, default=0.9, metavar="F")
    est.add_argument("--dtype", help="serving dtype (default: the checkpoint's)")
    est.add_argument("--json", action="store_true", help="print JSON")
    est.set_defaults(func=_estimate)


def _fail(exc: errors.RegistryError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            count = _validate_file(path)
        except (errors.RegistryError, OSError) as exc:
            bad += 1
            print(
                f"error: {exc}" if isinstance(exc, errors.CatalogError) else f"error: {path}: {exc}",
                file=sys.stderr,
            )
            continue
        print(f"{path}: ok ({count} object{'s' if count != 1 else ''})")
    return 1 if bad else 0


def _validate_file(path: pathlib.Path) -> int:
    if path.suffix == ".json":
        return len(model_garden.load(path))
    text = path.read_text()
    first = next((d for d in yaml.safe_load_all(text) if d is not None), None)
    if isinstance(first, dict) and "models" in first and "kind" not in first:
        return len(models_yaml.load(path))
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.CatalogError(str(path), [f"not valid YAML: {exc}"]) from None
    problems: list[str] = []
    for index, doc in enumerate(docs, start=1):
        where = manifests.describe(doc, index)
        try:
            resource = manifests.parse_resource(doc, where)
        except errors.CatalogError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
            continue
        if isinstance(resource, api.ModelEntry):
            resolved = resolve.resolve(resource)
            if not resolved.ok:
                problems.append(f"{where}: {resolved.reason}")
    if problems:
        raise errors.CatalogError(str(path), problems)
    return len(docs)


def _import(args: argparse.Namespace) -> int:
    try:
        if args.file.suffix == ".json":
            entries = model_garden.load(args.file)
        else:
            entries = [models_yaml.to_entry(m) for m in models_yaml.load(args.file, args.local)]
    except (errors.RegistryError, OSError) as exc:
        return _fail(exc) if isinstance(exc, errors.RegistryError) else _fail(errors.RegistryError(str(exc)))
    sys.stdout.write(manifests.dump(entries))
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        entries = manifests.load_entries(args.file)
    except errors.RegistryError as exc:
        return _fail(exc)
    sys.stdout.write(models_yaml.dump(entries) if args.to == "models-yaml" else model_garden.dump(entries))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        registry = catalog.Catalog.from_files(args.files) if args.files else catalog.Catalog.builtin()
        found = registry.find(
            category=args.category,
            tag=args.tag,
            lifecycle=args.lifecycle,
            capability=args.capability,
            q=args.query,
        )
    except errors.RegistryError as exc:
        return _fail(exc)
    rows = [("NAME", "SERVED NAME", "CATEGORY", "PARAMS", "MIN VRAM", "LIFECYCLE")]
    for entry in found:
        resolved = resolve.resolve(entry)
        vram = resolved.requirements.min_vram_gb
        rows.append(
            (
                entry.name,
                resolved.served_name,
                resolved.category or "-",
                entry.spec.parameters or "-",
                f"{vram:g}Gi" if vram is not None else "-",
                entry.spec.lifecycle,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _estimate(args: argparse.Namespace) -> int:
    try:
        config = json.loads(args.config.read_text())
        memory = gpus.memory_gib(args.gpu_type) if args.gpu_type else args.gpu_memory
        result = estimates.estimate(
            config,
            gpu_memory_gib=memory,
            gpus=args.gpus,
            max_model_len=args.max_model_len,
            gpu_memory_utilization=args.gpu_memory_utilization,
            dtype=args.dtype,
        )
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 1
    except errors.RegistryError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(_describe(result))
    return 0 if result.fit is None or result.fit.fits else 3


def _describe(result: estimates.Estimate) -> str:
    gib = estimates.GIB
    lines: list[tuple[str, Any]] = [
        ("architecture", f"{result.architecture} (family {result.family}, category {result.category})"),
        ("parameters", f"{result.parameters_human} ({result.parameters:,})"),
        ("weights", f"{result.weight_bytes / gib:.2f} GiB as {result.dtype}"),
        ("KV cache", f"{result.kv_cache_bytes_per_token:,} bytes per token"),
        ("max model len", result.max_model_len),
        ("min VRAM", f"{result.min_vram_gb} GiB"),
        ("recommended VRAM", f"{result.recommended_vram_gb} GiB"),
        ("min RAM", f"{result.min_ram_gb} GiB"),
    ]
    if result.fit is not None:
        lines.append(("fits", "yes" if result.fit.fits else "no"))
        lines.append(("why", result.fit.reason))
        lines.append(("min GPUs", result.min_gpus))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)
