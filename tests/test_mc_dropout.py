"""Dropout in the Forecaster and Monte-Carlo dropout forecasts (predict(samples=...))."""

import numpy as np
import pytest

import numlstm

from test_forecaster import TINY, stations


@pytest.fixture(scope="module")
def data():
    return stations()


@pytest.fixture(scope="module")
def dropped(data):
    return numlstm.Forecaster(**TINY, dropout=0.2, recurrent_dropout=0.3).fit(data, "flow", covariates=["rain"])


def test_samples_form_a_labelled_ensemble(data, dropped):
    out = dropped.predict(samples=6)
    assert out["flow"].dims == ("station", "time", "sample")
    assert out["sample"].values.tolist() == list(range(6))
    assert out["sample"].attrs["long_name"] == "Monte-Carlo dropout sample"
    assert out["flow"].attrs["units"] == "m3 s-1"
    spread = out["flow"].std("sample")
    assert (spread > 0).all(), "every series and lead should vary across dropout masks"
    # the ensemble centres near the deterministic forecast (dropout off), not somewhere else
    point = dropped.predict()["flow"]
    assert float(abs(out["flow"].mean("sample") - point).max()) < 5 * float(spread.max()) + 1e-3


def test_samples_are_reproducible_by_seed(dropped):
    a = dropped.predict(samples=3, seed=7)["flow"].values
    b = dropped.predict(samples=3, seed=7)["flow"].values
    c = dropped.predict(samples=3, seed=8)["flow"].values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # the first samples do not depend on how many are drawn
    np.testing.assert_array_equal(dropped.predict(samples=2, seed=7)["flow"].values, a[..., :2])


def test_samples_keep_their_spread_under_the_stage_weights(dropped):
    assert dropped.stage_weights_ == (2 / 3, 1 / 3)
    weighted = dropped.predict(samples=4, seed=3)["flow"]
    dropped.stage_weights_ = (1.0, 1.0)
    try:
        whole = dropped.predict(samples=4, seed=3)["flow"]
        point = dropped.predict()["flow"]
    finally:
        dropped.stage_weights_ = (2 / 3, 1 / 3)
    # every sample keeps its distance from the forecast with dropout off; only that forecast is weighted
    np.testing.assert_allclose((weighted - dropped.predict()["flow"]).values, (whole - point).values, rtol=1e-4,
                               atol=1e-4)
    assert float(np.abs(weighted - whole).max()) > 1e-3


def test_predict_without_samples_has_dropout_off(dropped):
    a, b = dropped.predict()["flow"].values, dropped.predict()["flow"].values
    np.testing.assert_array_equal(a, b)
    assert "sample" not in dropped.predict().dims


def test_dropout_changes_training_and_is_seeded(data):
    plain = numlstm.Forecaster(**TINY).fit(data, "flow", covariates=["rain"])
    one = numlstm.Forecaster(**TINY, dropout=0.3).fit(data, "flow", covariates=["rain"])
    two = numlstm.Forecaster(**TINY, dropout=0.3).fit(data, "flow", covariates=["rain"])
    np.testing.assert_array_equal(one.network_.params, two.network_.params)
    assert not np.allclose(one.network_.params, plain.network_.params)


@pytest.mark.parametrize("chunks", [-1, 2, 1])
def test_lazy_samples_equal_eager_however_chunked(data, dropped, chunks):
    """A series' samples are keyed by its fitted position: chunking changes nothing."""
    lazy = dropped.predict(data.chunk({"station": chunks}), samples=3, seed=1)
    assert lazy["flow"].chunks is not None
    eager = dropped.predict(data, samples=3, seed=1)
    np.testing.assert_allclose(lazy["flow"].values, eager["flow"].values, rtol=1e-6)


def test_samples_of_a_series_do_not_depend_on_the_others(data, dropped):
    every = dropped.predict(data, samples=4, seed=2)["flow"]
    some = dropped.predict(data.isel(station=[2, 0]), samples=4, seed=2)["flow"]
    np.testing.assert_allclose(some.sel(station="st2").values, every.sel(station="st2").values, rtol=1e-6)
    np.testing.assert_allclose(some.sel(station="st0").values, every.sel(station="st0").values, rtol=1e-6)
    # and two series never share their masks (their noise differs)
    noise = every - every.mean("sample")
    assert not np.allclose(noise.sel(station="st0").values, noise.sel(station="st1").values)


def test_model_file_keeps_dropout(tmp_path, dropped):
    path = tmp_path / "m.nc"
    dropped.save(path)
    back = numlstm.load(path)
    assert (back.dropout, back.recurrent_dropout) == (0.2, 0.3)
    np.testing.assert_allclose(back.predict(samples=2, seed=3)["flow"].values,
                               dropped.predict(samples=2, seed=3)["flow"].values, rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(samples=0), ValueError, "samples must be an integer >= 1"),
    (dict(samples=2.5), TypeError, "samples must be an integer"),
    (dict(samples=2, seed=-1), TypeError, "seed must be a non-negative integer"),
])
def test_bad_samples(dropped, kwargs, error, match):
    with pytest.raises(error, match=match):
        dropped.predict(**kwargs)


def test_samples_need_dropout_and_no_quantiles(data):
    plain = numlstm.Forecaster(**TINY).fit(data, "flow")
    with pytest.raises(ValueError, match="fitted without dropout"):
        plain.predict(samples=3)
    banded = numlstm.Forecaster(**TINY, quantiles=[0.1, 0.9], dropout=0.1).fit(data, "flow")
    with pytest.raises(ValueError, match="cannot be combined"):
        banded.predict(samples=3)


@pytest.mark.parametrize("name, value, error", [
    ("dropout", 1.0, ValueError), ("dropout", -0.1, ValueError), ("recurrent_dropout", 1.5, ValueError),
    ("dropout", "0.1", TypeError),
])
def test_bad_dropout_rates(data, name, value, error):
    with pytest.raises(error, match=name):
        numlstm.Forecaster(**TINY, **{name: value}).fit(data, "flow")
