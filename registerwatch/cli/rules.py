"""The rule catalogue: list the rules, explain one, regenerate or check docs/rules.

    registerwatch rules [CODE] [--school ID] [--format json]
    registerwatch rules docs [--check] [--output docs/rules]

Exit status: 0 ok; 1 stale rule docs with ``--check``; 2 an unknown rule.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    _emit_json,
    _escape,
    _load_settings,
    _print_table,
    _usage_error,
    app,
    out,
)

# -- rules ----------------------------------------------------------------------------------


class _RulesGroup(TyperGroup):
    """``registerwatch rules MRK001`` is short for ``registerwatch rules explain MRK001``
    (ruff's ``ruff rule B011``), while ``rules docs`` stays a subcommand."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["explain", *args]
        return super().resolve_command(ctx, args)


rules_app = typer.Typer(
    cls=_RulesGroup,
    invoke_without_command=True,
    help="The rule catalogue: list it, explain a rule, regenerate the docs.",
)
app.add_typer(rules_app, name="rules")


@rules_app.callback()
def rules_command(ctx: typer.Context, fmt: FormatOption = OutputFormat.TABLE) -> None:
    """List every rule (code, name, severity, status, what it checks); `rules CODE` explains
    one, `rules docs` regenerates docs/rules."""
    if ctx.invoked_subcommand is not None:
        return
    from registerwatch.validators import all_rules

    rules = all_rules()
    if fmt is OutputFormat.JSON:
        _emit_json(
            {
                "rules": [
                    {
                        "code": r.code,
                        "name": r.name,
                        "family": r.family(),
                        "severity": str(r.severity),
                        "status": str(r.status),
                        "title": r.title,
                        "summary": r.docs().summary,
                        "citation": r.citation,
                    }
                    for r in rules
                ]
            }
        )
        return
    table = Table(
        "code",
        "name",
        "severity",
        "status",
        "checks",
        title=f"{len(rules)} rules (`registerwatch rules CODE` explains one)",
    )
    for column in table.columns:
        column.overflow = "fold"
    for r in rules:
        table.add_row(r.code, r.name, str(r.severity), str(r.status), _escape(r.docs().summary))
    _print_table(table)


@rules_app.command("explain")
def rules_explain(
    code: Annotated[str, typer.Argument(help="rule code (MRK001) or name (unresolved-n-code)")],
    school: Annotated[
        str | None,
        typer.Option(
            "--school",
            help="show the school's effective value of each setting and the config table it "
            "comes from",
        ),
    ] = None,
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Explain one rule: what it checks, why, an example, how to fix it, its references and the
    settings it uses (with --school, their effective values). Exit 2 for an unknown rule or
    school, or an invalid config.

    Example: registerwatch rules explain MRK001 --school oakfield
    """
    from registerwatch.validators import RuleSettings, get_rule
    from registerwatch.validators.docs import render_rule_doc

    try:
        rule = get_rule(code)
    except KeyError:
        try:
            rule = get_rule(code.upper())  # mrk001
        except KeyError:
            _usage_error(f"no rule {code!r}: `registerwatch rules` lists them")
    effective = None
    if school is not None:
        effective = _load_settings(config).rule_setting_sources(school)
    if fmt is OutputFormat.JSON:
        docs = rule.docs()
        fields = RuleSettings.model_fields
        _emit_json(
            {
                "code": rule.code,
                "name": rule.name,
                "family": rule.family(),
                "severity": str(rule.severity),
                "status": str(rule.status),
                "title": rule.title,
                "summary": docs.summary,
                "citation": rule.citation,
                "fix_hint": rule.fix_hint,
                "sections": dict(docs.sections),
                "settings": [
                    {
                        "name": name,
                        "default": _json_default(fields[name].default),
                        "description": fields[name].description,
                        **(
                            {
                                "value": _json_default(effective[name].value),
                                "source": effective[name].source,
                            }
                            if effective is not None
                            else {}
                        ),
                    }
                    for name in rule.settings_used
                ],
                **({"school": school} if school is not None else {}),
            }
        )
        return
    if effective is not None:
        _print_effective(rule.code, school or "", [effective[n] for n in rule.settings_used])
        return
    page = render_rule_doc(rule)
    # The first line is the generated file's "do not edit" comment: not for a reader.
    text = "\n".join(line for line in page.splitlines() if not line.startswith("<!--"))
    if out.is_terminal:
        from rich.markdown import Markdown

        out.print(Markdown(text))
    else:
        sys.stdout.write(text.strip() + "\n")


def _print_effective(code: str, school: str, settings: list[Any]) -> None:
    if not settings:
        out.print(f"{code} has no settings", highlight=False)
        return
    table = Table(
        "setting",
        "value",
        "from",
        title=f"{code} settings for school '{_escape(school)}'",
    )
    for column in table.columns:
        column.overflow = "fold"
    for s in settings:
        value = _json_default(s.value)
        table.add_row(s.name, _escape(str(value)), _escape(s.source))
    _print_table(table)


def _json_default(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_json_default(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


@rules_app.command("docs")
def rules_docs(
    check: Annotated[
        bool, typer.Option("--check", help="only check; exit 1 listing the pages that are stale")
    ] = False,
    output: Annotated[Path, typer.Option("--output", help="the rule docs folder")] = Path(
        "docs/rules"
    ),
) -> None:
    """Regenerate docs/rules/ (one page per rule and an index) from the rules themselves, or
    check that the committed pages are current.

    Example: registerwatch rules docs
    """
    from registerwatch.validators.docs import stale_rule_docs, write_rule_docs

    if check:
        stale = stale_rule_docs(output)
        if stale:
            out.print(
                f"stale rule docs in {_escape(str(output))}: {', '.join(stale)}; run "
                f"`registerwatch rules docs --output {_escape(str(output))}`",
                highlight=False,
            )
            raise typer.Exit(1)
        out.print(f"rule docs in {_escape(str(output))} are current", highlight=False)
        return
    written = write_rule_docs(output)
    out.print(f"wrote {len(written)} pages to {_escape(str(output))}", highlight=False)
