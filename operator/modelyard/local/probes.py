"""Kubelet-style probes (HTTP, TCP, exec) for containers that run as local processes.

Separate from the process supervisor so that the probe rules (initial delay, period,
success and failure thresholds) can be read and tested on their own.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def resolve_port(port: int | str, container: Obj) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for item in container.get("ports") or []:
        if item.get("name") == port:
            return int(item["containerPort"])
    raise ValueError(f"unknown port name {port!r}")


def probe_once(
    probe: Obj, container: Obj, pod_ip: str, env: Mapping[str, str], cwd: str
) -> tuple[bool, str]:
    """Run one probe; returns (success, message for events on failure)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            host = get.get("host") or pod_ip
            scheme = str(get.get("scheme", "HTTP")).lower()
            port = resolve_port(get["port"], container)
            url = f"{scheme}://{host}:{port}{get.get('path', '/')}"
            request = urllib.request.Request(url, headers={
                h["name"]: h["value"] for h in get.get("httpHeaders") or []
            } | {"User-Agent": "kube-probe/1.33"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    code = int(response.status)
            except urllib.error.HTTPError as exc:
                code = exc.code
            ok = 200 <= code < 400
            return ok, "" if ok else f"HTTP probe failed with statuscode: {code}"
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            port = resolve_port(tcp["port"], container)
            with socket.create_connection((tcp.get("host") or pod_ip, port), timeout=timeout):
                return True, ""
        if "exec" in probe:
            result = subprocess.run(
                probe["exec"]["command"], env=dict(env), cwd=cwd, timeout=timeout,
                capture_output=True, check=False,
            )
            output = (result.stdout + result.stderr).decode(errors="replace")[-512:]
            return result.returncode == 0, output
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return False, f"probe failed: {exc}"
    return True, ""  # grpc and unknown handlers are not checked locally


@dataclass
class ProbeState:
    """Tracks one probe of one running container across periods."""

    probe: Obj
    started_at: float = field(default_factory=time.monotonic)
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0
    result: bool | None = None  # None until the thresholds decide

    def __post_init__(self) -> None:
        self.next_at = self.started_at + float(self.probe.get("initialDelaySeconds", 0))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, now: float) -> bool | None:
        """Feed one result; returns the (possibly changed) thresholded result."""
        self.next_at = now + float(self.probe.get("periodSeconds", 10))
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.result = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.result = False
        return self.result
