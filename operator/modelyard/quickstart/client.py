"""Step 4 of the quickstart: what an application developer does, with the official ``openai`` client.

The gateway is reached at its pod IP (there is no kube-proxy locally); on a real cluster the
same code would use the Service's address.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from modelyard.quickstart import cluster, manifests, progress

EMBED_INPUT = "modelyard serves models on Kubernetes"


@dataclasses.dataclass(frozen=True)
class Answers:
    chat: str
    usage: str
    embedding_dimension: int


def _client(base_url: str, key: str | None) -> Any:
    import openai

    return openai.OpenAI(base_url=base_url, api_key=key or "unused", max_retries=2, timeout=120)


def wait_routed(base_url: str, key: str | None, served: list[str], timeout: float = 120.0) -> None:
    """Until the gateway lists every served name (its discovery follows the endpoints' pods)."""
    import openai

    client = _client(base_url, key)
    deadline = time.monotonic() + timeout
    listed: set[str] = set()
    while time.monotonic() < deadline:
        try:
            listed = {m.id for m in client.models.list().data}
        except openai.APIConnectionError:
            listed = set()
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise cluster.QuickstartError(f"the gateway at {base_url} refused the key: {exc}") from exc
            listed = set()  # 5xx while it starts: ask again
        if set(served) <= listed:
            return
        time.sleep(1.0)
    raise cluster.QuickstartError(f"the gateway at {base_url} lists {sorted(listed)}, not {served}")


def ask(base_url: str, key: str | None, chat_model: str, embedding_model: str,
        show: progress.Progress) -> Answers:
    """One chat completion and one embedding; an error answer becomes a :class:`QuickstartError`."""
    import openai

    try:
        return _ask(_client(base_url, key), base_url, chat_model, embedding_model, show)
    except openai.OpenAIError as exc:
        raise cluster.QuickstartError(f"the gateway at {base_url} answered: {exc}") from exc


def _ask(client: Any, base_url: str, chat_model: str, embedding_model: str,
         show: progress.Progress) -> Answers:
    show.step(f"POST {base_url}/chat/completions  model={chat_model}: {manifests.PROMPT!r}")
    reply = client.chat.completions.create(
        model=chat_model, messages=[{"role": "user", "content": manifests.PROMPT}], max_tokens=32,
        temperature=0,
    )
    usage = reply.usage
    usage_text = "not reported"
    if usage is not None:
        usage_text = (f"prompt {usage.prompt_tokens}, completion {usage.completion_tokens}, "
                      f"total {usage.total_tokens} tokens")
    show.step(f"POST {base_url}/embeddings  model={embedding_model}")
    embedded = client.embeddings.create(model=embedding_model, input=EMBED_INPUT)
    return Answers(
        chat=reply.choices[0].message.content or "",
        usage=usage_text,
        embedding_dimension=len(embedded.data[0].embedding),
    )
