"""``/v1/rerank`` through the openai client's generic ``post``: scores, order, top_n."""

from __future__ import annotations

from typing import Any


def test_rerank_orders_documents_by_relevance(client: Any, handlers: dict[str, Any]) -> None:
    docs = ["the cat sat on the mat", "kubernetes runs pods", "hello world"]
    reply = client.post(
        "/rerank",
        cast_to=object,
        body={"model": "tiny-rerank", "query": "a cat", "documents": docs, "top_n": 2},
    )
    results = reply["results"]
    assert len(results) == 2
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert results[0]["document"]["text"] == docs[results[0]["index"]]
    direct = handlers["tiny-rerank"].rerank("a cat", docs)
    assert [r.index for r in direct[:2]] == [r["index"] for r in results]
    assert reply["usage"]["total_tokens"] > 0


def test_cohere_style_document_objects_are_accepted(client: Any) -> None:
    reply = client.post(
        "/rerank",
        cast_to=object,
        body={
            "model": "tiny-rerank",
            "query": "q",
            "documents": [{"text": "a"}, {"text": "b"}],
            "return_documents": False,
        },
    )
    assert sorted(r["index"] for r in reply["results"]) == [0, 1]
    assert "document" not in reply["results"][0]
