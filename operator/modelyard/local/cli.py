"""``modelyard local``: build, start, inspect and stop a local Kubernetes control plane.

Thin argparse layer over :mod:`modelyard.local.build`, :mod:`modelyard.local.controlplane`
and :mod:`modelyard.local.nodeagent`; heavy imports stay inside the command functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_DEFAULT_NODE = "gpu-node-1:1:NVIDIA-H100-80GB-HBM3"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _plane(args: argparse.Namespace) -> object:
    from modelyard.local import controlplane

    state_dir = args.state_dir or controlplane.default_state_dir(args.name)
    return controlplane.ControlPlane(Path(state_dir))


def _build(args: argparse.Namespace) -> int:
    from modelyard.local import build

    try:
        out = build.ensure_built(_progress)
    except build.BuildError as exc:
        _progress(f"error: {exc}")
        return 1
    print(out)
    return 0


def _agent_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for node in args.node or [_DEFAULT_NODE]:
        out += ["--node", node]
    for node in args.fake_node or []:
        out += ["--fake-node", node]
    return out


def _up(args: argparse.Namespace) -> int:
    from modelyard.local import build, controlplane

    plane = _plane(args)
    assert isinstance(plane, controlplane.ControlPlane)
    try:
        plane.up(agent_args=None if args.no_agent else _agent_args(args),
                 timeout=args.timeout, log=_progress)
    except (build.BuildError, controlplane.ControlPlaneError) as exc:
        _progress(f"error: {exc}")
        plane.down(log=_progress)
        return 1
    print(plane.kubeconfig)
    _progress(f"export KUBECONFIG={plane.kubeconfig}; export PATH={build.bin_dir()}:$PATH")
    return 0


def _down(args: argparse.Namespace) -> int:
    from modelyard.local import controlplane

    plane = _plane(args)
    assert isinstance(plane, controlplane.ControlPlane)
    plane.down(log=_progress)
    return 0


def _status(args: argparse.Namespace) -> int:
    from modelyard.local import controlplane

    plane = _plane(args)
    assert isinstance(plane, controlplane.ControlPlane)
    components = plane.status()
    if not components:
        print(f"not running ({plane.state_dir})")
        return 1
    print(f"server: {plane.server()}\nkubeconfig: {plane.kubeconfig}")
    for name, state in components.items():
        print(f"{name:20} {state}")
    return 0 if plane.running() else 1


def _kubeconfig(args: argparse.Namespace) -> int:
    from modelyard.local import controlplane

    plane = _plane(args)
    assert isinstance(plane, controlplane.ControlPlane)
    print(plane.kubeconfig)
    return 0 if plane.kubeconfig.exists() else 1


def _agent(args: argparse.Namespace) -> int:
    import logging

    from modelyard.local import nodeagent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    nodes = [nodeagent.NodeSpec.parse(n) for n in args.node or []]
    nodes += [nodeagent.NodeSpec.parse(n, fake=True) for n in args.fake_node or []]
    if args.fake:
        nodes = [nodeagent.NodeSpec.parse(f"{n.name}:{n.gpus}:{n.gpu_type}", fake=True)
                 for n in nodes]
    if not nodes:
        nodes = [nodeagent.NodeSpec.parse(_DEFAULT_NODE)]
    agent = nodeagent.NodeAgent(
        Path(args.kubeconfig), nodes, Path(args.state_dir), pod_cidr=args.pod_cidr,
        backoff=(args.backoff, args.backoff_max))
    agent.run_forever()
    return 0


def _add_nodes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", action="append", metavar="NAME[:GPUS[:GPU_TYPE]]",
                        help=f"a node whose pods run as processes (default {_DEFAULT_NODE})")
    parser.add_argument("--fake-node", action="append", metavar="NAME[:GPUS[:GPU_TYPE]]",
                        help="a node whose pods are only marked Running/Ready (scale tests)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(group_parser=parser)
    sub = parser.add_subparsers(dest="local_command", metavar="SUBCOMMAND")

    def cluster(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--name", default="default", help="cluster name (state dir key)")
        cmd.add_argument("--state-dir", help="default ~/.cache/modelyard/local/<name>")
        return cmd

    sub.add_parser(
        "build", help="build etcd/apiserver/controller-manager/scheduler, kubectl and helm",
        description="Build (once, cached under ~/.cache/modelyard) the control plane binaries.",
    ).set_defaults(func=_build)
    up = cluster("up", "start the control plane and a node agent in the background")
    _add_nodes(up)
    up.add_argument("--no-agent", action="store_true", help="start no node agent")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for ready")
    up.set_defaults(func=_up)
    cluster("down", "stop every component (SIGTERM, then SIGKILL)").set_defaults(func=_down)
    cluster("status", "show the components and their pids").set_defaults(func=_status)
    cluster("kubeconfig", "print the admin kubeconfig path").set_defaults(func=_kubeconfig)
    agent = sub.add_parser("agent", help="run the node agent in the foreground",
                           description="Register fake nodes and run their pods as processes.")
    agent.add_argument("--kubeconfig", required=True)
    agent.add_argument("--state-dir", required=True, help="per-pod directories go here")
    _add_nodes(agent)
    agent.add_argument("--fake", action="store_true", help="fake the pods of every node")
    agent.add_argument("--pod-cidr", help="loopback range for pod IPs (default 127.N.0.0/16)")
    agent.add_argument("--backoff", type=float, default=2.0, help="CrashLoopBackOff base (s)")
    agent.add_argument("--backoff-max", type=float, default=60.0, help="back-off cap (s)")
    agent.set_defaults(func=_agent)
