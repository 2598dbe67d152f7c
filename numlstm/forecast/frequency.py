"""Frequencies of a time axis: offset aliases across pandas and xarray versions,
the step checked or inferred, and the advice an irregular axis gets.

The helpers of :mod:`numlstm.forecast.timeaxis`, which is the door to them
(its :func:`~numlstm.forecast.timeaxis.infer_frequency` and
:func:`~numlstm.forecast.timeaxis.continue_time_axis`); an axis here is a
:class:`~numlstm.forecast.timeaxis.TimeAxis`, read by its attributes.
"""

from __future__ import annotations

import datetime
import re
import warnings

import numpy as np
import pandas as pd
import xarray as xr

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
EXAMPLE_ALIASES = "'D', 'h', '6h', '7D', 'MS', 'ME', 'QS-JAN' or 'YS'"


def sort_keys(index, kind):
    """An array that orders and equates like the labels themselves."""
    if kind == "datetime64":
        return np.asarray(index.asi8)
    # cftime objects compare in C; CFTimeIndex.asi8 is a slow Python loop
    return np.asarray(index, dtype=object if kind == "cftime" else None)


def date_range(start, periods, freq, axis):
    """A range of labels of the axis's kind, starting at (or after) start."""
    if axis.kind == "datetime64":
        unit = getattr(axis.index, "unit", None)
        kwargs = {"unit": unit} if unit is not None else {}
        return pd.date_range(start=start, periods=periods, freq=freq, **kwargs)
    date_range = getattr(xr, "date_range", None)
    if date_range is None:  # xarray < 2023.4
        return xr.cftime_range(start=start, periods=periods, freq=freq, calendar=axis.calendar)
    return date_range(start=start, periods=periods, freq=freq, calendar=axis.calendar, use_cftime=True)


def normalise_freq(freq, axis):
    """freq as an alias this pandas/xarray accepts for the axis, or raise."""
    if isinstance(freq, (bool, np.bool_)) or isinstance(freq, (int, np.integer)):
        raise TypeError(
            f"freq={freq!r} is an integer step, which only integer axes take; "
            f"{axis.name} holds {axis.kind} labels: pass an offset alias such as "
            f"{EXAMPLE_ALIASES}."
        )
    if isinstance(freq, (pd.DateOffset, pd.Timedelta, datetime.timedelta, np.timedelta64)):
        freq = pd.tseries.frequencies.to_offset(freq).freqstr
    if not isinstance(freq, str):
        raise TypeError(
            f"freq must be an offset alias string such as {EXAMPLE_ALIASES}; "
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
                probe = date_range("2000-01-01", 2, candidate, axis)
        except (ValueError, TypeError, KeyError, Warning) as err:
            problem = problem or err
            continue
        if not sort_keys(probe, axis.kind)[1] > sort_keys(probe, axis.kind)[0]:
            raise ValueError(
                f"freq={freq!r} does not step forward in time; give a positive step "
                f"such as {EXAMPLE_ALIASES}."
            )
        return candidate
    raise ValueError(
        f"freq={freq!r} is not a frequency for {axis.kind} labels"
        f"{' in the ' + axis.calendar + ' calendar' if axis.kind == 'cftime' else ''} "
        f"({problem}); use an offset alias such as {EXAMPLE_ALIASES}."
    )


def fill_advice(name, freq):
    """The advice for an axis with gaps: fill them with NaN rows (numlstm never does)."""
    return (
        f"if the axis has gaps, fill them with NaN rows first, e.g. "
        f"`data.resample({kw(name, repr(freq))}).asfreq()` or "
        f"`data.reindex({kw(name, '...')})`: numlstm never fills gaps silently."
    )


def kw(name, value):
    """How to write {name: value} as keyword arguments in advice."""
    return f"{name}={value}" if name.isidentifier() else f"{{{name!r}: {value}}}"


def check_fits(axis, freq):
    """Raise, naming the first label off the grid, unless every label is one ``freq`` after the last."""
    index, name = axis.index, axis.name
    expected = date_range(index[0], len(index), freq, axis)
    if len(expected) == len(index):
        wrong = np.flatnonzero(sort_keys(expected, axis.kind) != sort_keys(index, axis.kind))
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
        + fill_advice(name, freq)
    )


def _infer_freq(index):
    """xarray's inferred alias of ``index``, or None where it is irregular."""
    try:
        return xr.infer_freq(index)
    except ValueError:
        return None


def infer_datetime_freq(axis):
    """The step of a datetime or cftime axis, or raise, naming where its regular prefix ends."""
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
            f"its first steps differ: {name}[0] -> {name}[1] is {step_text(step_a)}, "
            f"{name}[1] -> {name}[2] is {step_text(step_b)}"
        )
        example = "'D'"
    else:
        prefix_freq = _infer_freq(index[:lo])
        where = (
            f"its first {lo} labels step by {prefix_freq!r}, but {name}[{lo}] = "
            f"{index[lo]} comes {step_text(index[lo] - index[lo - 1])} after "
            f"{name}[{lo - 1}] = {index[lo - 1]}"
        )
        example = repr(prefix_freq)
    raise ValueError(
        f"{name} is irregular, so its frequency cannot be inferred: {where}. "
        f"Pass freq= explicitly (e.g. freq={example}); "
        + fill_advice(name, example.strip("'"))
    )


def step_text(delta):
    """A time difference as people read it ('1 days 00:00:00')."""
    return str(pd.Timedelta(delta))


def integer_step(axis, freq):
    """The step of an integer axis, inferred or ``freq`` checked against it, or raise."""
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
                f"first, e.g. `data.reindex({kw(name, f'np.arange({values[0]}, {values[-1] + 1}, {step})')})`: "
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
            f"rows first, e.g. `data.reindex({kw(name, f'np.arange({values[0]}, {values[-1] + 1}, {step})')})`: "
            "numlstm never fills gaps silently."
        )
    return step
