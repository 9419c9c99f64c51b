"""The Runtime API listener, spoken to over a raw socket as any runtime client would."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from berth.agent.functions import runtime_api
from berth.agent.functions.runtime_api import RuntimeConnection


class Recorder:
    """Answers as a sandbox would and remembers what the runtime sent."""

    def __init__(self) -> None:
        self.parked: list[RuntimeConnection] = []
        self.seen: list[tuple[Any, ...]] = []

    def on_next(self, conn: RuntimeConnection) -> None:
        self.parked.append(conn)

    def on_response(self, request_id: str, body: bytes, size: int) -> tuple[int, bytes]:
        self.seen.append(("response", request_id, body, size))
        if size > runtime_api.MAX_RESPONSE:
            return 413, runtime_api.error_json("RequestEntityTooLarge", "too large")
        return 202, b""

    def on_error(self, request_id: str, body: bytes, error_type: str) -> tuple[int, bytes]:
        self.seen.append(("error", request_id, body, error_type))
        return 202, b""

    def on_init_error(self, body: bytes, error_type: str) -> tuple[int, bytes]:
        self.seen.append(("init", body, error_type))
        return 202, b""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_next_is_parked_until_an_invocation_is_delivered() -> None:
    async def scenario() -> None:
        rec = Recorder()
        server, port = await runtime_api.listen(rec)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.05)
        assert len(rec.parked) == 1
        assert not reader.at_eof() and reader._buffer == b""  # type: ignore[attr-defined]
        rec.parked[0].deliver(runtime_api.next_response(
            "rid-1", 1234, "arn:aws:lambda:us-east-1:000000000000:function:f", "Root=1-a",
            '{"custom":{}}', None, b'{"k": 1}'))
        status, headers, body = await read_response(reader)
        assert status == 200 and body == b'{"k": 1}'
        assert headers["lambda-runtime-aws-request-id"] == "rid-1"
        assert headers["lambda-runtime-deadline-ms"] == "1234"
        assert headers["lambda-runtime-invoked-function-arn"].endswith(":function:f")
        assert headers["lambda-runtime-trace-id"] == "Root=1-a"
        assert headers["lambda-runtime-client-context"] == '{"custom":{}}'
        assert "lambda-runtime-cognito-identity" not in headers
        # The same kept-alive connection posts the answer.
        writer.write(b"POST /2018-06-01/runtime/invocation/rid-1/response HTTP/1.1\r\n"
                     b"Content-Length: 4\r\n\r\ntrue")
        status, _, body = await read_response(reader)
        assert status == 202 and json.loads(body) == {"status": "OK"}
        assert rec.seen == [("response", "rid-1", b"true", 4)]
        writer.close()
        server.close()

    run(scenario())


def test_errors_init_errors_expect_continue_chunked_and_unknown_paths() -> None:
    async def scenario() -> None:
        rec = Recorder()
        server, port = await runtime_api.listen(rec)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /2018-06-01/runtime/invocation/rid-2/error HTTP/1.1\r\n"
                     b"Lambda-Runtime-Function-Error-Type: Runtime.Boom\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == \
            b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"{}")
        assert (await read_response(reader))[0] == 202
        writer.write(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"
                     b"Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        assert (await read_response(reader))[0] == 202
        writer.write(b"GET /2018-06-01/runtime/nope HTTP/1.1\r\n\r\n")
        status, _, body = await read_response(reader)
        assert status == 404 and json.loads(body)["errorType"] == "NotFound"
        assert rec.seen == [("error", "rid-2", b"{}", "Runtime.Boom"),
                            ("init", b"abcde", "Runtime.ImportModuleError")]
        writer.close()
        server.close()

    run(scenario())


def test_oversized_response_is_counted_not_kept() -> None:
    async def scenario() -> None:
        rec = Recorder()
        server, port = await runtime_api.listen(rec)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        size = runtime_api.MAX_RESPONSE + 10
        writer.write(b"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\n"
                     b"Content-Length: %d\r\n\r\n" % size + b"x" * size)
        status, _, _ = await read_response(reader)
        assert status == 413
        kind, rid, body, seen_size = rec.seen[0]
        assert (kind, rid, seen_size) == ("response", "r", size)
        assert len(body) <= runtime_api.MAX_RESPONSE
        writer.close()
        server.close()

    run(scenario())
