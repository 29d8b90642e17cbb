"""Scale-down without loss, the runtime's part: SIGTERM during a stream leaves the Service
(/ready stops answering 200), finishes the stream to its last token, then exits cleanly."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import requests

from kit import free_port, http_get, wait_for, wait_serving

HERE = pathlib.Path(__file__).parent


def test_sigterm_finishes_the_running_stream_then_exits(models_dir: pathlib.Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "runtime", "--host", "127.0.0.1", "--port", str(port),
         "--device", "cpu", "--model", str(models_dir / "llama"), "--served-name", "slow",
         "--handler", "custom_handlers.SlowChat", "--no-warmup"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(proc, f"{base}/ready", 240, lambda: proc.stdout.read() if proc.stdout else "")
        body = {
            "model": "slow",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 15,
            "stream": True,
        }
        with requests.post(f"{base}/v1/chat/completions", json=body, stream=True, timeout=60) as response:
            assert response.status_code == 200
            lines = response.iter_lines(decode_unicode=True)
            first = next(line for line in lines if line.startswith("data: "))
            proc.send_signal(signal.SIGTERM)  # mid-stream: 14 tokens still to come
            wait_for(
                lambda: http_get(f"{base}/ready", timeout=1)[0] != 200, 10, "/ready to stop answering 200"
            )
            rest = [line for line in lines if line.startswith("data: ")]
        events = [first, *rest]
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
        assert text == "".join(f"t{i} " for i in range(15))
        assert [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")][-1] == "length"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
