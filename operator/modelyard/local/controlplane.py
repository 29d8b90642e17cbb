"""Starts, watches and stops a local Kubernetes control plane as background processes.

``modelyard local up`` and the test fixtures share this: etcd, kube-apiserver (TLS, Node+RBAC
authorization, service-account signing), kube-controller-manager and kube-scheduler from
the binary that :mod:`modelyard.local.build` makes, plus (optionally) the node agent.
Everything a cluster needs to be found again lives in one state directory: PKI, etcd data,
kubeconfigs, logs and ``state.json`` (ports and process ids), so ``down`` and ``status`` work
from any later process.

It stays one module (~330 lines): one lifecycle (up, health, restart, down, status) over one
state directory; the PKI's files are :mod:`.cluster_pki`'s, the build :mod:`.build`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelyard.local import build, cluster_pki, kube

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
# Stop order: the agent first (it stops pod processes), etcd last.
_ORDER = ("etcd", "apiserver", "controller-manager", "scheduler", "agent")


class ControlPlaneError(RuntimeError):
    """A component failed to start or become ready; the message names its log file."""


def default_state_dir(name: str = "default") -> Path:
    return build.cache_root() / "local" / name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """Whether a process runs (zombies count as gone; they are reaped when they are ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def write_kubeconfig(path: Path, server: str, ca: Path, crt: Path, key: Path, user: str) -> None:
    """A kubeconfig with one cluster/user/context, all named ``modelyard-local``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "modelyard-local",
                      "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user,
                   "user": {"client-certificate": str(crt), "client-key": str(key)}}],
        "contexts": [{"name": "modelyard-local",
                      "context": {"cluster": "modelyard-local", "user": user}}],
        "current-context": "modelyard-local",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    path.chmod(0o600)


def stop_group(pid: int, *, grace: float) -> bool:
    """SIGTERM a process group, SIGKILL it after ``grace`` seconds; False when it needed the kill."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)
    return False


@dataclass
class ControlPlane:
    """One local cluster, identified by its state directory."""

    state_dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def state(self) -> dict[str, object]:
        if not self.state_file.exists():
            return {}
        loaded: dict[str, object] = json.loads(self.state_file.read_text())
        return loaded

    def pids(self) -> dict[str, int]:
        raw = self.state().get("pids", {})
        assert isinstance(raw, dict)
        return {str(k): int(v) for k, v in raw.items()}

    def status(self) -> dict[str, str]:
        """Component name -> ``running (pid N)`` or ``stopped``."""
        return {
            name: f"running (pid {pid})" if alive(pid) else "stopped"
            for name, pid in self.pids().items()
        }

    def running(self) -> bool:
        pids = self.pids()
        return bool(pids) and all(alive(pid) for pid in pids.values())

    def server(self) -> str:
        return str(self.state().get("server", ""))

    # -- starting -------------------------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        log_path = self.state_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.state_dir, env=env, start_new_session=True,
            )
        state = self.state()
        pids = dict(self.pids(), **{name: proc.pid})
        state["pids"] = pids
        argvs = state.get("argv", {})
        assert isinstance(argvs, dict)
        state["argv"] = {**argvs, name: list(argv)}
        self._save(state)
        return proc.pid

    def restart(self, name: str, *, down_for: float = 0.0, timeout: float = 60.0,
                log: build.Progress = print) -> None:
        """Stop one component (SIGTERM, then SIGKILL), wait ``down_for`` seconds, start it again
        with the same command line and ports, and wait until it is healthy (fault tests)."""
        pid = self.pids()[name]
        argvs = self.state().get("argv", {})
        assert isinstance(argvs, dict) and name in argvs, f"no command line recorded for {name}"
        stop_group(pid, grace=10.0)
        time.sleep(down_for)
        self._spawn(name, argvs[name])
        if name == "apiserver":
            pki = cluster_pki.ensure_pki(self.state_dir / "pki", SERVICE_IP)
            self._wait_http(f"{self.server()}/readyz", name, pki, time.monotonic() + timeout)
        log(f"restarted {name} (pid {self.pids()[name]})")

    def _save(self, state: dict[str, object]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def up(
        self, *, agent_args: Sequence[str] | None = ("--node", "gpu-node-1:1:NVIDIA-H100-80GB-HBM3"),
        timeout: float = 90.0, log: build.Progress = print,
    ) -> None:
        """Start every component and wait until the API is ready and a node is Ready.

        ``agent_args=None`` starts no node agent (tests run one in-process).
        """
        if self.running():
            log(f"already running: {self.kubeconfig}")
            return
        self.down(log=lambda _msg: None)
        bin_dir = build.ensure_built(log)
        exe = str(bin_dir / build.CONTROLPLANE)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pki = cluster_pki.ensure_pki(self.state_dir / "pki", SERVICE_IP)
        ports = {n: _free_port() for n in ("etcd", "peer", "apiserver", "cm", "scheduler")}
        server = f"https://127.0.0.1:{ports['apiserver']}"
        self._save({"server": server, "ports": ports, "version": build.K8S_VERSION, "pids": {}})
        for name in cluster_pki.CLIENTS:
            crt, key = pki.client(name)
            path = self.kubeconfig if name == "admin" else self.state_dir / f"{name}.kubeconfig"
            write_kubeconfig(path, server, pki.ca_crt, crt, key, name)
        started = time.monotonic()
        self._spawn("etcd", [
            exe, "etcd", "--data-dir", str(self.state_dir / "etcd"),
            "--listen-client-url", f"http://127.0.0.1:{ports['etcd']}",
            "--listen-peer-url", f"http://127.0.0.1:{ports['peer']}",
        ])
        self._spawn("apiserver", [
            exe, "apiserver",
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki.apiserver_crt}", f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_crt}",
            f"--requestheader-client-ca-file={pki.front_proxy_ca_crt}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.client('front-proxy-client')[0]}",
            f"--proxy-client-key-file={pki.client('front-proxy-client')[1]}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--enable-admission-plugins=NodeRestriction",
            "--kubelet-preferred-address-types=InternalIP",
            # Webhook and aggregated-API Services resolve to their endpoints' (loopback) pod IPs:
            # there is no kube-proxy, so a ClusterIP would not route.
            "--enable-aggregator-routing=true",
            "--allow-privileged=true", "--profiling=false", "--v=1",
        ])
        self._wait_http(f"{server}/readyz", "apiserver", pki, started + timeout)
        common = ["--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"]
        cm_cfg = str(self.state_dir / "controller-manager.kubeconfig")
        self._spawn("controller-manager", [
            exe, "controller-manager", *common, f"--secure-port={ports['cm']}",
            f"--kubeconfig={cm_cfg}", f"--authentication-kubeconfig={cm_cfg}",
            f"--authorization-kubeconfig={cm_cfg}",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_crt}",
            f"--cluster-signing-cert-file={pki.ca_crt}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=true", "--controllers=*",
            "--kube-api-qps=200", "--kube-api-burst=400",  # scale tests with fake pods
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--cluster-name=modelyard-local",
        ])
        sched_cfg = str(self.state_dir / "scheduler.kubeconfig")
        self._spawn("scheduler", [
            exe, "scheduler", *common, f"--secure-port={ports['scheduler']}",
            f"--kubeconfig={sched_cfg}", f"--authentication-kubeconfig={sched_cfg}",
            f"--authorization-kubeconfig={sched_cfg}",
        ])
        if agent_args is not None:
            env = dict(os.environ)
            env["PATH"] = os.pathsep.join(
                [str(Path(sys.executable).parent), str(bin_dir), env.get("PATH", "")]
            )
            self._spawn("agent", [
                sys.executable, "-m", "modelyard", "local", "agent",
                "--kubeconfig", str(self.kubeconfig),
                "--state-dir", str(self.state_dir / "pods"), *agent_args,
            ], env=env)
        self._wait_http(f"https://127.0.0.1:{ports['cm']}/healthz", "controller-manager", None,
                        started + timeout)
        self._wait_http(f"https://127.0.0.1:{ports['scheduler']}/healthz", "scheduler", None,
                        started + timeout)
        if agent_args is not None:
            self._wait_schedulable(started + timeout)
        log(f"control plane {build.K8S_VERSION} ready in {time.monotonic() - started:.1f}s "
            f"at {server}; kubeconfig: {self.kubeconfig}")

    def _wait_http(self, url: str, name: str, pki: cluster_pki.Pki | None, deadline: float) -> None:
        if pki is not None:
            ctx = ssl.create_default_context(cafile=str(pki.ca_crt))
            crt, key = pki.client("admin")
            ctx.load_cert_chain(str(crt), str(key))
        else:
            ctx = ssl._create_unverified_context()  # components' self-signed serving certs
        pid = self.pids()[name]
        last = ""
        while time.monotonic() < deadline:
            if not alive(pid):
                raise ControlPlaneError(f"{name} exited; see {self.state_dir}/logs/{name}.log")
            try:
                with urllib.request.urlopen(url, context=ctx, timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{name} not ready after timeout ({last}); see {self.state_dir}/logs/{name}.log"
        )

    def _wait_schedulable(self, deadline: float) -> None:
        """Wait for an untainted Ready node and the default ServiceAccount (pods can run)."""
        client = kube.Kube(self.kubeconfig)
        while time.monotonic() < deadline:
            if not alive(self.pids()["agent"]):
                raise ControlPlaneError(f"agent exited; see {self.state_dir}/logs/agent.log")
            with contextlib.suppress(kube.KubeError, OSError):
                nodes = client.request("GET", "/api/v1/nodes")["items"]
                account = client.get("/api/v1/namespaces/default/serviceaccounts/default")
                if account and any(not n["spec"].get("taints") for n in nodes):
                    return
            time.sleep(0.25)
        raise ControlPlaneError("no schedulable node in time; see the agent and "
                                "controller-manager logs in " + str(self.state_dir / "logs"))

    # -- stopping -------------------------------------------------------------------------

    def down(self, *, grace: float = 15.0, log: build.Progress = print) -> None:
        """SIGTERM every component (agent first, etcd last), wait, then SIGKILL."""
        pids = self.pids()
        for name in reversed(_ORDER):
            pid = pids.get(name)
            if pid is None or not alive(pid):
                continue
            if not stop_group(pid, grace=grace):
                log(f"{name} (pid {pid}) ignored SIGTERM; killed")
            log(f"stopped {name} (pid {pid})")
        if self.state_file.exists():
            state = self.state()
            state["pids"] = {}
            self._save(state)
