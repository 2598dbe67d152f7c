"""The shipped data sets: values, time axis, provenance and bad names."""

from importlib import resources

import numpy as np
import pytest
import xarray as xr

from numlstm import datasets


@pytest.fixture(scope="module")
def population():
    return datasets.load("us_population")


@pytest.fixture(scope="module")
def seattle():
    return datasets.load("seattle_weather")


def test_available_lists_every_data_set():
    assert datasets.available() == ["seattle_weather", "us_population"]


def test_every_available_data_set_loads():
    for name in datasets.available():
        assert datasets.load(name).sizes["time"] > 0, name


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


# First and last rows of vega_datasets' seattle-weather.csv:
# 2012/01/01,0.0,12.8,5.0,4.7,drizzle and 2015/12/31,0.0,5.6,-2.1,3.5,sun
SEATTLE_FIRST_LAST = {
    "precipitation": (0.0, 0.0),
    "temp_max": (12.8, 5.6),
    "temp_min": (5.0, -2.1),
    "wind": (4.7, 3.5),
}
SEATTLE_UNITS = {"precipitation": "mm", "temp_max": "degC", "temp_min": "degC", "wind": "m s-1"}


@pytest.mark.parametrize("name", sorted(SEATTLE_FIRST_LAST))
def test_seattle_values(seattle, name):
    values = seattle[name]
    assert values.dims == ("time",)
    assert values.dtype == np.float64
    assert values.size == 1461
    first, last = SEATTLE_FIRST_LAST[name]
    assert values.values[0] == pytest.approx(first)
    assert values.values[-1] == pytest.approx(last)
    assert np.isfinite(values.values).all()
    assert values.attrs["units"] == SEATTLE_UNITS[name]
    assert values.attrs["long_name"]


def test_seattle_physical_ranges(seattle):
    assert (seattle["precipitation"].values >= 0).all()
    assert (seattle["wind"].values >= 0).all()
    assert (seattle["temp_min"].values <= seattle["temp_max"].values).all()


def test_seattle_weather_codes(seattle):
    codes = seattle["weather"]
    meanings = codes.attrs["flag_meanings"].split()
    assert meanings == ["sun", "fog", "drizzle", "rain", "snow"]
    np.testing.assert_array_equal(codes.attrs["flag_values"], np.arange(5))
    assert np.issubdtype(codes.dtype, np.integer)
    assert set(np.unique(codes.values)) <= set(codes.attrs["flag_values"].tolist())
    assert meanings[codes.values[0]] == "drizzle"
    assert meanings[codes.values[-1]] == "sun"
    # Class counts of the CSV's weather column.
    counts = dict(zip(meanings, np.bincount(codes.values, minlength=len(meanings))))
    assert counts == {"sun": 714, "fog": 411, "drizzle": 54, "rain": 259, "snow": 23}


def test_seattle_time_axis(seattle):
    time = seattle["time"]
    assert np.issubdtype(time.dtype, np.datetime64)
    assert time.size == 1461
    assert time.values[0] == np.datetime64("2012-01-01")
    assert time.values[-1] == np.datetime64("2015-12-31")
    assert xr.infer_freq(time) == "D"
    assert (np.diff(time.values) == np.timedelta64(1, "D")).all()
    assert "long_name" in time.attrs


def test_seattle_attrs(seattle):
    for key in ("title", "source", "source_description", "original_source", "license",
                "conversion_date", "converted_by", "history"):
        assert seattle.attrs[key], key
    assert "vega_datasets" in seattle.attrs["source"]
    assert "NOAA" in seattle.attrs["original_source"]
    assert "public-domain" in seattle.attrs["license"]
    assert seattle.attrs["converted_by"] == "numlstm datasets/convert script"


def test_shipped_files_are_small():
    sizes = {entry.name: len(entry.read_bytes())
             for entry in resources.files(datasets).iterdir() if entry.name.endswith(".nc")}
    assert sorted(sizes) == ["seattle_weather.nc", "us_population.nc"]
    assert sum(sizes.values()) < 2 * 1024 * 1024


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
