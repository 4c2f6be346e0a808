"""The command line: JSON outputs, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest

from registerwatch.cli import main


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


def test_codes_json_lists_every_code_with_required_keys(capsys):
    code, stdout, _ = run(capsys, "codes", "--format", "json")
    assert code == 0
    rows = json.loads(stdout)["codes"]
    required = {
        "code",
        "description",
        "category",
        "possible",
        "attendance",
        "authorised",
        "unauthorised",
        "valid_from",
        "valid_to",
    }
    assert all(required <= set(r) for r in rows)
    current = {r["code"]: r for r in rows if r["valid_to"] is None}
    assert len(current) == 34
    assert current["N"]["unauthorised"] is True and current["N"]["possible"] is True
    assert current["X"]["possible"] is False
    legacy_h = next(r for r in rows if r["code"] == "H")
    assert legacy_h["valid_to"] == "2024-08-18"


def test_upn_check_json_and_exit_status(capsys):
    code, stdout, _ = run(capsys, "upn", "check", "B801200005001", "--format", "json")
    assert code == 0
    assert json.loads(stdout) == {
        "ok": True,
        "upns": [{"upn": "B801200005001", "valid": True, "reason": None, "temporary": False}],
    }
    code, stdout, _ = run(
        capsys, "upn", "check", "B801200005001", "A801200005001", "--format", "json"
    )
    assert code == 1
    results = json.loads(stdout)["upns"]
    assert [r["valid"] for r in results] == [True, False]
    assert "check letter" in results[1]["reason"]


def test_unknown_command_is_a_usage_error(capsys):
    code, _, _stderr = run(capsys, "no-such-command")
    assert code == 2


def test_help_works_on_every_command():
    for args in (
        ["--help"],
        ["codes", "--help"],
        ["upn", "check", "--help"],
        ["calendar", "school-days", "--help"],
        ["db", "upgrade", "--help"],
        ["config", "check", "--help"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "registerwatch.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage" in result.stdout


def _command_paths(command, prefix=()):
    children = getattr(command, "commands", None)
    if not children:
        yield " ".join(prefix)
        return
    for name, child in children.items():
        yield from _command_paths(child, (*prefix, name))


def test_every_command_is_documented_in_the_readme():
    from pathlib import Path

    import typer

    from registerwatch.cli import app

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    paths = sorted(_command_paths(typer.main.get_command(app)))
    assert "codes" in paths and "upn check" in paths
    missing = [p for p in paths if f"registerwatch {p}" not in readme and f"`{p}" not in readme]
    assert not missing, f"commands missing from README: {missing}"


def test_calendar_school_days_json_from_the_example_config(capsys):
    from registerwatch.config import EXAMPLE_CONFIG_PATH

    code, stdout, _ = run(
        capsys,
        "calendar",
        "school-days",
        "--school",
        "oakfield",
        "--from",
        "2025-10-22",
        "--to",
        "2025-11-04",
        "--config",
        str(EXAMPLE_CONFIG_PATH),
        "--format",
        "json",
    )
    assert code == 0
    # half-term (27-31 Oct) and the weekend are skipped
    doc = json.loads(stdout)
    assert [d["date"] for d in doc["days"]] == [
        "2025-10-22",
        "2025-10-23",
        "2025-10-24",
        "2025-11-03",
        "2025-11-04",
    ]
    # the sessions the table shows: 24 October closes early, before half-term
    sessions = {d["date"]: d["sessions"] for d in doc["days"]}
    assert sessions["2025-10-23"] == ["AM", "PM"] and sessions["2025-10-24"] == ["AM"]


def test_bad_config_exits_2_listing_every_problem_by_toml_path(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[schools]]\nid = "oakfield"\nurn = "12345"\nlaestab = "8812001"\nname = "Oakfield"\n'
        'la_code = "881"\nphase = "primary"\n[schools.mis]\nvendor = "arbor"\n'
        'base_url = "https://oakfield.example/rest-v2"\nusername_env = "OAKFIELD_USER"\n'
        '[schools.calendar]\nterms = [{ start = "2025-09-03", end = "2025-10-24" }]\n'
        'closures = [{ date = "2025-09-10", session = "EVE" }]\n',
        encoding="utf-8",
    )
    code, _stdout, stderr = run(capsys, "config", "check", "--config", str(bad))
    assert code == 2
    assert "schools[0].urn" in stderr
    assert "schools[0].mis" in stderr and "password" in stderr
    assert "schools[0].calendar.closures[0].session" in stderr
    assert "Traceback" not in stderr


def test_errors_are_one_line_without_traceback_unless_debug(capsys, tmp_path):
    missing = tmp_path / "nope.toml"
    code, _, stderr = run(capsys, "config", "check", "--config", str(missing))
    assert code == 2
    assert "does not exist" in stderr and "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if line.strip()]) == 1
    code, _, stderr = run(capsys, "--debug", "config", "check", "--config", str(missing))
    assert code == 2 and "Traceback" in stderr


def test_the_readme_config_snippet_is_a_valid_config():
    import re
    import tomllib
    from pathlib import Path

    from registerwatch.config import parse_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    settings = parse_config(tomllib.loads(snippet))
    assert [s.id for s in settings.schools] == ["oakfield"]
    assert settings.transports.la["881"].kind == "smtp"
