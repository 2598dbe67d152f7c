"""The time-axis layer: validation, frequencies, continuation, calendar features."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from numlstm.forecast.cycles import calendar_features
from numlstm.forecast.timeaxis import (
    TimeAxis,
    check_time_axis,
    continue_time_axis,
    infer_frequency,
)

cftime = pytest.importorskip("cftime")


def _accepts(alias):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pd.tseries.frequencies.to_offset(alias)
    except (ValueError, Warning):
        return False
    return True


# pandas 2.2 renamed month end "M" to "ME" (and pandas 3 rejects "M").
MONTH_END = "ME" if _accepts("ME") else "M"
LEGACY_MONTH_END = "M" if MONTH_END == "ME" else "ME"

CALENDARS = [None, "standard", "noleap", "360_day", "all_leap", "julian"]  # None: numpy
FREQS = ["D", "h", "6h", "MS", MONTH_END, "QS-JAN", "YS", "7D"]
FAST = settings(max_examples=50, deadline=None)


def date_range(start, periods, freq, calendar):
    """Labels as the user would make them: numpy for calendar None, else cftime."""
    if calendar is None:
        return xr.date_range(start, periods=periods, freq=freq, use_cftime=False)
    return xr.date_range(start, periods=periods, freq=freq, calendar=calendar, use_cftime=True)


def regenerate(first, periods, freq, calendar):
    if calendar is None:
        return pd.date_range(first, periods=periods, freq=freq)
    return xr.date_range(first, periods=periods, freq=freq, calendar=calendar, use_cftime=True)


def assert_same_labels(actual, expected):
    assert type(actual) is type(expected)
    if isinstance(expected, xr.CFTimeIndex):
        assert actual.calendar == expected.calendar
        assert {type(t) for t in actual} == {type(t) for t in expected}
    else:
        assert actual.dtype == expected.dtype
    assert list(actual) == list(expected)


def starts(calendar):
    # numpy datetime64[ns] ends in 2262; the standard calendar skips 10 days in 1582
    years = st.integers(1900, 2100) if calendar is None else st.integers(1601, 2400)
    return st.builds(
        lambda y, m, d, h: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:00:00",
        years, st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
    )


# --- round trips ----------------------------------------------------------------


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c or "numpy")
@FAST
@given(data=st.data())
def test_continue_round_trip(calendar, data):
    freq = data.draw(st.sampled_from(FREQS), label="freq")
    start = data.draw(starts(calendar), label="start")
    length = data.draw(st.integers(1, 30), label="length")
    n = data.draw(st.integers(1, 15), label="n")
    full = date_range(start, length + n, freq, calendar)
    head, tail = full[:length], full[length:]

    assert_same_labels(continue_time_axis(head, n, freq=freq), tail)
    if length >= 3:
        inferred = infer_frequency(head)
        assert_same_labels(regenerate(head[0], length, inferred, calendar), head)
        assert_same_labels(continue_time_axis(head, n), tail)


@pytest.mark.parametrize("freq", FREQS)
@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c or "numpy")
def test_every_calendar_and_freq_across_a_leap_february(calendar, freq):
    full = date_range("2000-01-28T05:00:00", 40, freq, calendar)
    head = full[:25]
    assert infer_frequency(head, freq=freq) == freq
    assert_same_labels(continue_time_axis(head, 15, freq=freq), full[25:])
    assert_same_labels(continue_time_axis(head, 15), full[25:])


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c or "numpy")
def test_data_array_coordinate_keeps_name_dtype_and_attrs(calendar):
    full = date_range("1999-12-30", 8, "D", calendar)
    coord = xr.DataArray(full[:5], dims="valid_time", name="valid_time",
                         attrs={"long_name": "valid time", "axis": "T"})
    out = continue_time_axis(coord, 3)
    assert isinstance(out, xr.DataArray)
    assert out.dims == ("valid_time",) and out.name == "valid_time"
    assert out.attrs == coord.attrs
    assert out.dtype == coord.dtype
    assert "valid_time" in out.indexes
    assert_same_labels(out.indexes["valid_time"], full[5:])


def test_index_name_and_numpy_units_are_kept():
    days = np.array(["2001-03-01", "2001-03-02", "2001-03-03"], dtype="datetime64[D]")
    out = continue_time_axis(days, 2)
    assert isinstance(out, np.ndarray) and out.dtype == days.dtype
    np.testing.assert_array_equal(out, np.array(["2001-03-04", "2001-03-05"], dtype="datetime64[D]"))

    seconds = days.astype("datetime64[s]")
    out = continue_time_axis(seconds[-1:], 1, freq="6h")
    assert out.dtype == seconds.dtype and str(out[0]) == "2001-03-03T06:00:00"

    index = pd.DatetimeIndex(seconds, name="when")
    out = continue_time_axis(index, 2)
    assert out.name == "when" and out.dtype == index.dtype


def test_cftime_object_array_continues_as_object_array():
    labels = np.array([cftime.Datetime360Day(2001, 2, d) for d in (28, 29, 30)], dtype=object)
    out = continue_time_axis(labels, 2)
    assert isinstance(out, np.ndarray) and out.dtype == object
    assert list(out) == [cftime.Datetime360Day(2001, 3, 1), cftime.Datetime360Day(2001, 3, 2)]


def test_generic_cftime_datetimes_work_like_calendar_types():
    generic = np.array([cftime.datetime(2001, 2, d, calendar="360_day") for d in (28, 29, 30)])
    assert check_time_axis(generic).calendar == "360_day"
    assert infer_frequency(generic) == "D"
    assert list(continue_time_axis(generic, 1)) == [cftime.Datetime360Day(2001, 3, 1)]
    values, _ = calendar_features(generic[:1])  # Feb 28 is day 58 of 360
    np.testing.assert_allclose(values[0], [np.sin(np.pi * 57 / 180), np.cos(np.pi * 57 / 180)])


def test_nullable_integers():
    assert infer_frequency(pd.Index([2, 4, 6], dtype="Int64")) == 2
    with pytest.raises(ValueError, match=r"missing label.*position 1"):
        check_time_axis(pd.Index([2, None, 6], dtype="Int64"))


@FAST
@given(
    start=st.integers(-10**6, 10**6),
    step=st.integers(1, 1000),
    length=st.integers(2, 30),
    n=st.integers(1, 15),
    dtype=st.sampled_from([np.int32, np.int64]),
)
def test_integer_round_trip(start, step, length, n, dtype):
    full = np.arange(length + n, dtype=np.int64) * step + start
    head = full[:length].astype(dtype)
    assert infer_frequency(head) == step
    assert infer_frequency(head, freq=step) == step
    for out in (continue_time_axis(head, n), continue_time_axis(head, n, freq=step)):
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, full[length:])
    assert check_time_axis(head).kind == "integer"


def test_integer_overflow_is_reported():
    with pytest.raises(ValueError, match=r"overflow dtype int32; cast the axis to int64"):
        continue_time_axis(np.array([2**31 - 3, 2**31 - 2], dtype=np.int32), 3)


def test_range_index_stays_a_range_index():
    out = continue_time_axis(pd.RangeIndex(0, 10, 2, name="step"), 3)
    pd.testing.assert_index_equal(out, pd.RangeIndex(10, 16, 2, name="step"), exact=True)


def test_single_label_continues_with_freq():
    one = date_range("2001-02-29", 1, "D", "all_leap")
    assert [str(t) for t in continue_time_axis(one, 2, freq="D")] == [
        "2001-03-01 00:00:00", "2001-03-02 00:00:00"]
    np.testing.assert_array_equal(continue_time_axis(np.array([7]), 2, freq=3), [10, 13])


# --- check_time_axis ------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "kind", "calendar"),
    [
        (pd.date_range("2000-01-01", periods=3), "datetime64", "proleptic_gregorian"),
        (np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[ns]"), "datetime64",
         "proleptic_gregorian"),
        (xr.date_range("2000", periods=3, calendar="noleap", use_cftime=True), "cftime", "noleap"),
        (xr.date_range("2000", periods=3, calendar="julian", use_cftime=True), "cftime", "julian"),
        ([3, 4, 5], "integer", None),
        (pd.RangeIndex(5), "integer", None),
    ],
)
def test_check_time_axis_kinds(labels, kind, calendar):
    axis = check_time_axis(labels)
    assert isinstance(axis, TimeAxis)
    assert (axis.kind, axis.calendar, len(axis)) == (kind, calendar, len(labels))
    assert isinstance(axis.index, pd.Index)
    axis_from_coord = check_time_axis(xr.DataArray(np.asarray(labels), dims="t"))
    assert (axis_from_coord.kind, axis_from_coord.calendar) == (kind, calendar)


def test_non_monotonic_names_position_and_fix():
    labels = pd.date_range("2000-01-01", periods=5)[[0, 1, 3, 2, 4]]
    with pytest.raises(ValueError, match=r"time is not sorted: it decreases at position 3 "
                                         r"\(time\[2\] = 2000-01-04.*sortby\('time'\)"):
        check_time_axis(labels)
    coord = xr.DataArray([5, 6, 4], dims="step", name="step")
    with pytest.raises(ValueError, match=r"step is not sorted: it decreases at position 2"):
        check_time_axis(coord)


def test_duplicates_name_first_label_and_fix():
    labels = xr.date_range("2000-01-01", periods=4, calendar="360_day", use_cftime=True)[[0, 1, 1, 2]]
    with pytest.raises(ValueError, match=r"duplicate labels: 2000-01-02 00:00:00 appears 2 times"
                                         r".*drop_duplicates\('time'\)"):
        check_time_axis(labels)


def test_nat_is_reported():
    labels = pd.DatetimeIndex(["2000-01-01", None, "2000-01-03"])
    with pytest.raises(ValueError, match=r"missing label.*NaT.*position 1"):
        check_time_axis(labels)
    with_none = np.array([cftime.DatetimeNoLeap(2000, 1, 1), None], dtype=object)
    with pytest.raises(ValueError, match=r"NaT.*position 1"):
        check_time_axis(with_none)


@pytest.mark.parametrize(
    ("labels", "dtype"),
    [
        (np.array([1.0, 2.0]), "float64"),
        (np.array(["2000-01-01", "2000-01-02"]), "<U10"),
        (np.array([True, False]), "bool"),
        (pd.timedelta_range(0, periods=3, freq="D"), "timedelta64"),
        (xr.DataArray(np.array([0.5, 1.5]), dims="time"), "float64"),
    ],
)
def test_unsupported_dtypes_are_named(labels, dtype):
    with pytest.raises(TypeError, match=rf"unsupported dtype {re.escape(dtype)}.*expected datetime64"):
        check_time_axis(labels)


def test_other_bad_axes():
    with pytest.raises(ValueError, match="time is empty"):
        check_time_axis(np.array([], dtype="datetime64[ns]"))
    with pytest.raises(ValueError, match="must be 1-D"):
        check_time_axis(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="time-zone-aware"):
        check_time_axis(pd.date_range("2000", periods=2, tz="UTC"))
    mixed = np.array([cftime.DatetimeNoLeap(2000, 1, 1), cftime.Datetime360Day(2000, 1, 2)])
    with pytest.raises(TypeError, match="mixes cftime calendars"):
        check_time_axis(mixed)
    with pytest.raises(TypeError, match="dtype object holding int, str"):
        check_time_axis(pd.Index(["a", 1], dtype=object))


# --- infer_frequency ------------------------------------------------------------


def test_irregular_without_freq_shows_first_irregular_step():
    labels = pd.date_range("2000-01-01", periods=6).delete(3)
    with pytest.raises(ValueError, match=r"irregular.*first 3 labels step by 'D', but "
                                         r"time\[3\] = 2000-01-05.*freq=.*resample"):
        infer_frequency(labels)
    month_ends = xr.date_range("2000-01-31", periods=12, freq=MONTH_END,
                               calendar="noleap", use_cftime=True).delete(5)
    with pytest.raises(ValueError, match=r"irregular.*time\[5\] = 2000-07-31"):
        continue_time_axis(month_ends, 1)
    with pytest.raises(ValueError, match=r"irregular.*first steps differ"):
        infer_frequency(pd.DatetimeIndex(["2000-01-01", "2000-01-03", "2000-01-04"]))


def test_irregular_integers_show_first_irregular_step():
    with pytest.raises(ValueError, match=r"irregular.*stepping by 1, but time\[1\] = 2 -> "
                                         r"time\[2\] = 4 is a step of 2.*reindex"):
        infer_frequency([1, 2, 4, 5])


def test_inconsistent_freq():
    labels = pd.date_range("2000-01-01", periods=6).delete(3)
    with pytest.raises(ValueError, match=r"does not step by 'D': time\[3\] = 2000-01-05.*"
                                         r"after time\[2\] = 2000-01-03.* is 2000-01-04"):
        infer_frequency(labels, freq="D")
    with pytest.raises(ValueError, match=r"does not step by 'h'"):
        continue_time_axis(pd.date_range("2000-01-01", periods=3), 2, freq="h")
    mid_month = xr.date_range("2000-01-15", periods=3, freq="D", calendar="noleap", use_cftime=True)
    with pytest.raises(ValueError, match=r"time\[0\] = 2000-01-15 00:00:00 does not fall on a 'MS' step"):
        continue_time_axis(mid_month[:1], 1, freq="MS")
    with pytest.raises(ValueError, match=r"does not step by 3: time\[1\] = 2"):
        infer_frequency([1, 2, 3], freq=3)


def test_bad_freq_values():
    days = pd.date_range("2000-01-01", periods=3)
    with pytest.raises(ValueError, match=r"freq='fortnightly' is not a frequency"):
        infer_frequency(days, freq="fortnightly")
    with pytest.raises(ValueError, match=r"does not step forward"):
        infer_frequency(days, freq="-1D")
    with pytest.raises(TypeError, match=r"freq=1 is an integer step"):
        infer_frequency(days, freq=1)
    with pytest.raises(TypeError, match=r"integer labels, so freq must be a positive integer"):
        infer_frequency([1, 2, 3], freq="D")
    with pytest.raises(ValueError, match=r"positive integer step; got 0"):
        infer_frequency([1, 2, 3], freq=0)


def test_too_short_to_infer():
    with pytest.raises(ValueError, match=r"only 2 label\(s\).*at least 3.*freq="):
        infer_frequency(pd.date_range("2000-01-01", periods=2))
    with pytest.raises(ValueError, match=r"single label.*freq="):
        continue_time_axis([4], 1)


@pytest.mark.skipif(MONTH_END != "ME", reason="pandas < 2.2 has no 'ME'")
@pytest.mark.parametrize("calendar", [None, "noleap"], ids=["numpy", "noleap"])
def test_pre_pandas_2_2_aliases_are_translated_without_warnings(calendar):
    month_ends = date_range("2000-01-31", 4, "ME", calendar)
    assert infer_frequency(month_ends, freq="M") == "ME"
    hours = date_range("2000-01-01", 4, "6h", calendar)
    assert infer_frequency(hours, freq="6H") == "6h"
    assert_same_labels(continue_time_axis(month_ends[:2], 2, freq="M"), month_ends[2:])


def test_n_below_one():
    with pytest.raises(ValueError, match=r"n must be at least 1.*got 0"):
        continue_time_axis(pd.date_range("2000-01-01", periods=3), 0)
    with pytest.raises(TypeError, match=r"n must be an integer"):
        continue_time_axis(pd.date_range("2000-01-01", periods=3), 1.5)


def test_messages_use_the_coordinate_name():
    coord = xr.DataArray(pd.date_range("2000-01-01", periods=3)[[0, 2, 1]], dims="valid_time",
                         name="valid_time")
    with pytest.raises(ValueError, match=r"valid_time is not sorted.*sortby\('valid_time'\)"):
        check_time_axis(coord)
    with pytest.raises(ValueError, match=r"^init is not sorted"):
        check_time_axis(coord, name="init")


# --- calendar_features ----------------------------------------------------------


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c or "numpy")
def test_jan_1_midnight_is_phase_zero(calendar):
    labels = date_range("2001-01-01", 1, "D", calendar)
    values, names = calendar_features(labels, features=("doy", "hour", "month"))
    assert names == ["doy_sin", "doy_cos", "hour_sin", "hour_cos", "month_sin", "month_cos"]
    assert values.dtype == np.float64 and values.shape == (1, 6)
    np.testing.assert_allclose(values[0], [0, 1, 0, 1, 0, 1], atol=1e-12)


@pytest.mark.parametrize(
    ("calendar", "date", "doy", "days_in_year"),
    [
        ("360_day", "2001-04-01", 91, 360),
        ("360_day", "2001-12-30", 360, 360),
        ("noleap", "2000-12-31", 365, 365),
        ("all_leap", "2001-12-31", 366, 366),
        ("julian", "1900-12-31", 366, 366),  # 1900 is a leap year only in the Julian calendar
        ("standard", "1900-12-31", 365, 365),
        (None, "2000-12-31", 366, 366),
        (None, "2001-07-01", 182, 365),
    ],
)
def test_day_of_year_uses_the_calendars_year_length(calendar, date, doy, days_in_year):
    values, _ = calendar_features(date_range(date, 1, "D", calendar))
    angle = 2 * np.pi * (doy - 1) / days_in_year
    np.testing.assert_allclose(values[0], [np.sin(angle), np.cos(angle)], atol=1e-12)


def test_360_day_day_91_is_a_quarter_turn():
    values, _ = calendar_features(date_range("2001-04-01", 1, "D", "360_day"), "doy")
    np.testing.assert_allclose(values[0], [1, 0], atol=1e-12)


def test_hour_month_and_day_of_week():
    labels = pd.DatetimeIndex(["2024-01-01T06:00", "2024-01-07T12:30", "2024-07-03T18:00"])
    values, names = calendar_features(labels, features=["hour", "month", "dow"])
    assert names == ["hour_sin", "hour_cos", "month_sin", "month_cos", "dow_sin", "dow_cos"]
    expected = [
        [1, 0, 0, 1, 0, 1],  # 06:00, January, Monday
        [np.sin(np.pi * 12.5 / 12), np.cos(np.pi * 12.5 / 12), 0, 1,
         np.sin(12 * np.pi / 7), np.cos(12 * np.pi / 7)],  # 12:30, January, Sunday
        [-1, 0, 0, -1, np.sin(4 * np.pi / 7), np.cos(4 * np.pi / 7)],  # 18:00, July, Wednesday
    ]
    np.testing.assert_allclose(values, expected, atol=1e-12)


def test_day_of_week_in_cftime_calendars_with_real_days():
    labels = date_range("2024-01-01", 7, "D", "standard")  # a Monday
    values, _ = calendar_features(labels, "dow")
    phases = 2 * np.pi * np.arange(7) / 7
    np.testing.assert_allclose(values, np.column_stack([np.sin(phases), np.cos(phases)]), atol=1e-12)


def test_calendar_feature_errors():
    with pytest.raises(ValueError, match=r"360_day.*day of week.*drop 'dow'"):
        calendar_features(date_range("2001-01-01", 3, "D", "360_day"), ("doy", "dow"))
    with pytest.raises(ValueError, match=r"integer labels, which have no calendar"):
        calendar_features([1, 2, 3])
    with pytest.raises(ValueError, match=r"features must be one or more of"):
        calendar_features(pd.date_range("2000", periods=2), ("doy", "week"))
    with pytest.raises(ValueError, match=r"features has repeats"):
        calendar_features(pd.date_range("2000", periods=2), ("doy", "doy"))


@FAST
@given(data=st.data())
def test_calendar_features_lie_on_the_unit_circle(data):
    calendar = data.draw(st.sampled_from(CALENDARS))
    labels = date_range(data.draw(starts(calendar)), data.draw(st.integers(1, 20)), "5h", calendar)
    features = ("doy", "hour", "month") if calendar == "360_day" else ("doy", "hour", "month", "dow")
    values, names = calendar_features(labels, features)
    assert values.shape == (len(labels), 2 * len(features)) and len(names) == values.shape[1]
    np.testing.assert_allclose(values[:, 0::2] ** 2 + values[:, 1::2] ** 2, 1.0)
