"""The Lambda provider: one class whose methods are the service's operations."""
from __future__ import annotations

from ..config import Settings
from ..state.store import Store


class LambdaService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
