"""A kubelet stand-in: fake GPU nodes whose pods run as local processes.

The scheduler and controllers are real; what a machine without containers lacks is the
kubelet. This agent registers nodes (with ``nvidia.com/gpu`` capacity and a GPU product
label), keeps their Lease and Ready condition fresh, watches the pods bound to them and
hands each to a :class:`~modelyard.local.podrunner.PodRunner`. It gives every pod its own
loopback IP (127.x.y.z) so several pods may listen on the same port, finishes graceful
deletions (then deletes the pod with grace 0 as a kubelet does), and binds pending
PersistentVolumeClaims to local directories. Images are never pulled: commands resolve on
the agent's PATH. Nodes labelled ``modelyard.io/fake-pods=true`` (or all nodes with
``fake=True``), and pods annotated ``modelyard.io/fake=true``, only get marked Running/Ready.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard.local import kube, kubeletapi, nodes, podrunner

log = logging.getLogger("modelyard.local.nodeagent")
Obj = dict[str, Any]
FAKE_ANNOTATION = "modelyard.io/fake"
NodeSpec = nodes.NodeSpec


class NodeAgent:
    """Registers ``nodes`` and runs their pods until :meth:`stop`."""

    def __init__(
        self, kubeconfig: Path, node_specs: Sequence[nodes.NodeSpec], state_dir: Path, *,
        pod_cidr: str | None = None, backoff: tuple[float, float] = (2.0, 60.0),
        version: str = "v1.33.13",
    ) -> None:
        self.kube = kube.Kube(kubeconfig, pool_size=64)
        self.server = self.kube.server
        self.nodes = {n.name: n for n in node_specs}
        self.state_dir = state_dir
        self.version = version
        self.backoff = backoff
        network = ipaddress.ip_network(pod_cidr or f"127.{10 + os.getpid() % 200}.0.0/16")
        self._ips = (str(ip) for ip in network.hosts() if not str(ip).endswith((".0", ".1")))
        self.runners: dict[str, podrunner.PodRunner] = {}
        self._deleting: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.kubelet_port = 0
        self._kubelet: kubeletapi.KubeletServer | None = None

    # -- kubernetes helpers -------------------------------------------------------------

    def read(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.kube.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")

    def mint(self, namespace: str, service_account: str, seconds: int) -> str:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": max(seconds, 600)}}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        try:
            return str(self.kube.request("POST", path, body)["status"]["token"])
        except kube.KubeError as exc:  # a missing token must not keep the pod from starting
            log.warning("token for %s/%s: %s", namespace, service_account, exc)
            return ""

    def publish(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            self.kube.request("PATCH", path, {"status": status}, content_type=kube.STRATEGIC)
        except kube.KubeError as exc:
            if exc.status != 404:
                log.warning("status of %s/%s: %s", meta["namespace"], meta["name"], exc)
        except Exception as exc:
            log.warning("status of %s/%s: %s", meta["namespace"], meta["name"], exc)

    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        now = podrunner.now_iso()
        body = {
            "apiVersion": "v1", "kind": "Event", "type": type_, "reason": reason,
            "message": message[:1024], "count": 1,
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "source": {"component": "kubelet", "host": pod["spec"].get("nodeName", "")},
            "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": "kubelet",
            "reportingInstance": pod["spec"].get("nodeName", ""),
        }
        with contextlib.suppress(Exception):
            self.kube.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body)

    # -- nodes ----------------------------------------------------------------------------

    def register(self) -> None:
        """Create (or refresh) every node and its Lease."""
        for node in self.nodes.values():
            manifest = node.manifest(self.version, self.kubelet_port)
            try:
                self.kube.request("POST", "/api/v1/nodes", manifest)
            except kube.KubeError as exc:
                if exc.status != 409:
                    raise
                labels = {"metadata": {"labels": manifest["metadata"]["labels"]}}
                self.kube.request("PATCH", f"/api/v1/nodes/{node.name}", labels,
                                  content_type=kube.STRATEGIC)
            self.kube.request("PATCH", f"/api/v1/nodes/{node.name}/status",
                              {"status": manifest["status"]}, content_type=kube.STRATEGIC)
            self._renew_lease(node.name)

    def _renew_lease(self, name: str) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        try:
            self.kube.request("PATCH", f"{leases}/{name}", body, content_type=kube.MERGE)
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
            self.kube.request("POST", leases, body)

    def _heartbeat(self) -> None:
        beats = 0
        while not self._stop.wait(10.0):
            beats += 1
            for name in self.nodes:
                try:
                    self._renew_lease(name)
                    if beats % 3 == 0:
                        status = {"status": {"conditions": nodes.node_conditions()}}
                        self.kube.request("PATCH", f"/api/v1/nodes/{name}/status", status,
                                          content_type=kube.STRATEGIC)
                except Exception as exc:
                    log.warning("heartbeat of node %s: %s", name, exc)

    # -- pods -----------------------------------------------------------------------------

    def _fake(self, pod: Obj) -> bool:
        node = self.nodes[pod["spec"]["nodeName"]]
        annotations = pod["metadata"].get("annotations") or {}
        return node.fake or annotations.get(FAKE_ANNOTATION) == "true"

    def _pod_dir(self, pod: Obj) -> Path:
        meta = pod["metadata"]
        return self.state_dir / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"

    def _hooks(self) -> podrunner.Hooks:
        host, _, port = self.server.removeprefix("https://").rpartition(":")
        return podrunner.Hooks(
            publish=self.publish, event=self.event, read=self.read, mint=self.mint,
            extra_env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
            backoff=self.backoff,
        )

    def reconcile(self, pod: Obj, deleted: bool = False) -> None:
        """Bring the local processes in line with one pod object from the API."""
        meta, spec = pod["metadata"], pod["spec"]
        if spec.get("nodeName") not in self.nodes:
            return
        uid = meta["uid"]
        with self._lock:
            runner = self.runners.get(uid)
            if deleted or meta.get("deletionTimestamp"):
                if uid not in self._deleting:
                    self._deleting.add(uid)
                    grace = 0.0 if deleted else float(
                        meta.get("deletionGracePeriodSeconds") or 0)
                    threading.Thread(target=self._finish_deletion, args=(pod, runner, grace),
                                     daemon=True).start()
                return
            if runner is not None:
                return
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            ip = (pod.get("status") or {}).get("podIP") or next(self._ips)
            runner = podrunner.PodRunner(
                pod, ip, self._pod_dir(pod), self.state_dir / "pvcs", self._hooks(),
                fake=self._fake(pod))
            self.runners[uid] = runner
        log.info("starting pod %s/%s on %s (ip %s)", meta["namespace"], meta["name"],
                 spec["nodeName"], ip)
        runner.start()

    def _finish_deletion(self, pod: Obj, runner: podrunner.PodRunner | None, grace: float) -> None:
        meta = pod["metadata"]
        if runner is not None:
            runner.stop(grace)
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        try:
            self.kube.request(
                "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
        except kube.KubeError as exc:
            if exc.status not in (404, 409):
                log.warning("delete %s/%s: %s", meta["namespace"], meta["name"], exc)
        with self._lock:
            self.runners.pop(meta["uid"], None)
        shutil.rmtree(self._pod_dir(pod), ignore_errors=True)

    def _watch_pods(self) -> None:
        selector = "spec.nodeName!="
        while not self._stop.is_set():
            try:
                listing = self.kube.request("GET", "/api/v1/pods",
                                            query={"fieldSelector": selector})
                for pod in listing["items"]:
                    self.reconcile(pod)
                listed = {pod["metadata"]["uid"] for pod in listing["items"]}
                with self._lock:
                    gone = [r.pod for uid, r in self.runners.items() if uid not in listed]
                for pod in gone:  # deleted while the watch was down
                    self.reconcile(pod, deleted=True)
                version = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    for event in self.kube.watch("/api/v1/pods", version, fieldSelector=selector):
                        if self._stop.is_set():
                            return
                        if event["type"] == "ERROR":
                            raise kube.KubeError(410, str(event["object"].get("message")))
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self.reconcile(event["object"], deleted=event["type"] == "DELETED")
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("pod watch: %s; relisting", exc)
                    self._stop.wait(1.0)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Register the nodes, then watch pods and heartbeat in background threads."""
        from modelyard.local import volumes

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._kubelet = kubeletapi.KubeletServer(
            self.state_dir / "kubelet", self._log_path, self._pod_alive)
        self._kubelet.start()
        self.kubelet_port = self._kubelet.port
        self.register()
        targets = [self._watch_pods, self._heartbeat,
                   lambda: volumes.bind_claims(self.kube, self.state_dir / "pvcs", self._stop)]
        for target in targets:
            thread = threading.Thread(target=target, daemon=True, name="nodeagent")
            thread.start()
            self._threads.append(thread)

    def _runner(self, namespace: str, pod: str) -> podrunner.PodRunner | None:
        with self._lock:
            return next((r for r in self.runners.values() if r.key == f"{namespace}/{pod}"),
                        None)

    def _log_path(self, namespace: str, pod: str, container: str) -> Path | None:
        runner = self._runner(namespace, pod)
        return None if runner is None else runner.pod_dir / "logs" / f"{container}.log"

    def _pod_alive(self, namespace: str, pod: str) -> bool:
        runner = self._runner(namespace, pod)
        return runner is not None and not runner.stopping.is_set()

    def pids(self) -> dict[str, list[int]]:
        """``namespace/name`` -> live process ids, for tests."""
        with self._lock:
            runners = list(self.runners.values())
        return {r.key: r.pids() for r in runners}

    def stop(self, grace: float = 5.0) -> None:
        """Stop watching and terminate every pod process (nodes stay registered)."""
        self._stop.set()
        with self._lock:
            runners = list(self.runners.values())
        stoppers = [threading.Thread(target=r.stop, args=(grace,)) for r in runners]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        if self._kubelet is not None:
            self._kubelet.stop()
        for thread in self._threads:  # daemon threads; a watch may block until its timeout
            thread.join(timeout=0.5)

    def run_forever(self) -> None:
        import signal

        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        log.info("node agent running nodes %s", ", ".join(self.nodes))
        done.wait()
        self.stop()

