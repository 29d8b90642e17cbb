"""``modelyard operator``: run the operator (in-cluster config in a pod, else the kubeconfig)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig path (default: in-cluster, then $KUBECONFIG)"
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("MODELYARD_NAMESPACE", "modelyard-system"),
        help="the operator's namespace: its Lease, and ConfigMaps/Secrets referenced without a namespace",
    )
    parser.add_argument("--no-webhook", action="store_true", help="do not serve the admission webhook")
    parser.add_argument(
        "--webhook-host", default="127.0.0.1", help="address the API server reaches the webhook at"
    )
    parser.add_argument("--webhook-port", type=int, default=9443)
    parser.add_argument("--metrics-port", type=int, default=8080, help="status API, dashboard and /metrics")
    parser.add_argument(
        "--status-token-env",
        default="MODELYARD_STATUS_TOKEN",
        help="environment variable holding the status API's bearer token (unset: open, read-only)",
    )
    parser.add_argument(
        "--no-leader-election", action="store_true", help="skip the Lease (one replica only!)"
    )
    parser.add_argument("--runtime-image", default=None, help="image of runtime and trainer pods")
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelyard.builders import settings
    from modelyard.controllers import app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    builder = settings.Settings()
    if args.runtime_image:
        builder = dataclasses.replace(builder, runtime_image=args.runtime_image)
    options = app.OperatorOptions(
        namespace=args.namespace,
        kubeconfig=args.kubeconfig,
        webhook=not args.no_webhook,
        webhook_host=args.webhook_host,
        webhook_port=args.webhook_port,
        metrics_port=args.metrics_port,
        status_token=os.environ.get(args.status_token_env) or None,
        leader_election=not args.no_leader_election,
        builder=builder,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(app.run(options))
    return 0
