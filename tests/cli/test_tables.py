"""`outbox list` and `runs` for people: one line per row at 80 and 100 columns, with the key
fields (ids, return kinds, school and pupil ids, commands, outcomes) whole, and `--wide` for
everything; `outbox retry` takes an item's id, its key, or a unique prefix of the key's digest.

The store is real: a simulated school synced and run through one night (returns queued and
submitted to folder transports), so the kinds and commands are the long real ones
(`la-continuous-absence`, `nightly:la-returns`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from json_world import AS_OF, JsonWorld, json_world

from registerwatch.store import Store

LONG_ERROR = (
    "LA '881' transport (http): la-continuous-absence item rejected by the receiver with 422: "
    "EpisodeStart is after the return date; check the pupil's absence episode and resend"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonWorld]:
    with json_world(tmp_path_factory.mktemp("tables")) as built:
        code, _, err = built.run_plain(
            ["nightly", "--as-of", AS_OF, "--output", "{root}/night", "--config", str(built.config)]
        )
        assert code == 0, err
        with Store(built.store_url) as store:
            items = store.outbox_items()
            longest = max(items, key=lambda i: len(i.return_kind))
            assert longest.return_kind == "la-continuous-absence"
            store.update_outbox(longest.id, state="failed", last_error=LONG_ERROR)
        yield built


def cli(world: JsonWorld, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return world.run([*args, "--config", str(world.config)], capsys)


def rows_of(out: str) -> list[str]:
    """The table's body lines: those that start with an id."""
    return [line for line in out.splitlines() if re.match(r"^\s*\d+\s", line)]


@pytest.mark.parametrize("columns", [80, 100])
def test_outbox_list_is_one_line_per_item_with_key_fields_whole(
    world: JsonWorld,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = cli(world, capsys, "outbox", "list")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= columns
    items = json.loads(cli(world, capsys, "outbox", "list", "--format", "json")[1])["items"]
    rows = rows_of(out)
    assert len(rows) == len(items) >= 5  # one line each: nothing folded onto a second line
    for row, item in zip(rows, items, strict=True):
        cells = row.split()
        assert cells[:3] == [str(item["id"]), item["state"], item["return_kind"]]
        assert (item["pupil_id"] or "-") in cells
    failed = next(r for r, i in zip(rows, items, strict=True) if i["state"] == "failed")
    assert "la-continuous-absence" in failed and failed.rstrip().endswith("…")
    assert "(school oakfield)" in out.splitlines()[0]  # one school: said once, in the title


def test_outbox_list_wide_shows_every_column_and_whole_errors(
    world: JsonWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(world, capsys, "outbox", "list", "--wide", "--state", "failed")
    assert code == 0
    # a wide cell folds onto more lines, but nothing is cut
    assert "…" not in out
    for part in ("LA '881' transport", "EpisodeStart is", "episode and resend"):
        assert part in out
    for header in ("episode", "attempts", "updated", "key"):
        assert header in out


@pytest.mark.parametrize("columns", [80, 100])
def test_runs_is_one_line_per_run_with_commands_whole(
    world: JsonWorld,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = cli(world, capsys, "runs")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= columns
    runs = json.loads(cli(world, capsys, "runs", "--format", "json")[1])["runs"]
    rows = rows_of(out)
    assert len(rows) == len(runs)
    for row, run in zip(rows, runs, strict=True):
        cells = row.split()
        assert cells[:2] == [str(run["id"]), run["command"]]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[2]) and re.fullmatch(r"\d\d:\d\d", cells[3])
        assert (run["outcome"] or "unfinished") in cells
    assert any("nightly:la-returns" in row.split() for row in rows)


def test_outbox_retry_takes_the_id_the_key_or_a_unique_digest_prefix(
    world: JsonWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store(world.store_url) as store:
        items = store.outbox_items()
    target = items[0]
    digest = target.idempotency_key.rsplit(".", 1)[-1]
    # the short key `outbox list --wide` shows is accepted
    code, out, _ = cli(world, capsys, "outbox", "list", "--wide")
    shown = next(k for k in re.findall(r"\b[0-9a-f]{8,}\b", out) if digest.startswith(k))
    for ref in (shown, target.idempotency_key, str(target.id)):
        with Store(world.store_url) as store:
            store.update_outbox(target.id, state="failed", last_error="refused")
        code, out, err = cli(world, capsys, "outbox", "retry", ref)
        assert code == 0, err
        assert f"item {target.id} ({target.return_kind}, school oakfield) is queued again" in out
    code, _, err = cli(world, capsys, "outbox", "retry", "abc1")
    assert code == 2 and "too short" in err
    code, _, err = cli(world, capsys, "outbox", "retry", "ffffffffffff")
    assert code == 2 and "no outbox item 'ffffffffffff'" in err


def test_outbox_retry_refuses_an_ambiguous_prefix(
    world: JsonWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # two keys whose digests share their first 10 characters
    digests = ["abcdef0123" + "1" * 22, "abcdef0123" + "2" * 22]
    with Store(world.store_url) as store:
        ids = [
            store.enqueue_outbox(
                return_kind="la-sickness",
                school_id="oakfield",
                idempotency_key=f"la-sickness.oakfield.{digest}",
                payload=digest.encode(),
            )[0].id
            for digest in digests
        ]
    code, _, err = cli(world, capsys, "outbox", "retry", "abcdef0123")
    assert code == 2 and f"matches outbox items {ids[0]}, {ids[1]}" in err
    code, out, err = cli(world, capsys, "outbox", "list", "--wide", "--format", "table")
    assert "abcdef01231" in out and "abcdef01232" in out  # shown as long as it must be
