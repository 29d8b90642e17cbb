"""``modelyard quickstart``: the steps in order, one progress line each, exit 0 when the gateway
answered. Thin: each step lives in its own module; this one parses flags, runs them and prints
the result and what to try next.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command's modules load when it runs: `modelyard --help` stays fast
    from modelyard.local import controlplane
    from modelyard.quickstart import progress

DESCRIPTION = (
    "Start a local Kubernetes control plane, install the modelyard Helm chart, deploy a tiny chat "
    "model and the packaged MiniLM embedding model as ModelEndpoints, and call them through the "
    "gateway with the openai client. Re-running reuses the cluster and is fast."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("--state-dir", type=Path, help="the cluster's state dir "
                        "(default ~/.cache/modelyard/local/quickstart)")
    parser.add_argument("--chart", type=Path, help="Helm chart dir (default: charts/modelyard here)")
    parser.add_argument("--no-auth", action="store_true", help="install the gateway without an API key")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the endpoints")
    parser.add_argument("--down", action="store_true", help="stop the cluster at the end")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelyard.local import kube
    from modelyard.quickstart import cluster, progress

    show = progress.Progress()
    state_dir = (args.state_dir or cluster.default_state_dir()).resolve()
    plane = None
    try:
        plane = cluster.ensure_cluster(state_dir, show)
        _deploy_and_ask(plane, args, show)
        return 0
    except (cluster.QuickstartError, kube.KubeError) as exc:
        show.step(f"FAILED: {exc}")
        if plane is not None:
            show.plain(f"logs: {state_dir / 'logs'} (components), {state_dir / 'pods'} (pods)")
        return 1
    except KeyboardInterrupt:
        show.step("interrupted")
        return 130
    finally:
        if args.down and plane is not None:
            show.step(f"stopping the cluster (--down): modelyard local down --state-dir {state_dir}")
            plane.down(log=show.detail)
        show.step(f"done in {show.elapsed():.1f}s")


def _deploy_and_ask(
    plane: controlplane.ControlPlane, args: argparse.Namespace, show: progress.Progress
) -> None:
    from modelyard.local import build, kube
    from modelyard.quickstart import client, cluster, manifests, models

    key = None if args.no_auth else cluster.api_key(plane.state_dir)
    cluster.install_chart(plane, (args.chart or cluster.default_chart()).resolve(), key, show)
    chosen = [manifests.chat_model(models.tiny_chat_model(show)),
              manifests.embedding_model(models.minilm_model())]  # fmt: skip
    show.step(f"applying 2 ModelEntries and 2 ModelEndpoints in namespace {manifests.NAMESPACE}")
    kube_client = kube.Kube(plane.kubeconfig)
    models.apply_all(kube_client, manifests.objects(chosen), show)
    show.step("waiting for both endpoints to be Ready (the runtime loads each model)")
    models.wait_ready(plane, chosen, show, timeout=args.timeout)
    base_url = cluster.gateway_url(kube_client)
    show.step(f"gateway at {base_url} (its Service's EndpointSlice: no kube-proxy locally)")
    client.wait_routed(base_url, key, [m.served_name for m in chosen])
    answers = client.ask(base_url, key, chosen[0].served_name, chosen[1].served_name, show)
    show.plain()
    show.plain(f"chat answer ({chosen[0].served_name}): {answers.chat!r}")
    show.plain(f"usage: {answers.usage}")
    show.plain(f"embedding ({chosen[1].served_name}): dimension {answers.embedding_dimension}")
    show.plain()
    state = shlex.quote(str(plane.state_dir))
    auth = f'-H "Authorization: Bearer $(cat {state}/api-key)" ' if key else ""
    body = ('{"model": "tiny-chat", "temperature": 0, '
            f'"messages": [{{"role": "user", "content": "{manifests.CURL_PROMPT}"}}]}}')
    show.plain("Try next:")
    show.plain(f"  export KUBECONFIG={shlex.quote(str(plane.kubeconfig))} PATH={build.bin_dir()}:$PATH")
    show.plain("  kubectl get modelyard -A                  # entries and endpoints, with their status")
    show.plain(f"  kubectl get pods -A -o wide               # gateway URL: {base_url}")
    show.plain(f"  curl -s {base_url}/chat/completions {auth}-H 'Content-Type: application/json' \\")
    show.plain(f"       -d '{body}'")
    show.plain(f"  modelyard local down --state-dir {state}   # stop it (re-run quickstart to start again)")
    show.plain()
