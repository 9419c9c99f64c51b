"""What an agent remembers across restarts, in `<data>/agent/state.json`: the instance it
registered as and how far each container's log has been shipped.

Everything else is found again from the containers themselves (their labels name the task,
the container and the host ports), so a lost state file costs re-shipped log lines, no more.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STATE_FILE = "agent/state.json"


@dataclass
class AgentState:
    path: Path
    instance_arn: str | None = None
    cluster: str | None = None
    endpoint: str | None = None
    cursors: dict[str, str] = field(default_factory=dict)   # container id -> log cursor
    # The task metadata endpoint's port on the host, and the key its ids and tokens are
    # derived from (hex): containers adopted after a restart keep the URIs they were given.
    metadata_port: int | None = None
    metadata_key: str | None = None

    @classmethod
    def load(cls, data_dir: Path) -> AgentState:
        path = Path(data_dir) / STATE_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable agent state %s: %s", path, exc)
            return cls(path)
        if not isinstance(raw, dict):
            return cls(path)
        cursors = raw.get("cursors")
        port, key = raw.get("metadata_port"), raw.get("metadata_key")
        return cls(path, instance_arn=raw.get("instance_arn"), cluster=raw.get("cluster"),
                   endpoint=raw.get("endpoint"),
                   cursors={str(k): str(v) for k, v in cursors.items()}
                   if isinstance(cursors, dict) else {},
                   metadata_port=port if isinstance(port, int) else None,
                   metadata_key=key if isinstance(key, str) else None)

    def save(self) -> None:
        """Write atomically: a kill at any moment leaves the old file or the new one. (No
        fsync: it is saved often, and after a power loss an old cursor only re-ships lines.)"""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)    # holds a key
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"instance_arn": self.instance_arn, "cluster": self.cluster,
                                "endpoint": self.endpoint, "cursors": self.cursors,
                                "metadata_port": self.metadata_port,
                                "metadata_key": self.metadata_key}))
        tmp.replace(self.path)

    def set_cursor(self, cid: str, cursor: str) -> None:
        self.cursors[cid] = cursor
        self.save()

    def forget(self, cids: list[str]) -> None:
        if any(c in self.cursors for c in cids):
            for cid in cids:
                self.cursors.pop(cid, None)
            self.save()
