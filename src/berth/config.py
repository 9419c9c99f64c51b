"""berth's one settings object: flags first, then BERTH_* variables, then defaults.

The access keys live in the data dir (mode 0600) unless given; the first start generates them, so
`berth env` can later print the same keys for the running data dir. Only the commands that run
berth (`up`, `server`, `agent`) create a data dir; the client commands (`env`, `logs`, `image`)
find their berth through `client_for` and `find_data_dir`, which never write anything.
"""
from __future__ import annotations

import json
import os
import secrets
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4750
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
CREDENTIALS_FILE = "credentials.json"
ENDPOINT_FILE = "endpoint"
DATA_DIR_VARIABLE = "BERTH_DATA_DIR"
# What a directory holds once any berth process has used it as its data dir.
_DATA_DIR_MARKS = (CREDENTIALS_FILE, ENDPOINT_FILE, "berth.db", "agent", "images")


class NoBerth(Exception):
    """A client command found no berth to talk to (the message says where it looked)."""


@dataclass
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=lambda: Path(".berth"))
    database_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT
    # `berth up` runs the function worker and agent in the server process; `berth server`
    # is the control plane alone.
    local_worker: bool = False
    logs_purge_interval: float = 300.0  # seconds between deletions of expired log events
    # HTTP: request bodies held in memory at once, all requests together (past it, the
    # service's throttling error); seconds a request's headers may take to arrive, and a
    # request body may leave the server waiting between two reads; connections open at
    # once (past it, 503 at once).
    api_body_memory_mb: int = 256
    http_header_timeout: float = 10.0
    http_body_timeout: float = 10.0
    http_max_connections: int = 1000
    # ECS control plane: an agent silent this long is marked agentConnected=false; after the
    # grace period more its tasks are stopped (services replace them). Seconds.
    ecs_agent_timeout: float = 30.0
    ecs_agent_grace: float = 30.0
    # How often the service reconciler and failure detector look even when nothing woke them.
    ecs_reconcile_interval: float = 1.0
    # A service task that stops on its own before it has run ecs_task_stable_after seconds
    # failed; after the second failure in a row the next start waits ecs_restart_delay,
    # doubling up to ecs_restart_delay_max (ECS's service throttle: 15 minutes). A service is
    # steady, and its deployment completed, once its tasks have run that long. Seconds.
    ecs_task_stable_after: float = 10.0
    ecs_restart_delay: float = 10.0
    ecs_restart_delay_max: float = 900.0
    # Function worker: idle sandboxes are frozen at once and evicted after lambda_idle_ttl,
    # or least recently used first while the host has less than lambda_memory_reserve_mb
    # available (None: 5% of memory). lambda_isolation gives each sandbox its namespaces,
    # private root and unprivileged uid where the host allows; blank sandboxes are kept
    # pre-warmed per runtime. Invoke trusts a resolved function configuration for
    # lambda_config_ttl seconds (changes made through this server invalidate it at once).
    lambda_idle_ttl: float = 300.0
    lambda_isolation: bool = True
    lambda_prewarm_python: int = 4
    lambda_prewarm_node: int = 2
    lambda_pids_max: int = 1024
    lambda_memory_reserve_mb: int | None = None
    lambda_config_ttl: float = 1.0
    # Seconds a sandbox's execution-role credentials are valid (AWS's longest role session);
    # a new set is issued once half of that has passed.
    lambda_credentials_lifetime: float = 43200.0
    # Asynchronous invocations: an event whose run failed is tried again after
    # lambda_async_retry_delay, the next time after twice that (AWS: about 1 and 2 minutes).
    # A server running an event holds it under a lease of lambda_async_lease, renewed while
    # it runs: the events of a server that died run elsewhere (or after its restart) once
    # their leases lapse. Seconds.
    lambda_async_retry_delay: float = 60.0
    lambda_async_lease: float = 30.0
    # DynamoDB: seconds between passes of the background sweep (TTL deletions, purges of
    # deleted tables' rows, stream records past their 24 hours).
    dynamodb_sweep_interval: float = 1.0
    # The container agent (`berth agent`, and the local one `berth up` starts). The endpoint
    # defaults to the data dir's `endpoint` file, else this host's berth; the driver is
    # detected when not given (docker, then runc, then process); docker_host is DOCKER_HOST.
    agent_endpoint: str | None = None
    agent_cluster: str = "default"
    agent_driver: str | None = None
    docker_host: str | None = None
    agent_reserved_memory: int = 256        # MiB kept back from what the host registers
    agent_reserved_ports: str = ""          # more reserved host ports, comma-separated
    agent_port_range: str = "49153-65535"   # dynamic host ports (ECS's default range)
    agent_stop_timeout: int = 30            # SIGTERM → SIGKILL, unless stopTimeout says
    agent_start_timeout: int = 180          # how long a container waits for its dependsOn
    agent_pids_limit: int | None = None     # per container; label berth.pids-limit overrides
    agent_cleanup_wait: float = 60.0        # a stopped task's containers are removed after
    agent_poll_wait: float = 20.0           # seconds the server may hold an assignment poll
    agent_availability_zone: str | None = None   # ecs.availability-zone [<region>a]
    # Built-in images (`docker save` archives) that `make install` builds; agents offer them
    # to their driver, so they run with no registry (see agent/archives.py).
    builtin_images: Path = field(
        default_factory=lambda: Path(sys.prefix) / "share" / "berth" / "images")
    # The tasks' metadata and credentials endpoint on the host's loopback (the ECS agent's
    # port); another is taken if it is busy, and kept across restarts.
    agent_metadata_port: int = 51679

    @classmethod
    def load(cls, **flags: object) -> "Settings":
        """Merge flags (None = not given) over BERTH_* variables over defaults."""
        env = os.environ
        values: dict[str, object] = {}
        for name, kind in (("host", str), ("port", int), ("data_dir", Path),
                           ("database_url", str), ("access_key", str),
                           ("secret_key", str), ("region", str), ("account_id", str),
                           ("api_body_memory_mb", int), ("http_header_timeout", float),
                           ("http_body_timeout", float), ("http_max_connections", int),
                           ("ecs_agent_timeout", float), ("ecs_agent_grace", float),
                           ("ecs_reconcile_interval", float), ("ecs_task_stable_after", float),
                           ("ecs_restart_delay", float), ("ecs_restart_delay_max", float),
                           ("lambda_async_retry_delay", float), ("lambda_async_lease", float),
                           ("lambda_idle_ttl", float), ("lambda_prewarm_python", int),
                           ("lambda_prewarm_node", int), ("lambda_pids_max", int),
                           ("lambda_memory_reserve_mb", int),
                           ("lambda_credentials_lifetime", float),
                           ("dynamodb_sweep_interval", float),
                           ("agent_endpoint", str), ("agent_cluster", str), ("agent_driver", str),
                           ("agent_reserved_memory", int), ("agent_reserved_ports", str),
                           ("agent_port_range", str), ("agent_stop_timeout", int),
                           ("agent_start_timeout", int), ("agent_pids_limit", int),
                           ("agent_cleanup_wait", float), ("agent_poll_wait", float),
                           ("agent_availability_zone", str), ("builtin_images", Path),
                           ("agent_metadata_port", int)):
            given = flags.get(name)
            if given is None:
                given = env.get("BERTH_" + name.upper())
            if given is not None and given != "":
                values[name] = kind(given)
        docker_host = flags.get("docker_host") or env.get("DOCKER_HOST")
        if docker_host:
            values["docker_host"] = docker_host
        settings = cls(**values)  # type: ignore[arg-type]
        settings.data_dir = settings.data_dir.resolve()
        return settings

    def agent_credentials(self) -> tuple[str, str] | None:
        """The keys an agent signs with: given (flags, BERTH_*), else the data dir's
        credentials.json, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY. Never generated."""
        if self.access_key and self.secret_key:
            return self.access_key, self.secret_key
        path = self.data_dir / CREDENTIALS_FILE
        if path.exists():
            stored = json.loads(path.read_text())
            return stored["access_key"], stored["secret_key"]
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return key, secret
        return None

    def agent_target(self) -> str:
        """The control plane an agent talks to: given, else the data dir's endpoint file,
        else this host's default."""
        if self.agent_endpoint:
            return self.agent_endpoint.rstrip("/")
        path = self.data_dir / ENDPOINT_FILE
        if path.exists() and path.read_text().strip():
            return path.read_text().strip().rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def availability_zone(self) -> str:
        """The zone an agent reports (ecs.availability-zone): given, else the region's "a"."""
        return self.agent_availability_zone or f"{self.region}a"

    def agent_extra_reserved_ports(self) -> list[int]:
        return [int(p) for p in self.agent_reserved_ports.replace(" ", "").split(",") if p]

    def agent_dynamic_ports(self) -> tuple[int, int]:
        low, _, high = self.agent_port_range.partition("-")
        return int(low), int(high or low)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def local_endpoint(self) -> str:
        """This server as a process on its own host reaches it (a wildcard listen address is
        reached on loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'berth.db'}"

    def ensure_credentials(self) -> None:
        """Fill the keys from the data dir, generating and saving them on first start."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / CREDENTIALS_FILE
        if self.access_key and self.secret_key:
            stored = {"access_key": self.access_key, "secret_key": self.secret_key}
        elif path.exists():
            stored = json.loads(path.read_text())
            self.access_key, self.secret_key = stored["access_key"], stored["secret_key"]
            return
        else:
            alphabet = string.ascii_uppercase + string.digits
            self.access_key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
            self.secret_key = secrets.token_urlsafe(30)[:40]
            stored = {"access_key": self.access_key, "secret_key": self.secret_key}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.chmod(path, 0o600)

    def client_env(self) -> dict[str, str]:
        """The variables that point any AWS SDK, the AWS CLI and berth's own client commands
        at this berth."""
        return {**Client(self.endpoint, self.access_key or "", self.secret_key or "",
                         self.region).env(), DATA_DIR_VARIABLE: str(self.data_dir)}


@dataclass(frozen=True)
class Client:
    """Where a client command sends its requests, and the keys it signs them with."""
    endpoint: str
    access_key: str
    secret_key: str
    region: str = DEFAULT_REGION

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region}

    @classmethod
    def of_data_dir(cls, data_dir: Path) -> "Client":
        """The berth that runs on `data_dir`: its endpoint file and keys (never generated)."""
        try:
            stored = json.loads((data_dir / CREDENTIALS_FILE).read_text())
            keys = stored["access_key"], stored["secret_key"]
        except (OSError, ValueError, KeyError, TypeError):
            raise NoBerth(f"no berth keys in {data_dir} (no readable {CREDENTIALS_FILE}: "
                          "run `berth up` there first)") from None
        endpoint_file = data_dir / ENDPOINT_FILE
        endpoint = (endpoint_file.read_text().strip() if endpoint_file.exists() else ""
                    ) or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
        region = os.environ.get("BERTH_REGION") or DEFAULT_REGION
        return cls(endpoint, *keys, region)


def is_data_dir(path: Path) -> bool:
    return path.is_dir() and any((path / mark).exists() for mark in _DATA_DIR_MARKS)


def find_data_dir(flag: Path | None) -> Path:
    """The data dir a client command works on: --data-dir, else BERTH_DATA_DIR, else ./.berth.
    Raises NoBerth when that is no berth data dir; never creates one."""
    given = flag or os.environ.get(DATA_DIR_VARIABLE) or None
    path = Path(given or ".berth").resolve()
    if not is_data_dir(path):
        how = ("--data-dir" if flag else DATA_DIR_VARIABLE if given
               else f"the current folder (no --data-dir, no {DATA_DIR_VARIABLE})")
        raise NoBerth(f"no berth data dir at {path} (from {how}); run `berth up` there, or "
                      f"`eval \"$(berth env --data-dir DIR)\"` to export {DATA_DIR_VARIABLE} "
                      "and the AWS_* variables")
    if flag is None and not given:
        _check_same_berth(path)
    return path


def _check_same_berth(data_dir: Path) -> None:
    """A data dir found only because it is in the current folder must belong to the berth
    AWS_ENDPOINT_URL names, if that is set: otherwise the command would act on another one."""
    named = (os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
    endpoint_file = data_dir / ENDPOINT_FILE
    own = endpoint_file.read_text().strip().rstrip("/") if endpoint_file.exists() else ""
    if named and own and named != own:
        raise NoBerth(f"{data_dir} is the data dir of the berth at {own}, but AWS_ENDPOINT_URL "
                      f"is {named}; name the data dir with --data-dir or {DATA_DIR_VARIABLE}")


def client_for(data_dir_flag: Path | None) -> Client:
    """The berth a client command talks to: the data dir named with --data-dir; else the
    AWS_ENDPOINT_URL/AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY set in the environment (what
    `berth env` exports); else the data dir of find_data_dir."""
    env = os.environ
    if data_dir_flag is None and all(env.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                                          "AWS_SECRET_ACCESS_KEY")):
        return Client(env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"],
                      env["AWS_SECRET_ACCESS_KEY"],
                      env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or DEFAULT_REGION)
    return Client.of_data_dir(find_data_dir(data_dir_flag))
