"""The docs stand on their own: no link leaves the repository, every relative link resolves, and
the example config is the simulators' school year."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registerwatch.config import EXAMPLE_CONFIG_PATH, load_config
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.vendors import school_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{doc.name} points outside the repository"
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:, file:
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"


def test_the_readme_links_the_design_in_the_repository() -> None:
    assert "](docs/design.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / "docs" / "design.md").stat().st_size > 5000


@pytest.mark.parametrize(
    ("school_id", "vendor"),
    [("oakfield", "arbor"), ("wenlock", "isams"), ("brookside", "go4schools")],
)
def test_the_example_config_has_the_calendar_its_simulator_serves(
    school_id: str, vendor: str
) -> None:
    served = generate_school(1, 80, school_id=school_id, vendor=vendor)
    wanted = school_config(served, vendor, "http://127.0.0.1")["calendar"]
    configured = load_config(EXAMPLE_CONFIG_PATH).school(school_id)
    cal = configured.calendar
    assert [{"start": t.start, "end": t.end} for t in cal.terms] == wanted["terms"]
    assert [(c.date, c.session, c.kind.value) for c in cal.closures] == [
        (c["date"], c["session"], c["kind"]) for c in wanted["closures"]
    ]
    times = cal.register_times
    assert (times.am_open, times.pm_open, times.close_after_minutes) == (
        wanted["register_times"]["am_open"],
        wanted["register_times"]["pm_open"],
        wanted["register_times"]["close_after_minutes"],
    )
    assert configured.phase == served.school.phase


def _block(text: str, after: str, lang: str) -> str:
    return text.split(after, 1)[1].split(f"```{lang}\n", 1)[1].split("```", 1)[0]


def test_the_readme_config_snippet_loads_and_credentials_env_names_its_variables(
    tmp_path: Path,
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = _block(readme, "## The config file", "toml")
    (tmp_path / "registerwatch.toml").write_text(snippet, encoding="utf-8")
    load_config(tmp_path / "registerwatch.toml")
    named = set(re.findall(r'_env = "([A-Z0-9_]+)"', snippet))
    credentials = _block(readme, "`credentials.env` holds the variables", "sh")
    assert set(re.findall(r"^([A-Z0-9_]+)=", credentials, re.M)) == named
