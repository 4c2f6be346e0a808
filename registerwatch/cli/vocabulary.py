"""One spelling for each return on the command line: the `export` kind (`la-sickness`), used
by `notify record`, the outbox and every JSON output. Older spellings (`sickness`,
`continuous_absence`) are still accepted where a command takes a kind."""

from __future__ import annotations

import typer

from registerwatch.schema import NotificationKind

RETURN_KIND = {
    NotificationKind.SICKNESS: "la-sickness",
    NotificationKind.CONTINUOUS_ABSENCE: "la-continuous-absence",
    NotificationKind.CME: "la-cme",
    NotificationKind.NEW_PUPIL: "la-new-pupil",
    NotificationKind.DELETION: "la-deletion",
}
_BY_NAME = {name.removeprefix("la-"): kind for kind, name in RETURN_KIND.items()}
# Not a return: the school's cause of an absence episode, for the continuous absence return.
_BY_NAME["absence-cause"] = NotificationKind.ABSENCE_CAUSE


def return_kind(kind: NotificationKind | str) -> str:
    """The export spelling of a notification's kind (its own value for kinds with none)."""
    try:
        return RETURN_KIND[NotificationKind(kind)]
    except (KeyError, ValueError):
        return str(kind)


def notification_kind(text: str, option: str = "--kind") -> NotificationKind:
    """``la-sickness`` (or ``sickness``, ``la_sickness``...) -> NotificationKind.SICKNESS."""
    key = text.strip().lower().replace("_", "-").removeprefix("la-")
    if key not in _BY_NAME:
        raise typer.BadParameter(
            f"{text!r} is not a return; choose one of {', '.join(RETURN_KIND.values())}",
            param_hint=option,
        )
    return _BY_NAME[key]
