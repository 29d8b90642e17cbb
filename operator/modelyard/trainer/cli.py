"""``modelyard train``: the TrainingJob pod's entrypoint.

Exit status is what the Job sees: 0 trained; 2 (``wire.EXIT_UNRECOVERABLE``) the job cannot
run and a retry would not help (bad data, missing GPU, unreadable config; the Job's
podFailurePolicy fails at once); 1 it crashed (retried, resuming from the last checkpoint).
Either way the reason goes to the termination message, so the operator can show it in the
TrainingJob status. On success the termination message carries the final progress, which the
operator copies into status after the pod is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import sys
from typing import Any

from modelyard.api import wire
from modelyard.trainer import config, errors

DEFAULT_TERMINATION_LOG = "/dev/termination-log"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=pathlib.Path, required=True, help="trainer config JSON")
    parser.add_argument("--dataset", type=pathlib.Path, help="dataset file (overrides the config's)")
    parser.add_argument("--output", type=pathlib.Path, help="output directory (overrides the config's)")
    parser.add_argument(
        "--progress-host", help=f"address for GET /progress (default: ${wire.POD_IP_ENV}, else 127.0.0.1)"
    )
    parser.add_argument(
        "--progress-port",
        type=int,
        default=int(os.environ.get(wire.PROGRESS_PORT_ENV, wire.PROGRESS_PORT)),
        help=f"port for GET /progress; 0 disables it (default: ${wire.PROGRESS_PORT_ENV}, "
        f"else {wire.PROGRESS_PORT})",
    )
    parser.set_defaults(func=_run)


def termination_log() -> pathlib.Path | None:
    """Where the pod's termination message goes: env override, the local node agent's, or /dev."""
    for name in ("MODELYARD_TERMINATION_LOG", wire.TERMINATION_MESSAGE_ENV):
        if os.environ.get(name):
            return pathlib.Path(os.environ[name])
    default = pathlib.Path(DEFAULT_TERMINATION_LOG)
    if default.exists() and os.access(default, os.W_OK):
        return default
    return None


def _terminate(message: str) -> None:
    path = termination_log()
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.write_text(message[-4000:])


def _summary(cfg: config.TrainerConfig, manifest: dict[str, Any]) -> str:
    """The success termination message: final progress and the run's headline numbers."""
    try:
        progress = json.loads((cfg.output_path / "progress.json").read_text())
    except (OSError, ValueError):
        progress = {}
    keys = ("steps", "resumedFromStep", "firstLoss", "finalLoss", "stepsPerSecond")
    return json.dumps({"progress": progress, "manifest": {k: manifest.get(k) for k in keys}})


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config.load(args.config)
        if args.dataset is not None:
            cfg = dataclasses.replace(cfg, dataset_path=args.dataset)
        if args.output is not None:
            cfg = dataclasses.replace(cfg, output_path=args.output)
        from modelyard.trainer import train

        host = args.progress_host or os.environ.get(wire.POD_IP_ENV) or "127.0.0.1"
        manifest = train.run(cfg, host=host, port=args.progress_port or None)
    except errors.TrainerError as exc:
        print(f"modelyard train: {exc}", file=sys.stderr)
        _terminate(str(exc))
        return wire.EXIT_UNRECOVERABLE
    except Exception as exc:
        logging.getLogger("modelyard.trainer").exception("training failed")
        _terminate(f"training failed: {type(exc).__name__}: {exc}")
        return 1
    _terminate(_summary(cfg, manifest))
    print(json.dumps({k: manifest.get(k) for k in ("steps", "firstLoss", "finalLoss", "stepsPerSecond")}))
    return 0
