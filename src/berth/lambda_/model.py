"""The records that cross from the Lambda control plane to the function worker.

The control plane (lambda_/) owns functions, versions and aliases in the store; the worker
(agent/functions/) runs them. A `FunctionConfig` is everything the worker needs to run one
function version, and nothing it would have to look up again.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FunctionConfig:
    region: str
    account_id: str
    name: str
    version: str                 # "$LATEST" or "1", "2", ...
    function_arn: str            # unqualified ARN: arn:aws:lambda:REGION:ACCOUNT:function:NAME
    runtime: str                 # python3.12, nodejs20.x, provided.al2023, ...
    handler: str                 # "app.handler"; ignored by provided.* runtimes
    memory_size: int             # MiB, 128..10240
    timeout: int                 # seconds, 1..900
    code_sha256: str             # base64 SHA-256 of the zip, the code store's key
    revision_id: str             # changes with every change of code or configuration
    environment: dict[str, str] = field(default_factory=dict)
    ephemeral_storage: int = 512  # MiB of /tmp
    reserved_concurrency: int | None = None
    role: str = ""               # the execution role's ARN: the sandbox's credentials

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def sandbox_key(self) -> tuple[str, str, str, str]:
        """Sandboxes are shared only by invocations of the same code and configuration."""
        return (self.region, self.name, self.version, self.revision_id)
