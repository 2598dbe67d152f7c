"""The shipped data sets: values, time axis, provenance and bad names."""

import numpy as np
import pytest
import xarray as xr

from numlstm import datasets


@pytest.fixture(scope="module")
def population():
    return datasets.load("us_population")


def test_available_lists_population():
    assert datasets.available() == ["us_population"]


def test_population_values(population):
    values = population["population"]
    assert values.dims == ("time",)
    assert values.dtype == np.float64
    assert values.size == 203
    assert values.values[0] == pytest.approx(177.146)
    assert values.values[-1] == pytest.approx(308.013)
    assert np.isfinite(values.values).all()
    assert (np.diff(values.values) > 0).all()


def test_population_time_axis(population):
    time = population["time"]
    assert np.issubdtype(time.dtype, np.datetime64)
    assert time.values[0] == np.datetime64("1959-01-01")
    assert time.values[-1] == np.datetime64("2009-07-01")
    assert xr.infer_freq(time) == "QS-JAN"
    assert "long_name" in time.attrs


def test_population_attrs(population):
    assert population["population"].attrs["units"] == "millions"
    assert population["population"].attrs["long_name"] == "US resident population"
    for key in ("source", "original_source", "license", "conversion_date", "converted_by"):
        assert population.attrs[key], key
    assert "statsmodels" in population.attrs["source"]
    assert "Federal Reserve" in population.attrs["original_source"]
    assert "public domain" in population.attrs["license"]
    assert population.attrs["converted_by"] == "numlstm datasets/convert script"


def test_load_returns_in_memory_copies():
    first = datasets.load("us_population")
    first["population"][:] = 0.0
    second = datasets.load("us_population")
    assert second["population"].values[0] == pytest.approx(177.146)


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match=r"name='us_pop' is not a shipped data set.*us_population"):
        datasets.load("us_pop")


def test_non_string_name():
    with pytest.raises(TypeError, match=r"name must be a str.*got int"):
        datasets.load(3)
