"""The runtime's errors, in one place, each mapped to one HTTP status by the server.

    RuntimeServingError            base: every failure the runtime reports on purpose
    ├── BadRequestError            the request is wrong; 400 naming the field (``param``)
    │   └── UnsupportedError       the model cannot do what was asked (e.g. response_format)
    ├── UnsupportedMediaError      the body's Content-Type is not what the route reads; 415
    ├── ModelNotFoundError         no served model has that name; 404
    ├── ConflictError              the request contradicts the server's state (an adapter's name
    │                              taken by another path, --max-adapters reached); 409
    ├── OverloadedError            the model's queue is full; 429
    ├── NotReadyError              warm-up has not finished; 503
    ├── GenerationError            the model produced no usable answer; 500
    └── LoadError                  a model cannot be loaded (startup, never per request)
        ├── ProviderError          a provider failed, or no provider has that name
        │   └── ModelAccessError   the weights cannot be reached (not cached, no access)
        └── HandlerError           the handler class path is wrong or the class unusable

Messages are written for the person reading a pod log or an API error: they name the model,
the field or the setting to change.
"""

from __future__ import annotations


class RuntimeServingError(Exception):
    """Base class of every runtime error."""

    status = 500

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class BadRequestError(RuntimeServingError):
    status = 400


class UnsupportedError(BadRequestError):
    pass


class UnsupportedMediaError(RuntimeServingError):
    status = 415

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsupported_media_type")


class ModelNotFoundError(RuntimeServingError):
    status = 404


class ConflictError(RuntimeServingError):
    status = 409


class OverloadedError(RuntimeServingError):
    status = 429

    def __init__(self, message: str, *, model: str, code: str | None = "queue_full") -> None:
        super().__init__(message, code=code)
        self.model = model


class NotReadyError(RuntimeServingError):
    status = 503


class GenerationError(RuntimeServingError):
    status = 500


class LoadError(RuntimeServingError):
    pass


class ProviderError(LoadError):
    pass


class ModelAccessError(ProviderError):
    pass


class HandlerError(LoadError):
    pass
