"""One template run over every return in ``exports.registry``: golden files and XSD cases.

For each registered kind (export_returns_spec.SPECS): the rendered return matches its golden XML
and CSV byte for byte and validates; the golden XML validates on its own; every negative case (one
per constraint the XSD enforces) is refused with an error line naming the element and facet; what
the XSD must accept is accepted; and the XSD enumerations that mirror a code table match it.

Golden files: tests/exports/golden/. After an intended change, regenerate them with
``REGISTERWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/exports/test_export_returns.py`` and review
the diff before committing.
"""

from __future__ import annotations

import dataclasses

import pytest
from export_returns_spec import SPECS, Mutation, render_all
from lxml import etree
from test_export_cli_fixtures import GOLDEN, check_golden, enumeration, validate_file

from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import RenderedReturn, validate
from registerwatch.exports.registry import RETURN_MODULES

KINDS = list(RETURN_MODULES)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RenderedReturn]:
    return render_all(tmp_path_factory)


def mutated(valid: RenderedReturn, mutate: Mutation) -> RenderedReturn:
    root = etree.fromstring(valid.xml)
    mutate(root)
    return dataclasses.replace(
        valid, xml=etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    )


def test_every_registered_return_has_a_spec() -> None:
    assert set(SPECS) == set(RETURN_MODULES)
    for kind, spec in SPECS.items():
        assert spec.kind == kind
        assert spec.cases, f"{kind}: no XSD negative cases"
        names = [name for name, _, _ in spec.cases]
        assert len(set(names)) == len(names), f"{kind}: a case name is used twice"


# -- golden files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_golden_xml_and_csv(rendered: dict[str, RenderedReturn], kind: str) -> None:
    spec, result = SPECS[kind], rendered[kind]
    validate(result)  # against registerwatch/exports/schemas/<schema>
    assert result.schema_name == spec.schema
    assert result.file_stem == spec.file_stem
    if spec.period is not None:
        assert result.period == spec.period
    if spec.episodes is not None:
        assert [k.episode for k in result.records] == spec.episodes
    check_golden(f"{spec.golden}.xml", result.xml)
    check_golden(f"{spec.golden}.csv", result.csv_bytes())


@pytest.mark.parametrize("kind", KINDS)
def test_golden_xml_file_validates_on_its_own(kind: str) -> None:
    spec = SPECS[kind]
    validate_file(spec.schema, GOLDEN / f"{spec.golden}.xml")
    validate(
        RenderedReturn(
            kind=kind,
            school_id="golden",
            schema_name=spec.schema,
            xml=(GOLDEN / f"{spec.golden}.xml").read_bytes(),
            csv_header=(),
            csv_rows=[],
            file_stem="golden",
        )
    )


# -- what each XSD refuses and accepts ------------------------------------------------------------

REFUSALS = [
    pytest.param(kind, mutate, expect, id=f"{kind}:{name}")
    for kind, spec in SPECS.items()
    for name, mutate, expect in spec.cases
]


@pytest.mark.parametrize(("kind", "mutate", "expect"), REFUSALS)
def test_xsd_refuses(
    rendered: dict[str, RenderedReturn], kind: str, mutate: Mutation, expect: tuple[str, ...]
) -> None:
    valid = rendered[kind]
    validate(valid)  # the unmutated document is valid: the mutation is what breaks it
    with pytest.raises(ExportValidationError) as caught:
        validate(mutated(valid, mutate))
    message = str(caught.value)
    assert f"does not validate against {SPECS[kind].schema}; nothing was written" in message
    assert any(all(part in line for part in expect) for line in caught.value.errors), (
        f"no error line names all of {expect}: {caught.value.errors}"
    )


ACCEPTS = [
    pytest.param(kind, mutate, id=f"{kind}:{name}")
    for kind, spec in SPECS.items()
    for name, mutate in spec.accepted
]


@pytest.mark.parametrize(("kind", "mutate"), ACCEPTS)
def test_xsd_accepts(rendered: dict[str, RenderedReturn], kind: str, mutate: Mutation) -> None:
    validate(mutated(rendered[kind], mutate))


ENUMERATIONS = [
    pytest.param(schema, type_name, expected, id=f"{kind}:{type_name}")
    for kind, spec in SPECS.items()
    for schema, type_name, expected in spec.enumerations
]


@pytest.mark.parametrize(("schema", "type_name", "expected"), ENUMERATIONS)
def test_xsd_enumeration_is_the_code_table(
    schema: str, type_name: str, expected: list[str]
) -> None:
    assert enumeration(schema, type_name) == expected
