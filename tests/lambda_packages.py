"""Function packages for tests: zips built in memory, and a one-call CreateFunction."""
from __future__ import annotations

import io
import zipfile
from typing import Any

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HANDLER_PY = "def handler(event, context):\n    return {'ok': True}\n"


def zip_of(files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, 0o100644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def python_zip(body: str = HANDLER_PY) -> bytes:
    return zip_of({"app.py": body})


def create_python(lam: Any, name: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("Runtime", "python3.12")
    kw.setdefault("Handler", "app.handler")
    kw.setdefault("Role", ROLE)
    kw.setdefault("Code", {"ZipFile": python_zip()})
    return lam.create_function(FunctionName=name, **kw)
