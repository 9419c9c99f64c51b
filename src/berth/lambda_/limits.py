"""Lambda's quotas as AWS enforces them, in one place for the control plane and the worker."""
from __future__ import annotations

ZIP_DIRECT_UPLOAD = 52_428_800        # 50 MB zipped, uploaded in the request
ZIP_REQUEST_BYTES = 69_905_067        # that zip base64-encoded: how AWS words the refusal
UNZIPPED = 262_144_000                # 250 MB unzipped
TOTAL_CODE_STORAGE = 80_530_636_800   # 75 GB per region
ENVIRONMENT_BYTES = 4096
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100
MEMORY_RANGE = (128, 10240)
TIMEOUT_RANGE = (1, 900)
EPHEMERAL_RANGE = (512, 10240)
LIST_MAX_ITEMS = 50
