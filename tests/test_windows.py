"""Windows, per-series scaling and relative targets for the Forecaster."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numlstm.forecast.windows import (
    SeriesScaler,
    Windows,
    absolute_targets,
    input_windows,
    make_windows,
    relative_targets,
)


def tiny():
    """2 series x 7 steps x 2 features; value = 100*series + 10*time + feature."""
    s, t, f = np.meshgrid(np.arange(2), np.arange(7), np.arange(2), indexing="ij")
    return (100.0 * s + 10.0 * t + f).astype(np.float64)


def reference_windows(values, lookback, horizon, target_index, origins=None):
    """Slow, obvious version: one Python loop per window."""
    n_series, n_time, _ = values.shape
    if origins is None:
        origins = range(lookback - 1, n_time - horizon)
    out = []
    for s in range(n_series):
        for o in origins:
            x = values[s, o - lookback + 1 : o + 1]
            y = values[s, o + 1 : o + 1 + horizon][:, target_index]
            if np.isfinite(x).all() and np.isfinite(y).any():
                out.append((s, o, x, y))
    return out


# -- make_windows --------------------------------------------------------------


def test_windows_without_inputs_are_the_same_windows():
    values = tiny()
    values[1, 0, 1] = np.nan
    full = make_windows(values, lookback=3, horizon=2, target_index=[0])
    lean = make_windows(values, lookback=3, horizon=2, target_index=[0], inputs=False)
    assert lean.X is None
    for name in ("Y", "mask", "series", "origin"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))


def test_tiny_example_exact_windows():
    values = tiny()
    values[1, 0, 1] = np.nan  # series 1: the input of origin 2 is incomplete -> skipped
    values[0, 6, 0] = np.nan  # series 0: origin 4 has targets t=5 (seen), t=6 (missing)
    before = values.copy()
    w = make_windows(values, lookback=3, horizon=2, target_index=[0])
    np.testing.assert_array_equal(values, before)
    assert isinstance(w, Windows) and len(w) == 5
    assert w.series.tolist() == [0, 0, 0, 1, 1]
    assert w.origin.tolist() == [2, 3, 4, 3, 4]
    assert w.X.shape == (5, 3, 2) and w.Y.shape == (5, 2, 1) and w.mask.shape == (5, 2, 1)
    expected_X = [
        [[0, 1], [10, 11], [20, 21]],
        [[10, 11], [20, 21], [30, 31]],
        [[20, 21], [30, 31], [40, 41]],
        [[110, 111], [120, 121], [130, 131]],
        [[120, 121], [130, 131], [140, 141]],
    ]
    expected_Y = [[[30], [40]], [[40], [50]], [[50], [0]], [[140], [150]], [[150], [160]]]
    expected_mask = [[[True], [True]]] * 2 + [[[True], [False]]] + [[[True], [True]]] * 2
    np.testing.assert_array_equal(w.X, expected_X)
    np.testing.assert_array_equal(w.Y, expected_Y)
    np.testing.assert_array_equal(w.mask, expected_mask)
    assert not np.isnan(w.Y).any()


def test_two_targets_in_given_order():
    w = make_windows(tiny(), 3, 2, [1, 0])
    assert len(w) == 6
    np.testing.assert_array_equal(w.Y[0], [[31, 30], [41, 40]])


def test_nan_input_skips_every_window_that_sees_it():
    values = tiny()
    values[0, 3, 0] = np.nan  # inputs of origins 3, 4, 5 (lookback 3) and target of origin 2
    w = make_windows(values, 3, 1, [1])
    assert [(s, o) for s, o in zip(w.series, w.origin)] == [(0, 2), (1, 2), (1, 3), (1, 4), (1, 5)]


def test_all_nan_targets_skipped_partial_kept_and_masked():
    values = tiny()
    values[0, 3:5, 0] = np.nan  # origin 2 (targets t3, t4) all missing; origins 1 and 3 partial
    w = make_windows(values[:1, :6], 2, 2, [0])
    # origin 1: targets t2 (seen), t3 (missing); origin 3 needs input t3 -> skipped; origin 4 not possible
    assert w.origin.tolist() == [1]
    np.testing.assert_array_equal(w.mask[0, :, 0], [True, False])
    np.testing.assert_array_equal(w.Y[0, :, 0], [20, 0])
    values = tiny()
    values[0, 5:7, 0] = np.nan  # origin 4 targets all missing, but feature 1 is not a target
    w = make_windows(values[:1], 3, 2, [0])
    assert w.origin.tolist() == [2, 3]  # origin 3: t4 seen, t5 missing; origin 4: none seen


def test_origins_argument():
    w = make_windows(tiny(), 3, 2, [0], origins=[4, 2])
    assert w.series.tolist() == [0, 0, 1, 1]
    assert w.origin.tolist() == [4, 2, 4, 2]
    np.testing.assert_array_equal(w.X[1], tiny()[0, 0:3])
    empty = make_windows(tiny(), 3, 2, [0], origins=np.array([], dtype=int))
    assert empty.X.shape == (0, 3, 2) and empty.Y.shape == (0, 2, 1) and empty.series.shape == (0,)


def test_float32_kept():
    w = make_windows(tiny().astype(np.float32), 2, 1, [0])
    assert w.X.dtype == np.float32 and w.Y.dtype == np.float32 and w.mask.dtype == bool


@settings(max_examples=60, deadline=None)
@given(
    n_series=st.integers(1, 3),
    n_time=st.integers(2, 12),
    n_features=st.integers(1, 3),
    lookback=st.integers(1, 5),
    horizon=st.integers(1, 4),
    nan_fraction=st.sampled_from([0.0, 0.1, 0.4]),
    seed=st.integers(0, 2**16),
)
def test_windows_equal_slices_of_values(n_series, n_time, n_features, lookback, horizon, nan_fraction, seed):
    if n_time < lookback + horizon:
        return
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_series, n_time, n_features))
    values[rng.random(values.shape) < nan_fraction] = np.nan
    target_index = list(rng.permutation(n_features)[: rng.integers(1, n_features + 1)])
    before = values.copy()
    w = make_windows(values, lookback, horizon, target_index)
    np.testing.assert_array_equal(values, before)
    ref = reference_windows(values, lookback, horizon, target_index)
    assert [(s, o) for s, o, _, _ in ref] == list(zip(w.series.tolist(), w.origin.tolist()))
    for i, (_, _, x, y) in enumerate(ref):
        np.testing.assert_array_equal(w.X[i], x)
        np.testing.assert_array_equal(w.mask[i], np.isfinite(y))
        np.testing.assert_array_equal(w.Y[i], np.where(np.isfinite(y), y, 0))


# -- input_windows -------------------------------------------------------------


def test_input_windows_default_last_step_and_nan_series():
    values = tiny()
    values[1, 5, 0] = np.nan
    before = values.copy()
    X, series, origin, ok = input_windows(values, 3)
    np.testing.assert_array_equal(values, before)
    assert series.tolist() == [0, 1] and origin.tolist() == [6, 6] and ok.tolist() == [True, False]
    np.testing.assert_array_equal(X[0], values[0, 4:7])
    np.testing.assert_array_equal(X[1], np.zeros((3, 2)))


def test_input_windows_origins():
    X, series, origin, ok = input_windows(tiny(), 2, origins=[1, 6])
    assert series.tolist() == [0, 0, 1, 1] and origin.tolist() == [1, 6, 1, 6] and ok.all()
    np.testing.assert_array_equal(X[2], tiny()[1, 0:2])


# -- SeriesScaler --------------------------------------------------------------


def test_scaler_uses_training_slice_only():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 20, 2))
    a = SeriesScaler.fit(values, slice(0, 12))
    changed = values.copy()
    changed[:, 12:] = 1e6
    b = SeriesScaler.fit(changed, slice(0, 12))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_allclose(a.mean, values[:, :12].mean(axis=1))
    np.testing.assert_allclose(a.std, values[:, :12].std(axis=1))


def test_scaler_nan_aware_and_degenerate_series():
    values = tiny()
    values[0, 0, 0] = np.nan
    values[1, :, 0] = np.nan  # all-NaN (series, feature)
    values[1, :, 1] = 5.0  # constant
    before = values.copy()
    sc = SeriesScaler.fit(values)
    np.testing.assert_array_equal(values, before)
    np.testing.assert_allclose(sc.mean[0, 0], np.mean(np.arange(10, 70, 10)))
    np.testing.assert_allclose(sc.std[0, 0], np.std(np.arange(10, 70, 10)))
    assert sc.mean[1, 0] == 0 and sc.std[1, 0] == 1
    assert sc.mean[1, 1] == 5 and sc.std[1, 1] == 1
    z = sc.transform(values)
    assert np.isnan(z[1, :, 0]).all() and (z[1, :, 1] == 0).all()


def test_scaler_round_trip_and_targets():
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 2.0, size=(2, 15, 3))
    before = values.copy()
    sc = SeriesScaler.fit(values, slice(0, 10))
    z = sc.transform(values)
    np.testing.assert_array_equal(values, before)
    np.testing.assert_allclose(sc.inverse_transform(z), values, rtol=1e-12, atol=1e-12)
    # Target windows of the scaled data come back to the raw targets.
    w = make_windows(z, 4, 3, [2, 0])
    Y = sc.inverse_transform_targets(w.Y, w.series, [2, 0])
    raw = make_windows(values, 4, 3, [2, 0])
    np.testing.assert_allclose(Y, raw.Y, rtol=1e-12, atol=1e-12)
    # Per-series arrays with a subset of features.
    np.testing.assert_allclose(sc.inverse_transform(z[:, :, [1]], [1]), values[:, :, [1]], rtol=1e-12)
    # In place (a streamed fit's buffers): the same numbers, in the array given.
    buffer = values.copy()
    assert sc.transform(buffer, inplace=True) is buffer
    np.testing.assert_array_equal(buffer, z)
    with pytest.raises(TypeError, match="inplace=True needs float64 values, got float32"):
        sc.transform(values.astype(np.float32), inplace=True)


def test_scaler_keeps_float32_and_dict_round_trip():
    values = np.random.default_rng(2).normal(size=(2, 8, 2)).astype(np.float32)
    sc = SeriesScaler.fit(values)
    assert sc.transform(values).dtype == np.float32
    d = sc.to_dict()
    assert set(d) == {"mean", "std"}
    back = SeriesScaler.from_dict(d)
    np.testing.assert_array_equal(back.mean, sc.mean)
    np.testing.assert_array_equal(back.std, sc.std)
    d["mean"][:] = 99  # to_dict hands out copies
    assert not (sc.mean == 99).any()


# -- relative targets ----------------------------------------------------------


def test_relative_absolute_round_trip():
    w = make_windows(tiny(), 3, 2, [1, 0])
    X, Y = w.X.copy(), w.Y.copy()
    rel = relative_targets(w.X, w.Y, [1, 0])
    np.testing.assert_array_equal(w.X, X)
    np.testing.assert_array_equal(w.Y, Y)
    # values grow by 10 per step: changes are 10, 20 for every window and target
    np.testing.assert_array_equal(rel[..., 0], np.tile([10.0, 20.0], (len(w), 1)))
    np.testing.assert_array_equal(rel, np.broadcast_to([[[10.0], [20.0]]], rel.shape))
    np.testing.assert_array_equal(absolute_targets(w.X, rel, [1, 0]), w.Y)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 4, 3))
    Y = rng.normal(size=(5, 2, 2))
    np.testing.assert_allclose(absolute_targets(X, relative_targets(X, Y, [2, 0]), [2, 0]), Y, rtol=1e-12, atol=1e-14)


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lookback": 0}, ValueError, "lookback must be an integer >= 1"),
        ({"horizon": 0}, ValueError, "horizon must be an integer >= 1"),
        ({"lookback": 2.5}, TypeError, "lookback must be an integer"),
        ({"lookback": 5, "horizon": 3}, ValueError, r"7 time step.*lookback \(5\) \+ horizon \(3\) = 8.*Shorten"),
        ({"target_index": [2]}, ValueError, "target_index .* out of range for 2 feature"),
        ({"target_index": []}, TypeError, "target_index must be a non-empty list"),
        ({"target_index": [0, 0]}, ValueError, "repeats"),
        ({"origins": [1]}, ValueError, r"origins \[1\] are out of range.*2\.\.4"),
        ({"origins": [5]}, ValueError, r"out of range.*2\.\.4"),
        ({"origins": [2.0]}, TypeError, "integer time indices"),
    ],
)
def test_make_windows_bad_arguments(kwargs, error, match):
    args = {"lookback": 3, "horizon": 2, "target_index": [0]} | kwargs
    with pytest.raises(error, match=match):
        make_windows(tiny(), **args)


def test_bad_values():
    with pytest.raises(ValueError, match=r"2 dimension.*expected \(n_series, n_time, n_features\).*values\[None\]"):
        make_windows(np.zeros((7, 2)), 2, 1, [0])
    with pytest.raises(ValueError, match=r"values\[None, :, None\]"):
        input_windows(np.zeros(7), 2)
    with pytest.raises(TypeError, match="float32 or float64.*astype"):
        make_windows(np.zeros((1, 7, 2), dtype=int), 2, 1, [0])
    with pytest.raises(ValueError, match=r"3 time step.*lookback \(4\) = 4"):
        input_windows(np.zeros((1, 3, 1)), 4)
    with pytest.raises(ValueError, match="out of range.*0..6"):
        input_windows(np.zeros((1, 7, 1)), 1, origins=[7])


def test_scaler_bad_input():
    sc = SeriesScaler.fit(tiny())
    with pytest.raises(ValueError, match="fitted on 2 series"):
        sc.transform(np.zeros((3, 7, 2)))
    with pytest.raises(ValueError, match="one integer series index per row"):
        sc.inverse_transform_targets(np.zeros((4, 2, 1)), np.array([0, 1]), [0])
    with pytest.raises(ValueError, match=r"series indices must lie in 0\.\.1"):
        sc.inverse_transform_targets(np.zeros((2, 2, 1)), np.array([0, 2]), [0])
    with pytest.raises(TypeError, match="time_slice must be a slice"):
        SeriesScaler.fit(tiny(), 5)
    with pytest.raises(ValueError, match="'mean' and 'std'"):
        SeriesScaler.from_dict({"mean": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="std finite and > 0"):
        SeriesScaler.from_dict({"mean": np.zeros((2, 2)), "std": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"Y has shape \(5, 2, 2\); expected \(5, horizon, 1\)"):
        relative_targets(np.zeros((5, 3, 2)), np.zeros((5, 2, 2)), [0])
