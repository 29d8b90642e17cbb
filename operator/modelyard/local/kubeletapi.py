"""The slice of the kubelet's HTTPS API that makes ``kubectl logs`` work on local pods.

``kubectl logs`` goes to the API server, which connects to the node's kubelet endpoint
(``status.daemonEndpoints.kubeletEndpoint.Port`` on the node's InternalIP). The node agent
serves ``/containerLogs/<ns>/<pod>/<container>`` (with ``tailLines`` and ``follow``) from
the per-pod log files; everything else (exec, attach, port-forward) answers 501. The
serving certificate is self-signed: the API server does not verify kubelets unless it is
given ``--kubelet-certificate-authority``.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from modelyard import certs

# (namespace, pod, container) -> log file, or None when the pod is not ours
LogLocator = Callable[[str, str, str], Path | None]
# () -> whether (namespace, pod) still runs; used to end ``follow``
PodAlive = Callable[[str, str], bool]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    crt, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if crt.exists() and key_path.exists():
        return crt, key_path
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    issued = certs.self_signed(
        "modelyard-node-agent", ["localhost", "127.0.0.1"], now, datetime.timedelta(days=3650)
    )
    certs.write(crt, key_path, issued.cert_pem, issued.key_pem)
    return crt, key_path


class KubeletServer:
    """HTTPS server on 127.0.0.1 (a free port); ``port`` goes into the node status."""

    def __init__(self, directory: Path, locate: LogLocator, alive: PodAlive) -> None:
        crt, key = _self_signed(directory)
        handler = _handler(locate, alive)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(crt), str(key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="kubelet-api")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(locate: LogLocator, alive: PodAlive) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _plain(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # exec, attach, port-forward
            self._plain(
                501,
                "exec/attach/port-forward: not supported by the modelyard node "
                "agent; pods are local processes (see their pod directory)\n",
            )

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "containerLogs":
                self._plain(501, "not supported by the modelyard node agent (logs only)\n")
                return
            _, namespace, pod, container = parts
            query = urllib.parse.parse_qs(url.query)
            path = locate(namespace, pod, container)
            if path is not None and query.get("previous", ["false"])[0] == "true":
                path = path.with_suffix(".previous.log")
            if path is None or not path.exists():
                self._plain(404, f"no logs for {namespace}/{pod}/{container}\n")
                return
            tail = int(query.get("tailLines", ["-1"])[0])
            follow = query.get("follow", ["false"])[0] == "true"
            data = path.read_bytes()
            if tail >= 0:
                data = b"".join(data.splitlines(keepends=True)[-tail:]) if tail else b""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                self._chunk(data)
                offset = path.stat().st_size if follow else 0
                while follow and alive(namespace, pod):
                    time.sleep(0.5)
                    with path.open("rb") as handle:
                        handle.seek(offset)
                        more = handle.read()
                    offset += len(more)
                    self._chunk(more)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, FileNotFoundError):
                return

        def _chunk(self, data: bytes) -> None:
            if data:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

    return Handler
