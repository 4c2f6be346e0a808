"""Long lists said once with a count: per-pupil problems, repeated errors, long lists."""

from registerwatch.cli.summary import collapse_repeats, error_text, for_people


def test_588_unmarked_pupils_are_one_line() -> None:
    lines = [f"pupil {n}: 2025-12-06 AM has no mark" for n in range(588)]
    assert for_people(lines + ["pupil 9: 2025-12-05 PM is marked H"]) == [
        "588 pupils have no mark on 2025-12-06 AM",
        "pupil 9: 2025-12-05 PM is marked H",
    ]


def test_the_same_error_for_many_items_is_said_once_with_a_count() -> None:
    lines = [f"item {n} deferred: LA '893': la-sickness item {n} not delivered" for n in range(18)]
    assert collapse_repeats(lines) == [
        "item 0 deferred: LA '893': la-sickness item 0 not delivered (and 17 more items like it)"
    ]
    assert collapse_repeats(["disk full", "disk full"]) == ["disk full (2 times)"]


def test_an_error_detail_list_is_summarised_and_cut() -> None:
    message = "the dfe-daily return is incomplete" + "".join(
        f"\n  - pupil {n}: 2025-12-06 {s} has no mark" for n in range(300) for s in ("AM", "PM")
    )
    assert error_text(message) == (
        "the dfe-daily return is incomplete"
        "\n  - 300 pupils have no mark on 2025-12-06 AM"
        "\n  - 300 pupils have no mark on 2025-12-06 PM"
    )
    many = "x" + "".join(f"\n  - problem {n}" for n in range(30))
    assert error_text(many).count("\n") == 21 and "and 10 more" in error_text(many)
