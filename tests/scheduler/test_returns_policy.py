"""export_school: the one policy `registerwatch export` and the night's returns steps share
(each return stands alone), and the night queueing what it wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scheduler_support import SCHOOL_DAY, fake_school, settings_for

import registerwatch.exports.registry as registry
import registerwatch.jobs.returns as returns
import registerwatch.outbox as outbox
from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import RenderedReturn, WrittenReturn
from registerwatch.jobs.nightly import NightContext, la_returns_step
from registerwatch.jobs.returns import export_school
from registerwatch.store import Store

NOW = datetime(2025, 10, 1, 1, 0, tzinfo=UTC)


def artefact(stem: str) -> RenderedReturn:
    return RenderedReturn(
        kind="la-cme",
        school_id="ashby",
        schema_name="la-cme-1.xsd",
        xml=b"<x/>",
        csv_header=["a"],
        csv_rows=[["1"]],
        file_stem=stem,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}")
    yield opened
    opened.close()


@pytest.fixture
def two_returns_one_invalid(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every build renders 'good' and 'bad'; 'bad' does not validate (its error quotes a UPN)."""
    written: list[str] = []
    monkeypatch.setattr(
        registry, "builder", lambda kind: lambda request: [artefact("bad"), artefact("good")]
    )

    def write(rendered: RenderedReturn, folder: Any) -> WrittenReturn:
        if rendered.file_stem == "bad":
            raise ExportValidationError(
                "la-cme for school 'ashby' does not validate",
                errors=["line 3: value 'A801200005001' refused"],
            )
        written.append(rendered.file_stem)
        return WrittenReturn(
            kind=rendered.kind,
            school_id=rendered.school_id,
            xml_path=Path(folder) / f"{rendered.file_stem}.xml",
            csv_path=Path(folder) / f"{rendered.file_stem}.csv",
            schema=rendered.schema_name,
            records=0,
            sha256=rendered.sha256,
        )

    monkeypatch.setattr(returns, "write_return", write)
    return written


def request(store: Store, tmp_path: Path) -> registry.ExportRequest:
    settings = settings_for(str(store.url), [fake_school("ashby", 140201)])
    return registry.ExportRequest(
        school=settings.schools[0], store=store, as_of=SCHOOL_DAY, generated_at=NOW
    )


def test_a_return_that_fails_is_named_and_the_others_are_written(
    store: Store, tmp_path: Path, two_returns_one_invalid: list[str]
) -> None:
    made = export_school("la-cme", request(store, tmp_path), tmp_path)
    assert two_returns_one_invalid == ["good"]
    assert [w.xml_path.name for w in made.written] == ["good.xml"]
    [failure] = made.failures
    assert (failure.school_id, failure.kind, failure.artefact) == ("ashby", "la-cme", "bad")
    assert isinstance(failure.error, ExportValidationError) and not failure.is_bug
    assert not made.ok


def test_a_builder_that_refuses_the_school_writes_nothing_of_that_kind(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(request: Any) -> list[RenderedReturn]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(registry, "builder", lambda kind: refuse)
    made = export_school("la-cme", request(store, tmp_path), tmp_path)
    assert made.written == []
    [failure] = made.failures
    assert failure.artefact is None and failure.is_bug
    assert list(tmp_path.glob("*.xml")) == []


def test_the_night_queues_what_was_written_and_names_what_was_not(
    store: Store,
    tmp_path: Path,
    two_returns_one_invalid: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queued: list[str] = []

    def queue(store: Store, rendered: RenderedReturn, **kwargs: Any) -> list[Any]:
        queued.append(rendered.file_stem)
        return []

    monkeypatch.setattr(outbox, "queue_return", queue)
    settings = settings_for(str(store.url), [fake_school("ashby", 140201)])
    store.upsert_school(settings.schools[0].to_school(), at=NOW)
    ctx = NightContext(
        settings=settings,
        store=store,
        as_of=SCHOOL_DAY,
        output_dir=tmp_path / "out",
        clock=lambda: NOW,
    )
    result = la_returns_step(ctx)
    kinds = len(registry.LA_RETURNS)
    assert queued == ["good"] * kinds
    assert result.outcome == "partial"
    assert result.counts["rendered"] == kinds and result.counts["failed"] == kinds
    assert result.errors[0] == "bad: la-cme for school 'ashby' does not validate"
    assert all("A801200005001" not in e for e in result.errors)
