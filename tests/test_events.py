"""The event record: the shipped file validates, malformed files fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.events import (
    COLUMNS,
    MAX_COUNT,
    TYPES,
    EventDataError,
    default_events_path,
    load_events,
    median_response_lag_weeks,
    yearly_counts,
)

FIXTURES = Path(__file__).parent / "fixtures"
# The press reports behind the model's vocabulary, as the `source` column cites them (data/README.md).
PRESS_REPORTS = ("Yonhap, 1 Feb 2017", "Korea JoongAng Daily/Yonhap, 2 Nov 2022",
                 "Qatar News Agency, 21 Dec 2016", "Korea Times, 3 Feb 2017", "EFE, 31 Jan 2023")
HEADER = ",".join(COLUMNS)


def write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_shipped_record_loads_and_uses_the_vocabulary():
    events = load_events(default_events_path())
    assert len(events) > 100
    assert set(events["type"]) <= set(TYPES)
    assert events["date"].is_monotonic_increasing
    assert (events["count"] >= 1).all()
    # every press report of data/README.md's Sources is cited by outlet and date, none by a file
    # number outside the repository
    for report in PRESS_REPORTS:
        assert events["source"].str.contains(report, regex=False).any(), report
    assert not events["source"].str.contains(r"\bseeds? \d{3}\b", case=False).any()
    # the two 2016 nuclear tests the press reports mention
    nuc = events[(events["type"] == "nuclear_test") & (events["date"].dt.year == 2016)]
    assert len(nuc) == 2


def test_malformed_fixture_names_file_line_and_type():
    path = FIXTURES / "events_malformed.csv"
    with pytest.raises(EventDataError) as err:
        load_events(path)
    msg = str(err.value)
    assert f"{path}:3:" in msg and "rocket_party" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("2016-13-01,,DPRK,nuclear_test,,1,,x,src,false", "is not a date"),
        ("2016-01-06,,DPRK,nuclear_test,,0,,x,src,false", "count '0'"),
        ("2016-01-06,,Mars,nuclear_test,,1,,x,src,false", "unknown actor 'Mars'"),
        ("2016-03-07,2016-03-01,US-ROK,combined_exercise,,1,1.0,x,src,false", "before date"),
        ("2016-03-07,2016-03-18,US-ROK,combined_exercise,,1,,x,src,false", "needs a scale"),
        ("2016-03-07,2016-03-18,US-ROK,combined_exercise,,1,1.5,x,src,false", "scale '1.5'"),
        ("2016-01-06,,DPRK,nuclear_test,,1,,x,,false", "source is empty"),
        ("2016-01-06,,DPRK,nuclear_test,,1,,x,src,maybe", "must be true or false"),
        ("2016-01-06,,DPRK,nuclear_test,,1,,x,src", "wrong number of fields"),
        # a count of 10^30 (a typo) and one just past the plausible maximum
        ("2016-01-06,,DPRK,launch_day,srbm,1" + "0" * 30 + ",,x,src,false", "must be a whole number from 1"),
        (f"2016-01-06,,DPRK,launch_day,srbm,{MAX_COUNT + 1},,x,src,false", f"count '{MAX_COUNT + 1}'"),
        ("2016-01-06,,DPRK,launch_day,srbm,1e3,,x,src,false", "count '1e3'"),
        # dates outside the model's window (the calendar and pandas cannot hold them)
        ("0001-01-06,,DPRK,nuclear_test,,1,,x,src,false", "outside 1950-01-01..2200-12-31"),
        ("2016-03-07,9999-03-18,US-ROK,combined_exercise,,1,1.0,x,src,false", "end_date 9999-03-18"),
        ("2016-01-06,,DPRK,nuclear_test,,1,,\"" + "x" * 200_000 + "\",src,false", "not readable as CSV"),
    ],
)
def test_each_bad_row_is_one_line_naming_the_line(tmp_path, row, fragment):
    path = write(tmp_path, "2016-01-06,,DPRK,nuclear_test,,1,,ok,src,false", row)
    with pytest.raises(EventDataError) as err:
        load_events(path)
    msg = str(err.value)
    assert fragment in msg
    assert f"{path}:3:" in msg
    assert "\n" not in msg


def test_a_count_at_the_maximum_is_accepted(tmp_path):
    path = write(tmp_path, f"2016-01-06,,DPRK,launch_day,srbm,{MAX_COUNT},,x,src,false")
    assert load_events(path)["count"].tolist() == [MAX_COUNT]


def test_a_file_that_is_not_utf8_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "events.csv"
    rows = [HEADER, "2016-01-06,,DPRK,nuclear_test,,1,,ok,src,false",
            "2016-01-07,,DPRK,nuclear_test,,1,,Punggye-ri,S\u00e9oul,false"]
    path.write_bytes("\n".join(rows).encode("latin-1") + b"\n")  # the accent as one byte, 0xe9
    with pytest.raises(EventDataError) as err:
        load_events(path)
    msg = str(err.value)
    assert f"{path}:3:" in msg and "0xe9" in msg and "UTF-8" in msg and "\n" not in msg


def test_a_byte_order_mark_is_read_as_utf8(tmp_path):
    """Spreadsheet programs save 'CSV UTF-8' with a byte-order mark before the header."""
    path = tmp_path / "events.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n2016-01-06,,DPRK,nuclear_test,,1,,S\u00e9oul,src,false\n"
                     .encode())
    events = load_events(path)
    assert events["description"].tolist() == ["S\u00e9oul"]


def test_a_header_without_rows_is_refused(tmp_path):
    for text in (HEADER + "\n", HEADER):
        path = tmp_path / "events.csv"
        path.write_text(text)
        with pytest.raises(EventDataError, match="no events follow") as err:
            load_events(path)
        assert str(path) in str(err.value)
    path.write_text("")
    with pytest.raises(EventDataError, match="missing column"):
        load_events(path)


def test_missing_column_and_missing_file(tmp_path):
    path = write(tmp_path, "2016-01-06,DPRK", header="date,actor")
    with pytest.raises(EventDataError, match="missing column"):
        load_events(path)
    with pytest.raises(EventDataError, match="no such file"):
        load_events(tmp_path / "absent.csv")


def test_yearly_counts_and_launch_weeks(tmp_path):
    path = write(
        tmp_path,
        "2016-01-05,,DPRK,launch_day,srbm,2,,a,src,false",
        "2016-01-07,,DPRK,launch_day,icbm,1,,b,src,false",  # same week as the first
        "2016-02-01,,DPRK,launch_day,srbm,3,,c,src,false",
        "2017-03-01,,DPRK,nuclear_test,,1,,d,src,false",
        "2017-03-02,,US,asset_deployment,bomber,1,,e,src,false",
    )
    counts = yearly_counts(load_events(path), [2016, 2017], week_start="2016-01-04")
    assert counts.loc[2016, "dprk_launch_days"] == 3
    assert counts.loc[2016, "dprk_launch_weeks"] == 2
    assert counts.loc[2016, "dprk_missiles"] == 6
    assert counts.loc[2017, "dprk_nuclear_tests"] == 1
    assert counts.loc[2017, "us_deployments"] == 1
    assert counts.loc[2017, "dprk_launch_days"] == 0


def test_response_lag_counts_whole_weeks_and_drops_unanswered():
    ev = pd.DataFrame({
        "date": pd.to_datetime(["2016-01-01", "2016-01-10", "2016-03-01", "2016-03-16", "2016-09-01"]),
        "actor": ["DPRK", "US", "DPRK", "US", "DPRK"],
        "type": ["nuclear_test", "asset_deployment", "launch_day", "asset_deployment", "nuclear_test"],
        "kind": ["", "bomber", "icbm", "bomber", ""],
    })
    # lags: 9 days -> 1 week, 15 days -> 2 weeks; the September test is never answered;
    # the lower median of (1, 2) is 1, as in the model's recorder
    assert median_response_lag_weeks(ev, "2016-01-01", "2016-12-31") == 1.0
    # a provocation while a clock runs starts no clock of its own
    extra = pd.DataFrame({"date": pd.to_datetime(["2016-01-03"]), "actor": ["DPRK"],
                          "type": ["launch_day"], "kind": ["icbm"]})
    both = pd.concat([ev, extra]).sort_values("date").reset_index(drop=True)
    assert median_response_lag_weeks(both, "2016-01-01", "2016-12-31") == 1.0
