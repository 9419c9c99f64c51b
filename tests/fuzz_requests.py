"""Malformed, forged, oversized and garbage requests, for the fuzz test and `bench/fuzz.py`.

Requests are raw bytes sent on their own connections, so nothing a client library would
correct gets corrected. They cover every route of every service berth serves (the models'
JSON targets and REST URI templates) and berth's own mounts, before authentication (no,
garbage or forged Authorization, bad dates, presigned queries of every odd kind, declared
bodies never sent) and after it (correctly signed requests whose inputs are mutated from the
operations' input shapes, bad JSON, wrong content types), and at the wire (not HTTP, broken
framing, bodies cut short). The first cases are fixed ones, the reports that issue 10 made;
the rest come from a seeded generator, so a run can be repeated.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import socket
import string
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import OperationModel, Shape

from berth.api.models import service_model

SERVICES = ("logs", "ecs", "lambda", "sts")
MOUNT_PATHS = ("/_berth/agent/v1/poll", "/_berth/agent/v1/health", "/_berth/agent/v1/x",
               "/_berth/lambda/code/", "/console/", "/console/../../etc/passwd",
               "/console/index.html")
MAX_BODY = 1024 * 1024


@dataclass
class Case:
    kind: str          # "pre-auth", "signed", "mount" or "wire"
    data: bytes        # the request as sent
    answered: bool     # an answer is due (False: the client hangs up mid-request)


@dataclass
class Outcome:
    status: int | None  # None: no answer (connection closed or reset first)
    head: bytes         # the answer's first bytes

    @property
    def server_error(self) -> bool:
        """A 5xx, except berth's deliberate 501 NotImplemented for a service it does not
        serve (api/unserved.py), which a request scoped to such a service gets."""
        return self.status is not None and self.status >= 500 and not (
            self.status == 501 and b"NotImplemented" in self.head)


class Fuzzer:
    """Cases for one server; `cases(n)` yields the fixed ones, then random ones."""

    def __init__(self, port: int, access_key: str, secret_key: str, seed: int = 10) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.key, self.secret = access_key, secret_key
        self.rng = random.Random(seed)
        self.json_ops: list[tuple[str, str, OperationModel]] = []
        self.rest_ops: list[OperationModel] = []
        self.query_ops: list[tuple[str, OperationModel]] = []
        for name in SERVICES:
            model = service_model(name)
            for op_name in model.operation_names:
                op = model.operation_model(op_name)
                if model.metadata["protocol"] == "json":
                    self.json_ops.append((name, model.metadata["targetPrefix"], op))
                elif model.metadata["protocol"] == "query":
                    self.query_ops.append((name, op))
                else:
                    self.rest_ops.append(op)

    def cases(self, n: int) -> Iterator[Case]:
        fixed = list(self._fixed())
        yield from fixed[:n]
        makers = [self._pre_auth] * 4 + [self._presigned] * 2 + [self._forged] + \
            [self._signed] * 4 + [self._mount] + [self._wire]
        for _ in range(n - len(fixed)):
            yield self.rng.choice(makers)()

    # -------------------------------------------------------------- the reported ones

    def _fixed(self) -> Iterator[Case]:
        now = _amz(dt.datetime.now(dt.timezone.utc))
        base = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={self.key}%2F{now[:8]}"
                "%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-SignedHeaders=host"
                f"&X-Amz-Signature={'0' * 64}")
        for query in (f"{base}&X-Amz-Date={now}&X-Amz-Expires=100000000000000000",
                      f"{base}&X-Amz-Date=99991231T235959Z&X-Amz-Expires=3600",
                      f"{base}&X-Amz-Date=00000101T000000Z&X-Amz-Expires=3600",
                      f"{base}&X-Amz-Date={now}&X-Amz-Expires=-1",
                      f"{base}&X-Amz-Date={now}&X-Amz-Expires=1e99"):
            yield self._raw("pre-auth", "GET", "/2015-03-31/functions/?" + query, {}, b"")
        yield self._raw("pre-auth", "POST", "/", {
            "X-Amz-Target": "Logs_20140328.DescribeLogGroups", "X-Amz-Date": "99991231T235959Z",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={self.key}/99991231/us-east-1/logs/"
                             "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"}, b"{}")

    # ---------------------------------------------------------------- before auth

    def _route(self) -> tuple[str, str, dict[str, str], str]:
        """(method, target, headers, service) of a random route of a random service."""
        if self.rng.random() < 0.15:
            service, op = self.rng.choice(self.query_ops)
            action = f"Action={op.name}&Version={op.metadata['apiVersion']}"
            if self.rng.random() < 0.5:
                return "GET", "/?" + action, {}, service
            return "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, service
        if self.rng.random() < 0.5:
            service, prefix, op = self.rng.choice(self.json_ops)
            name = op.name if self.rng.random() < 0.9 else self._text(12)
            return "POST", "/", {"X-Amz-Target": f"{prefix}.{name}",
                                 "Content-Type": "application/x-amz-json-1.1"}, service
        op = self.rng.choice(self.rest_ops)
        return op.http["method"], self._rest_path(op), {"Content-Type": "application/json"}, \
            "lambda"

    def _rest_path(self, op: OperationModel) -> str:
        uri = op.http["requestUri"]
        path, _, query = uri.partition("?")
        path = re.sub(r"\{[^}]+\}", lambda _: quote(self._label(), safe=""), path)
        pairs = [p for p in query.split("&") if p]
        if self.rng.random() < 0.5:
            pairs.append(f"{self._text(6)}={quote(self._text(8))}")
        if self.rng.random() < 0.3:
            pairs.append(self.rng.choice(["MaxItems=-1", "MaxItems=abc", "Marker=%zz",
                                          "Qualifier=" + "9" * 40, "=", "&&", "%FF=%FE"]))
        return path + ("?" + "&".join(pairs) if pairs else "")

    def _pre_auth(self) -> Case:
        method, target, headers, service = self._route()
        body, declared = self._body()
        auths = self._bad_auths(service)
        # A body declared and never sent must still be answered, from the headers: only the
        # last of the bad auths passes them (its signature is checked once the body is in).
        headers.update(self.rng.choice(auths[:-1] if declared is not None else auths))
        if declared is not None:
            return self._raw("pre-auth", method, target, {**headers,
                                                          "Content-Length": str(declared)}, b"")
        return self._raw("pre-auth", method, target, headers, body)

    def _bad_auths(self, service: str) -> list[dict[str, str]]:
        now = dt.datetime.now(dt.timezone.utc)
        date = _amz(now)
        fake_sig = "".join(self.rng.choice("0123456789abcdef") for _ in range(64))

        def auth(cred: str, signed: str = "host;x-amz-date", sig: str = fake_sig,
                 algo: str = "AWS4-HMAC-SHA256") -> str:
            return f"{algo} Credential={cred}, SignedHeaders={signed}, Signature={sig}"

        scope = f"{date[:8]}/us-east-1/{service}/aws4_request"
        return [
            {},
            {"Authorization": self._text(self.rng.randint(0, 300))},
            {"Authorization": "AWS4-HMAC-SHA256"},
            {"Authorization": "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature="},
            {"Authorization": auth(f"{self.key}/{scope}", algo="AWS4-HMAC-SHA512"),
             "X-Amz-Date": date},
            {"Authorization": auth(f"{self.key}/{date[:8]}/us-east-1/{service}"),
             "X-Amz-Date": date},
            {"Authorization": auth(f"{self.key}/{date[:8]}/US EAST/{service}/aws4_request"),
             "X-Amz-Date": date},
            {"Authorization": auth(f"{self.key}/{scope}")},
            {"Authorization": auth(f"{self.key}/{scope}"), "X-Amz-Date": self._bad_date()},
            {"Authorization": auth(f"AKIAUNKNOWN{self.rng.randint(0, 10**9):09d}/{scope}"),
             "X-Amz-Date": date},
            {"Authorization": auth(f"{self.key}/{scope}"),
             "X-Amz-Date": _amz(now - dt.timedelta(minutes=self.rng.choice([16, 600, 10**6])))},
            {"Authorization": auth(f"{self.key}/{scope}"), "X-Amz-Date": date,
             "X-Amz-Content-SHA256": self.rng.choice([
                 "UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", "x" * 64,
                 "STREAMING-UNSIGNED-PAYLOAD-TRAILER"])},
            {"Authorization": auth(f"{self.key}/{date[:8]}/us-east-1/s3/aws4_request"),
             "X-Amz-Date": date},
            {"Authorization": auth(f"{self.key}/{scope}", signed=self._text(40)),
             "X-Amz-Date": date},
        ]

    def _bad_date(self) -> str:
        return self.rng.choice(["", "yesterday", "99991231T235959Z", "00000101T000000Z",
                                "20261340T256161Z", "2026-01-01T00:00:00Z", "20260101T000000",
                                "２０２６０１０１T000000Z", "1" * 200, "20260101T000000Z\x00"])

    def _presigned(self) -> Case:
        method, target, headers, service = self._route()
        now = _amz(dt.datetime.now(dt.timezone.utc))
        params = {
            "X-Amz-Algorithm": self.rng.choice(["AWS4-HMAC-SHA256", "", "HMAC", "%00"]),
            "X-Amz-Credential": self.rng.choice([
                f"{self.key}%2F{now[:8]}%2Fus-east-1%2F{service}%2Faws4_request",
                f"{self.key}/{now[:8]}/us-east-1/{service}/aws4_request", "", "%%%",
                self._text(30)]),
            "X-Amz-Date": self.rng.choice([now, self._bad_date()]),
            "X-Amz-Expires": self.rng.choice(["3600", "0", "-1", "604801", "1" + "0" * 30,
                                              "1.5", "", "abc", "0x10", "٣"]),
            "X-Amz-SignedHeaders": self.rng.choice(["host", "", "host;x;y", self._text(10)]),
            "X-Amz-Signature": self.rng.choice(["0" * 64, "", self._text(70)]),
            "X-Amz-Content-Sha256": self.rng.choice(["UNSIGNED-PAYLOAD", "", "zz"]),
        }
        for key in list(params):
            if self.rng.random() < 0.1:
                del params[key]
        query = "&".join(f"{k}={v}" for k, v in params.items())
        if self.rng.random() < 0.2:
            query += "&X-Amz-Date=" + now + "&X-Amz-Signature=" + "1" * 64    # repeated
        sep = "&" if "?" in target else "?"
        return self._raw("pre-auth", method, target + sep + query, headers, b"")

    def _forged(self) -> Case:
        """A known key, a fresh date, the right scope, a wrong signature: refused after the
        body is read and hashed."""
        method, target, headers, service = self._route()
        body = self._bytes(self.rng.randint(0, 4096))
        signed = self._signed_headers(method, target, headers, body, service)
        auth = signed["Authorization"]
        signed["Authorization"] = auth[:-64] + "".join(
            self.rng.choice("0123456789abcdef") for _ in range(64))
        return self._raw("pre-auth", method, target, signed, body)

    # ----------------------------------------------------------------- signed garbage

    def _signed(self) -> Case:
        if self.rng.random() < 0.15:
            service, op = self.rng.choice(self.query_ops)
            method, target = "POST", "/"
            headers = {"Content-Type": self.rng.choice(
                ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded",
                 "text/plain", ""])}
            body = self._form_body(op)
        elif self.rng.random() < 0.5:
            service, prefix, op = self.rng.choice(self.json_ops)
            method, target = "POST", "/"
            headers = {"X-Amz-Target": f"{prefix}.{op.name}", "Content-Type": self.rng.choice(
                ["application/x-amz-json-1.1", "application/x-amz-json-1.1",
                 "application/json", "text/plain", "", "multipart/form-data; boundary=x"])}
            body = self._json_body(op)
        else:
            op = self.rng.choice(self.rest_ops)
            service, method, target = "lambda", op.http["method"], self._rest_path(op)
            headers = {"Content-Type": self.rng.choice(["application/json", "", "text/xml"])}
            for name, member in (op.input_shape.members.items() if op.input_shape else ()):
                if member.serialization.get("location") == "header" and self.rng.random() < 0.5:
                    headers[member.serialization["name"]] = self._header_value()
            body = self._json_body(op) if self.rng.random() < 0.7 else b""
        return self._raw("signed", method, target,
                         self._signed_headers(method, target, headers, body, service), body)

    def _signed_headers(self, method: str, target: str, headers: dict[str, str], body: bytes,
                        service: str) -> dict[str, str]:
        req = AWSRequest(method, f"http://{self.host}{target}", data=body, headers=headers)
        SigV4Auth(Credentials(self.key, self.secret), service, "us-east-1").add_auth(req)
        return dict(req.headers.items())

    def _form_body(self, op: OperationModel) -> bytes:
        """A query protocol form: the operation's Action and Version, then its input's
        members flattened by path, some mutated, sometimes garbage."""
        if self.rng.random() < 0.1:
            return self._bytes(self.rng.randint(0, 500))
        pairs = [("Action", op.name if self.rng.random() < 0.9 else self._text(8)),
                 ("Version", self.rng.choice([op.metadata["apiVersion"], "", "1999-01-01"]))]
        value = self._value(op.input_shape, 0) if op.input_shape else {}
        pairs += _flatten(value if isinstance(value, dict) else {"X": value}, "")
        if self.rng.random() < 0.2:
            pairs.append((self._text(6), self._text(6)))
        return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}"
                        for k, v in pairs).encode()

    def _json_body(self, op: OperationModel) -> bytes:
        roll = self.rng.random()
        if roll < 0.1:
            return self._bytes(self.rng.randint(0, 2000))
        if roll < 0.2:
            return self.rng.choice([b"", b"null", b"[]", b"{", b'{"a":' * 200, b"1e999",
                                    b'"' + b"\\u0000" * 50 + b'"', b"{}" * 3])
        value = self._value(op.input_shape, 0) if op.input_shape else {}
        if isinstance(value, dict):
            for key in list(value):
                if self.rng.random() < 0.2:
                    value[key] = self._mutant()
            if self.rng.random() < 0.2:
                value[self._text(8)] = self._mutant()
        return json.dumps(value).encode()

    def _value(self, shape: Shape, depth: int) -> Any:
        """A value for a shape, often valid, sometimes not (a mutant)."""
        if depth > 4 or self.rng.random() < 0.05:
            return self._mutant()
        kind = shape.type_name
        if kind == "structure":
            members = shape.members
            payload = shape.serialization.get("payload")
            out = {}
            for name, member in members.items():
                location = member.serialization.get("location")
                if location in ("uri", "querystring", "header", "headers") or name == payload:
                    continue
                if name in shape.required_members or self.rng.random() < 0.4:
                    out[name] = self._value(member, depth + 1)
            return out
        if kind == "list":
            many = depth >= 3 and self.rng.random() < 0.05      # long, and only near leaves
            return [self._value(shape.member, depth + 1)
                    for _ in range(60 if many else self.rng.randint(0, 3))]
        if kind == "map":
            return {self._text(5): self._value(shape.value, depth + 1)
                    for _ in range(self.rng.randint(0, 3))}
        if kind in ("integer", "long"):
            return self.rng.choice([0, 1, -1, 7, 2**31, 2**63, -2**70, 10**30])
        if kind in ("double", "float"):
            return self.rng.choice([0.5, -1e308, 1e308, 3.0])
        if kind == "boolean":
            return self.rng.choice([True, False])
        if kind == "timestamp":
            return self.rng.choice([0, -1, 1e12, 253402300800, "2026-01-01", "never"])
        if kind == "blob":
            return self.rng.choice([base64.b64encode(self._bytes(64)).decode(), "!!notb64",
                                    base64.b64encode(b"PK\x03\x04" + self._bytes(100)).decode()])
        enum = shape.enum if hasattr(shape, "enum") else []
        if enum and self.rng.random() < 0.7:
            return self.rng.choice(enum)
        return self._label()

    def _mutant(self) -> Any:
        return self.rng.choice([None, True, -1, 1.5, 10**40, "", "x" * 5000, [], {}, [[[]]],
                                {"a": {"b": None}}, "\u0000", "\ud7ff\ue000", "💥" * 10])

    # ------------------------------------------------------------- mounts and the wire

    def _mount(self) -> Case:
        path = self.rng.choice(MOUNT_PATHS)
        if path.endswith("/code/"):
            path += self.rng.choice(["", "a" * 64 + ".1.b", "0" * 64 + "." + "9" * 13 + "." +
                                     "0" * 64, self._label()])
        method = self.rng.choice(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"])
        body = json.dumps(self.rng.choice([
            {"containerInstance": self._label(), "waitSeconds": self.rng.choice([0, -5, "x"])},
            {"task": self._label(), "containers": [{"containerName": 1}]}, [], None])).encode()
        headers = {"Content-Type": "application/json"}
        if self.rng.random() < 0.5:
            headers = self._signed_headers(method, path, headers, body, "ecs")
        else:
            headers.update(self.rng.choice(self._bad_auths("ecs")))
        return self._raw("mount", method, path, headers, body)

    def _wire(self) -> Case:
        roll = self.rng.randint(0, 7)
        if roll == 0:       # ended like a head, so the parser answers rather than waits
            return Case("wire", self._bytes(self.rng.randint(1, 3000)) + b"\r\n\r\n", True)
        if roll == 1:
            return Case("wire", f"GET /{self._text(20)} HTTP/9.9\r\n\r\n".encode(), True)
        if roll == 2:
            data = (f"POST / HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: 10\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode()
            return Case("wire", data, True)
        if roll == 3:
            data = (f"POST /2015-03-31/functions HTTP/1.1\r\nHost: {self.host}\r\n"
                    "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + "x" * 50).encode()
            return Case("wire", data, True)
        if roll == 4:
            return Case("wire", f"POST / HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: "
                                f"{'9' * 30}\r\n\r\n".encode(), True)
        if roll == 5:
            return Case("wire", (f"GET / HTTP/1.1\r\nHost: {self.host}\r\nNo-Colon-Here\r\n"
                                 "\r\n").encode(), True)
        # A signed request whose body is cut short: the client hangs up mid-body.
        method, target, headers, service = self._route()
        body = self._bytes(self.rng.randint(100, 20000))
        signed = self._signed_headers(method, target, headers, body, service)
        cut = self._head(method, target, signed, len(body)) + body[:self.rng.randint(0, 99)]
        return Case("wire", cut, False)

    # -------------------------------------------------------------------- pieces

    def _raw(self, kind: str, method: str, target: str, headers: dict[str, str],
             body: bytes) -> Case:
        declared = headers.pop("Content-Length", None)
        length = int(declared) if declared is not None else len(body)
        return Case(kind, self._head(method, target, headers, length) + body, True)

    def _head(self, method: str, target: str, headers: dict[str, str], length: int) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host",)]
        if length or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")

    def _body(self) -> tuple[bytes, int | None]:
        """A body, or a size declared for a body never sent."""
        roll = self.rng.random()
        if roll < 0.15:
            return b"", self.rng.choice([10**6, 50 * 2**20, 10**12])
        return self._bytes(self.rng.choice([0, 2, 100, 5000])), None

    def _bytes(self, n: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def _text(self, n: int) -> str:
        return "".join(self.rng.choice(string.printable[:94]) for _ in range(n))

    def _label(self) -> str:
        return self.rng.choice([
            "f", "my-function", "a" * 200, "arn:aws:lambda:us-east-1:000000000000:function:f",
            "..", "%2e%2e", "$LATEST", "1", "ü", "x/y", "default", "\x7f", self._text(12)])

    def _header_value(self) -> str:
        return self.rng.choice(["Event", "RequestResponse", "DryRun", "Tail", "None", "",
                                "garbage", base64.b64encode(b"{}").decode(), "!!!", "x" * 3000])


def _flatten(value: Any, prefix: str) -> list[tuple[str, Any]]:
    """A value as query protocol form pairs (lists as `.member.N`, maps as `.entry.N`)."""
    if isinstance(value, dict):
        return [pair for k, v in value.items()
                for pair in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value, 1)
                for pair in _flatten(v, f"{prefix}.member.{i}")]
    return [(prefix or "X", "" if value is None else value)]


def send(port: int, case: Case, timeout: float = 30) -> Outcome:
    """Send one case on its own connection; its answer's status (None if none came)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(case.data)
            if not case.answered:
                return Outcome(None, b"")
            data = b""
            deadline = time.monotonic() + timeout
            while b"\r\n" not in data and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return Outcome(None, b"")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return Outcome(int(match[1]) if match else None, data[:2000])


def tracebacks(log_text: str) -> int:
    """Tracebacks and ASGI exceptions a server logged."""
    return log_text.count("Traceback (most recent call last)") + \
        log_text.count("Exception in ASGI application")


def _amz(when: dt.datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")
