"""--version, shell completion, help texts, and `config check` from the command line."""

from __future__ import annotations

import re

import pytest
import typer

from registerwatch import __version__
from registerwatch.cli import main
from registerwatch.cli._common import app
from registerwatch.config import EXAMPLE_CONFIG_PATH


def _run(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out + captured.err


def _commands(command, prefix=()):
    children = getattr(command, "commands", None)
    if not children:
        yield prefix
        return
    for name, child in children.items():
        yield from _commands(child, (*prefix, name))


def test_version_is_eager_and_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    assert __version__ == version("registerwatch")
    assert _run(capsys, "--version") == (0, f"registerwatch {__version__}\n")
    # eager: before the command is even looked at
    assert _run(capsys, "--version", "no-such-command")[0] == 0


def test_shell_completion_is_offered(capsys):
    code, text = _run(capsys, "--help")
    assert code == 0 and "--install-completion" in text and "--show-completion" in text


def test_every_command_has_an_example_and_no_type_labels(capsys):
    paths = list(_commands(typer.main.get_command(app)))
    assert len(paths) > 20
    for path in paths:
        code, text = _run(capsys, *path, "--help")
        assert code == 0, path
        assert f"Example: registerwatch {' '.join(path)}" in text, path
        labels = re.findall(r"<(?:bool|str|int|path|float|list\[str\])>", text)
        assert not labels, (path, labels)


def test_config_check_shows_the_file_it_chose_and_exits_2_on_problems(
    capsys, tmp_path, monkeypatch
):
    config = tmp_path / "registerwatch.toml"
    config.write_text(EXAMPLE_CONFIG_PATH.read_text(encoding="utf-8"))
    monkeypatch.delenv("REGISTERWATCH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code, text = _run(capsys, "config", "check", "--as-of", "2025-12-01")
    assert code == 2
    assert f"config: {config} (found by the current folder)" in text
    assert (
        "PROBLEM school 'oakfield': environment variable OAKFIELD_ARBOR_USERNAME is not set" in text
    )
    from registerwatch.simulator.vendors import credentials_environ

    for school, vendor in (
        ("oakfield", "arbor"),
        ("wenlock", "isams"),
        ("brookside", "go4schools"),
    ):
        for key, value in credentials_environ(school, vendor).items():
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("LA893_RETURNS_TOKEN", "t")
    monkeypatch.setenv("LA330_RETURNS_TOKEN", "t")
    (tmp_path / "outbox" / "dfe").mkdir(parents=True)
    code, text = _run(capsys, "config", "check", "--as-of", "2025-12-01")
    assert code == 0, text
    assert "all ok" in text


def test_simulate_on_a_busy_port_is_one_line_naming_the_port(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, text = _run(
            capsys, "simulate", "--vendor", "arbor", "--port", str(port), "--pupils", "80"
        )
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in text and "internal error" not in text
