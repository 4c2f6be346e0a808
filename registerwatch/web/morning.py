"""The morning email: after the night's scan, each user who asked for it gets one email with,
per school they may see, the open errors, warnings and overdue findings, and the overdue items
(rule, MIS id, due date), with a link to the app. MIS ids only: never a name, UPN or date of
birth. Sent through the ``[web.email]`` SMTP transport (the outbox's SMTP code)."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import structlog

from registerwatch import netguard
from registerwatch.config import Settings
from registerwatch.outbox.transports.smtp import MESSAGE_POLICY, SmtpTransport
from registerwatch.store import AuditEntry, Store, UserRecord

log = structlog.get_logger(__name__)

AUDIT_ACTOR = "registerwatch"
MAX_ITEMS_PER_SCHOOL = 50  # overdue items listed per school; the app has the rest


@dataclass(frozen=True)
class OverdueItem:
    rule: str
    severity: str
    pupil_mis_id: str | None  # None: a school-level finding
    due: date


@dataclass(frozen=True)
class SchoolDigest:
    school_id: str
    school_name: str
    errors: int
    warnings: int
    overdue: list[OverdueItem]


@dataclass(frozen=True)
class MorningReport:
    sent: int
    failed: int
    reason: str | None = None  # why nothing was sent (no transport, nobody asked)


def school_digest(store: Store, school_id: str, today: date) -> SchoolDigest:
    school = store.school(school_id)
    mis_ids = {p.id: p.mis_id for p in store.pupils(school_id)}
    open_findings = [s.finding for s in store.load_findings(school_id, status="open").values()]
    overdue = sorted(
        (
            OverdueItem(f.rule, str(f.severity), mis_ids.get(f.pupil_id or ""), f.due)
            for f in open_findings
            if f.due is not None and f.due < today
        ),
        key=lambda i: (i.due, i.rule, i.pupil_mis_id or ""),
    )
    return SchoolDigest(
        school_id=school_id,
        school_name=school.name if school else school_id,
        errors=sum(1 for f in open_findings if str(f.severity) == "error"),
        warnings=sum(1 for f in open_findings if str(f.severity) == "warning"),
        overdue=overdue,
    )


def email_body(user: UserRecord, digests: list[SchoolDigest], today: date, base_url: str) -> str:
    base = base_url.rstrip("/")
    lines = [
        f"Good morning. Registers checked for {today:%A %d %B %Y}.",
        "",
    ]
    for d in digests:
        lines += [
            f"{d.school_name} ({d.school_id})",
            f"  open errors: {d.errors}   warnings: {d.warnings}   overdue: {len(d.overdue)}",
        ]
        for item in d.overdue[:MAX_ITEMS_PER_SCHOOL]:
            who = f"pupil MIS id {item.pupil_mis_id}" if item.pupil_mis_id else "the school"
            lines.append(f"  - {item.rule} ({item.severity}), {who}, due {item.due:%d %b %Y}")
        if len(d.overdue) > MAX_ITEMS_PER_SCHOOL:
            lines.append(f"  ... and {len(d.overdue) - MAX_ITEMS_PER_SCHOOL} more")
        lines += [f"  {base}/schools/{d.school_id}/findings", ""]
    lines += [
        f"Open the app: {base}/",
        "You get this email because it is turned on for your account "
        f"({user.email}); turn it off on {base}/account.",
    ]
    return "\n".join(lines) + "\n"


def build_transport(settings: Settings, environ: Mapping[str, str] | None) -> SmtpTransport | None:
    configured = settings.web.email
    if configured is None or configured.kind != "smtp":
        return None
    assert configured.host is not None and configured.from_ is not None
    credentials = configured.credentials(environ)
    return SmtpTransport(
        configured.host,
        configured.smtp_port,
        security=configured.security or "starttls",
        from_addr=configured.from_,
        to_addrs=list(configured.to or []),
        label="the morning email",
        toml_key="web.email",
        username=credentials.get("username"),
        password=credentials.get("password"),
        timeout=configured.timeout_seconds or 30.0,
        deadline=configured.deadline_seconds or 120.0,
    )


def send_morning_emails(
    store: Store,
    settings: Settings,
    *,
    today: date,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    transport: SmtpTransport | None = None,
) -> MorningReport:
    """One email to each active user with the morning email on; a user whose email fails is
    logged and counted, and the others still get theirs. Never raises for a delivery failure."""
    now = (clock or (lambda: datetime.now(UTC)))()
    wanted = [u for u in store.users() if u.morning_email and not u.disabled]
    if not wanted:
        return MorningReport(0, 0, "nobody asked for the morning email")
    smtp = transport or build_transport(settings, environ)
    if smtp is None:
        log.warning("web.morning_email_unconfigured", users=len(wanted))
        return MorningReport(0, 0, "no [web.email] transport configured")
    schools = [s.id for s in store.schools()]
    digests: dict[str, SchoolDigest] = {}
    sent = failed = 0
    for user in wanted:
        visible = [s for s in schools if user.may_see(s)]
        if not visible:
            continue
        for school_id in visible:
            if school_id not in digests:
                digests[school_id] = school_digest(store, school_id, today)
        msg = EmailMessage(policy=MESSAGE_POLICY)
        msg["Subject"] = f"registerwatch: attendance registers, {today:%d %b %Y}"
        msg["From"] = smtp.from_addr
        msg["To"] = user.email
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid(domain=smtp.from_addr.rpartition("@")[2] or None)
        body = email_body(user, [digests[s] for s in visible], today, settings.web.base_url)
        msg.set_content(body)
        smtp.to_addrs = [user.email]
        try:
            refused = smtp.deliver_message(msg)
        except (
            smtplib.SMTPException,
            OSError,
            netguard.DeadlineExceeded,
            netguard.Cancelled,
        ) as exc:
            failed += 1
            log.warning("web.morning_email_failed", user_id=user.id, error=type(exc).__name__)
            continue
        if refused:
            failed += 1
            log.warning("web.morning_email_refused", user_id=user.id)
            continue
        sent += 1
        store.add_audit(
            AuditEntry(
                now,
                AUDIT_ACTOR,
                "morning_email_sent",
                subject=user.email,
                detail=f"{len(visible)} school(s)",
            )
        )
    log.info("web.morning_emails_sent", sent=sent, failed=failed)
    return MorningReport(sent, failed)


def after_scan(
    store: Store,
    settings: Settings,
    *,
    today: date,
    clock: Callable[[], datetime] | None = None,
    environ: Mapping[str, str] | None = None,
) -> MorningReport:
    """The night's hook (``jobs.nightly.scan_step``): send the morning emails; a missing
    credential or any other problem is logged, never allowed to fail the scan step."""
    try:
        return send_morning_emails(store, settings, today=today, clock=clock, environ=environ)
    except Exception as exc:  # the scan's work is done; the email must not undo it
        log.error("web.morning_email_crashed", error=type(exc).__name__, detail=str(exc)[:200])
        return MorningReport(0, 0, f"crashed: {type(exc).__name__}")
