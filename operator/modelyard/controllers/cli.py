"""``modelyard operator``: run the operator (in-cluster config in a pod, else the kubeconfig).

The Helm chart runs it with ``--host $(POD_IP)`` (bind the pod's address), ``--webhook-service``
(the API server reaches the webhook through a Service, see :mod:`.webhook`) and, with
``catalog.builtin``, ``--apply-builtin-catalog``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import pathlib
import sys

from modelyard import eventloop

EVENT_LOOP_ENV = "OPERATOR_EVENT_LOOP"
"""The environment's choice of event loop (:mod:`modelyard.eventloop`), when ``--event-loop`` is
not given: uvloop by default, as kopf's own CLI does (its TLS, sockets and timers in C: 12 % less
CPU and 6 MiB less memory at 1000 endpoints, docs/benchmarks.md)."""


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
        "--webhook-host",
        default=None,
        help="address the webhook listens on and, without --webhook-service, the URL host the API "
        "server dials (default: --host when given, else 127.0.0.1)",
    )
    parser.add_argument("--webhook-port", type=int, default=9443)
    parser.add_argument(
        "--webhook-service",
        default=None,
        metavar="[NAMESPACE/]NAME",
        help="register the webhook as this Service (namespace default: --namespace) in the "
        "ValidatingWebhookConfiguration --webhook-configuration, which must exist (the chart makes it)",
    )
    parser.add_argument(
        "--webhook-configuration",
        default="modelyard-webhook",
        help="the ValidatingWebhookConfiguration to patch with --webhook-service",
    )
    parser.add_argument(
        "--webhook-failure-policy",
        choices=("Fail", "Ignore"),
        default=None,
        help="what the API server does when the webhook cannot answer (default: Fail with "
        "--webhook-service, so no modelyard object is created or changed unchecked, kube-system "
        "never matched; Ignore without it, so a killed local operator blocks nothing)",
    )
    parser.add_argument(
        "--webhook-cert-validity",
        type=float,
        default=7 * 86400,
        metavar="SECONDS",
        help="life of each serving certificate the operator issues; renewed two thirds into it",
    )
    parser.add_argument(
        "--webhook-ca-validity",
        type=float,
        default=5 * 365 * 86400,
        metavar="SECONDS",
        help="life of the webhook CA (at least 3x --webhook-cert-validity); replaced two thirds into it",
    )
    parser.add_argument(
        "--webhook-ca-secret",
        default=None,
        metavar="NAME",
        help="keep the webhook CA in this Secret of --namespace, shared by the replicas "
        "(default: in memory, one process)",
    )
    parser.add_argument(
        "--webhook-cert-dir",
        default=None,
        metavar="DIR",
        help="serve tls.crt/tls.key from DIR (a mounted cert-manager Secret), re-read when they "
        "change; the operator issues no certificate and manages no CA",
    )
    parser.add_argument(
        "--host", default="0.0.0.0", help="address of the status API, dashboard and /metrics (default: all)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=8080,
        help="/metrics and /healthz (and the status API without --status-port)",
    )
    parser.add_argument(
        "--status-port",
        type=int,
        default=None,
        help="status API, dashboard and /healthz on a port apart from /metrics (default: --metrics-port)",
    )
    parser.add_argument(
        "--network-policy-from",
        default=None,
        metavar="KEY=VALUE[,KEY=VALUE...]",
        help="build a NetworkPolicy per endpoint and training job that admits only pods of --namespace "
        "with these labels (the operator and the gateway); unset: no NetworkPolicies",
    )
    parser.add_argument(
        "--apply-builtin-catalog",
        action="store_true",
        help="apply the built-in catalog's ModelEntries at start (field manager modelyard-catalog)",
    )
    parser.add_argument(
        "--status-token-env",
        default="MODELYARD_STATUS_TOKEN",
        help="environment variable holding the status API's bearer token (unset: open, read-only)",
    )
    parser.add_argument(
        "--no-leader-election", action="store_true", help="skip the Lease (one replica only!)"
    )
    parser.add_argument(
        "--pod-name",
        default=os.environ.get("POD_NAME") or None,
        help="this replica's pod (default $POD_NAME): labelled modelyard.io/leader=true while it "
        "holds the Lease, so the webhook and status API Services reach only the active replica",
    )
    parser.add_argument("--runtime-image", default=None, help="image of runtime and trainer pods")
    parser.add_argument(
        "--adapter-configmaps",
        action="store_true",
        help="keep each endpoint's live adapter set in a ConfigMap its pods mount (new replicas load "
        "it before Ready); needs cluster-wide ConfigMap rights. Default: pushed over HTTP only",
    )
    parser.add_argument(
        "--allowed-image-prefix",
        action="append",
        default=[],
        metavar="PREFIX",
        help="spec.image of endpoints and training jobs must start with one of these (repeatable; "
        "at a '/', ':' or '@' boundary; '*': any image). Default: only --runtime-image",
    )
    parser.add_argument(
        "--registration-mode",
        choices=["prefixed", "exact", "off"],
        default="prefixed",
        help="the ModelEntry a TrainingJob's output.register creates: prefixed (<namespace>.<name>, "
        "the default), exact (<name>), or off (refused)",
    )
    parser.add_argument(
        "--gateway-secret-grants",
        default=None,
        metavar="NS/NAME[,NS/NAME...]",
        help="the upstream-key Secrets the gateway may read (the chart passes gateway.upstreamKeySecrets); "
        "an upstream endpoint whose key is not among them goes Pending/UpstreamKeyNotGranted. "
        "Absent: not checked",
    )
    parser.add_argument(
        "--registration-namespaces",
        default="",
        metavar="NS[,NS...]",
        help="only TrainingJobs in these namespaces may register ModelEntries (default: every namespace)",
    )
    parser.add_argument(
        "--autoscale-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often the autoscaler reads the gateways' demand and decides replicas (default 1.0)",
    )
    parser.add_argument(
        "--gateway-metrics-service",
        default=None,
        metavar="NAMESPACE/NAME",
        help="the gateway metrics Service: every ready address of its EndpointSlices (port "
        "'metrics') is scraped for modelyard_gateway_endpoint_demand",
    )
    parser.add_argument(
        "--gateway-metrics-url",
        action="append",
        default=[],
        metavar="URL",
        help="a gateway's /metrics URL, scraped as given (repeatable; gateways outside the cluster)",
    )
    parser.add_argument(
        "--inference-pools",
        action="store_true",
        help="keep one InferencePool (inference.networking.k8s.io/v1) per served name and namespace, "
        "selecting the runtime pods of its endpoints (the CRD and the endpoint pickers come with your "
        "Gateway stack)",
    )
    parser.add_argument(
        "--inference-pool-epp",
        default="{pool}-epp",
        metavar="NAME",
        help="the pools' endpointPickerRef: the EPP Service in the pool's namespace; {pool} is the "
        "pool's name (default: {pool}-epp)",
    )
    parser.add_argument(
        "--inference-pool-epp-port", type=int, default=9002, metavar="PORT", help="the EPP Service's port"
    )
    parser.add_argument(
        "--inference-pool-failure-mode",
        choices=["FailOpen", "FailClose"],
        default="FailClose",
        help="what the Gateway does when the EPP does not answer (default FailClose)",
    )
    parser.add_argument(
        "--event-loop",
        choices=eventloop.CHOICES,
        help="auto: uvloop when installed, else asyncio's; uvloop: refuse to start without it; "
        f"asyncio (env {EVENT_LOOP_ENV}; default auto)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(func=_run)


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    """``a=b,c=d`` -> (("a", "b"), ("c", "d")); a bad pair is an argparse error."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --network-policy-from: {item!r} is not KEY=VALUE")
        pairs.append((key, value))
    return tuple(sorted(pairs))


def _run(args: argparse.Namespace) -> int:
    from modelyard.builders import settings
    from modelyard.controllers import app, autoscaler, options

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        loop, loop_kind = eventloop.new_loop(
            eventloop.resolve(args.event_loop, os.environ.get(EVENT_LOOP_ENV), EVENT_LOOP_ENV)
        )
    except (ValueError, eventloop.Unavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if logging.getLogger().level > logging.DEBUG:  # kopf says "Handler ... succeeded." per event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    namespaces = tuple(n.strip() for n in args.registration_namespaces.split(",") if n.strip())
    builder = settings.Settings(registration_mode=args.registration_mode, registration_namespaces=namespaces)
    if args.gateway_secret_grants is not None:
        grants = frozenset(g.strip() for g in args.gateway_secret_grants.split(",") if g.strip())
        builder = dataclasses.replace(builder, gateway_secret_grants=grants)
    if args.runtime_image:
        builder = dataclasses.replace(builder, runtime_image=args.runtime_image)
    if args.adapter_configmaps:
        builder = dataclasses.replace(builder, adapter_config_maps=True)
    if args.network_policy_from is not None:
        builder = dataclasses.replace(
            builder,
            network_policy_from=_labels(args.network_policy_from),
            network_policy_namespace=args.namespace,
        )
    if args.inference_pools:
        if not 1 <= args.inference_pool_epp_port <= 65535:
            raise SystemExit(
                f"error: --inference-pool-epp-port: {args.inference_pool_epp_port} is not 1-65535"
            )
        if not args.inference_pool_epp.strip():
            raise SystemExit(
                "error: --inference-pool-epp: a Service name (or a pattern with {pool}) is needed"
            )
        pools = settings.InferencePools(
            args.inference_pool_epp, args.inference_pool_epp_port, args.inference_pool_failure_mode
        )
        builder = dataclasses.replace(builder, inference_pools=pools)
    prefixes = tuple(p.strip() for p in args.allowed_image_prefix if p.strip())
    builder = dataclasses.replace(builder, allowed_image_prefixes=prefixes)
    opts = options.OperatorOptions(
        namespace=args.namespace,
        kubeconfig=args.kubeconfig,
        webhook=not args.no_webhook,
        webhook_host=args.webhook_host or (args.host if args.host != "0.0.0.0" else "127.0.0.1"),
        webhook_port=args.webhook_port,
        webhook_service=args.webhook_service,
        webhook_configuration=args.webhook_configuration,
        webhook_failure_policy=args.webhook_failure_policy,
        webhook_cert_validity=datetime.timedelta(seconds=args.webhook_cert_validity),
        webhook_ca_validity=datetime.timedelta(seconds=args.webhook_ca_validity),
        webhook_ca_secret=args.webhook_ca_secret,
        webhook_cert_dir=pathlib.Path(args.webhook_cert_dir) if args.webhook_cert_dir else None,
        metrics_host=args.host,
        metrics_port=args.metrics_port,
        status_port=args.status_port,
        apply_builtin_catalog=args.apply_builtin_catalog,
        pod_name=args.pod_name,
        status_token=os.environ.get(args.status_token_env) or None,
        leader_election=not args.no_leader_election,
        builder=builder,
        autoscale=autoscaler.Options(
            interval=args.autoscale_interval,
            service=args.gateway_metrics_service,
            urls=tuple(args.gateway_metrics_url),
        ),
    )
    if opts.status_token is None:
        logging.getLogger(__name__).warning(
            "the status API is open (read-only): $%s is unset; the chart sets it unless "
            "operator.statusApi.auth.enabled=false",
            args.status_token_env,
        )
    logging.getLogger(__name__).info("event loop: %s", loop_kind)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(app.run(opts))
    return 0
