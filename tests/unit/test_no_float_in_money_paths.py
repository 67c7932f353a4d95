"""Static guard: no binary floating point anywhere in the packages that handle money.

A float cannot hold most decimal amounts exactly, so one `float(...)` call, float annotation or
float literal in a money path is enough to corrupt balances by a fraction of a unit that later
adds up. Reviews miss such lines; this test reads the source with `ast` and names each one.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).parents[2]
SOURCE_ROOT = REPOSITORY_ROOT / "src" / "tianping"

# The ledger always exists; the other contexts are checked as soon as they are created, so a new
# package that handles money is covered without anyone remembering to add it here.
MONEY_PATH_PACKAGES = ("ledger", "payments", "lending", "wealth", "insurance")
# Sub-packages (and modules) of those that compute statistics rather than move money: model
# features, scores and probabilities are real numbers by nature. Money enters them as integer
# minor units and leaves them only as decisions (allow / challenge / deny), never as an amount.
STATISTICAL_PACKAGES = (
    "payments/risk",
    "lending/scoring",
    "lending/synthetic.py",
    "lending/synthetic_sme.py",
)


def _annotation_mentions_float(annotation: ast.expr) -> bool:
    """Return whether an annotation refers to float anywhere inside it.

    This covers `float`, `builtins.float`, `Optional[float]`, `float | None`, `list[float]` and
    string (forward-reference) annotations such as `"dict[str, float]"`. The contents of
    `Literal[...]` are values, not types, so `Literal["float"]` is not a float annotation.
    """
    if isinstance(annotation, ast.Name):
        return annotation.id == "float"
    if isinstance(annotation, ast.Attribute):
        return annotation.attr == "float"
    if isinstance(annotation, ast.Constant):
        if not isinstance(annotation.value, str):
            return False
        try:
            parsed = ast.parse(annotation.value.strip(), mode="eval")
        except SyntaxError:
            return False
        return _annotation_mentions_float(parsed.body)
    if isinstance(annotation, ast.Subscript):
        subscripted = annotation.value
        is_literal = (isinstance(subscripted, ast.Name) and subscripted.id == "Literal") or (
            isinstance(subscripted, ast.Attribute) and subscripted.attr == "Literal"
        )
        if is_literal:
            return False
    return any(
        _annotation_mentions_float(child)
        for child in ast.iter_child_nodes(annotation)
        if isinstance(child, ast.expr)
    )


def _function_annotations(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """Return every annotation of a function: each kind of parameter and the return type."""
    arguments = function.args
    parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    if arguments.vararg is not None:
        parameters.append(arguments.vararg)
    if arguments.kwarg is not None:
        parameters.append(arguments.kwarg)
    annotations = [parameter.annotation for parameter in parameters if parameter.annotation]
    if function.returns is not None:
        annotations.append(function.returns)
    return annotations


def _is_float_call(call: ast.Call) -> bool:
    """Return whether a call is `float(...)` or `builtins.float(...)`."""
    function = call.func
    if isinstance(function, ast.Name):
        return function.id == "float"
    return (
        isinstance(function, ast.Attribute)
        and function.attr == "float"
        and isinstance(function.value, ast.Name)
        and function.value.id == "builtins"
    )


def find_float_uses(source: str, filename: str) -> list[str]:
    """Return one "filename:line: what" entry per float use in the source, in line order."""
    tree = ast.parse(source, filename=filename)
    findings: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_float_call(node):
            findings.append((node.lineno, "float() call"))
        elif isinstance(node, ast.Constant) and type(node.value) is float:
            findings.append((node.lineno, f"float literal {node.value!r}"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for annotation in _function_annotations(node):
                if _annotation_mentions_float(annotation):
                    findings.append((annotation.lineno, "float annotation"))
        elif isinstance(node, ast.AnnAssign) and _annotation_mentions_float(node.annotation):
            findings.append((node.lineno, "float annotation"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(findings)]


def money_path_files() -> list[Path]:
    """Return every Python file of the money-handling packages that exist, in a stable order."""
    files: list[Path] = []
    for package in MONEY_PATH_PACKAGES:
        package_directory = SOURCE_ROOT / package
        if package_directory.is_dir():
            files.extend(sorted(package_directory.rglob("*.py")))
    exempt = tuple(SOURCE_ROOT / package for package in STATISTICAL_PACKAGES)
    return [path for path in files if not any(path.is_relative_to(root) for root in exempt)]


def test_money_paths_contain_no_float() -> None:
    """No money-path file calls float(), annotates with float or holds a float literal."""
    files = money_path_files()
    scanned = {path.relative_to(SOURCE_ROOT).as_posix() for path in files}
    # Guards against a vacuous pass: if the source root moved, the scan would find nothing.
    assert {"ledger/money.py", "ledger/currencies.py"} <= scanned, scanned
    findings: list[str] = []
    for path in files:
        relative_name = path.relative_to(REPOSITORY_ROOT).as_posix()
        findings.extend(find_float_uses(path.read_text(encoding="utf-8"), relative_name))
    assert not findings, "float found in money paths:\n" + "\n".join(findings)


# Each forbidden form on its own line; the line numbers below are those of this snippet.
FORBIDDEN_SOURCE = textwrap.dedent(
    """\
    from typing import Optional
    import builtins
    ratio = float("0.1")
    half = builtins.float(1)
    rate = 0.5
    big = 1e5
    def parameter(value: float) -> int: ...
    def returns() -> float: ...
    def optional(value: Optional[float]) -> None: ...
    def union(value: float | None) -> None: ...
    def listed(values: list[float]) -> None: ...
    def variadic(*values: float, **named: float) -> None: ...
    def keyword_only(*, value: float) -> None: ...
    def positional_only(value: float, /) -> None: ...
    async def coroutine() -> float: ...
    price: float = 0
    prices: dict[str, float] = {}
    maybe: "Optional[float]" = None
    total: builtins.float
    def forward(value: "float") -> None: ...
    """
)

EXPECTED_FINDINGS = [
    "snippet.py:3: float() call",
    "snippet.py:4: float() call",
    "snippet.py:5: float literal 0.5",
    "snippet.py:6: float literal 100000.0",
    "snippet.py:7: float annotation",
    "snippet.py:8: float annotation",
    "snippet.py:9: float annotation",
    "snippet.py:10: float annotation",
    "snippet.py:11: float annotation",
    "snippet.py:12: float annotation",
    "snippet.py:12: float annotation",
    "snippet.py:13: float annotation",
    "snippet.py:14: float annotation",
    "snippet.py:15: float annotation",
    "snippet.py:16: float annotation",
    "snippet.py:17: float annotation",
    "snippet.py:18: float annotation",
    "snippet.py:19: float annotation",
    "snippet.py:20: float annotation",
]


def test_checker_reports_every_forbidden_form() -> None:
    """The checker reports each forbidden form at its line, proving the guard above can fail."""
    assert find_float_uses(FORBIDDEN_SOURCE, "snippet.py") == EXPECTED_FINDINGS


def test_checker_accepts_float_free_code() -> None:
    """Names, strings and Literal values that merely contain "float" are not reported."""
    clean_source = textwrap.dedent(
        """\
        from decimal import Decimal
        from typing import Literal
        floating_rate = Decimal("0.5")
        float_count: int = 3
        kind: Literal["float", "fixed"] = "fixed"
        def describe(value: int) -> str:
            return "float" if value else "int"
        amount = 10 ** 2 * 5
        """
    )
    assert find_float_uses(clean_source, "clean.py") == []
