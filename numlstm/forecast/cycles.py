"""Calendar features: where each time label sits in its day, week, month and
year, as (sin, cos) columns, in any calendar (numpy datetimes and cftime's
``noleap``, ``360_day``, ``all_leap``, ``julian``, ...)."""

from __future__ import annotations

import datetime

import numpy as np

from numlstm.forecast.timeaxis import check_time_axis

__all__ = ["CALENDAR_FEATURES", "calendar_features"]

CALENDAR_FEATURES = ("doy", "hour", "month", "dow")


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
