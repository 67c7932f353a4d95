"""A load-time check the core loader does not make: a rule that reads a parameter it does not
declare. (Keys written twice in a YAML mapping are refused by the loader itself.)

`RuleContext.param` refuses an undeclared read, but only when the rule runs, and only on a date
and facts that reach that line. This check parses each rule function's source instead and finds
every `ctx.param("literal name")` call, so the mistake fails when the rulebook is loaded, with a
message naming the rules file and the parameter. Reads through a helper function or a computed
name are beyond a syntax check; they remain guarded at run time by `RuleContext.param`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tianping.rules.errors import RulebookError
from tianping.rules.registry import RuleSpec
from tianping.rules.rulebook import Rulebook, load_rulebook


def _function_nodes(filename: str) -> dict[int, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every module-level function of a source file by its first line (its first decorator's
    line, which is what a function's `co_firstlineno` names).

    Rules are registered at module level, so nested functions are not searched; a parse is
    kept per file and modification time, since the sandbox loads one rulebook under many
    overlays in one process.
    """
    path = Path(filename)
    key = (filename, path.stat().st_mtime_ns)
    cached = _PARSED.get(key)
    if cached is not None:
        return cached
    tree = ast.parse(path.read_text(encoding="utf-8"), filename)
    nodes: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            nodes[first] = node
    _PARSED[key] = nodes
    return nodes


_PARSED: dict[tuple[str, int], dict[int, ast.FunctionDef | ast.AsyncFunctionDef]] = {}


def literal_parameter_reads(
    spec: RuleSpec, nodes: dict[int, ast.FunctionDef | ast.AsyncFunctionDef] | None = None
) -> list[tuple[int, str]]:
    """(line, name) of every `<anything>.param("name")` call in the rule function's body.

    Each source file is parsed once (pass `nodes` from `_function_nodes`), rather than asking
    `inspect` for each function's source, which re-tokenises the file every time.
    """
    code = getattr(spec.function, "__code__", None)
    if code is None:
        return []
    if nodes is None:
        try:
            nodes = _function_nodes(code.co_filename)
        except (OSError, SyntaxError):
            return []
    function = nodes.get(code.co_firstlineno)
    if function is None:
        return []
    return [
        (node.lineno, node.args[0].value)
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "param"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ]


def undeclared_parameter_reads(rulebook: Rulebook) -> list[RulebookError]:
    """One error per literal parameter read that the reading rule does not declare."""
    errors = []
    parsed: dict[str, dict[int, ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for spec in rulebook.rules:
        code = getattr(spec.function, "__code__", None)
        if code is None:
            continue
        filename = code.co_filename
        if filename not in parsed:
            try:
                parsed[filename] = _function_nodes(filename)
            except (OSError, SyntaxError):
                parsed[filename] = {}
        for line, name in literal_parameter_reads(spec, parsed[filename]):
            if name not in spec.parameters:
                errors.append(
                    RulebookError(
                        f"{filename}:{line}",
                        name,
                        f"read by rule {spec.id} but not in its parameters=(...) declaration",
                    )
                )
    return errors


def check_rulebook(rulebook: Rulebook) -> Rulebook:
    """Raise the first load-time fault this module finds; return the rulebook when clean."""
    errors = undeclared_parameter_reads(rulebook)
    if errors:
        raise errors[0]
    return rulebook


def load_checked_rulebook(name_or_path: str | Path, overlays: tuple[str, ...] = ()) -> Rulebook:
    """`load_rulebook` followed by this module's checks: what the CLI, the API and services use."""
    return check_rulebook(load_rulebook(name_or_path, overlays))
