"""`pip install .` gives a berth whose every command runs: each module berth's code imports is
the standard library's, berth's own, or a runtime dependency named in pyproject.toml, never
one that only a test or bench extra brings (issue 10: `berth logs tail` needed boto3)."""
from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "berth"
# Bootstraps that run inside function sandboxes, on the sandbox's interpreter (whose
# packages are the function's), not in a berth process.
IN_SANDBOXES = SOURCE / "runtimes"


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a file, wherever they appear."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _declared(group: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] if group is None else \
        project["optional-dependencies"][group]
    return {canonicalize_name(Requirement(spec).name) for spec in specs}


def undeclared_imports(files: list[Path], runtime: set[str]) -> dict[str, list[str]]:
    """Imported modules that no runtime dependency provides: "module (distribution)" to the
    files importing it."""
    distributions = packages_distributions()
    missing: dict[str, list[str]] = {}
    for path in files:
        for name in _imports(path) - set(sys.stdlib_module_names) - {"berth"}:
            provided_by = {canonicalize_name(d) for d in distributions.get(name, [])}
            if not provided_by & runtime:
                missing.setdefault(f"{name} ({', '.join(sorted(provided_by)) or '?'})",
                                   []).append(path.name)
    return missing


def test_every_import_of_berth_is_a_runtime_dependency() -> None:
    files = [p for p in SOURCE.rglob("*.py") if IN_SANDBOXES not in p.parents]
    assert len(files) > 50
    assert undeclared_imports(files, _declared()) == {}


def test_an_import_from_an_extra_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "cmd.py"
    module.write_text("import json\nimport boto3\n\ndef f():\n    from pytest import fail\n"
                      "    from berth.api import sigv4\n    import click\n")
    assert undeclared_imports([module], _declared()) == {"pytest (pytest)": ["cmd.py"]}
    without_boto3 = _declared() - {"boto3"}
    assert set(undeclared_imports([module], without_boto3)) == {"boto3 (boto3)",
                                                                "pytest (pytest)"}
