"""The Lambda provider: one class whose methods are the service's operations.

Each resource's operations live in their own module (functions, versions, aliases, ...) as a
mixin; this class only joins them and holds what they share.
"""
from __future__ import annotations

from ..config import Settings
from ..state.store import Store
from . import schema  # noqa: F401  (registers the tables)
from .aliases import Aliases
from .code import CodeStore
from .concurrency import Concurrency
from .event_config import EventConfigs
from .functions import Functions
from .tags import Tags
from .versions import Versions


class LambdaService(Functions, Versions, Aliases, Concurrency, EventConfigs, Tags):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.code = CodeStore(settings.data_dir)
