"""Where CloudWatch Logs behaves otherwise than its published model says: the amendments the
API layer applies when it validates Logs requests (see `api.validation.Amendments`)."""
from __future__ import annotations

from ..api.validation import Amendments

_NAME_LENGTH = "Invalid LogGroup or LogStream, both must have length less than or equal to 512."

AMENDMENTS: Amendments = {
    # A group or stream name past 512 characters gets this message of its own.
    "LogGroupName": {"lengthMessage": _NAME_LENGTH},
    "LogStreamName": {"lengthMessage": _NAME_LENGTH},
    # The model forbids ':' in a metric namespace; AWS takes what CloudWatch takes for one
    # (letters, digits, and . - _ / # : and space), e.g. "A.B-c_d/1#2:x".
    "MetricNamespace": {"pattern": r"[0-9A-Za-z.\-_/#: ]*"},
}
