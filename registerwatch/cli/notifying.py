"""`notify record`: returns made to the LA outside registerwatch, recorded so that the matching
LAR finding closes on the next scan.

    registerwatch notify record --school ID --kind KIND --pupil MIS_ID [--episode-start DATE]
                                [--made-at DATETIME] [--channel TEXT] [--reference TEXT]

Exit status: 0 recorded (or already recorded); 2 an unknown school or pupil, or a bad option.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _emit_json,
    _escape,
    _parse_date,
    _require_known_school,
    _store_url,
    _usage_error,
    app,
    out,
)

notify_app = typer.Typer(
    help="Record returns made to the LA outside registerwatch.", no_args_is_help=True
)
app.add_typer(notify_app, name="notify")


def _parse_instant(value: str, option: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date-time (YYYY-MM-DDTHH:MM, optionally with an offset; "
            "without one it is Europe/London time)",
            param_hint=option,
        ) from None


@notify_app.command("record")
def notify_record(
    school: Annotated[str, typer.Option("--school", help="school id")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="the return that was made: la-sickness, la-continuous-absence, la-cme, "
            "la-new-pupil or la-deletion (as `export` names them); or absence-cause with "
            "--cause, the school's cause of an absence episode",
        ),
    ],
    pupil: Annotated[str, typer.Option("--pupil", help="the pupil's MIS id")],
    episode_start: Annotated[
        str | None,
        typer.Option(
            "--episode-start",
            help="first day of the episode the return is about (YYYY-MM-DD; "
            "required for la-continuous-absence and la-cme: the finding's first "
            "session date)",
        ),
    ] = None,
    made_at: Annotated[
        str | None,
        typer.Option(
            "--made-at",
            help="when the return was made (ISO date-time; default now; without an "
            "offset, Europe/London)",
        ),
    ] = None,
    channel: Annotated[
        str, typer.Option("--channel", help="how it was made (LA portal, email, phone...)")
    ] = "recorded by hand",
    reference: Annotated[
        str | None, typer.Option("--reference", help="the LA's reference for it, if any")
    ] = None,
    cause: Annotated[
        str | None,
        typer.Option(
            "--cause",
            help="with --kind absence-cause: the cause of the absence episode as the school "
            "knows it, for the continuous absence return",
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Record a return already made to the LA outside registerwatch, so the matching LAR
    finding closes on the next scan. Exit 2 for an unknown school or pupil.

    Example: registerwatch notify record --school oakfield --kind la-sickness --pupil 1234
    """
    from registerwatch.cli.vocabulary import notification_kind, return_kind
    from registerwatch.scan.findings import NotificationInputError, record_notification
    from registerwatch.schema import NotificationKind
    from registerwatch.store import Store

    episode = _parse_date(episode_start, "--episode-start") if episode_start else None
    made = _parse_instant(made_at, "--made-at") if made_at else None
    notified = notification_kind(kind)
    if (notified is NotificationKind.ABSENCE_CAUSE) != (cause is not None and bool(cause.strip())):
        _usage_error("--cause is given exactly with --kind absence_cause")
    if cause is not None:
        reference, channel = cause.strip(), "entered by the school"
    opened = Store(_store_url(config, store))
    try:
        _require_known_school(school, opened, config, store)
        recorded = record_notification(
            opened,
            school_id=school,
            kind=notified,
            pupil_mis_id=pupil,
            episode_start=episode,
            made_at=made,
            channel=channel,
            reference=reference,
        )
    except NotificationInputError as exc:
        _usage_error(str(exc))
    finally:
        opened.close()
    n = recorded.notification
    if fmt is OutputFormat.JSON:
        _emit_json(
            {
                "recorded": recorded.created,
                "school": n.school_id,
                "kind": return_kind(n.kind),
                "pupil": recorded.pupil.mis_id,
                "episode_start": n.episode_start.isoformat() if n.episode_start else None,
                "made_at": n.made_at.isoformat(),
                "channel": n.channel,
                "reference": n.reference,
            }
        )
        return
    what = f"{return_kind(n.kind)} return for pupil {recorded.pupil.mis_id} at {n.school_id}"
    if n.episode_start:
        what += f" (episode from {n.episode_start.isoformat()})"
    if recorded.created:
        out.print(
            f"recorded {_escape(what)}; the matching finding closes on the next scan",
            highlight=False,
        )
    else:
        out.print(f"already recorded: {_escape(what)}", highlight=False)
