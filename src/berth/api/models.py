"""botocore's service models, indexed for routing: JSON targets and REST URI templates."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

import botocore.session
from botocore.model import OperationModel, ServiceModel

_session = botocore.session.get_session()


@lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    return _session.get_service_model(name)


@dataclass
class RestRoute:
    operation: OperationModel
    method: str
    regex: re.Pattern[str]
    required_query: tuple[str, ...]
    literal_weight: int


@dataclass
class RestRouter:
    """Matches (method, path, query keys) to an operation by the model's URI templates."""

    routes: list[RestRoute] = field(default_factory=list)

    @classmethod
    def for_model(cls, model: ServiceModel) -> "RestRouter":
        router = cls()
        for name in model.operation_names:
            op = model.operation_model(name)
            uri = op.http["requestUri"]
            path, _, query = uri.partition("?")
            required = tuple(p.split("=")[0] for p in query.split("&") if p)
            router.routes.append(RestRoute(op, op.http["method"], _template_regex(path),
                                           required, len(re.sub(r"\{[^}]*\}", "", path))))
        # Most literal template first, so /functions/{F}/versions beats /functions/{F}/{X}.
        router.routes.sort(key=lambda r: (-r.literal_weight, -len(r.required_query)))
        return router

    def match(self, method: str, path: str,
              query_keys: Iterable[str]) -> tuple[OperationModel, dict[str, str]] | None:
        keys = set(query_keys)
        for route in self.routes:
            if route.method != method:
                continue
            m = route.regex.fullmatch(path)
            if m and all(k in keys for k in route.required_query):
                return route.operation, m.groupdict()
        return None

    def path_known(self, path: str) -> bool:
        return any(r.regex.fullmatch(path) for r in self.routes)


def _template_regex(path: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        out.append(re.escape(path[pos:m.start()]))
        name = m.group(1)
        if name.endswith("+"):
            out.append(f"(?P<{_group(name[:-1])}>.+)")
        else:
            out.append(f"(?P<{_group(name)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(path[pos:]))
    pattern = "".join(out)
    if pattern.endswith("/") and len(pattern) > 1:
        pattern += "?"
    else:
        pattern += "/?"
    return re.compile(pattern)


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


def uri_param(groups: dict[str, str], name: str) -> str | None:
    return groups.get(_group(name))
