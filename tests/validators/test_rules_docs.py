"""docs/rules/ is generated from the rules; CI fails when a committed page is stale.

Regenerate with: .venv/bin/python -m registerwatch.validators.docs docs/rules
"""

from __future__ import annotations

from pathlib import Path

from registerwatch.validators import DOC_SECTIONS, get_rule
from registerwatch.validators.docs import (
    INDEX,
    expected_docs,
    render_rule_doc,
    stale_rule_docs,
    write_rule_docs,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"
REGENERATE = ".venv/bin/python -m registerwatch.validators.docs docs/rules"


def test_committed_rule_docs_are_current() -> None:
    stale = stale_rule_docs(DOCS)
    assert not stale, f"stale rule docs {stale}: run `{REGENERATE}`"


def test_no_orphan_rule_docs() -> None:
    assert {p.name for p in DOCS.glob("*.md")} == set(expected_docs())


def test_rendered_page_has_metadata_sections_and_settings() -> None:
    page = render_rule_doc(get_rule("MRK001"))
    assert page.splitlines()[1] == "# MRK001 unresolved-n-code"
    assert "| Severity | error |" in page and "| Status | stable |" in page
    assert "SI 2024/208 reg 10(7)-(9)" in page
    positions = [page.index(f"## {section}") for section in DOC_SECTIONS]
    assert positions == sorted(positions)
    assert "| `n_code_deadline_school_days` | `5` |" in page


def test_write_then_check(tmp_path: Path) -> None:
    written = write_rule_docs(tmp_path)
    assert len(written) == 31 and (tmp_path / INDEX).is_file()
    assert stale_rule_docs(tmp_path) == []
    (tmp_path / "UPN001.md").write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / "ATT004.md").unlink()
    assert stale_rule_docs(tmp_path) == ["ATT004.md", "UPN001.md"]
