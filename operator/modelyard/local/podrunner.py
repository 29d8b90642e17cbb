"""Runs one pod bound to a fake node as local processes, and reports its status like a kubelet.

Each container is a process in its own session (so the whole tree can be signalled), with
its log under ``<pod dir>/logs/<container>.log``. The runner does what the controllers
depend on: probes decide readiness (EndpointSlices follow), ``restartPolicy`` decides
restarts with CrashLoopBackOff back-off and restart counts, exit codes and termination
messages end up in container statuses, and the pod phase ends Succeeded or Failed so the
Job controller can count. A *fake* runner only marks the pod Running and Ready.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from modelyard.local import container, podenv

Obj = dict[str, Any]
Hooks = container.Hooks
now_iso = container.now_iso


class PodRunner:
    """Runs one pod; ``start()`` returns at once, ``stop(grace)`` ends it."""

    def __init__(
        self, pod: Obj, pod_ip: str, pod_dir: Path, pvc_root: Path, hooks: Hooks, fake: bool
    ) -> None:
        self.pod, self.pod_ip, self.pod_dir, self.pvc_root = pod, pod_ip, pod_dir, pvc_root
        self.hooks, self.fake = hooks, fake
        self.volumes: dict[str, Path] = {}
        self.stopping = threading.Event()
        self.lock = threading.RLock()
        self.started_at = now_iso()
        status = pod.setdefault("status", {})
        status.update({"podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "hostIP": "127.0.0.1",
                       "hostIPs": [{"ip": "127.0.0.1"}]})
        spec = pod["spec"]
        self.init_containers = [container.Container(self, c, True) for c in spec.get("initContainers") or []]
        self.containers = [container.Container(self, c, False) for c in spec["containers"]]
        self.initialized = not self.init_containers
        self._last: Obj = {}
        self._transitions: dict[str, tuple[str, str]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.key)

    @property
    def key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"

    def grace(self) -> int:
        return int(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    def event(self, type_: str, reason: str, message: str) -> None:
        self.hooks.event(self.pod, type_, reason, message)

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.init_containers + self.containers
                if c.proc is not None and c.proc.poll() is None]

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        if self.fake:
            self.initialized = True
            for c in self.containers:
                c.state, c.ready, c.started = {"running": {"startedAt": now_iso()}}, True, True
            self.publish()
            return
        self.publish()
        while not self.stopping.is_set():
            try:
                self.volumes = podenv.prepare_volumes(
                    self.pod, self.pod_dir, self.pvc_root, self.hooks.read, self.hooks.mint)
                break
            except podenv.ConfigError as exc:
                for c in self.init_containers + self.containers:
                    c.state = {"waiting": {"reason": "CreateContainerConfigError",
                                           "message": str(exc)}}
                self.publish()
                self.stopping.wait(2.0)
        sidecars: list[threading.Thread] = []
        for init in self.init_containers:
            if init.sidecar:  # start it, wait until started, keep it running alongside
                sidecars.append(threading.Thread(target=init.run, daemon=True))
                sidecars[-1].start()
                while not (init.started or init.finished or self.stopping.wait(0.1)):
                    pass
                continue
            init.run()
            if init.state.get("terminated", {}).get("exitCode") != 0:
                self._end_sidecars()
                self.publish()
                return
        self.initialized = True
        threads = [threading.Thread(target=c.run, daemon=True) for c in self.containers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._end_sidecars()
        self.publish()

    def _end_sidecars(self) -> None:
        """When the app containers are done, sidecars are stopped (in reverse order)."""
        for init in reversed(self.init_containers):
            if init.sidecar and not init.finished:
                init.stop_requested = True
                init.terminate(float(self.grace()))

    def stop(self, grace: float) -> None:
        """Pod deletion: SIGTERM every container, SIGKILL after ``grace``, wait for the runner."""
        self.stopping.set()
        killers = [threading.Thread(target=c.terminate, args=(grace,))
                   for c in self.init_containers + self.containers]
        for thread in killers:
            thread.start()
        for thread in killers:
            thread.join()
        self._thread.join(timeout=grace + 5)

    def _phase(self) -> str:
        if not self.initialized:
            failed = any(c.finished and c.state.get("terminated", {}).get("exitCode") != 0
                         for c in self.init_containers)
            return "Failed" if failed else "Pending"
        if all(c.finished for c in self.containers):
            codes = [c.state.get("terminated", {}).get("exitCode", 1) for c in self.containers]
            return "Succeeded" if all(code == 0 for code in codes) else "Failed"
        if any("running" in c.state or c.restarts or c.last_state for c in self.containers):
            return "Running"
        return "Pending"

    def _condition(self, type_: str, ok: bool, reason: str = "") -> Obj:
        status = "True" if ok else "False"
        previous = self._transitions.get(type_)
        if previous is None or previous[0] != status:
            self._transitions[type_] = (status, now_iso())
        cond = {"type": type_, "status": status,
                "lastTransitionTime": self._transitions[type_][1], "lastProbeTime": None}
        if reason and not ok:
            cond["reason"] = reason
        return cond

    def publish(self) -> None:
        """Send the pod status if it changed since the last report."""
        with self.lock:
            phase = self._phase()
            ready = all(c.ready for c in self.containers) and phase == "Running"
            done_reason = "PodCompleted" if phase in ("Succeeded", "Failed") else ""
            status: Obj = {
                "phase": phase, "startTime": self.started_at,
                "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}],
                "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                "qosClass": self.pod.get("status", {}).get("qosClass", "BestEffort"),
                "conditions": [
                    self._condition("PodReadyToStartContainers", True),
                    self._condition("Initialized", self.initialized, "ContainersNotInitialized"),
                    self._condition("ContainersReady", ready,
                                    done_reason or "ContainersNotReady"),
                    self._condition("Ready", ready, done_reason or "ContainersNotReady"),
                ],
                "containerStatuses": [c.status() for c in self.containers],
            }
            if self.init_containers:
                status["initContainerStatuses"] = [c.status() for c in self.init_containers]
            if status == self._last:
                return
            self._last = status
            self.hooks.publish(self.pod, status)
