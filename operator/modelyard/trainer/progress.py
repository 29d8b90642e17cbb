"""Live training progress: one thread-safe snapshot, served at ``GET /progress`` and mirrored to
``progress.json`` in the output directory.

The operator polls the pod (no Kubernetes credentials in the trainer pod) and copies the
snapshot into the TrainingJob's ``status.progress``; the file survives the pod for people and
for the next pod of the same Job. Keys are the status field names (camelCase).
"""

from __future__ import annotations

import datetime
import http.server
import json
import pathlib
import threading
import time
from typing import Any

from modelyard.api import wire


class Tracker:
    """The latest progress snapshot; written by the training loop, read by the HTTP thread."""

    def __init__(self, file: pathlib.Path | None = None) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._file = file
        self._started = time.monotonic()
        self._first_step: int | None = None
        self.losses: list[tuple[int, float]] = []

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def update(
        self,
        *,
        step: int,
        total_steps: int,
        epoch: float | None = None,
        loss: float | None = None,
        learning_rate: float | None = None,
    ) -> dict[str, Any]:
        """Record the loop's position; ETA from this run's own pace (a resumed run starts late)."""
        now = time.monotonic()
        with self._lock:
            if self._first_step is None:
                self._first_step, self._started = step, now
            done = step - self._first_step
            state = dict(self._state)
            state.update({"step": step, "totalSteps": total_steps, "updated": _now()})
            state["percent"] = int(100 * step / total_steps) if total_steps else 0
            if done > 0:
                state["etaSeconds"] = int((now - self._started) / done * max(total_steps - step, 0))
            if epoch is not None:
                state["epoch"] = round(float(epoch), 4)
            if loss is not None:
                state["loss"] = round(float(loss), 6)
                self.losses.append((step, float(loss)))
            if learning_rate is not None:
                state["learningRate"] = float(learning_rate)
            self._state = state
        self._write(state)
        return state

    def _write(self, state: dict[str, Any]) -> None:
        if self._file is None:
            return
        tmp = self._file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(state, sort_keys=True))
            tmp.replace(self._file)
        except OSError:
            pass  # progress is best effort; training goes on


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serve(tracker: Tracker, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """Serve ``GET /progress`` from a daemon thread; the caller shuts the server down."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in (wire.PROGRESS_PATH, "/healthz"):
                self.send_error(404)
                return
            body = json.dumps(tracker.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="progress", daemon=True).start()
    return server
