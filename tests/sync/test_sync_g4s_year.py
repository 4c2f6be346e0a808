"""GO 4 Schools without a named current year: the academic year comes from the sync's day.

The machine's clock is in a later school year than the sync's ``--as-of``; asking the MIS for
the clock's year would read no pupils (or a year it does not hold) and fail the sync.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import time_machine
from sync_support import ENV, mis_table, school_config, serve, write_config

from registerwatch.cli import main
from registerwatch.logging import configure_logging
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.server import Response

AS_OF = date(2024, 10, 1)  # school year 2024/25: GO 4 Schools academic year "2025"


class _NoCurrentYearApp(Go4SchoolsApp):
    """A GO 4 Schools whose /school names its years but not the current one."""

    def _school(self) -> Response:
        response = super()._school()
        body = json.loads(response.body)
        del body["school"]["current_academic_year"]
        return Response.json(body)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    yield functools.partial(_cli, capsys)
    configure_logging(level="WARNING", stream=sys.__stderr__)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


@time_machine.travel("2026-12-07 12:00:00+00:00", tick=False)
def test_a_sync_in_an_earlier_school_year_asks_for_that_year(tmp_path, monkeypatch, cli):
    school = generate_school(
        5, 12, vendor="go4schools", year=2024, as_of=AS_OF, inject_breaches=False
    )
    app = _NoCurrentYearApp(school)
    server = serve(app)
    try:
        config = tmp_path / "registerwatch.toml"
        write_config(
            config,
            "sqlite:///store.sqlite",
            [school_config(school, mis_table("go4schools", server.url))],
        )
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)

        code, out, errors = cli(
            "sync", "--config", str(config), "--as-of", AS_OF.isoformat(), "--format", "json"
        )

        assert code == 0, out + errors
        (result,) = json.loads(out)["schools"]
        assert result["status"] == "ok", result
        assert result["fetched"]["pupils"] == 12
        assert result["marks"]["new"] == len([m for m in school.marks if m.date <= AS_OF])
    finally:
        server.stop()
