"""Answers for services berth does not serve, in the protocol their SDKs parse.

A signed request names its service in the credential scope. When berth serves no service of
that signing name, the caller still gets an error its SDK can read (XML for IAM, SNS or S3,
JSON for the JSON services) that says so, instead of a 404 it cannot parse. The protocol is
read off the request (an X-Amz-Target header is JSON, a form body is query) or, for REST
requests, from botocore's model of the service named. As soon as a service of that name is
registered with the API layer, its requests reach it and this answer is never given.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Mapping

from botocore.exceptions import UnknownServiceError

from .models import service_model

log = logging.getLogger(__name__)

CODE = "NotImplemented"
STATUS = 501        # not retried by the SDKs (they retry 500, 502, 503 and 504)


def request_protocol(headers: Mapping[str, str], raw_query: str,
                     service: str | None) -> str:
    """The AWS protocol a request is spoken in: json, query, rest-json or rest-xml."""
    if headers.get("x-amz-target"):
        return "json"
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded") \
            or raw_query.startswith("Action=") or "&Action=" in raw_query:
        return "query"
    return _model_protocol(service or "") or "rest-json"


@lru_cache(maxsize=64)
def _model(name: str) -> tuple[str, str, str] | None:
    """(protocol, service id, XML namespace) of the botocore service `name`, if there is one."""
    if not name or not name.replace("-", "").isalnum():
        return None
    try:
        model = service_model(name)
    except UnknownServiceError:
        return None
    meta = model.metadata
    return meta["protocol"], meta.get("serviceId", name), meta.get("xmlNamespace", "")


def _model_protocol(name: str) -> str | None:
    found = _model(name)
    if found is None:
        return None
    protocol = found[0]
    return "query" if protocol == "ec2" else protocol


def describe(name: str) -> str:
    """How a message names a service: its service id (IAM, SNS, S3), else its name."""
    found = _model(name)
    return found[1] if found else name


def namespace(name: str) -> str:
    found = _model(name)
    return found[2] if found else ""


def message(name: str, served: list[str]) -> str:
    return (f"berth does not serve {describe(name)}. The services berth serves are: "
            f"{', '.join(sorted(served))}.")
