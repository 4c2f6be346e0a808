"""The findings table, for people: compact by default (one line per finding, readable at 80
columns), ``--wide`` for every column and whole messages.

Fingerprints are shown as the shortest prefix (at least ``MIN_PREFIX`` characters) that is
unique among the findings listed, which `findings ack` accepts as git accepts short hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from registerwatch.cli._common import _escape

if TYPE_CHECKING:
    from registerwatch.scan import ScanFinding

_STATUS_STYLE = {"new": "[bold]NEW[/]", "open": "open", "resolved": "[green]resolved[/]"}
_SEVERITY_STYLE = {
    "error": "[bold red]error[/]",
    "warning": "[yellow]warning[/]",
    "info": "[cyan]info[/]",
}
# Compact rows spend their width on the message: a short state and severity.
_SHORT_STATUS = {"new": "[bold]new[/]", "open": "open", "resolved": "[green]resolved[/]"}
_SHORT_SEVERITY = {
    "error": "[bold red]error[/]",
    "warning": "[yellow]warn[/]",
    "info": "[cyan]info[/]",
}


def short_fingerprints(fingerprints: Sequence[str]) -> dict[str, str]:
    """Each fingerprint's shortest prefix, at least MIN_PREFIX long, that no other one shares."""
    from registerwatch.scan.findings import MIN_PREFIX

    ordered = sorted(set(fingerprints))
    short: dict[str, str] = {}
    for i, fp in enumerate(ordered):
        length = MIN_PREFIX
        for other in (ordered[i - 1] if i else "", ordered[i + 1] if i + 1 < len(ordered) else ""):
            common = next(
                (n for n, (a, b) in enumerate(zip(fp, other, strict=False)) if a != b),
                min(len(fp), len(other)),
            )
            length = max(length, common + 1)
        short[fp] = fp[:length]
    return short


def _plain(text: str) -> str:
    return "warn" if text == "warning" else text


def _sessions(item: ScanFinding) -> str:
    f = item.finding
    first, last = f.first_session, f.last_session
    if first is None:
        return "-"
    start = f"{first.date.isoformat()} {first.session}"
    if last is None or last == first:
        return start
    return f"{start} to\n{last.date.isoformat()} {last.session}"


def _pupil_cell(item: ScanFinding, include_names: bool) -> str:
    if item.pupil is None:
        return "(school)"
    text = item.pupil.mis_id
    if include_names and item.pupil.name:
        text += f"\n{item.pupil.name}"
    return _escape(text)


def _state_cell(item: ScanFinding) -> str:
    from registerwatch.calendar import LONDON

    text = _STATUS_STYLE[item.status]
    if item.status == "resolved" and item.finding.resolved_at is not None:
        text += f"\n{item.finding.resolved_at.astimezone(LONDON).date().isoformat()}"
    return text


def _return_text(item: ScanFinding) -> str:
    """The finding's LA return, as the outbox knows it ("queued for 07:00", "sent ...")."""
    if item.late:
        return "made late"
    return item.return_state.chip() if item.return_state else ""


def findings_table(
    findings: Sequence[ScanFinding],
    *,
    title: str,
    include_names: bool,
    wide: bool = False,
    width: int = 80,
) -> Table:
    """The findings in reading order (new first, then severity, then the nearest deadline)."""
    from registerwatch.scan.output import table_order

    rows = sorted(findings, key=table_order)
    several_schools = len({f.finding.school_id for f in findings}) > 1
    short = short_fingerprints([f.finding.fingerprint or "" for f in rows])
    if wide:
        return _wide(rows, short, title=title, include_names=include_names, schools=several_schools)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    cells: list[list[str]] = []
    for item in rows:
        f = item.finding
        pupil = "(school)" if item.pupil is None else item.pupil.mis_id
        if include_names and item.pupil is not None and item.pupil.name:
            pupil += f" {item.pupil.name}"
        cells.append(
            [
                short.get(f.fingerprint or "", ""),
                item.status,
                str(f.severity),
                f.rule,
                *([f.school_id[:12]] if several_schools else []),
                pupil[:24],
                f.due.isoformat() if f.due else "-",
            ]
        )
    headers = ["id", "", "sev", "rule", *(["school"] if several_schools else []), "pupil", "due"]
    fixed = [max([len(h)] + [len(_plain(c[i])) for c in cells]) for i, h in enumerate(headers)]
    # Each column is padded by one space either side; the message gets what is left, so a
    # row is one line at any width and no date or id is ever folded.
    # (One state for every row, e.g. `findings list`, goes in the title, not a column.)
    states = len({item.status for item in rows}) > 1
    shown = [i for i in range(len(headers)) if i != 1 or states]
    room = max(12, width - sum(fixed[i] for i in shown) - 3 * (len(shown) + 1) - 1)
    for i in shown:
        size = fixed[i]
        table.add_column(headers[i], no_wrap=True, min_width=size, max_width=size)
    table.add_column("finding", no_wrap=True, max_width=room)
    for item, row in zip(rows, cells, strict=True):
        row[1] = _SHORT_STATUS[row[1]]
        row[2] = _SHORT_SEVERITY[row[2]]
        message = item.finding.message + (" (acknowledged)" if item.acknowledged else "")
        if returned := _return_text(item):
            message = f"[{returned}] {message}"
        if len(message) > room:
            message = message[: room - 1] + "…"
        row = [_escape(c) if i > 2 else c for i, c in enumerate(row)]
        table.add_row(*[row[i] for i in shown], _escape(message))
    return table


def _wide(
    rows: Sequence[ScanFinding],
    short: dict[str, str],
    *,
    title: str,
    include_names: bool,
    schools: bool,
) -> Table:
    with_return = any(item.return_state is not None or item.late for item in rows)
    columns = [
        "state",
        "severity",
        "rule",
        *(["school"] if schools else []),
        "pupil",
        "sessions",
        "due",
        "finding",
        "acknowledged",
        # Only when a finding has a return in the outbox (or was made late).
        *(["return"] if with_return else []),
        "id",
    ]
    table = Table(*columns, title=title, show_lines=True)
    for column in table.columns:
        column.overflow = "fold"
    for name in ("rule", "due", "id"):
        table.columns[columns.index(name)].no_wrap = True
    for item in rows:
        f = item.finding
        ack = ""
        if item.acknowledged:
            ack = "yes" + (f": {_escape(item.ack_note)}" if item.ack_note else "")
        table.add_row(
            _state_cell(item),
            _SEVERITY_STYLE[str(f.severity)],
            f.rule,
            *([f.school_id] if schools else []),
            _pupil_cell(item, include_names),
            _sessions(item),
            f.due.isoformat() if f.due else "-",
            _escape(f.message),
            ack,
            *([_escape(_return_text(item))] if with_return else []),
            short.get(f.fingerprint or "", ""),
        )
    return table
