"""``/v1/embeddings`` (float or base64) and ``/v1/rerank``, both dynamically batched."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from aiohttp import web

from modelyard.api import openai
from modelyard.runtime import errors, protocols, served
from modelyard.runtime.serving import http, keys

MAX_INPUTS = 2048


def _texts(req: openai.EmbeddingRequest, model: served.ServedModel) -> list[str]:
    raw = req.input
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif raw and all(isinstance(x, int) for x in raw):
        items = [raw]
    else:
        items = list(raw)
    if not items:
        raise errors.BadRequestError("input: at least one input is required", param="input")
    if len(items) > MAX_INPUTS:
        raise errors.BadRequestError(f"input: at most {MAX_INPUTS} inputs per request", param="input")
    texts: list[str] = []
    detokenize = getattr(model.handler, "detokenize", None)
    for i, item in enumerate(items):
        if isinstance(item, str):
            if not item:
                raise errors.BadRequestError(f"input[{i}]: must not be an empty string", param="input")
            texts.append(item)
        elif detokenize is not None:
            vocab = int(getattr(model.handler, "vocab_size", 0) or 0)
            if vocab and any(t >= vocab for t in item):
                raise errors.BadRequestError(
                    f"input[{i}]: token ids of this model are 0 to {vocab - 1}", param="input"
                )
            texts.append(str(detokenize(list(item))))
        else:
            raise errors.UnsupportedError(f"input[{i}]: this model takes text, not token ids", param="input")
    return texts


async def _in_slot(app: web.Application, model: served.ServedModel, fn: Callable[[], Any]) -> Any:
    async with model.limiter.slot():
        return await asyncio.get_running_loop().run_in_executor(app[keys.EXECUTOR], fn)


async def embed_texts(
    app: web.Application, model: served.ServedModel, texts: list[str]
) -> list[np.ndarray[Any, Any]]:
    if model.batcher is not None:
        return await model.batcher.submit(texts)
    handler = model.handler
    return list(np.asarray(await _in_slot(app, model, lambda: handler.embed(texts)), dtype=np.float32))


async def embeddings(request: web.Request) -> web.Response:
    app = request.app
    req = http.parse(openai.EmbeddingRequest, await http.read_json(request))
    model = http.lookup(request, req.model, "embedding")
    texts = _texts(req, model)
    dim = int(getattr(model.handler, "dim", 0) or 0)
    if req.dimensions is not None and dim and req.dimensions > dim:
        raise errors.BadRequestError(
            f"dimensions: this model's vectors have {dim} dimensions", param="dimensions"
        )
    loop = asyncio.get_running_loop()
    count = getattr(model.handler, "count_tokens", None)
    tokens_future = loop.run_in_executor(app[keys.EXECUTOR], count, texts) if callable(count) else None
    vectors = await embed_texts(app, model, texts)
    tokens = int(await tokens_future) if tokens_future is not None else 0
    app[keys.METRICS].prompt_tokens.labels(model.name).inc(tokens)
    data = []
    for i, vector in enumerate(vectors):
        v = np.asarray(vector, dtype=np.float32)
        if req.dimensions is not None:
            v = v[: req.dimensions]
            norm = float(np.linalg.norm(v))
            v = v / norm if norm > 0 else v
        encoded: Any = (
            base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
            if req.encoding_format == "base64"
            else v.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return http.json_response(
        {
            "object": "list",
            "data": data,
            "model": model.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def score(
    app: web.Application, model: served.ServedModel, query: str, documents: Sequence[str]
) -> list[float]:
    if model.batcher is not None:
        return [float(s) for s in await model.batcher.submit([(query, d) for d in documents])]
    handler = model.handler
    results: list[protocols.RerankResult] = await _in_slot(
        app, model, lambda: handler.rerank(query, list(documents))
    )
    scores = [0.0] * len(documents)
    for r in results:
        scores[r.index] = float(r.score)
    return scores


async def rerank(request: web.Request) -> web.Response:
    app = request.app
    body = await http.read_json(request)
    # Cohere-style documents may be objects with a "text" field.
    docs = body.get("documents")
    if isinstance(docs, list):
        body["documents"] = [d.get("text", d) if isinstance(d, dict) else d for d in docs]
    req = http.parse(openai.RerankRequest, body)
    model = http.lookup(request, req.model, "rerank")
    scores = await score(app, model, req.query, req.documents)
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    if req.top_n is not None:
        order = order[: req.top_n]
    count = getattr(model.handler, "count_tokens", None)
    tokens = 0
    if callable(count):
        pairs = [(req.query, d) for d in req.documents]
        tokens = int(await asyncio.get_running_loop().run_in_executor(app[keys.EXECUTOR], count, pairs))
    results = []
    for i in order:
        item: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
        if req.return_documents:
            item["document"] = {"text": req.documents[i]}
        results.append(item)
    return http.json_response(
        {
            "id": f"rerank-{uuid.uuid4().hex}",
            "object": "rerank",
            "model": model.name,
            "results": results,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
