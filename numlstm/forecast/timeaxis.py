"""The time axis of a forecast: validate it, find its step, continue it.

A forecast starts one step after the last observed label, so the Forecaster
needs to know what the time axis is (numpy ``datetime64``, a cftime calendar,
or plain integer steps), that it is clean (sorted, no duplicates, no NaT) and
what its step is. Nothing here sorts, deduplicates or fills user data: every
problem is reported with the call that fixes it.

The same three functions serve numpy datetimes and every cftime calendar
(``standard``, ``proleptic_gregorian``, ``noleap``, ``all_leap``,
``360_day``, ``julian``):

- :func:`check_time_axis` validates a coordinate and returns a
  :class:`TimeAxis` (kind, calendar and a pandas/xarray index);
- :func:`infer_frequency` infers the step, or checks a given ``freq=``
  against the axis;
- :func:`continue_time_axis` gives the next ``n`` labels.

The offset aliases and the step's arithmetic are in
:mod:`numlstm.forecast.frequency`; the calendar features of the labels
(cyclic sin and cos of the day, week and year) in
:mod:`numlstm.forecast.cycles`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from numlstm.forecast import frequency

try:
    import cftime
except ImportError:  # cftime is optional: without it there are no cftime axes
    cftime = None

__all__ = [
    "TimeAxis",
    "check_time_axis",
    "continue_time_axis",
    "infer_frequency",
]

# What numpy datetime64 labels are, in CF terms (xarray's convention).
NUMPY_CALENDAR = "proleptic_gregorian"


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

    keys = frequency.sort_keys(index, kind)
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
        return frequency.integer_step(axis, freq)
    if freq is None:
        return frequency.infer_datetime_freq(axis)
    freq = frequency.normalise_freq(freq, axis)
    frequency.check_fits(axis, freq)
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
            labels = frequency.date_range(last, n + 1, step, axis)
        except (OverflowError, pd.errors.OutOfBoundsDatetime) as err:
            raise ValueError(
                f"{axis.name} cannot be continued by {n} steps of {step!r} past "
                f"{last}: {err}. numpy datetime64 labels end in 2262 at "
                "nanosecond resolution; use a coarser unit (e.g. "
                "`.astype('datetime64[s]')`) or cftime labels."
            ) from None
        if frequency.sort_keys(labels[:1], axis.kind)[0] != frequency.sort_keys(index[-1:], axis.kind)[0]:
            raise ValueError(  # infer_frequency has checked this; kept as a guard
                f"{axis.name}[-1] = {last} does not fall on a {step!r} step."
            )
        new_index = labels[1:]
    return _like(coord, new_index, axis)


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
        f"Drop those rows first, e.g. `data.isel({frequency.kw(name, f'data[{name!r}].notnull().values')})`; "
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
