"""One-off script that wrote ``seattle_weather.nc`` from vega_datasets' ``seattle-weather.csv``.

Not imported by the package and not needed to use it: the netCDF file it wrote
is shipped. Kept so the conversion can be checked and repeated. It needs
vega_datasets and pandas, which numlstm does not depend on; run it from a
throwaway environment::

    python3 -m venv /tmp/vg
    /tmp/vg/bin/pip install vega_datasets pandas xarray scipy
    /tmp/vg/bin/python numlstm/datasets/_convert_seattle.py

vega_datasets bundles the CSV inside the package, so nothing is downloaded;
the script refuses to run if the package would fetch it from the web instead.

The values are written exactly as the CSV has them, in float64 so that 12.8
stays 12.8. vega_datasets states no units; they come from the script in
github.com/vega/vega-datasets (``scripts/weather.py``) that made the CSV from
NOAA daily summaries: it divides NOAA's PRCP (tenths of mm), TMAX and TMIN
(tenths of degrees C) and AWND (average daily wind speed, tenths of metres per
second) by ten, so the CSV holds mm, degrees C and m/s. The same script sets
``weather`` to "sun" and then lets each later class override the earlier
ones: fog, drizzle, rain (any precipitation counts as rain), snow. The codes
stored here follow that order, 0 = sun .. 4 = snow.
"""

import datetime
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).with_name("seattle_weather.nc")

# Order of precedence in vega-datasets' scripts/weather.py; code = position.
WEATHER_CLASSES = ("sun", "fog", "drizzle", "rain", "snow")


def build_dataset():
    """Read ``seattle-weather.csv`` through vega_datasets and return the labeled daily series."""
    import numpy as np
    import vega_datasets
    import xarray as xr
    from vega_datasets import data

    loader = data.seattle_weather
    if not loader.is_local:
        raise RuntimeError("this vega_datasets does not bundle seattle-weather.csv; "
                           "install one that does (0.9.0 does) instead of downloading it.")
    frame = loader(use_local=True)

    time = frame["date"].to_numpy().astype("datetime64[ns]")
    if (np.diff(time) != np.timedelta64(1, "D")).any():
        raise ValueError("seattle-weather.csv is not one row per consecutive day.")
    unknown = set(frame["weather"]) - set(WEATHER_CLASSES)
    if unknown:
        raise ValueError(f"unexpected weather classes {sorted(unknown)}; expected {WEATHER_CLASSES}.")
    code_of = {name: code for code, name in enumerate(WEATHER_CLASSES)}
    weather = np.array([code_of[name] for name in frame["weather"]], dtype=np.int8)

    def column(name):
        values = frame[name].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"column {name!r} has missing values; this script assumes none.")
        return values

    converted = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    description = loader.description.strip()
    # vega_datasets' own words for where the numbers come from and under what terms.
    noaa_sentence = next(sentence.strip().rstrip(".") + "." for sentence in description.split(". ")
                         if "NOAA" in sentence)
    return xr.Dataset(
        {
            "precipitation": ("time", column("precipitation"), {
                "units": "mm",
                "long_name": "daily precipitation",
                "description": "Daily precipitation total (NOAA PRCP).",
            }),
            "temp_max": ("time", column("temp_max"), {
                "units": "degC",
                "long_name": "daily maximum temperature",
                "description": "Daily maximum air temperature (NOAA TMAX).",
            }),
            "temp_min": ("time", column("temp_min"), {
                "units": "degC",
                "long_name": "daily minimum temperature",
                "description": "Daily minimum air temperature (NOAA TMIN).",
            }),
            "wind": ("time", column("wind"), {
                "units": "m s-1",
                "long_name": "daily mean wind speed",
                "description": "Average daily wind speed (NOAA AWND).",
            }),
            "weather": ("time", weather, {
                "long_name": "weather type",
                "flag_values": np.arange(len(WEATHER_CLASSES), dtype=np.int8),
                "flag_meanings": " ".join(WEATHER_CLASSES),
                "description": "Class made by vega-datasets from NOAA weather-type flags: sun unless "
                               "fog, drizzle, rain (or any precipitation) or snow was reported; a "
                               "later class in flag_meanings overrides an earlier one.",
            }),
        },
        coords={"time": ("time", time, {"long_name": "day of observation"})},
        attrs={
            "title": "Seattle daily weather, 2012-01-01 to 2015-12-31",
            "source": f"vega_datasets {vega_datasets.__version__}, data.seattle_weather() "
                      f"(bundled file {loader.pkg_filename}; upstream {loader.url}).",
            "source_description": description,
            "original_source": noaa_sentence,
            "license": "Public domain, as stated by vega_datasets: " + noaa_sentence,
            "conversion_date": converted,
            "converted_by": "numlstm datasets/convert script",
            "history": f"{converted}: converted from vega_datasets seattle-weather.csv by "
                       "numlstm/datasets/_convert_seattle.py; values unchanged, weather classes "
                       "stored as codes (see flag_values, flag_meanings).",
        },
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    ds = build_dataset()
    # netCDF3 through scipy, so reading it needs no netCDF C library.
    ds.to_netcdf(output, engine="scipy", format="NETCDF3_64BIT")
    return output


if __name__ == "__main__":
    print(f"wrote {main()}")
