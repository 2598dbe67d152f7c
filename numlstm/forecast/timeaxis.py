"""The time axis of a forecast: validate it, find its step, continue it.

A forecast starts one step after the last observed label, so the Forecaster
needs to know what the time axis is (numpy ``datetime64``, a cftime calendar,
or plain integer steps), that it is clean (sorted, no duplicates, no NaT) and
what its step is. Nothing here sorts, deduplicates or fills user data: every
problem is reported with the call that fixes it.

The same four functions serve numpy datetimes and every cftime calendar
(``standard``, ``proleptic_gregorian``, ``noleap``, ``all_leap``,
``360_day``, ``julian``):

- :func:`check_time_axis` validates a coordinate and returns a
  :class:`TimeAxis` (kind, calendar and a pandas/xarray index);
- :func:`infer_frequency` infers the step, or checks a given ``freq=``
  against the axis;
- :func:`continue_time_axis` gives the next ``n`` labels;
- :func:`calendar_features` gives cyclic (sin, cos) features of the labels.
"""

from __future__ import annotations

import datetime
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

try:
    import cftime
except ImportError:  # cftime is optional: without it there are no cftime axes
    cftime = None

__all__ = [
    "TimeAxis",
    "calendar_features",
    "check_time_axis",
    "continue_time_axis",
    "infer_frequency",
]

# What numpy datetime64 labels are, in CF terms (xarray's convention).
NUMPY_CALENDAR = "proleptic_gregorian"

CALENDAR_FEATURES = ("doy", "hour", "month", "dow")

# Offset aliases renamed in pandas 2.2 (and in xarray for cftime). Newer
# pandas rejects the old names and newer xarray warns on them; older versions
# know only the old ones. A freq is tried as given, then under its other name.
_LEGACY_TO_MODERN = {
    "M": "ME", "Q": "QE", "Y": "YE", "A": "YE", "AS": "YS", "H": "h",
    "T": "min", "S": "s", "L": "ms", "U": "us", "N": "ns", "BM": "BME",
    "BQ": "BQE", "BA": "BYE", "BY": "BYE", "BAS": "BYS", "SM": "SME",
    "CBM": "CBME",
}  # fmt: skip
_MODERN_TO_LEGACY = {
    "ME": "M", "QE": "Q", "YE": "A", "h": "H", "s": "S", "ms": "L", "us": "U",
    "ns": "N", "BME": "BM", "BQE": "BQ", "BYE": "BA", "SME": "SM", "CBME": "CBM",
}  # fmt: skip
_ALIAS = re.compile(r"^([+-]?\d*)([A-Za-z]+)(-[A-Za-z]{3})?$")
_EXAMPLE_ALIASES = "'D', 'h', '6h', '7D', 'MS', 'ME', 'QS-JAN' or 'YS'"


@dataclass(frozen=True, eq=False)
class TimeAxis:
    """A validated time axis, as returned by :func:`check_time_axis`.

    Attributes
    ----------
    name : str
        The dimension name used in messages.
    kind : {"datetime64", "cftime", "integer"}
        What the labels are.
    calendar : str or None
        The CF calendar: ``"proleptic_gregorian"`` for numpy datetimes, the
        index's calendar for cftime (``"noleap"``, ``"360_day"``, ...) and
        None for integer axes.
    index : pandas.Index
        The labels as a ``pd.DatetimeIndex``, an ``xr.CFTimeIndex`` or an
        integer ``pd.Index``; sorted, unique and without NaT.
    """

    name: str
    kind: str
    calendar: str | None
    index: pd.Index

    def __len__(self):
        return len(self.index)


def check_time_axis(index_or_coord, *, name=None):
    """Validate a time coordinate and say what kind of labels it holds.

    Parameters
    ----------
    index_or_coord : xarray.DataArray, pandas.Index, xarray.CFTimeIndex or array_like
        One-dimensional labels: numpy ``datetime64``, cftime datetimes (one
        calendar) or integers.
    name : str, optional
        The dimension name used in messages. Defaults to the coordinate's own
        name, else ``"time"``.

    Returns
    -------
    TimeAxis
        ``kind``, ``calendar`` and ``index`` of the axis.

    Raises
    ------
    TypeError
        For labels of another dtype (floats, strings, timedeltas, tz-aware or
        mixed-calendar datetimes).
    ValueError
        If the axis is not 1-D, is empty, holds NaT, is not increasing or has
        duplicate labels. Nothing is ever sorted or dropped silently.

    Examples
    --------
    >>> import pandas as pd
    >>> axis = check_time_axis(pd.date_range("2000-01-01", periods=3, freq="D"))
    >>> axis.kind, axis.calendar, len(axis)
    ('datetime64', 'proleptic_gregorian', 3)
    >>> check_time_axis([0, 2, 1])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: time is not sorted: it decreases at position 2 (time[1] = 2, ...). Sort it ...
    """
    if isinstance(index_or_coord, TimeAxis):
        return index_or_coord
    name = _axis_name(index_or_coord, name)
    index, kind = _as_index(index_or_coord, name)
    if kind == "cftime":
        calendar = index.calendar
    elif kind == "datetime64":
        calendar = NUMPY_CALENDAR
    else:
        calendar = None

    keys = _sort_keys(index, kind)
    decreasing = np.flatnonzero(keys[1:] < keys[:-1])
    if decreasing.size:
        i = int(decreasing[0]) + 1
        raise ValueError(
            f"{name} is not sorted: it decreases at position {i} "
            f"({name}[{i - 1}] = {index[i - 1]}, {name}[{i}] = {index[i]}). "
            f"Sort it explicitly with `data.sortby({name!r})`; "
            "numlstm never reorders data silently."
        )
    repeated = np.flatnonzero(keys[1:] == keys[:-1])
    if repeated.size:
        i = int(repeated[0])
        count = int(np.count_nonzero(keys == keys[i]))
        raise ValueError(
            f"{name} has duplicate labels: {index[i]} appears {count} times "
            f"(first at positions {i} and {i + 1}). Drop the repeats with "
            f"`data.drop_duplicates({name!r})` (keeps the first) or combine them "
            f"with `data.groupby({name!r}).mean()`."
        )
    return TimeAxis(name=name, kind=kind, calendar=calendar, index=index)


def infer_frequency(coord, freq=None, *, name=None):
    """Infer the step of a time axis, or check that a given one fits it.

    Parameters
    ----------
    coord : xarray.DataArray, pandas.Index, array_like or TimeAxis
        The time labels (see :func:`check_time_axis`).
    freq : str or int, optional
        For datetime and cftime axes, an offset alias (``"D"``, ``"h"``,
        ``"6h"``, ``"7D"``, ``"MS"``, ``"ME"``, ``"QS-JAN"``, ``"YS"``, ...;
        pandas offsets and timedeltas are accepted too, and pre-pandas-2.2
        names such as ``"M"`` or ``"H"`` are translated). For integer axes, a
        positive integer step. Every step of the axis must be exactly one
        ``freq`` step. If omitted, the step is inferred with
        :func:`xarray.infer_freq` (at least 3 labels) or, for integer axes,
        from the constant difference (at least 2 labels).
    name : str, optional
        The dimension name used in messages.

    Returns
    -------
    str or int
        An offset alias that regenerates the axis from its first label, or
        the integer step.

    Raises
    ------
    ValueError
        If the axis is irregular (has gaps) and no ``freq`` is given, if it is
        too short to infer a step, or if it does not fit the given ``freq``.
        Gaps are never filled silently: add NaN rows first, e.g. with
        ``data.resample(time="D").asfreq()``.
    TypeError
        If ``freq`` is of the wrong type for the axis.

    Examples
    --------
    >>> import xarray as xr
    >>> times = xr.date_range("2000-01-01", periods=4, freq="MS",
    ...                       calendar="noleap", use_cftime=True)
    >>> infer_frequency(times)
    'MS'
    >>> infer_frequency([10, 15, 20])
    5
    >>> infer_frequency(times, freq="D")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: time does not step by 'D': time[1] = 2000-02-01 00:00:00, but one 'D' step ...
    """
    axis = check_time_axis(coord, name=name)
    if axis.kind == "integer":
        return _integer_step(axis, freq)
    if freq is None:
        return _infer_datetime_freq(axis)
    freq = _normalise_freq(freq, axis)
    _check_fits(axis, freq)
    return freq


def continue_time_axis(coord, n, freq=None, *, name=None):
    """The ``n`` labels that follow the last one, at the axis's frequency.

    Parameters
    ----------
    coord : xarray.DataArray, pandas.Index, array_like or TimeAxis
        The time labels (see :func:`check_time_axis`).
    n : int
        How many labels to add; at least 1.
    freq : str or int, optional
        The step (see :func:`infer_frequency`); inferred when omitted.
    name : str, optional
        The dimension name used in messages.

    Returns
    -------
    xarray.DataArray, pandas.Index or numpy.ndarray
        The same container as ``coord``, with the same dtype or calendar: a
        DataArray (a coordinate of its dimension when ``coord`` was one, with
        its name and attrs), an index of the same type (a ``RangeIndex`` stays
        one), or a numpy array. A :class:`TimeAxis` gives an index.

    Raises
    ------
    ValueError
        If ``n`` < 1, or for the reasons given in :func:`infer_frequency`.

    Examples
    --------
    >>> import xarray as xr
    >>> times = xr.date_range("2001-02-28", periods=3, freq="D",
    ...                       calendar="360_day", use_cftime=True)
    >>> [str(t) for t in times]
    ['2001-02-28 00:00:00', '2001-02-29 00:00:00', '2001-02-30 00:00:00']
    >>> [str(t) for t in continue_time_axis(times, 2)]
    ['2001-03-01 00:00:00', '2001-03-02 00:00:00']
    >>> continue_time_axis(np.array([3, 5, 7]), 2)
    array([ 9, 11])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer number of steps; got {n!r}.")
    if n < 1:
        raise ValueError(f"n must be at least 1 (the number of labels to add); got {n}.")
    axis = check_time_axis(coord, name=name)
    step = infer_frequency(axis, freq)
    index = axis.index
    last = index[-1]

    if axis.kind == "integer":
        new = last + step * np.arange(1, n + 1, dtype=np.int64)
        if isinstance(index, pd.RangeIndex):
            new_index = pd.RangeIndex(int(new[0]), int(new[-1]) + step, step)
        else:
            if not np.array_equal(new.astype(index.dtype), new):
                raise ValueError(
                    f"{axis.name} cannot be continued by {n} steps of {step} past {last}: "
                    f"the labels overflow dtype {index.dtype}; cast the axis to int64 first."
                )
            new_index = pd.Index(new.astype(index.dtype), dtype=index.dtype)
    else:
        try:
            labels = _date_range(last, n + 1, step, axis)
        except (OverflowError, pd.errors.OutOfBoundsDatetime) as err:
            raise ValueError(
                f"{axis.name} cannot be continued by {n} steps of {step!r} past "
                f"{last}: {err}. numpy datetime64 labels end in 2262 at "
                "nanosecond resolution; use a coarser unit (e.g. "
                "`.astype('datetime64[s]')`) or cftime labels."
            ) from None
        if _sort_keys(labels[:1], axis.kind)[0] != _sort_keys(index[-1:], axis.kind)[0]:
            raise ValueError(  # infer_frequency has checked this; kept as a guard
                f"{axis.name}[-1] = {last} does not fall on a {step!r} step."
            )
        new_index = labels[1:]
    return _like(coord, new_index, axis)


def calendar_features(coord, features=("doy",), *, name=None):
    """Cyclic (sin, cos) features of the time labels, for any calendar.

    Parameters
    ----------
    coord : xarray.DataArray, pandas.Index, array_like or TimeAxis
        Datetime or cftime labels (see :func:`check_time_axis`).
    features : sequence of str or str
        Any of

        - ``"doy"``: day of year, ``2*pi*(dayofyear - 1)/days_in_year`` with
          the calendar's own year length (360; 365; 366 in leap years of
          calendars that have them);
        - ``"hour"``: time of day, ``2*pi*hour/24`` (minutes and seconds count
          as fractions of an hour);
        - ``"month"``: ``2*pi*(month - 1)/12``;
        - ``"dow"``: day of week, ``2*pi*dayofweek/7`` with Monday 0 (not for
          the 360_day calendar, whose days are not real days).
    name : str, optional
        The dimension name used in messages.

    Returns
    -------
    values : numpy.ndarray
        float64, shape ``(n_times, 2 * len(features))``: sin and cos of each
        feature, in the order given.
    names : list of str
        ``["doy_sin", "doy_cos", ...]``, one per column.

    Raises
    ------
    ValueError
        For integer axes (they have no calendar), unknown or repeated feature
        names, and ``"dow"`` on a 360_day calendar.

    Examples
    --------
    >>> import xarray as xr
    >>> times = xr.date_range("2001-01-01", periods=2, freq="D",
    ...                       calendar="360_day", use_cftime=True)
    >>> values, names = calendar_features(times, features=("doy", "month"))
    >>> names
    ['doy_sin', 'doy_cos', 'month_sin', 'month_cos']
    >>> values.shape
    (2, 4)
    >>> values[0]
    array([0., 1., 0., 1.])
    """
    axis = check_time_axis(coord, name=name)
    if isinstance(features, str):
        features = (features,)
    features = list(features)
    unknown = [f for f in features if f not in CALENDAR_FEATURES]
    if unknown or not features:
        raise ValueError(
            f"features must be one or more of {CALENDAR_FEATURES}; got {tuple(features)}."
        )
    if len(set(features)) != len(features):
        raise ValueError(f"features has repeats: {tuple(features)}; give each one once.")
    if axis.kind == "integer":
        raise ValueError(
            f"{axis.name} holds integer labels, which have no calendar; calendar "
            "features need datetime64 or cftime labels (or pass covariates of "
            "your own)."
        )
    if "dow" in features and axis.calendar == "360_day":
        raise ValueError(
            f"{axis.name} uses the 360_day calendar, whose days are not real days, "
            "so the day of week ('dow') is undefined; drop 'dow' from features."
        )

    index = axis.index
    columns, names = [], []
    for feature in features:
        angle = 2 * np.pi * _phase(index, feature, axis.kind)
        columns += [np.sin(angle), np.cos(angle)]
        names += [f"{feature}_sin", f"{feature}_cos"]
    return np.column_stack(columns).astype(np.float64, copy=False), names


# --- validation ---------------------------------------------------------------


def _axis_name(obj, name):
    if name is not None:
        return str(name)
    if isinstance(obj, xr.DataArray):
        own = obj.name if obj.name is not None else (obj.dims[0] if obj.ndim else None)
    else:
        own = getattr(obj, "name", None)
    return own if isinstance(own, str) else "time"


def _as_index(obj, name):
    """The labels as (pandas/xarray index, kind), or TypeError/ValueError."""
    if isinstance(obj, (xr.DataArray, xr.Variable)):
        if obj.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D; got {obj.ndim} dimensions {obj.dims}. "
                f"Pass the time coordinate itself, e.g. data[{name!r}]."
            )
        index = obj.to_index()
    elif isinstance(obj, pd.Index):
        index = obj
    else:
        values = np.asarray(obj)
        if values.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D; got an array of shape {values.shape}."
            )
        if len(values) and values.dtype.kind in "fcUSbmV":
            _unsupported(name, values.dtype)  # before pandas re-types it
        index = pd.Index(values, tupleize_cols=False)
    if isinstance(index, pd.MultiIndex):
        raise TypeError(f"{name} is a MultiIndex; a time axis needs one level of labels.")
    if len(index) == 0:
        raise ValueError(f"{name} is empty; a time axis needs at least one label.")

    if isinstance(index, xr.CFTimeIndex):
        if type(index[0]) is cftime.datetime:
            index = xr.CFTimeIndex(_calendar_date_types(np.asarray(index)), name=index.name)
        return index, "cftime"
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            raise TypeError(
                f"{name} has time-zone-aware labels ({index.dtype}); convert them "
                f"to naive UTC first, e.g. `index.tz_convert(None)`."
            )
        missing = np.flatnonzero(np.asarray(index.isna()))
        if missing.size:
            _missing(name, int(missing[0]), missing.size)
        return index, "datetime64"
    dtype = index.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return index, "integer"
    if dtype == object:
        return _object_labels(index, name)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in ("i", "u"):
        missing = np.flatnonzero(np.asarray(index.isna()))  # pandas nullable integers
        if missing.size:
            _missing(name, int(missing[0]), missing.size)
        return pd.Index(index.to_numpy(dtype=dtype.numpy_dtype)), "integer"
    _unsupported(name, dtype)


def _object_labels(index, name):
    values = np.asarray(index, dtype=object)
    missing = np.flatnonzero([_is_missing(v) for v in values])
    present = values if not missing.size else np.delete(values, missing)
    kinds = {type(v) for v in present}
    if present.size and cftime is not None and all(isinstance(v, cftime.datetime) for v in present):
        if missing.size:
            _missing(name, int(missing[0]), missing.size)
        calendars = sorted({v.calendar for v in present})
        if len(calendars) > 1:
            raise TypeError(
                f"{name} mixes cftime calendars {calendars}; convert to one, e.g. "
                f"`data.convert_calendar({calendars[0]!r}, dim={name!r})`."
            )
        try:
            return xr.CFTimeIndex(_calendar_date_types(values)), "cftime"
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} mixes cftime date types {sorted(t.__name__ for t in kinds)}; "
                "build the labels with one date type, e.g. with `xr.date_range(..., "
                f"calendar={calendars[0]!r}, use_cftime=True)`."
            ) from None
    if present.size and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present
    ):
        if missing.size:
            _missing(name, int(missing[0]), missing.size)
        return pd.Index(np.array(values, dtype=np.int64)), "integer"
    if present.size and all(isinstance(v, (datetime.datetime, np.datetime64)) for v in present):
        advice = f"convert them with `pd.to_datetime(...)` or `data.convert_calendar(..., dim={name!r})`"
    else:
        advice = "use numpy datetime64, cftime datetimes or integers"
    type_names = sorted(t.__name__ for t in kinds) or ["missing values only"]
    raise TypeError(
        f"{name} has dtype object holding {', '.join(type_names)}; expected "
        f"datetime64, cftime or integer labels: {advice}."
    )


_DATE_TYPES = {
    "standard": "DatetimeGregorian", "gregorian": "DatetimeGregorian",
    "proleptic_gregorian": "DatetimeProlepticGregorian", "julian": "DatetimeJulian",
    "noleap": "DatetimeNoLeap", "365_day": "DatetimeNoLeap",
    "all_leap": "DatetimeAllLeap", "366_day": "DatetimeAllLeap", "360_day": "Datetime360Day",
}  # fmt: skip


def _calendar_date_types(values):
    """Generic ``cftime.datetime(..., calendar=c)`` objects as c's own date type.

    xarray's CFTimeIndex does its arithmetic (``asi8``, ``infer_freq``) against
    the calendar-specific types that decoding and ``xr.date_range`` produce;
    with generic objects it raises. The labels themselves do not change.
    """
    date_type = getattr(cftime, _DATE_TYPES.get(values[0].calendar, ""), None)
    if type(values[0]) is not cftime.datetime or date_type is None:
        return values
    return np.array(
        [
            date_type(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond,
                      has_year_zero=v.has_year_zero)
            for v in values
        ],
        dtype=object,
    )


def _is_missing(value):
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _missing(name, first, count):
    raise ValueError(
        f"{name} has {count} missing label(s) (NaT), the first at position {first}. "
        f"Drop those rows first, e.g. `data.isel({_kw(name, f'data[{name!r}].notnull().values')})`; "
        "a forecast needs every step labelled."
    )


def _unsupported(name, dtype):
    kind = getattr(dtype, "kind", "")
    if kind in "fc":
        advice = (
            "if they are encoded times ('days since ...'), decode them with "
            "`xr.decode_cf`; if they are whole steps, cast them with `.astype(int)`"
        )
    elif kind in "USO" or "str" in str(dtype).lower():
        advice = f"parse them first, e.g. `pd.to_datetime(data[{name!r}])`"
    elif kind == "m":
        advice = "add them to a start date, or use integer steps"
    else:
        advice = "use numpy datetime64, cftime datetimes or integers"
    raise TypeError(
        f"{name} has unsupported dtype {dtype}; expected datetime64, cftime or "
        f"integer labels: {advice}."
    )


def _sort_keys(index, kind):
    """An array that orders and equates like the labels themselves."""
    if kind == "datetime64":
        return np.asarray(index.asi8)
    # cftime objects compare in C; CFTimeIndex.asi8 is a slow Python loop
    return np.asarray(index, dtype=object if kind == "cftime" else None)


# --- frequencies --------------------------------------------------------------


def _date_range(start, periods, freq, axis):
    """A range of labels of the axis's kind, starting at (or after) start."""
    if axis.kind == "datetime64":
        unit = getattr(axis.index, "unit", None)
        kwargs = {"unit": unit} if unit is not None else {}
        return pd.date_range(start=start, periods=periods, freq=freq, **kwargs)
    date_range = getattr(xr, "date_range", None)
    if date_range is None:  # xarray < 2023.4
        return xr.cftime_range(start=start, periods=periods, freq=freq, calendar=axis.calendar)
    return date_range(start=start, periods=periods, freq=freq, calendar=axis.calendar, use_cftime=True)


def _normalise_freq(freq, axis):
    """freq as an alias this pandas/xarray accepts for the axis, or raise."""
    if isinstance(freq, (bool, np.bool_)) or isinstance(freq, (int, np.integer)):
        raise TypeError(
            f"freq={freq!r} is an integer step, which only integer axes take; "
            f"{axis.name} holds {axis.kind} labels: pass an offset alias such as "
            f"{_EXAMPLE_ALIASES}."
        )
    if isinstance(freq, (pd.DateOffset, pd.Timedelta, datetime.timedelta, np.timedelta64)):
        freq = pd.tseries.frequencies.to_offset(freq).freqstr
    if not isinstance(freq, str):
        raise TypeError(
            f"freq must be an offset alias string such as {_EXAMPLE_ALIASES}; "
            f"got {type(freq).__name__} {freq!r}."
        )
    candidates = [freq]
    match = _ALIAS.match(freq.strip())
    if match:
        count, base, anchor = match.groups()
        for table in (_LEGACY_TO_MODERN, _MODERN_TO_LEGACY):
            if base in table:
                candidates.append(f"{count}{table[base]}{anchor or ''}")
    problem = None
    for candidate in candidates:
        try:
            with warnings.catch_warnings():
                # a deprecated name warns here; then its other name is tried
                warnings.simplefilter("error")
                probe = _date_range("2000-01-01", 2, candidate, axis)
        except (ValueError, TypeError, KeyError, Warning) as err:
            problem = problem or err
            continue
        if not _sort_keys(probe, axis.kind)[1] > _sort_keys(probe, axis.kind)[0]:
            raise ValueError(
                f"freq={freq!r} does not step forward in time; give a positive step "
                f"such as {_EXAMPLE_ALIASES}."
            )
        return candidate
    raise ValueError(
        f"freq={freq!r} is not a frequency for {axis.kind} labels"
        f"{' in the ' + axis.calendar + ' calendar' if axis.kind == 'cftime' else ''} "
        f"({problem}); use an offset alias such as {_EXAMPLE_ALIASES}."
    )


def _fill_advice(name, freq):
    return (
        f"if the axis has gaps, fill them with NaN rows first, e.g. "
        f"`data.resample({_kw(name, repr(freq))}).asfreq()` or "
        f"`data.reindex({_kw(name, '...')})`: numlstm never fills gaps silently."
    )


def _kw(name, value):
    """How to write {name: value} as keyword arguments in advice."""
    return f"{name}={value}" if name.isidentifier() else f"{{{name!r}: {value}}}"


def _check_fits(axis, freq):
    index, name = axis.index, axis.name
    expected = _date_range(index[0], len(index), freq, axis)
    if len(expected) == len(index):
        wrong = np.flatnonzero(_sort_keys(expected, axis.kind) != _sort_keys(index, axis.kind))
    else:
        wrong = np.array([0])
    if not wrong.size:
        return
    i = int(wrong[0])
    if i == 0:
        where = (
            f"{name}[0] = {index[0]} does not fall on a {freq!r} step "
            f"(the {freq!r} steps from there start at {expected[0]})"
        )
    else:
        where = (
            f"{name}[{i}] = {index[i]}, but one {freq!r} step after "
            f"{name}[{i - 1}] = {index[i - 1]} is {expected[i]}"
        )
    raise ValueError(
        f"{name} does not step by {freq!r}: {where}. Pass the frequency the axis "
        "really has (infer_frequency infers it when the axis is regular); "
        + _fill_advice(name, freq)
    )


def _infer_freq(index):
    try:
        return xr.infer_freq(index)
    except ValueError:
        return None


def _infer_datetime_freq(axis):
    index, name = axis.index, axis.name
    if len(index) < 3:
        raise ValueError(
            f"{name} has only {len(index)} label(s); inferring a frequency needs at "
            f"least 3. Pass freq= explicitly, e.g. freq='D'."
        )
    freq = _infer_freq(index)
    if freq is not None:
        return freq
    # The longest regular prefix: regular for 3 <= k <= lo, irregular at hi.
    lo, hi = 2, len(index)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _infer_freq(index[:mid]) is None:
            hi = mid
        else:
            lo = mid
    if lo < 3:
        step_a, step_b = index[1] - index[0], index[2] - index[1]
        where = (
            f"its first steps differ: {name}[0] -> {name}[1] is {_step(step_a)}, "
            f"{name}[1] -> {name}[2] is {_step(step_b)}"
        )
        example = "'D'"
    else:
        prefix_freq = _infer_freq(index[:lo])
        where = (
            f"its first {lo} labels step by {prefix_freq!r}, but {name}[{lo}] = "
            f"{index[lo]} comes {_step(index[lo] - index[lo - 1])} after "
            f"{name}[{lo - 1}] = {index[lo - 1]}"
        )
        example = repr(prefix_freq)
    raise ValueError(
        f"{name} is irregular, so its frequency cannot be inferred: {where}. "
        f"Pass freq= explicitly (e.g. freq={example}); "
        + _fill_advice(name, example.strip("'"))
    )


def _step(delta):
    return str(pd.Timedelta(delta))


def _integer_step(axis, freq):
    index, name = axis.index, axis.name
    values = np.asarray(index)
    steps = np.diff(values)
    if freq is None:
        if len(values) < 2:
            raise ValueError(
                f"{name} has a single label; inferring its step needs at least 2. "
                "Pass freq= explicitly, e.g. freq=1."
            )
        step = int(steps[0])
        irregular = np.flatnonzero(steps != steps[0])
        if irregular.size:
            i = int(irregular[0])
            raise ValueError(
                f"{name} is irregular, so its step cannot be inferred: it starts "
                f"stepping by {step}, but {name}[{i}] = {values[i]} -> {name}[{i + 1}] = "
                f"{values[i + 1]} is a step of {int(steps[i])}. Pass freq= explicitly "
                f"(e.g. freq={step}); if the axis has gaps, fill them with NaN rows "
                f"first, e.g. `data.reindex({_kw(name, f'np.arange({values[0]}, {values[-1] + 1}, {step})')})`: "
                "numlstm never fills gaps silently."
            )
        return step
    if isinstance(freq, (bool, np.bool_)) or not isinstance(freq, (int, np.integer)):
        raise TypeError(
            f"{name} holds integer labels, so freq must be a positive integer step; "
            f"got {type(freq).__name__} {freq!r}."
        )
    if freq < 1:
        raise ValueError(f"freq must be a positive integer step; got {freq}.")
    step = int(freq)
    wrong = np.flatnonzero(steps != step)
    if wrong.size:
        i = int(wrong[0]) + 1
        raise ValueError(
            f"{name} does not step by {step}: {name}[{i}] = {values[i]}, but one step "
            f"after {name}[{i - 1}] = {values[i - 1]} is {values[i - 1] + step}. Pass "
            "the step the axis really has; if the axis has gaps, fill them with NaN "
            f"rows first, e.g. `data.reindex({_kw(name, f'np.arange({values[0]}, {values[-1] + 1}, {step})')})`: "
            "numlstm never fills gaps silently."
        )
    return step


# --- output -------------------------------------------------------------------


def _like(coord, new_index, axis):
    """new_index in the container (and dtype, name, attrs) coord came in."""
    if isinstance(coord, TimeAxis):
        return new_index
    if isinstance(coord, pd.Index):
        return new_index.rename(coord.name)
    if isinstance(coord, (xr.DataArray, xr.Variable)):
        values = _values(new_index, axis, coord.dtype)
        dim = coord.dims[0]
        if isinstance(coord, xr.Variable):
            return xr.Variable((dim,), values, attrs=dict(coord.attrs))
        coords = {dim: values} if coord.name == dim else None
        return xr.DataArray(values, dims=(dim,), coords=coords, name=coord.name, attrs=dict(coord.attrs))
    return _values(new_index, axis, np.asarray(coord).dtype)


def _values(new_index, axis, dtype):
    values = new_index.to_numpy()
    if axis.kind == "datetime64" and values.dtype != dtype:
        cast = values.astype(dtype)
        if not np.array_equal(cast.astype(values.dtype), values):
            raise ValueError(
                f"the continued {axis.name} labels do not fit dtype {dtype} "
                f"(first: {new_index[0]}); use a finer datetime64 unit."
            )
        values = cast
    elif axis.kind == "integer":
        values = values.astype(dtype)
    return values


# --- calendar features ----------------------------------------------------------


def _phase(index, feature, kind):
    """Where each label sits in the feature's cycle, in [0, 1)."""
    if feature == "doy":
        return (_field(index, "day_of_year", "dayofyear") - 1) / _days_in_year(index, kind)
    if feature == "hour":
        seconds = (
            np.asarray(index.hour) * 3600.0
            + np.asarray(index.minute) * 60.0
            + np.asarray(index.second)
            + np.asarray(index.microsecond) / 1e6
        )
        return seconds / 86400.0
    if feature == "month":
        return (np.asarray(index.month) - 1) / 12.0
    return _field(index, "day_of_week", "dayofweek") / 7.0  # "dow"


def _field(index, name, old_name):
    """A datetime field under its pandas >= 1.1 name, else its old one."""
    return np.asarray(getattr(index, name) if hasattr(index, name) else getattr(index, old_name))


def _days_in_year(index, kind):
    years = np.asarray(index.year)
    if kind == "datetime64":
        return 365.0 + np.asarray(index.is_leap_year)
    # The day of year of each year's last day, from the calendar itself (360, 365
    # or 366), so that day-of-year phases stay in [0, 1) as cftime counts them.
    jan_1 = index[0].replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    one_day = datetime.timedelta(days=1)
    unique, inverse = np.unique(years, return_inverse=True)
    lengths = np.array(
        [(jan_1.replace(year=int(y) + 1) - one_day).dayofyr for y in unique], dtype=np.float64
    )
    return lengths[inverse.reshape(-1)]
