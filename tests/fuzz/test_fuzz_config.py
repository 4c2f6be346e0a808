"""The config loader under generated TOML: a file is loaded or refused with ConfigError naming
TOML paths, never another exception; a secret (in a credential variable or file, or pasted
where a variable NAME belongs) never appears in any error text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fuzz_support import fuzz, hostile_text, values
from hypothesis import given
from hypothesis import strategies as st
from support.config_writer import toml_value

from registerwatch.config import load_config
from registerwatch.errors import ConfigError, CredentialError

SECRET = "s3cr3t-Fuzz-Value-8841"
TERM = {"start": "2025-09-03", "end": "2025-12-19"}


def either(valid: Any, *more: Any) -> st.SearchStrategy[Any]:
    """The valid value (often), another plausible one, or something hostile."""
    return st.one_of(st.just(valid), st.sampled_from([valid, *more]), values)


def secret_or(name: str) -> st.SearchStrategy[Any]:
    """A variable NAME, or the secret itself pasted where the name belongs."""
    return st.one_of(st.just(name), st.just(SECRET), st.just(SECRET + "\n"), hostile_text)


tables = st.fixed_dictionaries(
    {
        "store": st.fixed_dictionaries(
            {
                "url": either(
                    "sqlite:///rw.sqlite", "postgresql://u@h/db", f"postgresql://u:{SECRET}@h/d"
                )
            }
        ),
        "school": st.fixed_dictionaries(
            {
                "id": either("oakfield", "Oak Field", ""),
                "urn": either("137245", 137245, "12345"),
                "laestab": either("8932001", "893200"),
                "name": either("Oakfield School"),
                "la_code": either("893", 893),
                "phase": either("secondary", "primary", "college"),
            }
        ),
        "mis": st.fixed_dictionaries(
            {
                "vendor": either("arbor", "isams", "go4schools", "ctf", "sims"),
                "base_url": either("https://oak.example/rest-v2", "ftp://x", "http://127.0.0.1:9"),
                "username_env": secret_or("OAK_ARBOR_USER"),
            },
            optional={
                "password_env": secret_or("OAK_ARBOR_PASSWORD"),
                "password_file": either("secrets/oak.pw", ""),
                "api_key_env": secret_or("OAK_KEY"),
                "timeout_seconds": either(30, -1, 0, 1e9),
            },
        ),
        "calendar": st.fixed_dictionaries(
            {"terms": either([TERM], [], [{"start": "2025-12-19", "end": "2025-09-03"}])}
        ),
        "ledger": st.one_of(
            st.just({}),
            st.fixed_dictionaries(
                {},
                optional={
                    "key_id": either("2027-01", "a b", ""),
                    "key_env": secret_or("RW_LEDGER_KEY"),
                    "key_file": either("ledger.key"),
                    "keyed_from_seq": either(1, 0, -5),
                    "sink": either({"file": "/var/log/rw/tips.jsonl"}, {"url": "ftp://x"}, {}),
                },
            ),
        ),
        "extra": st.dictionaries(st.sampled_from(["sync", "logging", "bogus"]), values, max_size=1),
    }
)


def _toml(t: dict[str, Any]) -> str:
    lines = [f"[store]\nurl = {toml_value(t['store']['url'])}"]
    for name, value in t["extra"].items():
        lines.append(
            f"{name} = {toml_value(value)}" if not isinstance(value, dict) else f"[{name}]"
        )
    if t["ledger"]:
        lines.append("[ledger]")
        lines += [f"{k} = {toml_value(v)}" for k, v in t["ledger"].items() if v is not None]
    lines.append("[[schools]]")
    lines += [f"{k} = {toml_value(v)}" for k, v in t["school"].items() if v is not None]
    lines.append("[schools.mis]")
    lines += [f"{k} = {toml_value(v)}" for k, v in t["mis"].items() if v is not None]
    lines.append("[schools.calendar]")
    lines.append(f"terms = {toml_value(t['calendar']['terms'])}")
    return "\n".join(lines) + "\n"


def _texts(exc: BaseException) -> str:
    return "\n".join([str(exc), *(str(e) for e in getattr(exc, "errors", None) or [])])


def _load(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    environ = {
        "OAK_ARBOR_USER": "registerwatch",
        "OAK_ARBOR_PASSWORD": SECRET,
        "OAK_KEY": SECRET + "\nsecond line",
        "RW_LEDGER_KEY": SECRET,
    }
    try:
        settings = load_config(path, environ)
    except ConfigError as exc:
        assert SECRET not in _texts(exc)
        assert _texts(exc).strip()
        return
    for attempt in (
        lambda: settings.check_credentials(environ),
        lambda: settings.ledger.keys(environ),
    ):
        try:
            attempt()
        except (ConfigError, CredentialError) as exc:
            assert SECRET not in _texts(exc)


@given(config=tables)
@fuzz
def test_generated_configs_load_or_fail_with_config_errors(tmp_path_factory, config):
    _load(tmp_path_factory.mktemp("cfg") / "registerwatch.toml", _toml(config))


@given(text=st.text(max_size=300), prefix=st.sampled_from(["", "[store]\n", "[[schools]]\nid = "]))
@fuzz
def test_arbitrary_text_is_refused_with_a_config_error(tmp_path_factory, text, prefix):
    _load(tmp_path_factory.mktemp("cfg") / "registerwatch.toml", prefix + text)
