"""The control plane process: settings → store → services → one ASGI app on uvicorn."""
from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable
from types import FrameType

import uvicorn

from .api.app import ApiApp, Service
from .api.body import BodyBudget, BodyLimits
from .api.http import ConnectionLimits, HttpProtocol
from .config import Settings
from .console.app import PREFIX as CONSOLE_PREFIX
from .console.app import console_app
from .ecs.agent_channel import PREFIX as ECS_AGENT_PREFIX
from .lambda_.code_download import PREFIX as LAMBDA_PREFIX
from .lambda_.code_download import code_download_app
from .state.store import Store
from .sts.keys import Keys

log = logging.getLogger(__name__)


def build_services(settings: Settings, store: Store) -> list[Service]:
    from .dynamodb.service import DynamoDBService
    from .dynamodb.streams_api import DynamoDBStreamsService
    from .ecs.service import EcsService
    from .lambda_.service import LambdaService
    from .logs.constraints import AMENDMENTS as LOGS_AMENDMENTS
    from .logs.service import LogsService
    from .sts.service import StsService
    from .sts.sessions import Sessions
    inline = store.is_sqlite
    sessions = Sessions(store)
    return [
        Service("logs", LogsService(store, settings), max_body=5 * 1024 * 1024,
                inline_quick_calls=inline, amendments=LOGS_AMENDMENTS),
        Service("ecs", EcsService(store, settings), inline_quick_calls=inline,
                writer_busy=store.writer_busy),
        Service("sts", StsService(store, settings, sessions), validation_code="ValidationError"),
        Service("lambda", LambdaService(store, settings, sessions),
                validation_code="ValidationException", max_body=80 * 1024 * 1024,
                inline_quick_calls=inline),
        Service("dynamodb", DynamoDBService(store, settings), validation_code="ValidationException",
                max_body=16 * 1024 * 1024, inline_quick_calls=inline,
                writer_busy=store.writer_busy),
        Service("dynamodbstreams", DynamoDBStreamsService(store, settings),
                validation_code="ValidationException", inline_quick_calls=inline),
    ]


def build_app(settings: Settings) -> tuple[ApiApp, Store]:
    settings.ensure_credentials()
    store = Store(settings.db_url)
    services = build_services(settings, store)
    store.create_all()
    keys = {settings.access_key: settings.secret_key}
    ecs = next(s.provider for s in services if s.name == "ecs")
    sts = next(s.provider for s in services if s.name == "sts")
    limits = BodyLimits(BodyBudget(settings.api_body_memory_mb * 1024 * 1024),
                        settings.http_body_timeout)
    mounts = {
        LAMBDA_PREFIX: code_download_app(settings, store),
        ECS_AGENT_PREFIX: ecs.agent_channel(keys.get, limits),
        CONSOLE_PREFIX: console_app(),
    }
    app = ApiApp(services, Keys(settings.access_key or "", settings.secret_key or "",
                                settings.account_id, sts.sessions),
                 settings.account_id, limits, mounts=mounts)
    return app, store


def serve(settings: Settings) -> None:
    app, store = build_app(settings)
    (settings.data_dir / "endpoint").write_text(settings.endpoint + "\n")
    protocol = functools.partial(HttpProtocol, limits=ConnectionLimits(
        settings.http_header_timeout, settings.http_max_connections))
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, lifespan="on", loop="uvloop",
                            http=protocol,  # type: ignore[arg-type]
                            proxy_headers=False)
    agent = _local_agent(settings) if settings.local_worker else None
    channel = app.mounts[ECS_AGENT_PREFIX]

    def on_exit() -> None:
        channel.close()
        if agent is not None:
            agent.agent.stop()
    server = _Server(config, on_exit=on_exit)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal under the
    # handlers it found: make those no-ops so a requested stop exits 0, without a traceback.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        if agent is not None:
            agent.stop()
        store.dispose()


class _Server(uvicorn.Server):
    """uvicorn's server, telling the local agent to stop as soon as a stop is asked: its held
    assignment poll would otherwise hold up the graceful shutdown."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.on_exit is not None:
            self.on_exit()
        super().handle_exit(sig, frame)


def _local_agent(settings: Settings):  # type: ignore[no-untyped-def]
    """`berth up`'s agent on cluster `default`: the same code as a remote `berth agent`,
    in a thread of its own, reaching this server over loopback HTTP."""
    from .agent.agent import AgentThread
    from .agent.client import Credentials
    agent = AgentThread(settings, settings.local_endpoint,
                        Credentials(settings.access_key or "", settings.secret_key or ""))
    agent.start()
    return agent
