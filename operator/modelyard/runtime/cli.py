"""``modelyard runtime``: serve models over the OpenAI API (the process in runtime pods).

``modelyard runtime --model PATH_OR_REPO`` serves one model; ``MODELS=a,b modelyard runtime``
several. ``--engine vllm`` replaces this process with vLLM's OpenAI server, built from the
same flags. ``modelyard runtime download`` fills the model cache ahead of time. Heavy imports
(torch, aiohttp) happen inside the functions, so ``modelyard --help`` stays fast. (Over 300
lines: most of it is the one table of flags.)
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import shlex
import sys

from modelyard.api import lora, wire
from modelyard.runtime import errors, options

_POOLINGS = ("mean", "cls", "last", "max")


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _engine_arg(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    if not key.strip("-"):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE or KEY, got {text!r}")
    return key, (value if sep and value else None)


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _add_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", metavar="PATH_OR_REPO", help="a model directory, catalog name or HF repo (else $MODELS)"
    )
    p.add_argument(
        "--provider", metavar="NAME", help="huggingface, local or a registered provider (default: auto)"
    )
    p.add_argument("--revision", metavar="REV", help="repo revision (branch, tag or commit)")
    p.add_argument("--cache-dir", metavar="DIR", help="model cache (default: $HF_HOME)")
    p.add_argument(
        "--catalog",
        type=pathlib.Path,
        action="append",
        default=[],
        metavar="FILE",
        help="models.yaml / Model Garden JSON / ModelEntry manifests naming models (repeatable)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=_serve, group_parser=parser)
    _add_source_flags(parser)
    parser.add_argument("--served-name", metavar="NAME", help="the API model id (default: --model)")
    parser.add_argument("--engine", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--handler", metavar="CLASS", help="handler class path (default: from config.json)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--device", help="torch device for transformers (default: cuda if available, else cpu)"
    )
    parser.add_argument("--max-model-len", type=int, metavar="N")
    parser.add_argument("--dtype", choices=("auto", "float16", "bfloat16", "float32", "half", "float"))
    parser.add_argument("--gpu-memory-utilization", type=float, metavar="F", help="vllm only")
    parser.add_argument("--quantization", metavar="METHOD", help="vllm only (awq, gptq, fp8, ...)")
    parser.add_argument("--tensor-parallel-size", type=int, metavar="N", help="vllm only")
    parser.add_argument(
        "--lora",
        type=_key_value,
        action="append",
        default=[],
        metavar="NAME=URI",
        help="LoRA adapter (vllm: repeatable; transformers: one, merged into its base)",
    )
    parser.add_argument(
        "--adapters-file",
        metavar="FILE",
        help='live LoRA adapters, a JSON list of {"name", "path"}: loaded before ready, re-read for changes',
    )
    parser.add_argument(
        "--max-adapters",
        type=_positive,
        metavar="N",
        help=f"live LoRA adapters loaded at once (default {lora.DEFAULT_MAX_ADAPTERS}; vllm: --max-loras)",
    )
    parser.add_argument(
        "--max-lora-rank",
        type=_positive,
        metavar="R",
        help=f"largest rank of a live adapter (default {lora.DEFAULT_MAX_LORA_RANK})",
    )
    parser.add_argument(
        "--adapters-sync-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="how often --adapters-file is read again",
    )
    parser.add_argument("--pooling", choices=_POOLINGS, help="embedding pooling")
    parser.add_argument(
        "--tool-call-parser",
        metavar="NAME",
        help="how the model writes function calls (vllm: any of its parsers, with auto tool choice; "
        "transformers: hermes or llama3_json; default: read from the chat template)",
    )
    parser.add_argument("--temperature", type=float, metavar="F", help="default temperature")
    parser.add_argument("--top-p", type=float, metavar="F", help="default top_p")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="default max_tokens")
    parser.add_argument(
        "--engine-arg",
        type=_engine_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to vLLM as --KEY VALUE (KEY alone: a flag; repeatable)",
    )
    parser.add_argument(
        "--torch-threads", type=int, metavar="N", help="torch intra-op threads (set to the pod's CPU limit)"
    )
    parser.add_argument(
        "--max-queue", type=int, default=64, metavar="N", help="waiting requests per model before 429"
    )
    parser.add_argument("--max-request-bytes", type=int, default=32 * 1024 * 1024, metavar="N")
    parser.add_argument(
        "--batch-max-size", type=int, default=32, metavar="N", help="embedding/rerank batch size"
    )
    parser.add_argument(
        "--batch-window-ms", type=float, default=5.0, metavar="MS", help="batch collection window"
    )
    parser.add_argument(
        "--no-batching", action="store_true", help="one model call per embedding/rerank request"
    )
    parser.add_argument(
        "--max-num-seqs",
        type=_positive,
        default=32,
        metavar="N",
        help="chat/completion sequences decoded together (continuous batching)",
    )
    parser.add_argument(
        "--kv-cache-bytes",
        type=_positive,
        default=2 * 1024**3,
        metavar="BYTES",
        help="bound on the running batch's KV cache; requests wait until theirs fits",
    )
    parser.add_argument(
        "--prefix-cache-bytes",
        type=_non_negative,
        default=512 * 1024**2,
        metavar="BYTES",
        help="KV of recent prompt prefixes kept for reuse (LRU; 0: off)",
    )
    parser.add_argument(
        "--max-n",
        type=_positive,
        default=8,
        metavar="N",
        help="the most choices (n) one chat/completion request may ask for",
    )
    parser.add_argument("--no-warmup", action="store_true", help="ready at once, without a warm-up request")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--dry-run", action="store_true", help="--engine vllm: print the vLLM command, do not run it"
    )

    sub = parser.add_subparsers(dest="runtime_command", metavar="SUBCOMMAND")
    dl = sub.add_parser("download", help="download models into the cache (for AUTO_DOWNLOAD_MODELS=0 pods)")
    _add_source_flags(dl)
    dl.set_defaults(func=_download)


def _names(args: argparse.Namespace) -> list[str]:
    if args.model:
        return [args.model]
    return [n.strip() for n in os.environ.get("MODELS", "").split(",") if n.strip()]


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _specs(args: argparse.Namespace) -> list[options.ModelSpec]:
    from modelyard.runtime import loader

    names = _names(args)
    if not names:
        raise errors.LoadError("no model to serve: give --model PATH_OR_REPO or set MODELS=a,b")
    if len(names) > 1 and args.served_name:
        raise errors.LoadError("--served-name needs a single model; MODELS names serve under their own names")
    generation = options.GenerationDefaults(args.temperature, args.top_p, args.max_tokens)
    known = loader.registry(args.catalog)
    specs = []
    for name in names:
        spec = loader.resolve(name, known)
        spec = loader.override(
            spec,
            served_name=getattr(args, "served_name", None),
            provider=args.provider,
            handler=getattr(args, "handler", None),
            revision=args.revision,
            pooling=getattr(args, "pooling", None),
            dtype=getattr(args, "dtype", None),
            max_model_len=getattr(args, "max_model_len", None),
            tool_call_parser=getattr(args, "tool_call_parser", None),
            generation=generation,
        )
        specs.append(spec)
    return specs


def _file_adapters(path: str | None) -> list[tuple[str, str]]:
    """vLLM reads no adapters file: its adapters at start become ``--lora-modules`` (later ones
    come over its HTTP API)."""
    if path is None:
        return []
    import pydantic

    try:
        entries = lora.parse_adapters_file(pathlib.Path(path).read_bytes())
    except (OSError, pydantic.ValidationError) as exc:
        raise errors.LoadError(f"--adapters-file {path}: {exc}") from exc
    return [(e.name, e.path) for e in entries]


def _vllm(args: argparse.Namespace, spec: options.ModelSpec) -> int:
    from modelyard.runtime import vllm

    o = vllm.VllmOptions(
        model=spec.source,
        served_name=spec.served_name,
        host=args.host,
        port=args.port,
        revision=spec.revision,
        download_dir=args.cache_dir,
        max_model_len=spec.max_model_len,
        dtype=spec.dtype,
        gpu_memory_utilization=args.gpu_memory_utilization,
        quantization=args.quantization,
        tensor_parallel_size=args.tensor_parallel_size,
        lora=(*args.lora, *_file_adapters(args.adapters_file)),
        live_lora=args.adapters_file is not None or args.max_adapters is not None,
        max_loras=args.max_adapters,
        max_lora_rank=args.max_lora_rank,
        pooling=spec.pooling,
        tool_call_parser=spec.tool_call_parser,
        generation=spec.generation,
        engine_args=tuple(args.engine_arg),
    )
    if args.dry_run:
        env = [f"{k}={v}" for k, v in sorted(vllm.environment(o).items())]
        print(shlex.join([*env, *vllm.command(o, python="python")]))
        return 0
    vllm.exec_vllm(o)
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("modelyard.runtime")
    try:
        specs = _specs(args)
        if args.engine == "vllm":
            if len(specs) != 1:
                raise errors.LoadError("--engine vllm serves exactly one model")
            return _vllm(args, specs[0])
        if args.lora:
            from modelyard.runtime import adapters

            # one adapter, merged into its base and served under the adapter's name
            specs = adapters.with_adapter(specs, args.lora, cache_dir=args.cache_dir)
        for flag in ("gpu_memory_utilization", "quantization", "tensor_parallel_size"):
            if getattr(args, flag) is not None:
                log.warning("--%s applies to --engine vllm only; ignored", flag.replace("_", "-"))
        if args.engine_arg:
            log.warning("--engine-arg applies to --engine vllm only; ignored")
        settings = options.ServerSettings(
            host=args.host,
            port=args.port,
            device=args.device,
            cache_dir=args.cache_dir,
            max_request_bytes=args.max_request_bytes,
            max_queue=args.max_queue,
            batching=not args.no_batching,
            batch_max_size=args.batch_max_size,
            batch_window_ms=args.batch_window_ms,
            warmup=not args.no_warmup,
            max_num_seqs=args.max_num_seqs,
            kv_cache_bytes=args.kv_cache_bytes,
            prefix_cache_bytes=args.prefix_cache_bytes,
            max_n=args.max_n,
            max_adapters=args.max_adapters or lora.DEFAULT_MAX_ADAPTERS,
            max_lora_rank=args.max_lora_rank or lora.DEFAULT_MAX_LORA_RANK,
            adapters_file=args.adapters_file,
            adapters_sync_seconds=args.adapters_sync_seconds,
        )
        if args.torch_threads:
            import torch

            torch.set_num_threads(args.torch_threads)
        from aiohttp import web

        from modelyard.runtime import loader, served
        from modelyard.runtime.serving import app as serving_app

        models = served.ModelSet(loader.load(spec, settings) for spec in specs)
    except errors.RuntimeServingError as exc:
        return _fail(exc.message)
    # SIGTERM: stop listening, /ready 503, finish what is in flight (streams too) for up to
    # DRAIN_SECONDS, then exit (the pod's grace period covers it; see docs/operations.md).
    web.run_app(
        serving_app.create_app(settings, models), host=args.host, port=args.port, access_log=None,
        shutdown_timeout=wire.DRAIN_SECONDS,
    )  # fmt: skip
    return 0


def _download(args: argparse.Namespace) -> int:
    from modelyard.runtime import loader

    settings = options.ServerSettings(cache_dir=args.cache_dir)
    try:
        specs = _specs(args)
        for spec in specs:
            path = loader.download(spec, settings)
            print(f"{spec.source}: {path}")
    except errors.RuntimeServingError as exc:
        return _fail(exc.message)
    return 0
