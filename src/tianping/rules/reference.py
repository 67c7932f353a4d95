"""The generated reference page of a rulebook, in Markdown and HTML.

Every rule with its id, title, enforcement point, citation, the legal prose of its docstring and
the facts it reads, followed by each parameter it reads with its description, unit, reference,
confidence and full dated history. The page is generated from the loaded rulebook, so it cannot
drift from what the engine enforces, and it names the rulebook's content hash, so a printed copy
says which version it describes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from tianping.rules.documents import display_value, rule_prose
from tianping.rules.parameters import Parameter
from tianping.rules.registry import RuleSpec
from tianping.rules.rulebook import Rulebook

CONFIDENCE_NAMES = {
    "H": "high",
    "M": "medium",
    "L": "low",
    "U": "unverified ⚠",
}


def _by_area(rulebook: Rulebook) -> dict[str, list[RuleSpec]]:
    areas: dict[str, list[RuleSpec]] = {}
    for spec in rulebook.rules:
        areas.setdefault(spec.area, []).append(spec)
    return {area: sorted(specs, key=lambda spec: spec.id) for area, specs in sorted(areas.items())}


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _reference_text(parameter: Parameter) -> str:
    reference = parameter.reference
    parts = [reference.instrument]
    if reference.article:
        parts.append(reference.article)
    text = ", ".join(parts)
    return f"{text} ({reference.url})" if reference.url else text


def _parameters_of(rulebook: Rulebook, spec: RuleSpec) -> Iterable[Parameter]:
    return (rulebook.parameters[name] for name in sorted(spec.parameters))


def reference_markdown(rulebook: Rulebook) -> str:
    """The reference page as Markdown."""
    lines = [
        f"# Rulebook `{rulebook.label}`",
        "",
        f"Content hash `{rulebook.content_hash}`. {len(rulebook.rules)} rules, "
        f"{len(rulebook.parameters)} parameters. Generated from the rulebook itself.",
        "",
        "| rule | enforcement point | citation |",
        "| --- | --- | --- |",
    ]
    for specs in _by_area(rulebook).values():
        lines.extend(
            f"| [`{spec.id}`](#{spec.id.replace('.', '')}) | `{spec.point}` | "
            f"{_cell(spec.citation)} |"
            for spec in specs
        )
    for area, specs in _by_area(rulebook).items():
        lines += ["", f"## {area}"]
        for spec in specs:
            lines += [
                "",
                f"### {spec.id}",
                "",
                f"**{spec.title}**",
                "",
                f"- Enforcement point: `{spec.point}`",
                f"- Citation: {spec.citation}",
                f"- Facts read: {', '.join(f'`{fact}`' for fact in spec.facts) or 'none'}",
            ]
            if spec.description:
                lines += ["", *(f"> {line}".rstrip() for line in rule_prose(spec).splitlines())]
            for parameter in _parameters_of(rulebook, spec):
                lines += [
                    "",
                    f"#### `{parameter.name}` ({parameter.unit})",
                    "",
                    parameter.description,
                    "",
                    f"Reference: {_reference_text(parameter)}. "
                    f"Confidence: {parameter.confidence} "
                    f"({CONFIDENCE_NAMES.get(parameter.confidence, '?')}).",
                    "",
                    "| from | value |",
                    "| --- | --- |",
                ]
                lines.extend(
                    f"| {start.isoformat()} | {_cell(display_value(parameter.unit, value))} |"
                    for start, value in zip(parameter.starts, parameter.values, strict=True)
                )
    return "\n".join(lines) + "\n"


def reference_html(rulebook: Rulebook) -> str:
    """The reference page as a self-contained HTML document (every text escaped)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Rulebook {e(rulebook.label)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        "blockquote{white-space:pre-wrap;color:#333}</style>",
        "</head><body>",
        f"<h1>Rulebook <code>{e(rulebook.label)}</code></h1>",
        f"<p>Content hash <code>{e(rulebook.content_hash)}</code>. {len(rulebook.rules)} rules, "
        f"{len(rulebook.parameters)} parameters. Generated from the rulebook itself.</p>",
        "<table><tr><th>rule</th><th>enforcement point</th><th>citation</th></tr>",
    ]
    for specs in _by_area(rulebook).values():
        parts.extend(
            f'<tr><td><a href="#{e(spec.id)}"><code>{e(spec.id)}</code></a></td>'
            f"<td><code>{e(spec.point)}</code></td><td>{e(spec.citation)}</td></tr>"
            for spec in specs
        )
    parts.append("</table>")
    for area, specs in _by_area(rulebook).items():
        parts.append(f"<h2>{e(area)}</h2>")
        for spec in specs:
            facts = ", ".join(f"<code>{e(fact)}</code>" for fact in spec.facts) or "none"
            parts += [
                f'<h3 id="{e(spec.id)}">{e(spec.id)}</h3>',
                f"<p><strong>{e(spec.title)}</strong></p>",
                f"<ul><li>Enforcement point: <code>{e(spec.point)}</code></li>"
                f"<li>Citation: {e(spec.citation)}</li><li>Facts read: {facts}</li></ul>",
            ]
            if spec.description:
                parts.append(f"<blockquote>{e(rule_prose(spec))}</blockquote>")
            for parameter in _parameters_of(rulebook, spec):
                reference = parameter.reference
                link = (
                    f' <a href="{e(reference.url)}">{e(reference.url)}</a>' if reference.url else ""
                )
                parts += [
                    f"<h4><code>{e(parameter.name)}</code> ({e(parameter.unit)})</h4>",
                    f"<p>{e(parameter.description)}</p>",
                    f"<p>Reference: {e(reference.instrument)}"
                    f"{', ' + e(reference.article) if reference.article else ''}.{link} "
                    f"Confidence: {e(parameter.confidence)} "
                    f"({e(CONFIDENCE_NAMES.get(parameter.confidence, '?'))}).</p>",
                    "<table><tr><th>from</th><th>value</th></tr>",
                ]
                parts.extend(
                    f"<tr><td>{start.isoformat()}</td>"
                    f"<td>{e(display_value(parameter.unit, value))}</td></tr>"
                    for start, value in zip(parameter.starts, parameter.values, strict=True)
                )
                parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
