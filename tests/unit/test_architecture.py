"""Architecture rules checked mechanically: a pure domain, errors mapped only at the edge,
and a README in every package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tianping"

# The ledger's pure domain: standard library and each other only. The service layer, adapters
# and edges may import anything; these may not, so they stay testable without a database.
PURE_LEDGER_MODULES = (
    "engine",
    "model",
    "results",
    "limits",
    "journal",
    "money",
    "currencies",
    "ids",
    "errors",
)


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every module a source file imports, with the line of the import."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def impure_imports(source: str, allowed_prefix: str = "tianping.ledger.") -> list[str]:
    """Imports that are neither standard library nor another pure ledger module."""
    pure = {f"{allowed_prefix}{name}" for name in PURE_LEDGER_MODULES}
    problems = []
    for line, module in imported_modules(source):
        top = module.split(".")[0]
        if top == "__future__" or top in sys.stdlib_module_names:
            continue
        if module in pure:
            continue
        problems.append(f"line {line}: {module}")
    return problems


@pytest.mark.parametrize("name", PURE_LEDGER_MODULES)
def test_ledger_domain_modules_import_only_the_standard_library(name: str) -> None:
    """The pure ledger modules import nothing but the standard library and each other."""
    source = (SRC / "ledger" / f"{name}.py").read_text(encoding="utf-8")
    assert impure_imports(source) == []


def test_the_purity_check_can_fail() -> None:
    """The checker reports third-party and service-layer imports, so the rule above can fail."""
    source = "import sqlalchemy\nfrom tianping.ledger.service import Ledger\nimport json\n"
    assert impure_imports(source) == ["line 1: sqlalchemy", "line 2: tianping.ledger.service"]


def test_http_errors_are_raised_only_at_the_http_edge() -> None:
    """No module outside `tianping.api` mentions HTTPException: errors map to HTTP in one place."""
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "api" not in path.relative_to(SRC).parts[:1]
        and "HTTPException" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_every_package_has_a_readme() -> None:
    """Each sub-package says in a README what it owns."""
    packages = [path.parent for path in SRC.rglob("__init__.py")]
    missing = [
        str(package.relative_to(SRC.parent))
        for package in packages
        if not (package / "README.md").exists()
        # Adapter sub-packages are documented by their parent context's README.
        and package.name != "adapters"
    ]
    assert missing == []
