"""The morning email through a real SMTP server (aiosmtpd on loopback): one email per user who
asked for it, per school they may see the counts and the overdue items by MIS id, a link to the
app, and no pupil names, UPNs or dates of birth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.smtp import Mailbox
from web_world import AS_OF, BIRCH, NOW, OAK, copy_store

from registerwatch.config import parse_config
from registerwatch.store import Store
from registerwatch.web.accounts import set_disabled, set_morning_email
from registerwatch.web.morning import after_scan, school_digest


def _settings(store_url: str, port: int) -> Any:
    school = {
        "id": OAK,
        "urn": "100001",
        "laestab": "8812001",
        "name": "Oakfield",
        "la_code": "881",
        "phase": "primary",
        "mis": {
            "vendor": "go4schools",
            "base_url": "http://127.0.0.1:9/customer/v1",
            "api_key_env": "OAK_KEY",
        },
        "calendar": {"terms": [{"start": "2025-09-03", "end": "2025-12-19"}]},
    }
    return parse_config(
        {
            "store": {"url": store_url},
            "schools": [school],
            "web": {
                "base_url": "https://attendance.trust.example",
                "email": {
                    "kind": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "registerwatch@trust.example",
                    "to": "it@trust.example",
                },
            },
        }
    )


def test_each_user_who_asked_gets_one_email_with_their_schools_only(
    template: Path, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    url = copy_store(template, tmp_path / "store.db")
    with Store(url) as store:
        for address in ("manager@oak.example", "admin@trust.example", "manager@birch.example"):
            set_morning_email(store, address, True, actor="test")
        set_disabled(store, "manager@birch.example", actor="test")  # disabled: no email
        report = after_scan(store, _settings(url, port), today=AS_OF, clock=lambda: NOW)
        oak = school_digest(store, OAK, AS_OF)
        pupils = store.pupils(OAK) + store.pupils(BIRCH)
        audited = [e.subject for e in store.audit_entries() if e.action == "morning_email_sent"]

    assert (report.sent, report.failed) == (2, 0)
    assert sorted(audited) == ["admin@trust.example", "manager@oak.example"]
    by_rcpt = {tuple(rcpts): msg for _, rcpts, msg in box.messages}
    assert set(by_rcpt) == {("manager@oak.example",), ("admin@trust.example",)}

    manager = by_rcpt[("manager@oak.example",)].get_content()
    admin = by_rcpt[("admin@trust.example",)].get_content()
    assert f"({OAK})" in manager and f"({BIRCH})" not in manager
    assert f"({OAK})" in admin and f"({BIRCH})" in admin
    assert oak.overdue, "the generated school has overdue findings"
    assert (
        f"open errors: {oak.errors}   warnings: {oak.warnings}   overdue: {len(oak.overdue)}"
        in manager
    )
    for item in oak.overdue[:5]:
        if item.pupil_mis_id:
            assert f"pupil MIS id {item.pupil_mis_id}" in manager
    assert f"https://attendance.trust.example/schools/{OAK}/findings" in manager
    for text in (manager, admin):
        for pupil in pupils:
            for secret in (pupil.legal_surname, pupil.preferred_surname, pupil.upn):
                if secret and len(secret) > 3:
                    assert secret not in text
            if pupil.dob:
                assert pupil.dob.isoformat() not in text and f"{pupil.dob:%d %b %Y}" not in text


def test_no_transport_or_nobody_asking_sends_nothing(template: Path, tmp_path: Path) -> None:
    url = copy_store(template, tmp_path / "store.db")
    settings = _settings(url, 9)
    with Store(url) as store:
        assert (
            after_scan(store, settings, today=AS_OF).reason == "nobody asked for the morning email"
        )
        set_morning_email(store, "manager@oak.example", True, actor="test")
        # nothing listens on port 9: the failure is counted, never raised
        report = after_scan(store, settings, today=AS_OF, clock=lambda: NOW)
    assert (report.sent, report.failed) == (0, 1)


def test_the_nights_scan_step_sends_the_morning_email(
    template: Path, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    """The hook in jobs.nightly.scan_step: after the scan, the email goes out."""
    from registerwatch.jobs.nightly import NightContext, scan_step

    box, port = mailbox
    url = copy_store(template, tmp_path / "store.db")
    with Store(url) as store:
        set_morning_email(store, "manager@oak.example", True, actor="test")
        ctx = NightContext(_settings(url, port), store, AS_OF, tmp_path / "out", clock=lambda: NOW)
        result = scan_step(ctx)
    assert result.name == "scan"
    assert [rcpts for _, rcpts, _ in box.messages] == [["manager@oak.example"]]
    assert f"({OAK})" in box.messages[0][2].get_content()
