"""The Lambda provider: one class whose methods are the service's operations.

Each resource's operations live in their own module (functions, versions, aliases, ...) as a
mixin; this class only joins them and holds what they share.
"""
from __future__ import annotations

from typing import Any, Callable

from ..api.app import RequestContext
from ..config import Settings
from ..state.store import Store
from ..sts.sessions import Sessions
from . import schema  # noqa: F401  (registers the tables)
from .aliases import Aliases
from .arns import parse_function_ref
from .code import CodeStore
from .concurrency import Concurrency
from .event_config import EventConfigs
from .functions import Functions
from .invoke import InvokeMixin
from .tags import Tags
from .versions import Versions

# Operations after which Invoke must not run from a cached configuration of the function.
CHANGES_FUNCTION = (
    "update_function_code", "update_function_configuration", "delete_function",
    "put_function_concurrency", "delete_function_concurrency", "publish_version",
    "create_alias", "update_alias", "delete_alias")


class LambdaService(InvokeMixin, Functions, Versions, Aliases, Concurrency, EventConfigs, Tags):
    def __init__(self, store: Store, settings: Settings, sessions: Sessions) -> None:
        self.store = store
        self.settings = settings
        self.sessions = sessions        # issues the execution roles' credentials
        self.code = CodeStore(settings.data_dir, store)


def _forgetting(operation: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: LambdaService, ctx: RequestContext, req: dict[str, Any]) -> Any:
        result = operation(self, ctx, req)
        self.function_changed(ctx.region, parse_function_ref(req["FunctionName"]).name)
        return result
    run.__name__ = operation.__name__
    run.__doc__ = operation.__doc__
    return run


for _name in CHANGES_FUNCTION:
    setattr(LambdaService, _name, _forgetting(getattr(LambdaService, _name)))
