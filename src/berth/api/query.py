"""The AWS `query` protocol (STS, IAM, SNS, ...): form-encoded requests, XML answers and errors.

A request is `Action=<Operation>&Version=<api version>&...` in a form body (or, for a GET, the
query string); nested members are spelled out by path (`Tags.member.1.Key`), as the model's
shapes say: a list's items under `member` (or the item's own name, or directly when flattened),
a map's under `entry.N.key` / `entry.N.value`. An answer is `<OpResponse><OpResult>...` in the
service's XML namespace with its request id; an error is an `<ErrorResponse>`.
"""
from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Iterable
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, ServiceModel, Shape

from .errors import ServiceError
from .protocol import scalar_from_text

FORM_TYPE = "application/x-www-form-urlencoded"
CONTENT_TYPE = b"text/xml"

# The query protocol's names for the errors berth's authentication raises in JSON terms.
AUTH_CODES = {
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "ExpiredTokenException": "ExpiredToken",
    "AccessDeniedException": "AccessDenied",
    "UnknownOperationException": "InvalidAction",
    "RequestEntityTooLargeException": "RequestEntityTooLarge",
    "ThrottlingException": "Throttling",
    "InternalFailure": "InternalFailure",
}


class _Node:
    """One step of a dotted form key: its own value (`A=x`) and its children (`A.B=y`)."""

    __slots__ = ("value", "children")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """A form body's pairs; a body that is not a form is a client error."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError("MalformedQueryString", "The request body is not valid UTF-8.",
                           status=400) from None
    return parse_qsl(text, keep_blank_values=True)


def action_of(pairs: Iterable[tuple[str, str]]) -> str | None:
    for key, value in pairs:
        if key == "Action":
            return value
    return None


def parse(shape: Shape | None, pairs: Iterable[tuple[str, str]],
          validation_code: str) -> dict[str, Any]:
    """The operation's input (before validation) from the form's pairs. Members the shape
    does not know are ignored, as AWS ignores them; a value of the wrong kind (a word where
    an integer belongs) is the service's validation error."""
    if shape is None:
        return {}
    root = _Node()
    for key, value in pairs:
        if key in ("Action", "Version"):
            continue
        node = root
        for step in key.split("."):
            node = node.children.setdefault(step, _Node())
        node.value = value
    return _structure(shape, root, "", validation_code)


def _wire_name(shape: Shape, default: str) -> str:
    return shape.serialization.get("name", default)


def _structure(shape: Shape, node: _Node, path: str, code: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        child = node.children.get(_wire_name(member, name))
        if child is None and member.type_name == "list" \
                and member.serialization.get("flattened") and "name" in member.member.serialization:
            child = node.children.get(member.member.serialization["name"])
        if child is not None:
            where = f"{path}.{name[:1].lower()}{name[1:]}" if path else \
                f"{name[:1].lower()}{name[1:]}"
            out[name] = _value(member, child, where, code)
    return out


def _indexed(node: _Node) -> list[_Node]:
    """The children numbered 1, 2, ... in order (gaps and stray keys ignored)."""
    numbered = [(int(k), v) for k, v in node.children.items() if k.isdigit()]
    return [v for _, v in sorted(numbered)]


def _value(shape: Shape, node: _Node, path: str, code: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, node, path, code)
    if kind == "list":
        items = node if shape.serialization.get("flattened") else \
            node.children.get(_wire_name(shape.member, "member"), _Node())
        return [_value(shape.member, item, f"{path}.{i}.member", code)
                for i, item in enumerate(_indexed(items), 1)]
    if kind == "map":
        entries = node if shape.serialization.get("flattened") else \
            node.children.get("entry", _Node())
        key_name, value_name = _wire_name(shape.key, "key"), _wire_name(shape.value, "value")
        out = {}
        for entry in _indexed(entries):
            key, value = entry.children.get(key_name), entry.children.get(value_name)
            if key is not None and key.value is not None:
                out[key.value] = _value(shape.value, value, path, code) \
                    if value is not None else None
        return out
    return scalar_from_text(kind, node.value if node.value is not None else "", path, code)


# -- answers -------------------------------------------------------------------------------

def _timestamp(value: Any) -> str:
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value)


def _scalar(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else
                                str(value).encode()).decode()
    return escape(str(value))


def _element(name: str, shape: Shape, value: Any, out: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        out.append(f"<{name}>")
        _members(shape, value, out)
        out.append(f"</{name}>")
    elif kind == "list":
        item = shape.member
        if shape.serialization.get("flattened"):
            for v in value:
                _element(_wire_name(item, name), item, v, out)
            return
        out.append(f"<{name}>")
        for v in value:
            _element(_wire_name(item, "member"), item, v, out)
        out.append(f"</{name}>")
    elif kind == "map":
        key_name, value_name = _wire_name(shape.key, "key"), _wire_name(shape.value, "value")
        flat = bool(shape.serialization.get("flattened"))
        if not flat:
            out.append(f"<{name}>")
        for k, v in value.items():
            out.append(f"<{name if flat else 'entry'}>")
            _element(key_name, shape.key, k, out)
            _element(value_name, shape.value, v, out)
            out.append(f"</{name if flat else 'entry'}>")
        if not flat:
            out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_scalar(shape, value)}</{name}>")


def _members(shape: Shape, value: dict[str, Any], out: list[str]) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _element(_wire_name(member, name), member, item, out)


def serialize(model: ServiceModel, op: OperationModel, result: dict[str, Any],
              request_id: str) -> bytes:
    """An operation's XML answer: its result by the output shape, then the request id."""
    namespace = model.metadata.get("xmlNamespace", "")
    out = [f'<{op.name}Response xmlns="{namespace}">']
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
        out.append(f"<{wrapper}>")
        _members(shape, result, out)
        out.append(f"</{wrapper}>")
    out.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
               f"</{op.name}Response>")
    return "".join(out).encode()


def wire_code(model: ServiceModel | None, code: str) -> str:
    """The code an error has on this protocol's wire: the query name of a common
    authentication error (those berth raises in JSON terms, ExpiredTokenException included:
    STS's own shape of that name is about web identity tokens), the model's `error.code` for
    its own shapes (MalformedPolicyDocumentException is MalformedPolicyDocument), else the
    code itself."""
    if code in AUTH_CODES:
        return AUTH_CODES[code]
    if model is not None and code in model.shape_names:
        declared = model.shape_for(code).metadata.get("error", {}).get("code")
        if declared:
            return declared
    return code


def error_body(namespace: str, code: str, message: str, status: int,
               request_id: str) -> bytes:
    fault = "Sender" if status < 500 else "Receiver"
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()


def rest_xml_error_body(code: str, message: str, request_id: str) -> bytes:
    """An error as the REST-XML services (S3) write it: a bare `<Error>`."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId>"
            "</Error>").encode()
