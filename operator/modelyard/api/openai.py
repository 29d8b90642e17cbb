"""The OpenAI protocol, as the runtime serves it and the gateway relays it: one module, one
tolerant base model, one error shape.

Request models allow unknown fields and keep them (``model_extra``), so a client sending a
field we do not know is served, and the gateway passes the field on untouched. Errors always
have the OpenAI shape::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "model", "code": null}}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "server_error",
    "service_unavailable",
    "timeout_error",
]

# HTTP status -> the error type OpenAI uses for it.
ERROR_TYPES: dict[int, ErrorType] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class OpenAIModel(pydantic.BaseModel):
    """Tolerant: unknown fields are kept, not rejected."""

    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)


class ErrorDetail(OpenAIModel):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorResponse(OpenAIModel):
    error: ErrorDetail


def error_body(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | int | None = None,
    type_: str | None = None,
) -> dict[str, Any]:
    """The OpenAI error object for an HTTP status."""
    kind = type_ or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def media_type_error(content_type: str | None, *, form: bool = False) -> str | None:
    """Why a body sent as ``content_type`` is refused (415), or None when the route reads it.

    The JSON routes read the body as JSON whatever the Content-Type says (``curl -d`` and
    urllib label JSON ``application/x-www-form-urlencoded``; a body that is not JSON is a 400),
    except ``multipart/form-data``, which never is. The audio routes (``form``) read
    ``multipart/form-data`` only. The gateway and the runtime apply this same rule, so a
    client gets the same answer through either.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if form:
        if media == "multipart/form-data":
            return None
        want = "multipart/form-data (the audio file in a 'file' field)"
    else:
        if media != "multipart/form-data":
            return None
        want = "a JSON body (application/json); only the audio routes take multipart/form-data"
    return f"Content-Type {media or '(none)'!r} is not supported on this route; send {want}"


SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
"""The seeds torch takes (a larger one was an overflow, a 500)."""

MAX_TOP_LOGPROBS = 20
"""Chat's ``top_logprobs`` bound (OpenAI's)."""
MAX_COMPLETION_LOGPROBS = 5
"""The legacy completions' ``logprobs`` bound (OpenAI's)."""


class ChatMessage(OpenAIModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    """An assistant turn's calls: ``{"id", "type": "function", "function": {"name", "arguments"}}``."""
    tool_call_id: str | None = None
    """A ``tool`` message: the call it answers."""


class StreamOptions(OpenAIModel):
    include_usage: bool = False


class ResponseFormat(OpenAIModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(OpenAIModel):
    model: str = pydantic.Field(min_length=1)
    messages: list[ChatMessage] = pydantic.Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = pydantic.Field(default=None, ge=0, le=2)
    top_p: float | None = pydantic.Field(default=None, gt=0, le=1)
    max_tokens: int | None = pydantic.Field(default=None, ge=1)
    max_completion_tokens: int | None = pydantic.Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = pydantic.Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    n: int = pydantic.Field(default=1, ge=1, strict=True)
    """Choices to generate; the server's bound (the runtime's ``--max-n``) is checked where it is known."""
    logprobs: bool | None = pydantic.Field(default=None, strict=True)
    top_logprobs: int | None = pydantic.Field(default=None, ge=0, le=MAX_TOP_LOGPROBS, strict=True)
    """Most likely alternatives per token; needs ``logprobs: true``."""
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    """Function tools (checked by the runtime: a 400 naming ``tools[i]...``)."""
    tool_choice: str | dict[str, Any] | None = None
    """``auto``, ``none``, ``required`` or ``{"type": "function", "function": {"name": ...}}``."""
    parallel_tool_calls: bool | None = None
    user: str | None = None
    add_generation_prompt: bool = True
    """vLLM's extension: open an assistant turn after the messages (the usual chat)."""
    continue_final_message: bool = False
    """vLLM's extension: the last message is an assistant turn to continue, left open (the
    gateway resumes a broken stream this way); needs ``add_generation_prompt: false``."""


class CompletionRequest(OpenAIModel):
    model: str = pydantic.Field(min_length=1)
    prompt: str | list[str]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = pydantic.Field(default=None, ge=0, le=2)
    top_p: float | None = pydantic.Field(default=None, gt=0, le=1)
    max_tokens: int | None = pydantic.Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = pydantic.Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    echo: bool = False
    n: int = pydantic.Field(default=1, ge=1, strict=True)
    logprobs: int | None = pydantic.Field(default=None, ge=0, le=MAX_COMPLETION_LOGPROBS, strict=True)
    """The legacy shape: the chosen token's logprob and this many alternatives per token."""


class ResponsesRequest(OpenAIModel):
    """``POST /v1/responses``: the fields the runtime reads (others are kept and ignored)."""

    model: str = pydantic.Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    max_output_tokens: int | None = pydantic.Field(default=None, ge=1)
    temperature: float | None = pydantic.Field(default=None, ge=0, le=2)
    top_p: float | None = pydantic.Field(default=None, gt=0, le=1)
    previous_response_id: str | None = None
    store: bool | None = None
    metadata: dict[str, Any] | None = None


TokenId = Annotated[int, pydantic.Field(ge=0)]
"""A token id in a request (a negative one is a 400 naming the field, never an index error)."""


class EmbeddingRequest(OpenAIModel):
    model: str = pydantic.Field(min_length=1)
    input: str | list[str] | list[TokenId] | list[list[TokenId]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = pydantic.Field(default=None, ge=1)
    user: str | None = None


class RerankRequest(OpenAIModel):
    model: str = pydantic.Field(min_length=1)
    query: str
    documents: list[str] = pydantic.Field(min_length=1)
    top_n: int | None = pydantic.Field(default=None, ge=1)
    return_documents: bool = True


class Usage(OpenAIModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ModelCard(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "modelyard"


class ModelList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
