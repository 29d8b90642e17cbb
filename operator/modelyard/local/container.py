"""One container of a locally run pod: its process, probes, restarts and status.

The kubelet's per-container rules (restartPolicy, CrashLoopBackOff back-off, liveness
restarts, exit codes and termination messages) live here; :mod:`modelyard.local.podrunner`
composes containers into a pod and derives the pod phase and conditions from them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.api import wire
from modelyard.local import podenv, probes

if TYPE_CHECKING:
    from modelyard.local.podrunner import PodRunner

Obj = dict[str, Any]
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Hooks:
    """What a runner needs from the agent (kept small so runners are testable)."""

    publish: Callable[[Obj, Obj], None]  # (pod, status patch)
    event: Callable[[Obj, str, str, str], None]  # (pod, type, reason, message)
    read: podenv.Reader
    mint: podenv.TokenMinter
    extra_env: dict[str, str] = field(default_factory=dict)
    backoff: tuple[float, float] = (2.0, 60.0)  # CrashLoopBackOff base and cap, seconds


class Container:
    """One container's process and its kubelet-visible state."""

    def __init__(self, runner: PodRunner, spec: Obj, init: bool) -> None:
        self.runner, self.spec, self.init = runner, spec, init
        # a native sidecar: an init container that keeps running next to the app containers
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.name: str = spec["name"]
        self.dir = runner.pod_dir / "containers" / self.name
        self.log = runner.pod_dir / "logs" / f"{self.name}.log"
        self.state: Obj = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Obj = {}
        self.restarts = 0
        self.ready = False
        self.started = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.finished = False  # terminated and will not restart
        self.stop_requested = False  # a sidecar told to end with its pod
        self.mounts: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.cwd = ""

    def status(self) -> Obj:
        pid = self.proc.pid if self.proc else None
        return {
            "name": self.name, "image": self.spec.get("image", ""), "imageID": "",
            "containerID": f"modelyard://{pid}" if pid else "", "ready": self.ready,
            "started": self.started, "restartCount": self.restarts,
            "state": self.state, "lastState": self.last_state,
        }

    def _prepare(self) -> tuple[list[str], dict[str, str], str, Path]:
        runner, spec = self.runner, self.spec
        self.dir.mkdir(parents=True, exist_ok=True)
        term = self.dir / "termination-log"
        term.write_text("")
        mounts = podenv.mount_map(spec, runner.volumes)
        mounts[spec.get("terminationMessagePath", DEFAULT_TERMINATION_PATH)] = str(term)
        self.mounts = mounts
        base = podenv.base_env(runner.pod, runner.hooks.extra_env)
        base.update(podenv.volume_env(runner.volumes))
        base["MODELYARD_POD_DIR"] = str(runner.pod_dir)
        base[wire.TERMINATION_MESSAGE_ENV] = str(term)
        env = podenv.container_env(runner.pod, spec, runner.hooks.read, base)
        env = {k: podenv.rewrite(v, mounts) for k, v in env.items()}
        argv = [*spec.get("command", []), *spec.get("args", [])]
        argv = [podenv.rewrite(podenv.expand(a, env), mounts) for a in argv]
        cwd = podenv.rewrite(spec.get("workingDir") or "", mounts) or str(self.dir)
        return argv, env, cwd, term

    def _spawn(self) -> tuple[dict[str, str], str, Path] | None:
        """Start the process; on failure record a StartError termination and return None."""
        try:
            argv, env, cwd, term = self._prepare()
            if not argv:
                raise OSError("no command or args: images are not pulled, set a command")
            exe = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
            if exe is None:
                raise OSError(f'exec: "{argv[0]}": executable file not found in $PATH')
            self.log.parent.mkdir(parents=True, exist_ok=True)
            Path(cwd).mkdir(parents=True, exist_ok=True)
            with self.log.open("wb") as log:  # each run starts a fresh log
                self.proc = subprocess.Popen(
                    [exe, *argv[1:]], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )
            (self.dir / "pid").write_text(str(self.proc.pid))
            self.env, self.cwd = env, cwd
            return env, cwd, term
        except podenv.ConfigError as exc:
            self.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
        except OSError as exc:
            self.state = {"terminated": {
                "exitCode": 128, "reason": "StartError", "message": str(exc),
                "startedAt": now_iso(), "finishedAt": now_iso()}}
        return None

    def _message(self, term: Path, code: int) -> str:
        with contextlib.suppress(OSError):
            text = term.read_text()[-4096:]
            if text:
                return text
        policy = self.spec.get("terminationMessagePolicy", "File")
        if code != 0 and policy == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                lines = self.log.read_text(errors="replace").splitlines()[-80:]
                return "\n".join(lines)[-2048:]
        return ""

    def run(self) -> None:
        """Supervise until the container finishes for good or the pod stops."""
        runner = self.runner
        policy = "Always" if self.sidecar else runner.pod["spec"].get("restartPolicy", "Always")
        delay, cap = runner.hooks.backoff
        while not runner.stopping.is_set():
            spawned = self._spawn()
            if spawned is None and "waiting" in self.state:  # config error: retry later
                runner.publish()
                runner.stopping.wait(2.0)
                continue
            code = 128
            if spawned is not None:
                env, cwd, term = spawned
                started = now_iso()
                self.state = {"running": {"startedAt": started}}
                runner.event("Normal", "Started", f"Started container {self.name}")
                runner.publish()
                code = self._supervise(env, cwd)
                self.ready, self.started = False, False
                reason = "Completed" if code == 0 else "Error"
                self.state = {"terminated": {
                    "exitCode": code, "reason": reason, "startedAt": started,
                    "finishedAt": now_iso(), "message": self._message(term, code),
                    "containerID": f"modelyard://{self.proc.pid if self.proc else 0}"}}
                with contextlib.suppress(OSError):  # for `kubectl logs --previous`
                    shutil.copyfile(self.log, self.log.with_suffix(".previous.log"))
            else:
                code = int(self.state["terminated"]["exitCode"])
            restart = not runner.stopping.is_set() and not self.stop_requested and (
                (policy == "Always" and (not self.init or self.sidecar))
                or (policy == "OnFailure" and code != 0)
                or (self.init and policy != "Never" and code != 0)
            )
            if not restart:
                self.finished = True
                runner.publish()
                return
            self.last_state = self.state
            message = f"back-off {delay:.0f}s restarting failed container={self.name}"
            self.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            runner.event("Warning", "BackOff", message)
            runner.publish()
            if runner.stopping.wait(delay):
                break
            delay = min(delay * 2, cap)
            self.restarts += 1
        self.finished = True

    def _probe(self, key: str) -> probes.ProbeState | None:
        """A probe of this container (exec commands get mount paths rewritten), if any."""
        probe = self.spec.get(key)
        if not probe or (self.init and not self.sidecar):
            return None
        if "exec" in probe:
            command = [podenv.rewrite(a, self.mounts) for a in probe["exec"]["command"]]
            probe = {**probe, "exec": {"command": command}}
        return probes.ProbeState(probe)

    def _supervise(self, env: dict[str, str], cwd: str) -> int:
        """Wait for the process while running probes; returns the kubelet-style exit code.

        A startupProbe gates the others (``started``); without a readinessProbe a started
        container is ready. Init containers (not sidecars) are never probed.
        """
        assert self.proc is not None
        spec, runner = self.spec, self.runner
        probed = not self.init or self.sidecar
        startup = self._probe("startupProbe")
        ready_probe = live_probe = None
        self.started = startup is None
        while self.proc.poll() is None:
            if self.started and ready_probe is None and live_probe is None:
                ready_probe = self._probe("readinessProbe")
                live_probe = self._probe("livenessProbe")
                if ready_probe is None and probed:
                    self.ready = True
                runner.publish()
            now = time.monotonic()
            checks = [(startup, "Startup")] if not self.started else [
                (ready_probe, "Readiness"), (live_probe, "Liveness")]
            for state, kind in checks:
                if state is None or not state.due(now) or self.proc.poll() is not None:
                    continue
                ok, message = probes.probe_once(state.probe, spec, runner.pod_ip, env, cwd)
                before = state.result
                result = state.record(ok, time.monotonic())
                if not ok:
                    runner.event("Warning", "Unhealthy", f"{kind} probe failed: {message}")
                if kind == "Startup" and result is True:
                    self.started = True
                elif kind != "Readiness" and result is False:
                    runner.event("Normal", "Killing", f"Container {self.name} failed "
                                 f"{kind.lower()} probe, will be restarted")
                    self.terminate(float(runner.grace()))
                elif kind == "Readiness" and result is not None and result != before:
                    self.ready = result
                    runner.publish()
            if runner.stopping.wait(0.2):
                break
        code = self.proc.wait()
        return code if code >= 0 else 128 - code

    def terminate(self, grace: float) -> None:
        """Run the preStop hook, SIGTERM the process group, SIGKILL it when ``grace`` is up."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        deadline = time.monotonic() + max(grace, 0.0)
        self._pre_stop(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _pre_stop(self, grace: float) -> None:
        """``lifecycle.preStop``: exec, httpGet or sleep, bounded by the grace period."""
        hook = (self.spec.get("lifecycle") or {}).get("preStop")
        if not hook or grace <= 0:
            return
        if "sleep" in hook:
            time.sleep(min(float(hook["sleep"].get("seconds", 0)), grace))
            return
        probe = {**hook, "timeoutSeconds": grace}
        if "exec" in hook:
            command = [podenv.rewrite(a, self.mounts) for a in hook["exec"]["command"]]
            probe["exec"] = {"command": command}
        ok, message = probes.probe_once(probe, self.spec, self.runner.pod_ip, self.env,
                                        self.cwd or str(self.dir))
        if not ok:
            self.runner.event("Warning", "FailedPreStopHook", message)
