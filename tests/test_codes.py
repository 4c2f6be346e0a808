import csv
from datetime import date

import pytest

from registerwatch import codes
from registerwatch.codes import lookup, session_statistics, valid_on

# DfE column -> national code. reason_present holds / and \ together.
REASON_COLUMNS = {
    "reason_present": "/",
    "reason_l_present_late_before_registers_closed": "L",
    "reason_i_authorised_illness": "I",
    "reason_m_authorised_medical_dental": "M",
    "reason_r_authorised_religious_observance": "R",
    "reason_s_authorised_study_leave": "S",
    "reason_t_authorised_mobile_child": "T",
    "reason_h_authorised_holiday": "H",
    "reason_e_authorised_excluded": "E",
    "reason_c_authorised_other": "C",
    "reason_c1_authorised_regulated_performance": "C1",
    "reason_j1_authorised_interview": "J1",
    "reason_c2_authorised_temp_reduced_timetable": "C2",
    "reason_b_aea_education_off_site": "B",
    "reason_j_aea_interview": "J",
    "reason_p_aea_approved_sporting_activity": "P",
    "reason_v_aea_educational_visit_trip": "V",
    "reason_w_aea_work_experience": "W",
    "reason_k_aea_education_arranged_by_la": "K",
    "reason_g_unauthorised_holiday": "G",
    "reason_u_unauthorised_late_after_registers_closed": "U",
    "reason_o_other_unauthorised": "O",
    "reason_n_no_reason_yet": "N",
}


def _national_rows(path):
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [r for r in csv.DictReader(fh) if r["geographic_level"] == "National"]


@pytest.mark.parametrize(
    "filename",
    [
        "dfe-pupil-attendance-ytd-2024-25.csv",
        "dfe-pupil-attendance-ytd-2025-26-national-regional-extract.csv",
    ],
)
def test_reproduces_published_national_figures(shared_data, filename):
    path = shared_data / filename
    if not path.exists():
        pytest.skip(f"{filename} not present")
    rows = _national_rows(path)
    assert rows, "expected national rows in the published file"
    for row in rows:
        counts = {code: int(float(row[col])) for col, code in REASON_COLUMNS.items()}
        stats = session_statistics(counts)
        phase = row["education_phase"]
        # Exact: every attendance and unauthorised reason has its own published column.
        assert stats.present == int(row["present_sessions"]), phase
        assert stats.attendance == int(row["overall_attendance"]), phase
        assert stats.approved_educational_activity == int(row["approved_educational_activity"])
        assert stats.unauthorised == int(row["unauthorised_absence"]), phase
        assert stats.late == int(row["late_sessions"]), phase
        # DfE publishes no column for a sliver of authorised absence (908 of 113.9m sessions in
        # the 2024/25 national total; 0 in Special): the per-code sum may fall short of the
        # published total by that much and never exceeds it.
        residual = int(row["authorised_absence"]) - stats.authorised
        assert 0 <= residual <= 1e-5 * int(row["possible_sessions"]), phase
        assert int(row["possible_sessions"]) - stats.possible == residual, phase
        if phase == "Total":
            # The published Total rates are not derivable from the Total row's own counts
            # (93.1298 published vs 93.1203 = overall_attendance / possible_sessions), so only
            # the phase rows are compared rate by rate.
            continue
        assert stats.attendance_rate == pytest.approx(float(row["attendance_perc"]), abs=1e-3)
        assert stats.overall_absence_rate == pytest.approx(
            float(row["overall_absence_perc"]), abs=1e-3
        )
        assert stats.unauthorised_absence_rate == pytest.approx(
            float(row["unauthorised_absence_perc"]), abs=1e-3
        )
        # The published rates are the published counts over possible sessions, unrounded.
        published = session_statistics(
            {
                "/": int(row["overall_attendance"]),
                "I": int(row["authorised_absence"]),
                "O": int(row["unauthorised_absence"]),
            }
        )
        assert published.possible == int(row["possible_sessions"]), phase
        assert published.attendance_rate == pytest.approx(float(row["attendance_perc"]), abs=1e-6)
        assert published.authorised_absence_rate == pytest.approx(
            float(row["authorised_absence_perc"]), abs=1e-6
        )


def test_national_total_possible_sessions_2024_25(shared_data):
    path = shared_data / "dfe-pupil-attendance-ytd-2024-25.csv"
    if not path.exists():
        pytest.skip("data file absent")
    total = next(r for r in _national_rows(path) if r["education_phase"] == "Total")
    counts = {code: int(total[col]) for col, code in REASON_COLUMNS.items()}
    stats = session_statistics(counts)
    assert stats.attendance == 2_333_406_973
    # possible = 2,505,799,574 published, less 908 authorised sessions with no published column
    assert stats.possible == 2_505_799_574 - 908


def test_not_possible_codes_do_not_count():
    stats = session_statistics({"/": 8, "X": 3, "Y4": 2, "#": 4, "Z": 1, "D": 2, "I": 2})
    assert stats.possible == 10
    assert stats.not_possible == 12
    assert stats.attendance_rate == pytest.approx(80.0)
    assert stats.overall_absence_rate == pytest.approx(20.0)


def test_empty_counts_give_zero_rates():
    stats = session_statistics({})
    assert stats.possible == 0 and stats.attendance_rate == 0.0


def test_unknown_code_is_an_error():
    with pytest.raises(codes.UnknownCodeError):
        session_statistics({"Q9": 1})


def test_legacy_codes_stop_on_19_august_2024():
    assert valid_on("H", date(2024, 8, 18))
    assert not valid_on("H", date(2024, 8, 19))
    assert not valid_on("Y", date(2024, 9, 2))
    assert valid_on("Y1", date(2024, 8, 19))
    assert not valid_on("Y1", date(2024, 8, 18))
    assert not valid_on("J1", date(2023, 9, 4))
    assert valid_on("J", date(2023, 9, 4)) and not valid_on("J", date(2024, 9, 4))


def test_meaning_follows_the_date():
    assert lookup("T", date(2023, 1, 10)).description == "Traveller absence"
    assert "Mobile child" in lookup("T", date(2025, 1, 10)).description
    # B's category is the same in both eras, but X moved from administrative to leave.
    assert lookup("X", date(2023, 1, 10)).category is codes.Category.ADMINISTRATIVE
    assert lookup("X", date(2025, 1, 10)).category is codes.Category.LEAVE_OF_ABSENCE


def test_table_rows_are_consistent():
    seen = set()
    for row in codes.CODES_2024:
        assert row.code not in seen
        seen.add(row.code)
        assert not (row.authorised and row.unauthorised)
        assert not (row.attendance and row.is_absence)
        if not row.possible:
            assert not (row.attendance or row.is_absence)
        else:
            assert row.attendance or row.is_absence
    assert {"G", "N", "O", "U"} == codes.UNAUTHORISED_CODES
    assert {
        "/",
        "\\",
        "L",
        "K",
        "V",
        "P",
        "W",
        "B",
        "D",
        "C1",
        "M",
        "J1",
        "S",
        "X",
        "C2",
        "C",
        "T",
        "R",
        "I",
        "E",
        "Q",
        "Y1",
        "Y2",
        "Y3",
        "Y4",
        "Y5",
        "Y6",
        "Y7",
        "G",
        "N",
        "O",
        "U",
        "Z",
        "#",
    } == seen
