"""Small real data sets shipped with numlstm.

Each data set is a netCDF3 file inside the package, read with xarray's scipy
engine, so no netCDF C library is needed.

``seattle_weather``
    Daily weather at Seattle, 2012-01-01 to 2015-12-31 (1461 days, no gaps,
    no missing values): ``precipitation`` (mm), ``temp_max`` and ``temp_min``
    (degC), ``wind`` (daily mean wind speed, m s-1) and ``weather``, the day's
    class as an int8 code whose CF attributes ``flag_values`` and
    ``flag_meanings`` name it (0 sun, 1 fog, 2 drizzle, 3 rain, 4 snow), all
    on a daily ``time`` coordinate. From vega_datasets' ``seattle-weather.csv``
    (drawn from public-domain NOAA data).

``us_population``
    Quarterly US population, 1959Q1-2009Q3 (203 values), in millions of
    persons: variable ``population`` on a ``time`` coordinate of quarter
    starts. From statsmodels' ``macrodata`` (compiled from FRED, Federal
    Reserve Bank of St. Louis; public domain).

The attributes of each file record its source, license and conversion.

Examples
--------
>>> from numlstm import datasets
>>> datasets.available()
['seattle_weather', 'us_population']
>>> ds = datasets.load("us_population")
>>> ds.sizes["time"], ds["population"].attrs["units"]
(203, 'millions')
>>> weather = datasets.load("seattle_weather")
>>> weather.sizes["time"], weather["wind"].attrs["units"]
(1461, 'm s-1')
>>> weather["weather"].attrs["flag_meanings"]
'sun fog drizzle rain snow'
"""

from importlib import resources

import xarray as xr

__all__ = ["available", "load"]

_FILES = {
    "seattle_weather": "seattle_weather.nc",
    "us_population": "us_population.nc",
}


def available():
    """Names of the shipped data sets, accepted by :func:`load`.

    Returns
    -------
    list of str
    """
    return sorted(_FILES)


def load(name):
    """Load a shipped data set into memory.

    Parameters
    ----------
    name : str
        One of :func:`available`, e.g. ``"us_population"``.

    Returns
    -------
    xarray.Dataset
        Fully loaded; the file is closed before this returns.

    Raises
    ------
    ValueError
        If ``name`` is not a shipped data set.
    TypeError
        If ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming a data set, got {type(name).__name__}. "
                        f"Available: {', '.join(available())}.")
    if name not in _FILES:
        raise ValueError(f"name={name!r} is not a shipped data set; expected one of: "
                         f"{', '.join(available())}.")
    resource = resources.files(__name__).joinpath(_FILES[name])
    # as_file gives a real path even when the package is imported from a zip.
    with resources.as_file(resource) as path:
        return xr.load_dataset(path, engine="scipy")
