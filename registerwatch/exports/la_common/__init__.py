"""What the five LA notification returns share (la-sickness, la-continuous-absence, la-cme,
la-new-pupil, la-deletion), and what the outbox needs to record one as made.

Each return answers the OPEN findings of one LAR rule (``RULE_FOR_RETURN``) with one record per
pupil episode, keyed ``ReturnRecordKey(pupil_id, episode)`` where ``episode`` is an ISO date
chosen so that the rule accepts a Notification with that ``episode_start`` as the return for the
finding (see ``inputs`` for the rule-by-rule reasoning). When the outbox submits a return it
records, for each record, ``notification_for(kind, school_id, key, ...)``: the next scan then
finds the return and the finding closes.
"""

from __future__ import annotations

from datetime import date, datetime

from registerwatch.exports.base import ReturnRecordKey
from registerwatch.exports.la_common.reference import (
    NOT_IN_SCHEMA,
    NOTIFICATION_KIND,
    RULE_FOR_RETURN,
    SCHEMA_VERSION,
    schema_name,
)
from registerwatch.schema import Notification, NotificationKind

__all__ = [
    "NOTIFICATION_KIND",
    "NOT_IN_SCHEMA",
    "RULE_FOR_RETURN",
    "SCHEMA_VERSION",
    "notification_for",
    "schema_name",
]


def notification_for(
    kind: str,
    school_id: str,
    record: ReturnRecordKey,
    *,
    made_at: datetime,
    channel: str,
    reference: str | None = None,
) -> Notification:
    """The Notification that records ``record`` of LA return ``kind`` as made.

    ``episode_start`` is the record's episode date, which is what the LAR rules match on.
    Raises KeyError for a kind that is not an LA return and ValueError for a record without a
    pupil or an episode date.
    """
    notification_kind = NotificationKind(NOTIFICATION_KIND[kind])
    if record.pupil_id is None or record.episode is None:
        raise ValueError(f"{kind} record {record} has no pupil or no episode date")
    return Notification(
        kind=notification_kind,
        school_id=school_id,
        pupil_id=record.pupil_id,
        episode_start=date.fromisoformat(record.episode),
        made_at=made_at,
        channel=channel,
        reference=reference,
    )
