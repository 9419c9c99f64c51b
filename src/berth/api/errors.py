"""Errors as types: a handler raises the service's exception; the API layer shapes it for
the wire."""
from __future__ import annotations

from typing import Any

# Status codes of errors that every AWS JSON service may answer but few models declare.
COMMON_STATUS = {
    "AccessDeniedException": 403,
    "IncompleteSignature": 400,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "ValidationException": 400,
    "RequestEntityTooLargeException": 413,
    "ThrottlingException": 400,
    "InternalFailure": 500,
    "ServiceUnavailableException": 503,
}


class ServiceError(Exception):
    """An AWS error: `code` is the exception shape's name, `status` its HTTP status.

    `status` may be left None: the API layer then takes it from the service model, so a handler
    only states which error happened. `fields` are extra members of the error shape
    (e.g. Lambda's `Type`).
    """

    def __init__(self, code: str, message: str, status: int | None = None,
                 **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else COMMON_STATUS.get(code)
        self.fields = fields


def error(code: str, message: str, **fields: Any) -> ServiceError:
    return ServiceError(code, message, **fields)
