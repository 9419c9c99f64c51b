"""The control plane process: settings → store → services → one ASGI app on uvicorn."""
from __future__ import annotations

import logging
import signal

import uvicorn

from .api.app import ApiApp, Service
from .config import Settings
from .console.app import PREFIX as CONSOLE_PREFIX
from .console.app import console_app
from .ecs.agent_channel import PREFIX as ECS_AGENT_PREFIX
from .lambda_.code_download import PREFIX as LAMBDA_PREFIX
from .lambda_.code_download import code_download_app
from .state.store import Store

log = logging.getLogger(__name__)


def build_services(settings: Settings, store: Store) -> list[Service]:
    from .ecs.service import EcsService
    from .lambda_.service import LambdaService
    from .logs.service import LogsService
    inline = store.is_sqlite
    return [
        Service("logs", LogsService(store, settings), max_body=5 * 1024 * 1024,
                inline_quick_reads=inline),
        Service("ecs", EcsService(store, settings), inline_quick_reads=inline),
        Service("lambda", LambdaService(store, settings), validation_code="ValidationException",
                max_body=80 * 1024 * 1024, inline_quick_reads=inline),
    ]


def build_app(settings: Settings) -> tuple[ApiApp, Store]:
    settings.ensure_credentials()
    store = Store(settings.db_url)
    services = build_services(settings, store)
    store.create_all()
    keys = {settings.access_key: settings.secret_key}
    ecs = next(s.provider for s in services if s.name == "ecs")
    app = ApiApp(services, keys.get, settings.account_id, mounts={
        LAMBDA_PREFIX: code_download_app(settings, store),
        ECS_AGENT_PREFIX: ecs.agent_channel(keys.get),
        CONSOLE_PREFIX: console_app(),
    })
    return app, store


def serve(settings: Settings) -> None:
    app, store = build_app(settings)
    (settings.data_dir / "endpoint").write_text(settings.endpoint + "\n")
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, lifespan="on", loop="uvloop", http="httptools")
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal under the
    # handlers it found: make those no-ops so a requested stop exits 0, without a traceback.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        store.dispose()
