"""One-off script that wrote ``us_population.nc`` from statsmodels' ``macrodata``.

Not imported by the package and not needed to use it: the netCDF file it wrote
is shipped. Kept so the conversion can be checked and repeated. It needs
statsmodels, which numlstm does not depend on; run it from a throwaway
environment::

    python3 -m venv /tmp/sm
    /tmp/sm/bin/pip install statsmodels xarray scipy
    /tmp/sm/bin/python numlstm/datasets/_convert_population.py

The values are written exactly as statsmodels ships them. statsmodels stores
``pop`` in millions of persons (177.146 for 1959Q1, about 177 million people),
so the units attribute says "millions". Each value is
the population at the end of its quarter; the time coordinate labels the
quarter by its first day, the usual convention for quarterly periods.
"""

import datetime
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).with_name("us_population.nc")


def build_dataset():
    """Read ``macrodata`` through statsmodels and return the labeled population series."""
    import numpy as np
    import statsmodels
    import xarray as xr
    from statsmodels.datasets import macrodata

    frame = macrodata.load_pandas().data
    years = frame["year"].to_numpy().astype(int)
    quarters = frame["quarter"].to_numpy().astype(int)
    time = np.array([f"{y:04d}-{3 * (q - 1) + 1:02d}-01" for y, q in zip(years, quarters)],
                    dtype="datetime64[ns]")
    population = frame["pop"].to_numpy(dtype=np.float64)

    converted = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return xr.Dataset(
        {"population": ("time", population, {
            "units": "millions",
            "long_name": "US resident population",
            "description": "End of the quarter total population: all ages incl. armed forces over seas "
                           "(statsmodels macrodata variable 'pop').",
        })},
        coords={"time": ("time", time, {"long_name": "start of quarter"})},
        attrs={
            "title": "US population, quarterly, 1959Q1-2009Q3",
            "source": f"statsmodels.datasets.macrodata (statsmodels {statsmodels.__version__}), "
                      "variable 'pop'. " + macrodata.TITLE + ".",
            "source_description": macrodata.DESCRLONG.strip(),
            "original_source": macrodata.SOURCE.strip(),
            "license": "Public domain, as stated by statsmodels: " + macrodata.COPYRIGHT.strip(),
            "conversion_date": converted,
            "converted_by": "numlstm datasets/convert script",
            "history": f"{converted}: converted from statsmodels macrodata by "
                       "numlstm/datasets/_convert_population.py; values unchanged (millions of persons).",
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
