"""DynamoDB's expression language: parsing (`parser`) and evaluation (`conditions`,
`updates`, `paths`), pure functions over attribute values in wire form."""
from .conditions import evaluate
from .parser import parse_condition, parse_projection, parse_update
from .paths import project, resolve
from .placeholders import Placeholders
from .syntax import Path
from .updates import apply

__all__ = ["Path", "Placeholders", "apply", "evaluate", "parse_condition", "parse_projection",
           "parse_update", "project", "resolve"]
