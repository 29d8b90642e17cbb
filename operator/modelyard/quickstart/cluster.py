"""Steps 1 and 2 of the quickstart: a local control plane of its own, then the Helm chart.

Both are idempotent: a running cluster in the state directory is reused, and ``helm upgrade
--install`` installs the release once and upgrades it (a no-op when nothing changed) afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from modelyard.local import build, controlplane, kube
from modelyard.quickstart import manifests, progress


class QuickstartError(RuntimeError):
    """A step failed; the message says which and what to look at."""


def default_state_dir() -> Path:
    return controlplane.default_state_dir("quickstart")


def default_chart() -> Path:
    """The chart in this checkout: ``operator/modelyard/../../charts/modelyard``."""
    return Path(__file__).resolve().parents[3] / "charts" / "modelyard"


def ensure_cluster(state_dir: Path, show: progress.Progress) -> controlplane.ControlPlane:
    """Build the binaries (cached; a cold build prints its own progress), start or reuse the cluster."""
    show.step("local control plane binaries (modelyard local build; cached after the first run)")
    try:
        bin_dir = build.ensure_built(show.detail)
    except build.BuildError as exc:
        raise QuickstartError(f"building the control plane failed: {exc}") from exc
    show.detail(f"binaries in {bin_dir}")
    plane = controlplane.ControlPlane(state_dir)
    if plane.running():
        show.step(f"local cluster already running (state dir {state_dir}): reusing it")
        return plane
    restarted = (state_dir / "etcd").exists()
    show.step(f"{'restarting the' if restarted else 'starting a'} local cluster "
              f"(modelyard local up --state-dir {state_dir})")
    try:
        plane.up(agent_args=manifests.node_args(state_dir), timeout=180.0, log=show.detail)
    except controlplane.ControlPlaneError as exc:
        plane.down(log=show.detail)
        raise QuickstartError(f"the local cluster did not start: {exc}") from exc
    if restarted:
        _forget_stopped_pods(plane, show)
    return plane


def _forget_stopped_pods(plane: controlplane.ControlPlane, show: progress.Progress) -> None:
    """Delete the pods that the last ``down`` left terminated (Succeeded/Failed) in the namespaces
    the quickstart owns. Their ReplicaSets have started new ones; the old ones would linger (no pod
    garbage collection below 12,500) and keep the endpoints from reading Ready."""
    client = kube.Kube(plane.kubeconfig)
    gone = 0
    for ns in (manifests.SYSTEM_NAMESPACE, manifests.NAMESPACE):
        for phase in ("Succeeded", "Failed"):
            try:
                found = client.request("DELETE", f"/api/v1/namespaces/{ns}/pods",
                                       query={"fieldSelector": f"status.phase=={phase}"})
            except kube.KubeError as exc:
                show.detail(f"could not delete {phase} pods in {ns}: {exc.message}")
                continue
            gone += len(found.get("items") or [])
    if gone:
        show.detail(f"deleted {gone} pods the last stop left terminated")


def tool_env(plane: controlplane.ControlPlane) -> dict[str, str]:
    """The environment for kubectl and helm: this cluster's kubeconfig, helm state in the state dir."""
    env = dict(os.environ)
    env["KUBECONFIG"] = str(plane.kubeconfig)
    env["PATH"] = os.pathsep.join([str(build.bin_dir()), env.get("PATH", "")])
    for name, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                      ("HELM_DATA_HOME", "data")):  # fmt: skip
        env.setdefault(name, str(plane.state_dir / "helm" / sub))
    return env


def api_key(state_dir: Path) -> str:
    """The gateway API key of this quickstart cluster: made once, kept (mode 0600) in the state dir
    so that re-runs upgrade the release with the same key."""
    path = state_dir / "api-key"
    if path.exists():
        return path.read_text().strip()
    key = f"sk-quickstart-{secrets.token_urlsafe(24)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def install_chart(
    plane: controlplane.ControlPlane, chart: Path, key: str | None, show: progress.Progress
) -> None:
    """``helm upgrade --install`` the chart and wait for its Deployments to be ready."""
    if not (chart / "Chart.yaml").exists():
        raise QuickstartError(f"no Helm chart at {chart} (--chart points elsewhere)")
    values = plane.state_dir / "quickstart-values.yaml"
    fd = os.open(values, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the API key
    with os.fdopen(fd, "w") as out:
        json.dump(manifests.auth_values(key), out, indent=2)  # JSON is YAML
    args = manifests.helm_args(chart, values)
    auth = f"API key {progress.mask(key)} (in {plane.state_dir / 'api-key'})" if key else "no API key"
    show.step(f"helm upgrade --install {manifests.RELEASE} {chart} -n {manifests.SYSTEM_NAMESPACE} "
              f"--wait ({auth})")
    helm = str(build.bin_dir() / "helm")
    done = subprocess.run([helm, *args], env=tool_env(plane), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        show.detail(_pods_summary(plane, manifests.SYSTEM_NAMESPACE))
        raise QuickstartError(f"helm failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(("STATUS:", "REVISION:")):
            show.detail(line)


def _pods_summary(plane: controlplane.ControlPlane, ns: str) -> str:
    try:
        pods = kube.Kube(plane.kubeconfig).request("GET", f"/api/v1/namespaces/{ns}/pods")["items"]
    except (kube.KubeError, OSError) as exc:
        return f"(pods in {ns} unreadable: {exc})"
    lines = [f"pods in {ns}:"]
    for pod in pods:
        waiting = [
            s["state"]["waiting"].get("reason", "")
            for s in pod["status"].get("containerStatuses", []) if "waiting" in s.get("state", {})
        ]  # fmt: skip
        lines.append(f"  {pod['metadata']['name']}: {pod['status'].get('phase')} {' '.join(waiting)}")
    return "\n".join(lines)


def gateway_url(client: kube.Kube, timeout: float = 120.0) -> str:
    """The gateway's ``http://<pod IP>:<port>/v1`` from its Service's EndpointSlices (no kube-proxy
    here, so the ClusterIP would not route)."""
    path = f"/apis/discovery.k8s.io/v1/namespaces/{manifests.SYSTEM_NAMESPACE}/endpointslices"
    deadline = time.monotonic() + timeout
    while True:
        slices = client.request(
            "GET", path, query={"labelSelector": f"kubernetes.io/service-name={manifests.GATEWAY_SERVICE}"}
        )["items"]
        url = ready_url(slices)
        if url:
            return url
        if time.monotonic() > deadline:
            raise QuickstartError(
                f"Service {manifests.SYSTEM_NAMESPACE}/{manifests.GATEWAY_SERVICE} has no ready endpoint"
            )
        time.sleep(1.0)


def ready_url(slices: list[dict[str, Any]]) -> str | None:
    """``http://<address>:<port>/v1`` of the first ready endpoint in a Service's EndpointSlices."""
    for item in slices:
        ports = item.get("ports") or []
        if not ports:
            continue
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") and endpoint.get("addresses"):
                return f"http://{endpoint['addresses'][0]}:{ports[0]['port']}/v1"
    return None
