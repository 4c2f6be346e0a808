"""Config loading: valid files, every error named by TOML path, credentials, secrets, paths."""

from __future__ import annotations

import copy
import textwrap
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from registerwatch.config import (
    CONFIG_ENV_VAR,
    EXAMPLE_CONFIG_PATH,
    Settings,
    load_config,
    parse_config,
    toml_path,
)
from registerwatch.errors import ConfigError, CredentialError
from registerwatch.schema import Calendar, Closure, ClosureKind, RegisterTimes, School, Term, Vendor

# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

TERMS = [
    {"start": "2025-09-03", "end": "2025-10-24"},
    {"start": "2025-11-03", "end": "2025-12-19"},
]


def valid_data() -> dict[str, Any]:
    """A small valid config as parsed TOML: two Arbor schools, one iSAMS, one GO 4 Schools."""
    return copy.deepcopy(
        {
            "schools": [
                {
                    "id": "oakfield",
                    "urn": "149001",
                    "laestab": "8932001",
                    "name": "Oakfield Primary School",
                    "la_code": "893",
                    "phase": "primary",
                    "mis": {
                        "vendor": "arbor",
                        "base_url": "http://127.0.0.1:8101/rest-v2",
                        "username_env": "OAKFIELD_ARBOR_USERNAME",
                        "password_env": "OAKFIELD_ARBOR_PASSWORD",
                    },
                    "calendar": {
                        "terms": TERMS,
                        "closures": [
                            {
                                "date": "2025-11-14",
                                "session": "both",
                                "kind": "planned",
                                "reason": "INSET",
                            },
                            {"date": "2025-12-19", "session": "PM"},
                            {
                                "date": "2025-10-10",
                                "session": "AM",
                                "kind": "unexpected",
                                "reason": "flood",
                            },
                        ],
                    },
                },
                {
                    "id": "wenlock",
                    "urn": "149002",
                    "laestab": "8934002",
                    "name": "Wenlock Edge Academy",
                    "la_code": "893",
                    "phase": "secondary",
                    "mis": {
                        "vendor": "arbor",
                        "base_url": "https://wenlock.uk.arbor.sc/rest-v2",
                        "username_env": "WENLOCK_ARBOR_USERNAME",
                        "password_env": "WENLOCK_ARBOR_PASSWORD",
                    },
                    "calendar": {"terms": TERMS},
                },
                {
                    "id": "hillside",
                    "urn": "149004",
                    "laestab": "3304004",
                    "name": "Hillside School",
                    "la_code": "330",
                    "phase": "secondary",
                    "mis": {
                        "vendor": "isams",
                        "base_url": "http://127.0.0.1:8102",
                        "client_id_env": "HILLSIDE_ISAMS_CLIENT_ID",
                        "client_secret_env": "HILLSIDE_ISAMS_CLIENT_SECRET",
                    },
                    "calendar": {"terms": TERMS},
                },
                {
                    "id": "brookside",
                    "urn": "149003",
                    "laestab": "3302003",
                    "name": "Brookside Primary School",
                    "la_code": "330",
                    "phase": "primary",
                    "mis": {
                        "vendor": "go4schools",
                        "base_url": "http://127.0.0.1:8103/customer/v1",
                        "api_key_env": "BROOKSIDE_G4S_API_KEY",
                    },
                    "calendar": {"terms": TERMS},
                },
            ],
        }
    )


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.errors


def write(directory: Path, text: str, name: str = "registerwatch.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


MINIMAL_TOML = """
    [[schools]]
    id = "oakfield"
    urn = "149001"
    laestab = "8932001"
    name = "Oakfield Primary School"
    la_code = "893"
    phase = "primary"

    [schools.mis]
    vendor = "arbor"
    base_url = "http://127.0.0.1:8101/rest-v2"
    username_env = "OAKFIELD_ARBOR_USERNAME"
    password_file = "secrets/oakfield_password"

    [schools.calendar]
    terms = [{ start = "2025-09-03", end = "2025-10-24" }]
"""


# --------------------------------------------------------------------------------------------
# Valid configurations
# --------------------------------------------------------------------------------------------


def test_example_config_validates_and_describes_three_simulated_schools() -> None:
    settings = load_config(EXAMPLE_CONFIG_PATH)

    assert [(s.id, s.mis.vendor) for s in settings.schools] == [
        ("oakfield", Vendor.ARBOR),
        ("wenlock", Vendor.ISAMS),
        ("brookside", Vendor.GO4SCHOOLS),
    ]
    assert [s.mis.base_url for s in settings.schools] == [
        "http://127.0.0.1:8101/rest-v2",
        "http://127.0.0.1:8102",
        "http://127.0.0.1:8103/customer/v1",
    ]
    oakfield = settings.school("oakfield")
    assert (oakfield.mis.username_env, oakfield.mis.password_env) == (
        "OAKFIELD_ARBOR_USERNAME",
        "OAKFIELD_ARBOR_PASSWORD",
    )
    assert [(t.start, t.end) for t in oakfield.calendar.terms] == [
        (date(2025, 9, 3), date(2025, 10, 24)),
        (date(2025, 11, 3), date(2025, 12, 19)),
        (date(2026, 1, 5), date(2026, 2, 13)),
        (date(2026, 2, 23), date(2026, 3, 27)),
        (date(2026, 4, 13), date(2026, 5, 22)),
        (date(2026, 6, 1), date(2026, 7, 22)),
    ]
    assert (
        Closure(date=date(2025, 11, 14), session="both", kind=ClosureKind.PLANNED, reason="INSET")
        in oakfield.calendar.closures
    )
    assert settings.source_path == EXAMPLE_CONFIG_PATH
    assert (
        EXAMPLE_CONFIG_PATH.parent
        == Path(__file__).resolve().parents[2] / "registerwatch" / "config"
    )


def test_valid_toml_file_loads_every_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [store]
        url = "postgresql://registerwatch@db.internal/registerwatch"

        [logging]
        level = "debug"
        format = "json"

        [sync]
        trailing_school_days = 15
        isams_pm_cutoff = "12:30"
        concurrency = 2
        timeout_seconds = 12.5

        [schedule]
        nightly = "01:30"

        [transports.la."893"]
        kind = "smtp"
        host = "smtp.la893.example"
        from = "attendance@oakfield.example"
        to = "returns@la893.example"
        username_env = "LA893_SMTP_USER"
        password_env = "LA893_SMTP_PASSWORD"

        [transports.dfe]
        kind = "http"
        url = "https://dfe.example/attendance"
        token_file = "secrets/dfe_token"
    """
        + MINIMAL_TOML,
    )

    settings = load_config(path)

    assert settings.store.url == "postgresql://registerwatch@db.internal/registerwatch"
    assert (settings.logging.level, settings.logging.json_output) == ("DEBUG", True)
    assert settings.sync.trailing_school_days == 15
    assert settings.sync.isams_pm_cutoff == time(12, 30)
    assert (settings.sync.concurrency, settings.sync.timeout_seconds) == (2, 12.5)
    assert (settings.schedule.nightly, settings.schedule.dfe_daily, settings.schedule.returns) == (
        time(1, 30),
        time(16, 0),
        time(7, 0),
    )
    smtp = settings.transports.la["893"]
    assert (smtp.kind, smtp.host, smtp.smtp_port, smtp.from_, smtp.to) == (
        "smtp",
        "smtp.la893.example",
        587,
        "attendance@oakfield.example",
        ["returns@la893.example"],
    )
    assert settings.transports.dfe is not None
    assert settings.transports.dfe.token_file == tmp_path / "secrets" / "dfe_token"
    assert settings.schools[0].mis.password_file == tmp_path / "secrets" / "oakfield_password"


def test_omitted_sections_take_their_defaults(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL_TOML))

    assert settings.store.url == f"sqlite:///{(tmp_path / 'registerwatch.sqlite').as_posix()}"
    assert (settings.logging.level, settings.logging.format) == ("INFO", "auto")
    assert settings.logging.json_output is None
    assert (settings.sync.trailing_school_days, settings.sync.isams_pm_cutoff) == (10, time(12))
    assert (settings.schedule.nightly, settings.schedule.dfe_daily, settings.schedule.returns) == (
        time(2),
        time(16),
        time(7),
    )
    assert (settings.transports.la, settings.transports.dfe) == ({}, None)
    assert settings.schools[0].calendar.closures == []
    assert settings.schools[0].calendar.register_times == RegisterTimes()


def test_native_toml_dates_and_times_are_accepted(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace(
        '{ start = "2025-09-03", end = "2025-10-24" }', "{ start = 2025-09-03, end = 2025-10-24 }"
    )
    text += "    register_times = { am_open = 08:40:00, pm_open = 13:20:00 }\n"

    school = load_config(write(tmp_path, text)).schools[0]

    assert school.calendar.terms == [Term(start=date(2025, 9, 3), end=date(2025, 10, 24))]
    assert (school.calendar.register_times.am_open, school.calendar.register_times.pm_open) == (
        time(8, 40),
        time(13, 20),
    )


def test_school_converts_to_schema_school_and_calendar() -> None:
    school = parse_config(valid_data()).school("oakfield")

    assert school.to_school() == School(
        id="oakfield",
        urn="149001",
        laestab="8932001",
        name="Oakfield Primary School",
        la_code="893",
        phase="primary",
        vendor=Vendor.ARBOR,
    )
    calendar = school.to_calendar()
    assert isinstance(calendar, Calendar)
    assert calendar.school_id == "oakfield"
    assert calendar.terms == [
        Term(start=date(2025, 9, 3), end=date(2025, 10, 24)),
        Term(start=date(2025, 11, 3), end=date(2025, 12, 19)),
    ]
    assert calendar.closures[2] == Closure(
        date=date(2025, 10, 10), session="AM", kind=ClosureKind.UNEXPECTED, reason="flood"
    )
    assert calendar.register_times == RegisterTimes(
        am_open=time(8, 45), pm_open=time(13, 15), close_after_minutes=30
    )


def test_unknown_school_lookup_names_the_known_ids() -> None:
    settings = parse_config(valid_data())

    with pytest.raises(
        ConfigError, match=r"no school 'nope'.*oakfield, wenlock, hillside, brookside"
    ):
        settings.school("nope")


def test_ctf_school_needs_a_path_and_no_credentials(tmp_path: Path) -> None:
    data = valid_data()
    data["schools"][3]["mis"] = {"vendor": "ctf", "path": "ctf-in"}

    mis = parse_config(data, config_dir=tmp_path).schools[3].mis

    assert (mis.path, mis.base_url) == (tmp_path / "ctf-in", None)
    assert mis.credentials({}) == {}


def test_http_url_trailing_slash_is_normalised() -> None:
    data = valid_data()
    data["schools"][0]["mis"]["base_url"] = "http://127.0.0.1:8101/rest-v2/"

    assert parse_config(data).schools[0].mis.base_url == "http://127.0.0.1:8101/rest-v2"


# --------------------------------------------------------------------------------------------
# Errors: each names its TOML path
# --------------------------------------------------------------------------------------------


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = data
    for part in path[:-1]:
        target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()
S0, S1, S2 = ("schools", 0), ("schools", 1), ("schools", 2)

ERROR_CASES = [
    # (TOML path, value to set, expected error line)
    (
        S1 + ("mis", "password_env"),
        _DELETE,
        "schools[1].mis.password_env: field required (or set password_file)",
    ),
    (
        S0 + ("calendar", "closures", 2, "session"),
        "am",
        "schools[0].calendar.closures[2].session: must be one of AM, PM, both",
    ),
    (
        S0 + ("calendar", "closures", 0, "kind"),
        "inset",
        "schools[0].calendar.closures[0].kind: must be one of planned, unexpected",
    ),
    (S0 + ("id",), "Oakfield", "schools[0].id: must be a lowercase slug"),
    (S0 + ("urn",), "14900", 'schools[0].urn: must be exactly 6 digits in quotes, e.g. "137245"'),
    (S0 + ("urn",), 149001, "schools[0].urn: must be a string: put the number in quotes"),
    (S0 + ("laestab",), "893200", "schools[0].laestab: must be exactly 7 digits"),
    (S0 + ("la_code",), "330", "schools[0].la_code: does not match laestab, which starts 893"),
    (S0 + ("phase",), "infant", "schools[0].phase: must be one of nursery, primary,"),
    (S0 + ("name",), "", "schools[0].name: must not be empty"),
    (
        S0 + ("mis", "vendor"),
        "sims",
        "schools[0].mis.vendor: must be one of arbor, isams, go4schools, ctf",
    ),
    (
        S0 + ("mis", "base_url"),
        _DELETE,
        "schools[0].mis.base_url: field required for vendor 'arbor'",
    ),
    (
        S0 + ("mis", "base_url"),
        "http://arbor.example/rest-v2",
        "schools[0].mis.base_url: must use https (plain http is allowed only for 127.0.0.1 / localhost)",
    ),
    (
        S0 + ("mis", "base_url"),
        "ftp://127.0.0.1/x",
        "schools[0].mis.base_url: must be an http(s) URL",
    ),
    (
        S0 + ("mis", "base_url"),
        "https://user:pw@arbor.example",
        "schools[0].mis.base_url: must not contain a user name or password",
    ),
    (
        S0 + ("mis", "path"),
        "ctf",
        "schools[0].mis.path: not used by vendor 'arbor' (only by 'ctf')",
    ),
    (
        S0 + ("mis", "api_key_env"),
        "OAKFIELD_KEY",
        "schools[0].mis.api_key_env: not used by 'arbor' (it uses: username_env, username_file, "
        "password_env, password_file)",
    ),
    (
        S0 + ("mis", "password_file"),
        "pw.txt",
        "schools[0].mis.password_file: set only one of password_env and password_file",
    ),
    (
        S0 + ("mis", "password_env"),
        "oakfield_password",
        "schools[0].mis.password_env: must be the NAME of an environment variable",
    ),
    (
        S0 + ("mis", "pasword_env"),
        "X",
        "schools[0].mis.pasword_env: unknown key; did you mean 'password_env'?",
    ),
    (
        S2 + ("mis", "client_secret_env"),
        _DELETE,
        "schools[2].mis.client_secret_env: field required (or set client_secret_file)",
    ),
    (
        S0 + ("calendar", "terms", 0, "label"),
        "autumn 1",
        "schools[0].calendar.terms[0].label: unknown key (allowed here: start, end)",
    ),
    (S0 + ("calendar", "terms"), [], "schools[0].calendar.terms: must have at least one entry"),
    (
        S0 + ("calendar", "terms", 1, "start"),
        "2025-10-20",
        "schools[0].calendar.terms[1].start: 2025-10-20 is not after terms[0] ends (2025-10-24)",
    ),
    (
        S0 + ("calendar", "terms", 1, "end"),
        "2025-11-01",
        "schools[0].calendar.terms[1].end: term end 2025-11-01 is before its start 2025-11-03",
    ),
    (
        S0 + ("calendar", "terms", 0, "start"),
        "2025-09-31",
        'schools[0].calendar.terms[0].start: must be a date such as "2025-09-03"',
    ),
    (
        S0 + ("calendar", "closures", 0, "date"),
        "2025-10-29",
        "schools[0].calendar.closures[0].date: 2025-10-29 is not inside any term",
    ),
    (
        S0 + ("calendar", "closures", 0, "date"),
        "2025-11-15",
        "schools[0].calendar.closures[0].date: 2025-11-15 is a Saturday, not a school day",
    ),
    (
        S0 + ("calendar", "closures", 1, "date"),
        "2025-11-14",
        "schools[0].calendar.closures[1]: closes 2025-11-14 again (already closed by closures[0])",
    ),
    (
        S0 + ("calendar", "register_times"),
        {"am_open": "08:45", "pm_open": "09:00"},
        "schools[0].calendar.register_times.pm_open: must be after the morning register closes "
        "(am_open + close_after_minutes = 09:15)",
    ),
    (
        S0 + ("calendar", "register_times"),
        {"am_open": "8.45"},
        'schools[0].calendar.register_times.am_open: must be a time such as "08:45"',
    ),
    (S1 + ("id",), "oakfield", "schools[1].id: duplicate: schools[0] has the same id"),
    (("schools",), [], "schools: must have at least one entry"),
    (("schools",), {"id": "x"}, "schools: must be an array"),
    (
        ("store", "url"),
        "postgresql://rw:hunter2@db/rw",
        "store.url: must not contain a password: set PGPASSWORD or use ~/.pgpass",
    ),
    (
        ("store", "url"),
        "postgresql://rw@db/rw?sslmode=require&password=hunter2",
        "store.url: must not contain a password",
    ),
    (
        ("store", "url"),
        "mysql://db/rw",
        'store.url: must be a "sqlite:///..." or "postgresql://..." URL',
    ),
    (
        ("logging", "level"),
        "verbose",
        "logging.level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    ),
    (("logging", "format"), "xml", "logging.format: must be one of auto, json, console"),
    (("sync", "trailing_school_days"), 0, "sync.trailing_school_days: must be at least 1"),
    (("sync", "concurrency"), "many", "sync.concurrency: must be a whole number"),
    (("sync", "timeout_seconds"), 0, "sync.timeout_seconds: must be greater than 0"),
    (
        ("sync", "isams_pm_cutoff"),
        "08:00",
        "sync.isams_pm_cutoff: 08:00 must be after school 'hillside' am_open (08:45)",
    ),
    (("schedule", "nightly"), "2am", 'schedule.nightly: must be a time such as "08:45"'),
    (
        ("schedule", "weekly"),
        "03:00",
        "schedule.weekly: unknown key (allowed here: nightly, dfe_daily, returns)",
    ),
    (("stor",), {}, "stor: unknown key; did you mean 'store'?"),
    (
        ("transports", "la", "89"),
        {"kind": "folder", "path": "out"},
        'transports.la."89": the table name must be a 3-digit LA code, e.g. [transports.la."893"]',
    ),
    (
        ("transports", "la", "893"),
        {"kind": "fax"},
        'transports.la."893".kind: must be one of http, smtp, folder',
    ),
    (
        ("transports", "la", "893"),
        {"kind": "smtp", "host": "smtp.example", "to": "a@b.example"},
        "transports.la.\"893\".from: field required for kind 'smtp'",
    ),
    (
        ("transports", "la", "893"),
        {"kind": "folder", "path": "out", "url": "https://la.example"},
        "transports.la.\"893\".url: not used by 'folder' (it uses: path)",
    ),
    (
        ("transports", "la", "893"),
        {"kind": "http", "url": "http://la.example/returns"},
        'transports.la."893".url: must use https',
    ),
    (
        ("transports", "la", "893"),
        {
            "kind": "smtp",
            "host": "smtp.example",
            "from": "a@b.example",
            "to": ["c@d.example"],
            "username_env": "LA_USER",
        },
        'transports.la."893".password_env: field required when SMTP authentication is used',
    ),
    (
        ("transports", "la", "893"),
        {
            "kind": "smtp",
            "host": "smtp.example",
            "from": "a@b.example",
            "to": ["c@d.example"],
            "security": "none",
        },
        'transports.la."893".security: "none" (no TLS) is allowed only for a loopback host',
    ),
    (
        ("transports", "dfe"),
        {"kind": "smtp", "host": "h", "from": "not-an-email", "to": "c@d.example"},
        "transports.dfe.from: must be an email address",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    ERROR_CASES,
    ids=[case[2].split(":")[0] + "-" + str(i) for i, case in enumerate(ERROR_CASES)],
)
def test_each_error_names_its_toml_path(path: tuple[Any, ...], value: Any, expected: str) -> None:
    data = valid_data()
    _set(data, path, value)

    errors = errors_of(data)

    assert any(line.startswith(expected) for line in errors), errors


def test_multiple_errors_are_all_listed_in_one_config_error() -> None:
    data = valid_data()
    del data["schools"][1]["mis"]["password_env"]
    data["schools"][0]["calendar"]["closures"][2]["session"] = "am"
    data["schools"][3]["urn"] = "12"
    data["sync"] = {"concurrency": 0}
    data["schedule"] = {"returns": "7"}

    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="/etc/registerwatch.toml")

    assert caught.value.errors == [
        "sync.concurrency: must be at least 1",
        'schedule.returns: must be a time such as "08:45"',
        "schools[0].calendar.closures[2].session: must be one of AM, PM, both",
        "schools[1].mis.password_env: field required (or set password_file)",
        'schools[3].urn: must be exactly 6 digits in quotes, e.g. "137245"',
    ]
    message = str(caught.value)
    assert message.startswith("configuration file /etc/registerwatch.toml is invalid (5 problems)")
    assert "\n  - schools[1].mis.password_env: field required" in message


def test_isams_without_any_credentials_lists_both_alternatives() -> None:
    data = valid_data()
    mis = data["schools"][2]["mis"]
    del mis["client_id_env"], mis["client_secret_env"]

    assert errors_of(data) == [
        "schools[2].mis: credentials required for vendor 'isams': set client_id_env and "
        "client_secret_env or api_key_env (each may be a *_file instead)"
    ]


def test_toml_path_quotes_keys_that_are_not_bare() -> None:
    assert toml_path(("schools", 1, "mis", "password_env")) == "schools[1].mis.password_env"
    assert toml_path(("transports", "la", "893", "url")) == 'transports.la."893".url'
    assert toml_path(("transports", "dfe", "from_")) == "transports.dfe.from"


# --------------------------------------------------------------------------------------------
# Files: missing, unreadable, bad TOML, REGISTERWATCH_CONFIG
# --------------------------------------------------------------------------------------------


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError, match=r"configuration file .*nope\.toml does not exist"):
        load_config(missing)


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a TOML file"):
        load_config(tmp_path)


def test_toml_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:///x.db"\nlevel = = 3\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert "is not valid TOML" in str(caught.value)
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith("line 3, column 9: ")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[store]\nurl = "caf\xe9"\n'.encode("latin-1"))

    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(path)


def test_config_path_falls_back_to_registerwatch_config_env(tmp_path: Path) -> None:
    path = write(tmp_path / "etc", MINIMAL_TOML)

    settings = load_config(environ={CONFIG_ENV_VAR: str(path)})

    assert settings.source_path == path
    assert settings.schools[0].id == "oakfield"


def test_explicit_path_wins_over_the_env_variable(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_TOML)

    settings = load_config(path, environ={CONFIG_ENV_VAR: str(tmp_path / "other.toml")})

    assert settings.source_path == path


def test_no_path_and_no_env_variable_says_how_to_name_one() -> None:
    with pytest.raises(ConfigError, match="pass --config or set REGISTERWATCH_CONFIG") as caught:
        load_config(environ={})

    assert str(EXAMPLE_CONFIG_PATH) in str(caught.value)


def test_env_fallback_reads_os_environ_when_no_mapping_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL_TOML)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))

    assert load_config().source_path == path


# --------------------------------------------------------------------------------------------
# Relative paths resolve against the config file's directory
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (None, "sqlite:///{dir}/registerwatch.sqlite"),
        ("sqlite:///registerwatch.sqlite", "sqlite:///{dir}/registerwatch.sqlite"),
        ("sqlite:///data/rw.db?timeout=20", "sqlite:///{dir}/data/rw.db?timeout=20"),
        ("sqlite+pysqlite:///rw.db", "sqlite+pysqlite:///{dir}/rw.db"),
        ("sqlite:////var/lib/rw/rw.db", "sqlite:////var/lib/rw/rw.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://rw@db/rw", "postgresql+psycopg://rw@db/rw"),
    ],
)
def test_relative_sqlite_path_resolves_against_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str | None, expected: str
) -> None:
    config_dir = tmp_path / "etc" / "registerwatch"
    store = "" if written is None else f'[store]\nurl = "{written}"\n'
    write(config_dir, store + MINIMAL_TOML)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # A path relative to the working directory, to prove the store follows the file, not the cwd.
    settings = load_config(Path("..") / "etc" / "registerwatch" / "registerwatch.toml")

    assert settings.store.url == expected.format(dir=config_dir.as_posix())
    assert settings.source_path == config_dir / "registerwatch.toml"


def test_parse_config_without_a_directory_leaves_paths_relative() -> None:
    data = valid_data()
    data["schools"][0]["mis"] = {
        "vendor": "arbor",
        "base_url": "http://127.0.0.1:8101",
        "username_file": "u.txt",
        "password_file": "p.txt",
    }

    settings = parse_config(data)

    assert settings.store.url == "sqlite:///registerwatch.sqlite"
    assert settings.schools[0].mis.username_file == Path("u.txt")


# --------------------------------------------------------------------------------------------
# Credentials, read at use time
# --------------------------------------------------------------------------------------------


def test_credentials_come_from_the_named_environment_variables() -> None:
    settings = parse_config(valid_data())
    environ = {
        "OAKFIELD_ARBOR_USERNAME": "oak-app",
        "OAKFIELD_ARBOR_PASSWORD": "p4ss word",
        "BROOKSIDE_G4S_API_KEY": "g4s-key",
        "HILLSIDE_ISAMS_CLIENT_ID": "hill-id",
        "HILLSIDE_ISAMS_CLIENT_SECRET": "hill-secret",
    }

    oak = settings.school("oakfield").mis.credentials(environ)
    brook = settings.school("brookside").mis.credentials(environ)
    hill = settings.school("hillside").mis.credentials(environ)

    assert {k: v.get_secret_value() for k, v in oak.items()} == {
        "username": "oak-app",
        "password": "p4ss word",
    }
    assert {k: v.get_secret_value() for k, v in brook.items()} == {"api_key": "g4s-key"}
    assert {k: v.get_secret_value() for k, v in hill.items()} == {
        "client_id": "hill-id",
        "client_secret": "hill-secret",
    }
    assert all(isinstance(v, SecretStr) for v in [*oak.values(), *brook.values(), *hill.values()])


def test_credentials_come_from_files_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "oakfield_password").write_text(
        "s3cret with spaces \n", encoding="utf-8"
    )
    settings = load_config(write(tmp_path, MINIMAL_TOML))

    creds = settings.schools[0].mis.credentials({"OAKFIELD_ARBOR_USERNAME": "oak-app"})

    # Only the final newline goes: spaces can be part of a password.
    assert creds["password"].get_secret_value() == "s3cret with spaces "
    assert creds["username"].get_secret_value() == "oak-app"


def test_isams_api_key_mode_reads_only_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "isams.key"
    key_file.write_text("0A1C996B-8E74-4388-A3C4-8DA1E40ADA57\n", encoding="utf-8")
    data = valid_data()
    data["schools"][2]["mis"] = {
        "vendor": "isams",
        "base_url": "http://127.0.0.1:8102",
        "api_key_file": str(key_file),
    }

    creds = parse_config(data).school("hillside").mis.credentials({})

    assert list(creds) == ["api_key"]
    assert creds["api_key"].get_secret_value() == "0A1C996B-8E74-4388-A3C4-8DA1E40ADA57"


def test_missing_environment_variable_names_school_and_variable() -> None:
    mis = parse_config(valid_data()).school("wenlock").mis

    with pytest.raises(CredentialError) as caught:
        mis.credentials({"WENLOCK_ARBOR_USERNAME": "app"})

    assert str(caught.value).startswith(
        "school 'wenlock': environment variable WENLOCK_ARBOR_PASSWORD is not set"
    )
    assert isinstance(caught.value, ConfigError)


def test_empty_environment_variable_is_an_error() -> None:
    mis = parse_config(valid_data()).school("brookside").mis

    with pytest.raises(
        CredentialError,
        match="school 'brookside': environment variable BROOKSIDE_G4S_API_KEY is empty",
    ):
        mis.credentials({"BROOKSIDE_G4S_API_KEY": "  "})


def test_missing_and_empty_credential_files_name_the_file(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL_TOML))
    mis = settings.schools[0].mis
    environ = {"OAKFIELD_ARBOR_USERNAME": "app"}
    secret_file = tmp_path / "secrets" / "oakfield_password"

    with pytest.raises(
        CredentialError, match=f"school 'oakfield': credential file {secret_file} does not exist"
    ):
        mis.credentials(environ)

    secret_file.parent.mkdir()
    secret_file.write_text("\n", encoding="utf-8")
    with pytest.raises(CredentialError, match=f"credential file {secret_file} is empty"):
        mis.credentials(environ)


def test_check_credentials_lists_every_missing_secret() -> None:
    data = valid_data()
    data["transports"] = {
        "dfe": {"kind": "http", "url": "https://dfe.example/a", "token_env": "DFE_TOKEN"}
    }
    settings = parse_config(data)
    environ = {
        "OAKFIELD_ARBOR_USERNAME": "u",
        "OAKFIELD_ARBOR_PASSWORD": "p",
        "WENLOCK_ARBOR_USERNAME": "u",
        "WENLOCK_ARBOR_PASSWORD": "p",
        "HILLSIDE_ISAMS_CLIENT_ID": "i",
        "HILLSIDE_ISAMS_CLIENT_SECRET": "s",
    }

    with pytest.raises(CredentialError) as caught:
        settings.check_credentials(environ)

    assert [e.split(" (")[0] for e in caught.value.errors] == [
        "school 'brookside': environment variable BROOKSIDE_G4S_API_KEY is not set",
        "DfE transport: environment variable DFE_TOKEN is not set",
    ]
    settings.check_credentials({**environ, "BROOKSIDE_G4S_API_KEY": "k", "DFE_TOKEN": "t"})


def test_transport_credentials_name_the_transport(tmp_path: Path) -> None:
    token = tmp_path / "la.token"
    token.write_text("la-token\n", encoding="utf-8")
    data = valid_data()
    data["transports"] = {
        "la": {
            "893": {
                "kind": "http",
                "url": "https://la893.example/returns",
                "token_file": str(token),
            },
            "330": {
                "kind": "smtp",
                "host": "smtp.la330.example",
                "port": 2525,
                "security": "tls",
                "from": "a@b.example",
                "to": ["c@d.example", "e@f.example"],
                "username_env": "LA330_USER",
                "password_env": "LA330_PASSWORD",
            },
        }
    }
    transports = parse_config(data).transports

    assert transports.la["893"].credentials({})["token"].get_secret_value() == "la-token"
    assert transports.la["330"].smtp_port == 2525
    with pytest.raises(
        CredentialError, match="transport for LA '330': environment variable LA330_USER is not set"
    ):
        transports.la["330"].credentials({})


# --------------------------------------------------------------------------------------------
# Secrets never leak
# --------------------------------------------------------------------------------------------

SECRET = "Tr0ub4dor&3-horse-battery"


def test_secret_values_never_appear_in_settings_repr_dump_or_credentials(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "oakfield_password").write_text(SECRET, encoding="utf-8")
    settings = load_config(write(tmp_path, MINIMAL_TOML))

    creds = settings.schools[0].mis.credentials({"OAKFIELD_ARBOR_USERNAME": SECRET})

    assert creds["username"].get_secret_value() == SECRET  # the secret really was read
    assert creds["password"].get_secret_value() == SECRET
    for rendered in (
        repr(settings),
        str(settings),
        repr(settings.model_dump()),
        settings.model_dump_json(),
        repr(creds),
        str(creds),
        repr(settings.schools[0].mis),
        Settings.model_validate(settings.model_dump()).model_dump_json(),
    ):
        assert SECRET not in rendered


def test_secret_values_never_appear_in_config_errors(tmp_path: Path) -> None:
    # A secret typed where a variable name belongs, and one under an invented key.
    data = valid_data()
    data["schools"][0]["mis"]["password_env"] = SECRET
    data["schools"][1]["mis"]["password"] = SECRET
    data["store"] = {"url": f"postgresql://rw:{SECRET}@db/rw"}

    with pytest.raises(ConfigError) as caught:
        parse_config(data)

    assert len(caught.value.errors) == 3
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.errors)


def test_secret_on_a_toml_syntax_error_line_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, f"[schools.mis]\npassword = {SECRET}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.errors and caught.value.errors[0].startswith("line 2")
    assert SECRET not in str(caught.value)


def test_credential_errors_do_not_contain_file_contents(tmp_path: Path) -> None:
    bad = tmp_path / "secrets" / "oakfield_password"
    bad.parent.mkdir()
    bad.write_bytes(SECRET.encode() + b"\xff\xfe")
    settings = load_config(write(tmp_path, MINIMAL_TOML))

    with pytest.raises(CredentialError) as caught:
        settings.schools[0].mis.credentials({"OAKFIELD_ARBOR_USERNAME": "u"})

    assert "is not UTF-8 text" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
