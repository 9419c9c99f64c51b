"""The Python runtime loop: import the handler once, then serve invocations one at a time.

Errors keep AWS's shapes and texts (Runtime.ImportModuleError, Runtime.HandlerNotFound,
Runtime.MarshalError, ...), since users match on them. Run as `python -m berth_runtime.bootstrap`
or called in a child forked from the zygote (see zygote.py).
"""
from __future__ import annotations

import decimal
import importlib
import io
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from .client import RuntimeClient
from .context import LambdaContext

_HERE = os.path.dirname(os.path.abspath(__file__))
_request_id = ""
# Python 3.12's runtime started returning non-ASCII characters as they are.
_ENSURE_ASCII = sys.version_info < (3, 12)


class Fault(Exception):
    def __init__(self, error_type: str, message: str,
                 trace: Optional[List[str]] = None) -> None:
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace or []


def error_body(message: str, error_type: str, trace: List[str], request_id: str) -> Dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id,
            "stackTrace": trace}


def _user_frames(tb: Any) -> List[str]:
    frames = traceback.extract_tb(tb)
    while frames and frames[0].filename.startswith(_HERE):
        frames = frames[1:]
    return traceback.format_list(frames)


def log_error(body: Dict[str, Any]) -> None:
    """One log event, as AWS writes it: lines joined by carriage returns."""
    lines = ["[ERROR] %s: %s" % (body["errorType"], body["errorMessage"])]
    if body.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for entry in body["stackTrace"]:
            lines.extend(entry.splitlines())
    sys.stdout.write("\r".join(lines) + "\n")


def load_handler(spec: str) -> Callable[..., Any]:
    try:
        modname, fname = spec.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (spec, exc))
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict",
                    "Cannot use built-in module %s as a handler module" % modname)
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError",
                    "Unable to import module '%s': %s" % (modname, exc))
    except SyntaxError as exc:
        raise Fault("Runtime.UserCodeSyntaxError",
                    "Syntax error in module '%s': %s" % (modname, exc),
                    ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)])
    try:
        return getattr(module, fname)  # type: ignore[no-any-return]
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound",
                    "Handler '%s' missing on module '%s'" % (fname, modname))


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def _header_json(value: Optional[str], what: str) -> Optional[Dict[str, Any]]:
    if not value:
        return None
    try:
        return json.loads(value)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise Fault("Runtime.LambdaContextUnmarshalError",
                    "Unable to parse %s JSON: %s" % (what, exc))


def handle(handler: Callable[..., Any], headers: Dict[str, str],
           body: bytes) -> Tuple[bool, bytes, str]:
    """(ok, payload, error type) of one invocation."""
    rid = headers.get("lambda-runtime-aws-request-id", "")
    try:
        context = LambdaContext(rid, headers.get("lambda-runtime-invoked-function-arn", ""),
                                int(headers.get("lambda-runtime-deadline-ms", "0")),
                                _header_json(headers.get("lambda-runtime-client-context"),
                                             "Client Context"),
                                _header_json(headers.get("lambda-runtime-cognito-identity"),
                                             "Cognito Identity"))
        try:
            event = json.loads(body) if body else {}
        except ValueError as exc:
            raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % exc)
        result = handler(event, context)
        try:
            payload = json.dumps(result, default=_json_default, ensure_ascii=_ENSURE_ASCII)
        except (TypeError, ValueError, OverflowError) as exc:
            raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % exc)
        return True, payload.encode("utf-8"), ""
    except Fault as fault:
        err = error_body(fault.message, fault.error_type, fault.trace, rid)
    except Exception as exc:
        err = error_body(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), rid)
    log_error(err)
    return False, json.dumps(err).encode("utf-8"), err["errorType"]


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


def _setup_output() -> None:
    # Unbuffered, so what the function prints is in the pipe before its response is posted
    # and lands in this invocation's log.
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
        setattr(sys, name, stream)
        setattr(sys, "__%s__" % name, stream)
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
        "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]


def serve(client: RuntimeClient, handler: Callable[..., Any]) -> None:
    global _request_id
    env = os.environ
    while True:
        headers, body = client.next()
        _request_id = headers.get("lambda-runtime-aws-request-id", "")
        credentials = headers.get("berth-aws-credentials")
        if credentials:
            # The worker's newer role credentials: SDK clients made from now on, and those
            # whose credentials expire (AWS_CREDENTIAL_EXPIRATION), read them from here.
            env.update(json.loads(credentials))
        trace = headers.get("lambda-runtime-trace-id")
        if trace:
            env["_X_AMZN_TRACE_ID"] = trace
        else:
            env.pop("_X_AMZN_TRACE_ID", None)
        ok, payload, error_type = handle(handler, headers, body)
        if ok:
            status = client.respond(_request_id, payload)
            if status == 413:
                sys.stdout.write("[ERROR] Function.ResponseSizeTooLarge: response payload too "
                                 "large\n")
        else:
            client.error(_request_id, payload, error_type)


def rehearse() -> None:
    """Go through what a first invocation does, with a throwaway handler, before the function
    is known: a blank sandbox forked from the zygote then has its own copies of the pages
    this touches, and its cold start does not pay for the copy-on-write faults."""
    scratch = tempfile.mkdtemp(prefix=".berth-rehearsal-")
    name = "_berth_rehearsal"
    path = os.path.join(scratch, name + ".py")
    with open(path, "w") as f:
        f.write("import json\ndef handler(event, context):\n    return {'ok': [1, 2.5]}\n")
    saved_env, saved_bytecode = dict(os.environ), sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, scratch)
    importlib.invalidate_caches()
    try:
        handler = load_handler(name + ".handler")
        handle(handler, {"lambda-runtime-aws-request-id": "rehearsal",
                         "lambda-runtime-deadline-ms": "0",
                         "lambda-runtime-invoked-function-arn": "arn"}, b'{"k": [1, "v"]}')
        os.environ.clear()
        os.environ.update(saved_env)
        json.dumps(error_body("m", "T", [], "r"))
    finally:
        sys.dont_write_bytecode = saved_bytecode
        sys.path.remove(scratch)
        sys.modules.pop(name, None)
        sys.path_importer_cache.pop(scratch, None)
        os.unlink(path)
        os.rmdir(scratch)


def run() -> int:
    """Init, then serve until the worker stops the sandbox. Returns an exit status."""
    _setup_output()
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Fault as fault:
        err = error_body(fault.message, fault.error_type, fault.trace, "")
    except Exception as exc:
        err = error_body(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), "")
    else:
        serve(client, handler)
        return 0
    log_error(err)
    client.init_error(json.dumps(err).encode("utf-8"), err["errorType"])
    return 1


def main() -> None:
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)
    sys.exit(run())


if __name__ == "__main__":
    main()
